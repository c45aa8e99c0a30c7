-- A run's entries lie between the first and the last seq it appended to its connection's chain, and
-- replay and search by run read that span through audit_chain. The index audit_by_run, which served
-- them before, cost every audit entry a third index insert: 7-10 % of what staging a record costs
-- SQLite, measured there (BENCHMARKS.md, "What staging costs SQLite itself").
ALTER TABLE runs ADD COLUMN first_seq BIGINT;
ALTER TABLE runs ADD COLUMN last_seq BIGINT;
UPDATE runs SET
    first_seq = (SELECT min(a.seq) FROM audit a WHERE a.run_id = runs.id AND a.connection_id = runs.connection_id),
    last_seq = (SELECT max(a.seq) FROM audit a WHERE a.run_id = runs.id AND a.connection_id = runs.connection_id);
DROP INDEX audit_by_run;
