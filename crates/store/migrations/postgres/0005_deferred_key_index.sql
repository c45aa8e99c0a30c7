-- The audit trail's key index is kept by the store in bulk instead of by SQLite per entry.
--
-- audit_by_key took every entry's key as it was appended. A staged page's keys spread over the whole
-- key range, so every page rewrote index pages all over the index: with it SQLite wrote 8.4 KB per
-- record staged, without it 4.4 KB, and staging cost 40 % more CPU (BENCHMARKS.md, "Session 6").
-- audit_keys holds the same (connection, stream, key, seq) entries, but the store adds them after the
-- fact, tens of thousands at a time in key order (each index page then written once per batch): at
-- the end of every run, whenever a connection's chain gets 100,000 entries ahead of it, and before a
-- replay reads it. audit_keys_through says how far each chain is indexed; search by key reads the
-- entries after that point straight off the chain.
CREATE TABLE audit_keys (
    connection_id BIGINT NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (connection_id, stream, record_key, seq)
);

CREATE TABLE audit_keys_through (
    connection_id BIGINT PRIMARY KEY REFERENCES connections(id),
    seq BIGINT NOT NULL
);

INSERT INTO audit_keys (connection_id, stream, record_key, seq)
    SELECT connection_id, stream, record_key, seq FROM audit
    WHERE stream IS NOT NULL AND record_key IS NOT NULL
    ORDER BY connection_id, stream, record_key, seq;
INSERT INTO audit_keys_through (connection_id, seq) SELECT connection_id, last_seq FROM audit_head;
DROP INDEX audit_by_key;
