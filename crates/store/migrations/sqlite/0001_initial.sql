-- ml-store schema v1 (SQLite). Timestamps are fixed-width UTC text ("2026-01-01T00:00:00.000000Z"),
-- so they sort as text; hashes are raw 32-byte blobs.

CREATE TABLE connections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE credentials (
    connection_id INTEGER NOT NULL REFERENCES connections(id),
    kind TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    public_fields TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, kind)
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections(id),
    run_trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX runs_by_connection ON runs(connection_id, status, id);

CREATE TABLE run_streams (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stream TEXT NOT NULL,
    status TEXT,
    extracted INTEGER NOT NULL,
    staged INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    pushed INTEGER NOT NULL,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, stream)
);

CREATE TABLE cursors (
    connection_id INTEGER NOT NULL REFERENCES connections(id),
    stream TEXT NOT NULL,
    committed_wm TEXT,
    committed_recno INTEGER,
    pending_wm TEXT,
    pending_recno INTEGER,
    PRIMARY KEY (connection_id, stream)
);

CREATE TABLE mirror (
    connection_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT NOT NULL,
    when_modified TEXT,
    source_hash TEXT NOT NULL,
    row_json TEXT NOT NULL
);
CREATE UNIQUE INDEX mirror_key ON mirror(connection_id, stream, record_key);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT NOT NULL,
    row_json TEXT NOT NULL,
    audit_seq INTEGER NOT NULL,
    ambiguous INTEGER NOT NULL DEFAULT 0,
    batch_id TEXT
);
CREATE INDEX outbox_by_stream ON outbox(connection_id, stream, ambiguous, id);

CREATE TABLE stream_state (
    connection_id INTEGER NOT NULL REFERENCES connections(id),
    stream TEXT NOT NULL,
    dirty INTEGER NOT NULL,
    last_loaded_run INTEGER,
    table_rows INTEGER NOT NULL,
    PRIMARY KEY (connection_id, stream)
);

CREATE TABLE datasets (
    connection_id INTEGER PRIMARY KEY REFERENCES connections(id),
    group_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    schema_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE leases (
    connection_id INTEGER PRIMARY KEY REFERENCES connections(id),
    worker_id TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- The audit trail: one hash chain per connection, ordered by seq.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    connection_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    run_id INTEGER,
    stream TEXT,
    record_key TEXT,
    when_modified TEXT,
    source_hash TEXT,
    action TEXT NOT NULL,
    row_json TEXT,
    ref_seq INTEGER,
    batch_id TEXT,
    request_id TEXT,
    outcome TEXT,
    error TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE UNIQUE INDEX audit_chain ON audit(connection_id, seq);
CREATE INDEX audit_by_key ON audit(connection_id, stream, record_key, seq);
CREATE INDEX audit_by_run ON audit(run_id, stream, id);

-- Newest entry of each chain; appends serialise on this row.
CREATE TABLE audit_head (
    connection_id INTEGER PRIMARY KEY REFERENCES connections(id),
    last_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);

-- Last pruned entry of each chain; verification starts here.
CREATE TABLE audit_anchor (
    connection_id INTEGER PRIMARY KEY REFERENCES connections(id),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    pruned_at TEXT NOT NULL
);
