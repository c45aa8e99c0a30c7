-- A rebuild reads a stream's mirror in the order its rows lie in the table (rowid order), each
-- table leaf once. An index on (connection_id, stream) is ordered by (connection_id, stream, rowid),
-- SQLite's index entries ending with the rowid, so a page is a range of it: `rowid > cursor`. Read
-- in key order through mirror_key instead, every row was a seek to a leaf of its own, because a pull
-- adds rows in WHENMODIFIED order: 40 % of a rebuild's CPU at 1,000,000 rows (BENCHMARKS.md,
-- "Session 7"). New rows land at the end of their stream's part of this index: cheap to keep.
CREATE INDEX mirror_by_stream ON mirror(connection_id, stream);
