//! What staging costs SQLite itself: the same pages as the `stage` bench (1,000,000 records by
//! default, pages of 2,000, append mode: mirror + audit + outbox), the same schema (this crate's
//! migrations), the same pragmas and the same hash chain, but written through rusqlite with one
//! cached single-row statement per table on the calling thread, each page in key order as the
//! store chains it: no async driver, no worker thread, no argument copies. The gap between the
//! two benches is what the driver costs; this one is the floor any SQLite driver can reach with
//! this schema.
//!
//! `cargo bench -p ml-store --bench sqlite_floor`; `ML_STORE_BENCH_RECORDS` changes the count,
//! `ML_STORE_BENCH_ORDER` and `ML_STORE_BENCH_PAGE` the arrival order and transaction size (see the
//! `stage` bench). `ML_FLOOR_EXTRA_SQL` runs after the migrations (a schema variant),
//! `ML_FLOOR_FINAL_SQL` after the last page inside the timed region (e.g. a bulk index build).

use std::time::Instant;

use ml_store::audit::{ChainHead, NewEntry};
use ml_store::{AuditAction, RunId};
use rusqlite::{Connection, params};

mod common;
use common::{bytes_written, cpu_seconds, pages, record_count, report, sqlite_size};

fn main() {
    let total = record_count();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let mut db = Connection::open(&path).expect("open");
    db.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA cache_size = -16384; PRAGMA temp_store = memory;",
    )
    .expect("pragmas");
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(migrations)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        db.execute_batch(&std::fs::read_to_string(&f).expect("migration"))
            .expect("migrate");
    }
    if let Ok(sql) = std::env::var("ML_FLOOR_EXTRA_SQL") {
        db.execute_batch(&sql).expect("extra sql");
    }
    db.execute_batch(
        "INSERT INTO connections (id, name, created_at) VALUES (1, 'bench', '2026-01-01T00:00:00Z'); \
         INSERT INTO audit_head (connection_id, last_seq, last_hash) VALUES (1, 0, zeroblob(32)); \
         INSERT INTO runs (id, connection_id, run_trigger, status, started_at, summary) \
           VALUES (1, 1, 'manual', 'running', '2026-01-01T00:00:00Z', '{}');",
    )
    .expect("seed");

    let pages = pages(total);

    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let written_before = bytes_written();
    let mut head = ChainHead::GENESIS;
    let created = "2026-11-24T08:00:00.000000Z";
    let mut staged = 0u64;
    for (i, records) in pages.into_iter().enumerate() {
        let tx = db.transaction().expect("begin");
        {
            let mut lookup = tx
                .prepare_cached(
                    "SELECT source_hash FROM mirror WHERE connection_id = 1 AND stream = ?1 AND record_key = ?2",
                )
                .expect("prepare");
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit (connection_id, seq, run_id, stream, record_key, when_modified, source_hash, \
                     action, row_json, ref_seq, batch_id, request_id, outcome, error, detail, created_at, prev_hash, hash) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, NULL, NULL, NULL, ?9, ?10, ?11)",
                )
                .expect("prepare");
            let mut outbox = tx
                .prepare_cached(
                    "INSERT INTO outbox (connection_id, stream, record_key, audit_seq) VALUES (1, ?1, ?2, ?3)",
                )
                .expect("prepare");
            let mut mirror = tx
                .prepare_cached(
                    "INSERT INTO mirror (connection_id, stream, record_key, when_modified, source_hash, row_seq) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5) ON CONFLICT (connection_id, stream, record_key) DO UPDATE SET \
                     when_modified = excluded.when_modified, source_hash = excluded.source_hash, \
                     row_seq = excluded.row_seq, row_json = NULL",
                )
                .expect("prepare");
            // In key order, as the store chains a page (its key indexes then take the page in order).
            let mut records = records;
            records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            for r in records {
                let known: Option<String> = lookup
                    .query_row(params!["GLENTRY", r.key], |row| row.get(0))
                    .ok();
                assert!(known.is_none(), "every bench record is new");
                let mut e = NewEntry::new(AuditAction::Inserted);
                e.run = Some(RunId(1));
                e.stream = Some("GLENTRY".into());
                e.record_key = Some(r.key);
                e.when_modified = r.when_modified;
                e.source_hash = Some(r.source_hash);
                e.row_json = Some(r.row_json);
                let prev = head.hash;
                let c = head.chain("bench", created, e);
                let e = &c.entry;
                audit
                    .execute(params![
                        c.seq,
                        1,
                        e.stream,
                        e.record_key,
                        e.when_modified,
                        e.source_hash,
                        e.action.as_str(),
                        e.row_json,
                        created,
                        &prev[..],
                        &c.hash[..],
                    ])
                    .expect("audit");
                outbox
                    .execute(params![e.stream, e.record_key, c.seq])
                    .expect("outbox");
                mirror
                    .execute(params![
                        e.stream,
                        e.record_key,
                        e.when_modified,
                        e.source_hash,
                        c.seq
                    ])
                    .expect("mirror");
                staged += 1;
            }
        }
        tx.execute(
            "UPDATE audit_head SET last_seq = ?1, last_hash = ?2 WHERE connection_id = 1",
            params![head.seq, &head.hash[..]],
        )
        .expect("head");
        tx.execute(
            "INSERT INTO cursors (connection_id, stream, pending_wm, pending_recno) VALUES (1, 'GLENTRY', ?1, ?2) \
             ON CONFLICT (connection_id, stream) DO UPDATE SET pending_wm = excluded.pending_wm, \
             pending_recno = excluded.pending_recno",
            params!["2026-01-28T10:00:00", i as i64],
        )
        .expect("cursor");
        tx.commit().expect("commit");
    }
    if let Ok(sql) = std::env::var("ML_FLOOR_FINAL_SQL") {
        db.execute_batch(&sql).expect("final sql");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    drop(db);
    // After the close: it checkpoints what the WAL still holds into the file.
    let written = bytes_written() - written_before;
    let size = sqlite_size(&path);
    report("sqlite floor", staged, secs, cpu, size, written);
}
