-- Every POST to a Power BI dataset within the last hours: when its answer came and how many rows
-- it added. A new process seeds its pacer from here, so it stays inside the hourly and per-minute
-- budgets that an earlier process (the last sync, another worker) already used.
CREATE TABLE push_log (
    dataset_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    row_count BIGINT NOT NULL
);
CREATE INDEX push_log_by_dataset ON push_log(dataset_id, sent_at);
