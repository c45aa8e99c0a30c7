//! A store written by an earlier version opens under this one without losing anything: rows that
//! were waiting in the outbox before the outbox stopped keeping its own copy of each row (migration
//! 0002) are still delivered, byte for byte, from their staging audit entries.

use std::borrow::Cow;

use ml_store::{StoreLocation, open};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

/// A store file at `path` with the schema as `version` left it (its first migrations only), and
/// connection 1 `acme` whose chain head is at `head_seq`: the earlier version's data is then
/// written by the test, straight into the tables.
async fn schema_at_version(path: &std::path::Path, version: usize, head_seq: i64) -> SqlitePool {
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
    )
    .await
    .expect("pool");
    let mut earlier = sqlx::migrate!("./migrations/sqlite");
    earlier.migrations = Cow::Owned(earlier.migrations[..version].to_vec());
    earlier.run(&pool).await.expect("earlier schema");
    sqlx::query(
        "INSERT INTO connections (id, name, created_at) VALUES (1, 'acme', '2026-01-01T00:00:00.000000Z')",
    )
    .execute(&pool)
    .await
    .expect("connection");
    sqlx::query(
        "INSERT INTO audit_head (connection_id, last_seq, last_hash) VALUES (1, $1, zeroblob(32))",
    )
    .bind(head_seq)
    .execute(&pool)
    .await
    .expect("chain head");
    pool
}

#[tokio::test]
async fn outbox_rows_from_a_version_1_store_survive_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.sqlite");
    let row = r#"{"RECORDNO":7,"NAME":"Acme, \"Ltd\"","AMOUNT":"12.3400"}"#;
    {
        // The schema as version 1 left it (first migration only), with one staged, undelivered row.
        let pool = schema_at_version(&path, 1, 1).await;
        sqlx::query(
            "INSERT INTO audit (connection_id, seq, run_id, stream, record_key, action, row_json, created_at, prev_hash, hash) \
             VALUES (1, 1, NULL, 'APBILL', '7', 'inserted', $1, '2026-01-01T00:00:00.000000Z', zeroblob(32), zeroblob(32))",
        )
        .bind(row)
        .execute(&pool)
        .await
        .expect("audit entry");
        sqlx::query(
            "INSERT INTO outbox (connection_id, stream, record_key, row_json, audit_seq) VALUES (1, 'APBILL', '7', $1, 1)",
        )
        .bind(row)
        .execute(&pool)
        .await
        .expect("outbox row");
        pool.close().await;
    }

    let store = open(&StoreLocation::Sqlite(path))
        .await
        .expect("open upgrades");
    let waiting = store
        .outbox_batch("acme", "APBILL", 0, 10)
        .await
        .expect("outbox");
    assert_eq!(waiting.len(), 1, "the waiting row is still there");
    assert_eq!(waiting[0].key, "7");
    assert_eq!(waiting[0].row_json, row, "and exactly as it was staged");
    assert_eq!(waiting[0].audit_seq, 1);
    store.close().await;
}

/// Migration 0005 moves the audit trail's key index into `audit_keys`: a version 4 store's entries
/// are all in it, marked indexed up to the chain's head, and search by key finds them.
#[tokio::test]
async fn a_version_4_audit_trail_is_in_the_key_index_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.sqlite");
    {
        let pool = schema_at_version(&path, 4, 3).await;
        for (seq, stream, key, action) in [
            (1, Some("VENDOR"), Some("7"), "inserted"),
            (2, Some("VENDOR"), None, "failed"),
            (3, Some("VENDOR"), Some("7"), "updated"),
        ] {
            sqlx::query(
                "INSERT INTO audit (connection_id, seq, stream, record_key, action, created_at, prev_hash, hash) \
                 VALUES (1, $1, $2, $3, $4, '2026-01-01T00:00:00.000000Z', zeroblob(32), zeroblob(32))",
            )
            .bind(seq)
            .bind(stream)
            .bind(key)
            .bind(action)
            .execute(&pool)
            .await
            .expect("audit entry");
        }
        pool.close().await;
    }

    let store = open(&StoreLocation::Sqlite(path.clone()))
        .await
        .expect("open upgrades");
    let found = store
        .audit_search(&ml_store::AuditFilter {
            connection: Some("acme".into()),
            record_key: Some("7".into()),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    store.close().await;

    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .expect("pool");
    let indexed: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT stream, record_key, seq FROM audit_keys ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("audit_keys");
    assert_eq!(
        indexed,
        [
            ("VENDOR".into(), "7".into(), 1),
            ("VENDOR".into(), "7".into(), 3)
        ]
    );
    let through: i64 =
        sqlx::query_scalar("SELECT seq FROM audit_keys_through WHERE connection_id = 1")
            .fetch_one(&pool)
            .await
            .expect("through");
    assert_eq!(through, 3, "indexed up to the head");
}

/// Migration 0006 adds `mirror_by_stream`, through which SQLite rebuilds read a stream's mirror in
/// rowid order: a version 5 store's mirror, rows added out of key order and of two streams, comes
/// back whole, each row once, and only the stream asked for. Migration 0007 rebuilds the mirror
/// (its rows now live in the audit trail): the old rows keep their own copy, and a row staged
/// again after the upgrade is read from its audit entry.
#[tokio::test]
async fn a_version_5_mirror_is_read_whole_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.sqlite");
    let keys = ["9", "10", "1", "500", "42"];
    {
        let pool = schema_at_version(&path, 5, 0).await;
        for (i, key) in keys.iter().enumerate() {
            for stream in ["VENDOR", "CLASS"] {
                sqlx::query(
                    "INSERT INTO mirror (connection_id, stream, record_key, source_hash, row_json) \
                     VALUES (1, $1, $2, 'h', $3)",
                )
                .bind(stream)
                .bind(key)
                .bind(format!("{{\"S\":\"{stream}\",\"K\":\"{key}\",\"I\":{i}}}"))
                .execute(&pool)
                .await
                .expect("mirror row");
            }
        }
        pool.close().await;
    }

    let store = open(&StoreLocation::Sqlite(path))
        .await
        .expect("open upgrades");
    let vendor_rows = async |store: &dyn ml_store::Store| {
        let (mut after, mut rows) = (None::<String>, Vec::new());
        while let Some(page) = store
            .mirror_rows("acme", "VENDOR", after.as_deref(), 2)
            .await
            .expect("page")
        {
            assert!(page.len() <= 2);
            rows.extend(page.rows().map(str::to_string));
            after = Some(page.cursor.clone());
        }
        rows.sort();
        rows
    };
    let mut expected: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| format!("{{\"S\":\"VENDOR\",\"K\":\"{key}\",\"I\":{i}}}"))
        .collect();
    expected.sort();
    assert_eq!(vendor_rows(&*store).await, expected);

    let run = store.begin_run("acme", "manual").await.expect("run");
    let changed = r#"{"S":"VENDOR","K":"10","I":99}"#;
    let summary = store
        .stage_page(ml_store::StagePage {
            connection: "acme".into(),
            run,
            stream: "VENDOR".into(),
            mode: ml_store::StageMode::Replace,
            records: vec![
                ml_store::StagedRecord {
                    key: "10".into(),
                    when_modified: None,
                    source_hash: "h2".into(),
                    row_json: changed.into(),
                },
                ml_store::StagedRecord {
                    key: "42".into(),
                    when_modified: None,
                    source_hash: "h".into(),
                    row_json: "{}".into(),
                },
            ],
            deletes: vec![],
            failed: vec![],
            pending_cursor: None,
        })
        .await
        .expect("stage");
    assert_eq!((summary.updated, summary.unchanged), (1, 1), "{summary:?}");
    let expected: Vec<String> = {
        let mut e: Vec<String> = expected
            .into_iter()
            .filter(|r| !r.contains(r#""K":"10""#))
            .chain([changed.to_string()])
            .collect();
        e.sort();
        e
    };
    assert_eq!(vendor_rows(&*store).await, expected);
    assert!(
        store
            .mirror_rows("acme", "VENDOR", Some("not a cursor"), 2)
            .await
            .is_err(),
        "a key where a cursor belongs is refused, not read as a position"
    );
    store.close().await;
}

/// Migration 0008 adds the mirror's version and a rebuild's progress to the stream state: a
/// version 7 store's states keep their flags and counts, have no rebuild in progress (the next
/// rebuild of a dirty table starts with a delete, as before), and staging moves the version.
#[tokio::test]
async fn a_version_7_stream_state_has_no_rebuild_in_progress_after_the_upgrade() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.sqlite");
    {
        let pool = schema_at_version(&path, 7, 0).await;
        for (stream, dirty, rows) in [("VENDOR", 1, 40), ("CLASS", 0, 7)] {
            sqlx::query(
                "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                 VALUES (1, $1, $2, NULL, $3)",
            )
            .bind(stream)
            .bind(dirty)
            .bind(rows)
            .execute(&pool)
            .await
            .expect("stream state");
        }
        pool.close().await;
    }

    let store = open(&StoreLocation::Sqlite(path))
        .await
        .expect("open upgrades");
    let vendor = store.stream_state("acme", "VENDOR").await.expect("state");
    assert_eq!(
        (
            vendor.dirty,
            vendor.table_rows,
            vendor.mirror_version,
            vendor.rebuild
        ),
        (true, 40, 0, None)
    );
    let class = store.stream_state("acme", "CLASS").await.expect("state");
    assert_eq!(
        (class.dirty, class.table_rows, class.rebuild),
        (false, 7, None)
    );

    let run = store.begin_run("acme", "manual").await.expect("run");
    store
        .stage_page(ml_store::StagePage {
            connection: "acme".into(),
            run,
            stream: "VENDOR".into(),
            mode: ml_store::StageMode::Replace,
            records: vec![ml_store::StagedRecord {
                key: "1".into(),
                when_modified: None,
                source_hash: "h".into(),
                row_json: "{}".into(),
            }],
            deletes: vec![],
            failed: vec![],
            pending_cursor: None,
        })
        .await
        .expect("stage");
    let vendor = store.stream_state("acme", "VENDOR").await.expect("state");
    assert_eq!((vendor.mirror_version, vendor.table_rows), (1, 40));
    store.close().await;
}

/// Earlier versions wrote an `unchanged` entry per record (key, hash, no row); this one writes one
/// summary a page. A trail with entries of both kinds verifies, a record's search still finds its
/// old `unchanged` entries, and pruning through them keeps the mirror and the chain whole.
#[tokio::test]
async fn a_trail_with_an_unchanged_entry_per_record_verifies_and_prunes_after_the_upgrade() {
    use ml_store::audit::{ChainHead, NewEntry};
    use ml_store::{AuditAction, AuditFilter, StageMode, StagePage, StagedRecord};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.sqlite");
    let records = || {
        ["1", "2", "3"]
            .iter()
            .map(|k| StagedRecord {
                key: k.to_string(),
                when_modified: None,
                source_hash: format!("h{k}"),
                row_json: format!("{{\"K\":\"{k}\"}}"),
            })
            .collect::<Vec<_>>()
    };
    let page = |run| StagePage {
        connection: "acme".into(),
        run,
        stream: "GLACCOUNTBALANCE".into(),
        mode: StageMode::Replace,
        records: records(),
        deletes: vec![],
        failed: vec![],
        pending_cursor: None,
    };
    let store = open(&StoreLocation::Sqlite(path.clone()))
        .await
        .expect("open");
    store.ensure_connection("acme").await.expect("connection");
    let r1 = store.begin_run("acme", "manual").await.expect("run");
    store.stage_page(page(r1)).await.expect("stage");
    let r2 = store.begin_run("acme", "manual").await.expect("run");
    store.close().await;

    // Run 2 as an earlier version staged it: an `unchanged` entry for each record.
    {
        let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .expect("pool");
        let (seq, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE connection_id = 1")
                .fetch_one(&pool)
                .await
                .expect("head");
        let mut head = ChainHead {
            seq,
            hash: hash.try_into().expect("32 bytes"),
        };
        let created = "2026-01-02T00:00:00.000000Z";
        for r in records() {
            let mut e = NewEntry::new(AuditAction::Unchanged);
            e.run = Some(r2);
            e.stream = Some("GLACCOUNTBALANCE".into());
            e.record_key = Some(r.key);
            e.source_hash = Some(r.source_hash);
            let c = head.chain("acme", created, e);
            sqlx::query(
                "INSERT INTO audit (connection_id, seq, run_id, stream, record_key, source_hash, action, \
                 created_at, prev_hash, hash) VALUES (1, $1, $2, $3, $4, $5, 'unchanged', $6, $7, $8)",
            )
            .bind(c.seq)
            .bind(r2.0)
            .bind(c.entry.stream.as_deref())
            .bind(c.entry.record_key.as_deref())
            .bind(c.entry.source_hash.as_deref())
            .bind(created)
            .bind(&c.prev_hash[..])
            .bind(&c.hash[..])
            .execute(&pool)
            .await
            .expect("old unchanged entry");
        }
        sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE connection_id = 1")
            .bind(head.seq)
            .bind(&head.hash[..])
            .execute(&pool)
            .await
            .expect("head");
        pool.close().await;
    }

    let store = open(&StoreLocation::Sqlite(path)).await.expect("reopen");
    assert!(store.audit_verify("acme").await.expect("verify").ok);
    let r3 = store.begin_run("acme", "manual").await.expect("run");
    let summary = store.stage_page(page(r3)).await.expect("stage");
    assert_eq!(summary.unchanged, 3);
    let verify = store.audit_verify("acme").await.expect("verify");
    assert!(verify.ok && verify.entries_checked == 7, "{verify:?}");
    let history = store
        .audit_search(&AuditFilter {
            connection: Some("acme".into()),
            record_key: Some("2".into()),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(
        history
            .iter()
            .map(|e| (e.run, e.action))
            .collect::<Vec<_>>(),
        vec![
            (Some(r1), AuditAction::Inserted),
            (Some(r2), AuditAction::Unchanged)
        ]
    );

    // Pruning through both kinds: the rows move into the mirror, the chain verifies from its anchor.
    let pruned = store
        .audit_prune("acme", chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .expect("prune");
    assert_eq!(pruned.deleted, 7);
    assert!(store.audit_verify("acme").await.expect("verify").ok);
    let rows = store
        .mirror_page("acme", "GLACCOUNTBALANCE", None, 10)
        .await
        .expect("mirror");
    assert_eq!(
        rows.iter().map(|r| r.row_json.as_str()).collect::<Vec<_>>(),
        vec![r#"{"K":"1"}"#, r#"{"K":"2"}"#, r#"{"K":"3"}"#]
    );
    store.close().await;
}
