-- A `dataset migrate` under way (a push dataset cannot gain tables, so a new one replaces it). The row
-- is written before the new dataset is created (to_dataset_id NULL) and gets its id right after, so a
-- migration that stopped halfway continues with that dataset instead of creating another; it is
-- deleted once every report is rebound to the new dataset. The old dataset is never deleted.
CREATE TABLE dataset_migrations (
    connection_id INTEGER PRIMARY KEY REFERENCES connections(id),
    group_id TEXT NOT NULL,
    from_dataset_id TEXT NOT NULL,
    to_dataset_id TEXT,
    started_at TEXT NOT NULL
);
