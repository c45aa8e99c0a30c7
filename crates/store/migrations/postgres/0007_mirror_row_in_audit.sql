-- The mirror no longer keeps its own copy of each row: row_seq names the audit entry that staged
-- the row (that entry holds the exact row, as the outbox's audit_seq does), and the row is read from
-- there. Staging wrote every row twice, once into the trail and once into the mirror (BENCHMARKS.md,
-- "Session 8"). row_json stays for rows whose entry was pruned: pruning copies the row into the
-- mirror first. Rows of earlier versions keep their row_json and no row_seq.
ALTER TABLE mirror ADD COLUMN row_seq BIGINT;
ALTER TABLE mirror ALTER COLUMN row_json DROP NOT NULL;
ALTER TABLE mirror ADD CONSTRAINT mirror_row_kept CHECK (row_seq IS NOT NULL OR row_json IS NOT NULL);
