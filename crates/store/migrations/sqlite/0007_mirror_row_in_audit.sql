-- The mirror no longer keeps its own copy of each row: row_seq names the audit entry that staged
-- the row (that entry holds the exact row, as the outbox's audit_seq does), and the row is read from
-- there. Staging wrote every row twice, once into the trail and once into the mirror: one copy is
-- ~30 % of the bytes SQLite writes per record (WAL and checkpoint), and binding it cost a copy more
-- (BENCHMARKS.md, "Session 8"). row_json stays for rows whose entry was pruned: pruning copies the
-- row into the mirror first. Rows of earlier versions keep their row_json and no row_seq.
--
-- SQLite cannot drop a NOT NULL: the table is rebuilt, rowids kept (a rebuild reads in rowid order).
CREATE TABLE mirror_v7 (
    connection_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT NOT NULL,
    when_modified TEXT,
    source_hash TEXT NOT NULL,
    row_seq INTEGER,
    row_json TEXT,
    CHECK (row_seq IS NOT NULL OR row_json IS NOT NULL)
);
INSERT INTO mirror_v7 (rowid, connection_id, stream, record_key, when_modified, source_hash, row_seq, row_json)
    SELECT rowid, connection_id, stream, record_key, when_modified, source_hash, NULL, row_json FROM mirror;
DROP TABLE mirror;
ALTER TABLE mirror_v7 RENAME TO mirror;
CREATE UNIQUE INDEX mirror_key ON mirror(connection_id, stream, record_key);
CREATE INDEX mirror_by_stream ON mirror(connection_id, stream);
