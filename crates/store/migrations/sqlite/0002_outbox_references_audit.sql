-- The outbox no longer keeps its own copy of each row: the staging audit entry it points at
-- (audit_seq) holds the exact row, and pruning keeps every entry the outbox still references.
-- Staging writes one copy of each row fewer (BENCHMARKS.md, store staging).
ALTER TABLE outbox DROP COLUMN row_json;
