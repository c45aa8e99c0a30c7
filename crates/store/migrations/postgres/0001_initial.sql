-- ml-store schema v1 (PostgreSQL). Timestamps are fixed-width UTC text ("2026-01-01T00:00:00.000000Z"),
-- so they sort as text; hashes are raw 32-byte bytea.
-- Keys use the "C" collation so keyset paging orders them bytewise, as SQLite does.

CREATE TABLE connections (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE credentials (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    kind TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    public_fields TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, kind)
);

CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    run_trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX runs_by_connection ON runs(connection_id, status, id);

CREATE TABLE run_streams (
    run_id BIGINT NOT NULL REFERENCES runs(id),
    stream TEXT NOT NULL,
    status TEXT,
    extracted BIGINT NOT NULL,
    staged BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    pushed BIGINT NOT NULL,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, stream)
);

CREATE TABLE cursors (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    stream TEXT NOT NULL,
    committed_wm TEXT,
    committed_recno BIGINT,
    pending_wm TEXT,
    pending_recno BIGINT,
    PRIMARY KEY (connection_id, stream)
);

CREATE TABLE mirror (
    connection_id BIGINT NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT COLLATE "C" NOT NULL,
    when_modified TEXT,
    source_hash TEXT NOT NULL,
    row_json TEXT NOT NULL
);
CREATE UNIQUE INDEX mirror_key ON mirror(connection_id, stream, record_key);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    connection_id BIGINT NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT COLLATE "C" NOT NULL,
    row_json TEXT NOT NULL,
    audit_seq BIGINT NOT NULL,
    ambiguous BIGINT NOT NULL DEFAULT 0,
    batch_id TEXT
);
CREATE INDEX outbox_by_stream ON outbox(connection_id, stream, ambiguous, id);

CREATE TABLE stream_state (
    connection_id BIGINT NOT NULL REFERENCES connections(id),
    stream TEXT NOT NULL,
    dirty BIGINT NOT NULL,
    last_loaded_run BIGINT,
    table_rows BIGINT NOT NULL,
    PRIMARY KEY (connection_id, stream)
);

CREATE TABLE datasets (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    group_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    schema_json TEXT NOT NULL,
    schema_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE leases (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    worker_id TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- The audit trail: one hash chain per connection, ordered by seq.
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    connection_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    run_id BIGINT,
    stream TEXT,
    record_key TEXT COLLATE "C",
    when_modified TEXT,
    source_hash TEXT,
    action TEXT NOT NULL,
    row_json TEXT,
    ref_seq BIGINT,
    batch_id TEXT,
    request_id TEXT,
    outcome TEXT,
    error TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE UNIQUE INDEX audit_chain ON audit(connection_id, seq);
CREATE INDEX audit_by_key ON audit(connection_id, stream, record_key, seq);
CREATE INDEX audit_by_run ON audit(run_id, stream, id);

-- Newest entry of each chain; appends serialise on this row.
CREATE TABLE audit_head (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    last_seq BIGINT NOT NULL,
    last_hash BYTEA NOT NULL
);

-- Last pruned entry of each chain; verification starts here.
CREATE TABLE audit_anchor (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    pruned_at TEXT NOT NULL
);
