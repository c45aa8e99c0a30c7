//! Runs the conformance suite against SQLite (a temp dir per test) and PostgreSQL (a fresh
//! database per test, created from env `ML_CONNECTOR_TEST_DATABASE_URL`; skipped when unset
//! unless `CI=true`).

mod conformance;
mod harness;

macro_rules! conformance_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::TestDb::sqlite().await;
                    crate::harness::run(db, crate::conformance::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::TestDb::postgres().await else { return };
                    crate::harness::run(db, crate::conformance::$name).await;
                }
            )+
        }
    };
}

conformance_tests!(
    connections_and_credentials,
    key_rotation,
    secrets_not_in_clear,
    runs_lifecycle,
    cursors,
    staging_append_classifies,
    staging_unchanged_records_are_summarised,
    outbox_delivery,
    replace_mode_and_mirror,
    mark_dirty_flags_a_rebuild,
    rebuild_progress_and_mirror_version,
    replay_as_of_run,
    dataset_state,
    dataset_migration,
    push_history,
    leases,
    leases_race,
    audit_search_and_export,
    audit_search_by_key_spans_the_key_index,
    mirror_rows_in_parts,
    mirror_keys_in_parts,
    mirror_keys_by_column_find_business_ids,
    runs_are_found_in_their_span_of_the_chain,
    audit_verify_detects_tampering,
    audit_prune_keeps_chain_verifiable,
    a_mirror_row_without_its_entry_is_a_loud_error,
    concurrent_staging_serialises_chain,
);

/// PostgreSQL must plan the staging lookup (`record_key IN (1,000 keys)`) with the keys each time:
/// a generic plan made while the mirror was empty is a sequential scan that stays one as the
/// mirror grows (staging fell to 440 records/s at 200,000 records before this setting).
#[tokio::test]
async fn postgres_connections_plan_every_statement_with_its_values() {
    let Some(db) = harness::TestDb::postgres().await else {
        return;
    };
    let harness::Backend::Postgres { url, .. } = &db.backend else {
        unreachable!("a PostgreSQL test database")
    };
    let store = ml_store::PgStore::open(url, std::sync::Arc::new(ml_store::SystemClock))
        .await
        .expect("open");
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(store.pool())
        .await
        .expect("show");
    assert_eq!(mode, "force_custom_plan");
    store.pool().close().await;
    db.cleanup().await;
}

/// A first sync fills the mirror faster than autovacuum analyses it; the store analyses the staging
/// tables itself (after 10,000 rows, then at every doubling) so the planner sees their real size.
#[tokio::test]
async fn postgres_statistics_follow_a_fast_growing_mirror() {
    use ml_store::{StageMode, Store as _};
    let Some(db) = harness::TestDb::postgres().await else {
        return;
    };
    let harness::Backend::Postgres { url, .. } = &db.backend else {
        unreachable!("a PostgreSQL test database")
    };
    let store = ml_store::PgStore::open(url, std::sync::Arc::new(ml_store::SystemClock))
        .await
        .expect("open");
    let reltuples = || async {
        sqlx::query_scalar::<_, f32>("SELECT reltuples FROM pg_class WHERE relname = 'mirror'")
            .fetch_one(store.pool())
            .await
            .expect("reltuples")
    };
    store.ensure_connection("acme").await.unwrap();
    let run = store.begin_run("acme", "test").await.unwrap();
    for page in 0..6 {
        store
            .stage_page(numbered_page(
                run,
                "VENDOR",
                StageMode::Replace,
                page * 2_000..(page + 1) * 2_000,
            ))
            .await
            .unwrap();
        if page == 3 {
            assert!(reltuples().await < 1.0, "not analysed before 10,000 rows");
        }
    }
    let seen = reltuples().await;
    assert!(
        seen >= 9_000.0,
        "the mirror was analysed at 10,000 rows: reltuples {seen}"
    );
    store.pool().close().await;
    db.cleanup().await;
}

/// SQLite drops a connection's whole page cache when it finds that another connection wrote since
/// its last transaction. Staging looks up and inserts into several indexes per record, so every
/// write must go through the one writer connection: then the writer never sees a foreign commit
/// and its cache survives from page to page. `PRAGMA data_version` changes, for a connection,
/// exactly when another connection has committed.
#[tokio::test]
async fn sqlite_writes_all_go_through_one_connection_so_its_cache_survives() {
    use ml_store::{Delivery, DeliveryOutcome, PushPost, StageMode, Store as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ml_store::SqliteStore::open(
        &dir.path().join("state.db"),
        std::sync::Arc::new(ml_store::SystemClock),
    )
    .await
    .expect("open");
    store.ensure_connection("acme").await.unwrap();
    let data_version = || async {
        sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(store.writer())
            .await
            .expect("data_version")
    };
    let before = data_version().await;

    let run = store.begin_run("acme", "test").await.unwrap();
    for page in 0..3 {
        store
            .stage_page(numbered_page(
                run,
                "GLENTRY",
                StageMode::Append,
                page * 100..(page + 1) * 100,
            ))
            .await
            .unwrap();
    }
    let ids = conformance::outbox_ids(&store, "acme", "GLENTRY", 50).await;
    let delivery = Delivery {
        run,
        batch_id: "b1".into(),
        request_id: None,
        outcome: DeliveryOutcome::Accepted,
        error: None,
    };
    store
        .mark_delivered("acme", "GLENTRY", &ids, &delivery)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    store
        .record_posts(
            "ds",
            &[PushPost { at: now, rows: 50 }],
            now - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    store.commit_cursor("acme", "GLENTRY").await.unwrap();
    let lease = store
        .try_acquire_lease("acme", "w1", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .expect("lease");
    store
        .renew_lease("acme", &lease.token, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    store.release_lease("acme", &lease.token).await.unwrap();
    store
        .finish_run(run, ml_store::RunStatus::Succeeded, serde_json::json!({}))
        .await
        .unwrap();

    assert_eq!(
        data_version().await,
        before,
        "another connection committed: the writer's page cache was thrown away"
    );
    assert_eq!(store.outbox_count("acme", "GLENTRY").await.unwrap(), 250);
    store.close().await;
}

/// A page of connection "acme" whose records are numbered `keys`, all new.
fn numbered_page(
    run: ml_store::RunId,
    stream: &str,
    mode: ml_store::StageMode,
    keys: std::ops::Range<u32>,
) -> ml_store::StagePage {
    ml_store::StagePage {
        connection: "acme".into(),
        run,
        stream: stream.into(),
        mode,
        records: keys
            .map(|n| ml_store::StagedRecord {
                key: n.to_string(),
                when_modified: None,
                source_hash: format!("h{n}"),
                row_json: format!("{{\"n\":{n}}}"),
            })
            .collect(),
        deletes: vec![],
        failed: vec![],
        pending_cursor: None,
    }
}

/// A database written before runs recorded their span of the chain (migration 0004) gets the span
/// of each run from its entries when it is opened, so search and replay by run still find them.
#[tokio::test]
async fn sqlite_migration_gives_earlier_runs_their_span_of_the_chain() {
    use ml_store::{RunId, Store as _};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    {
        // The schema as it was before 0004, with one connection whose chain holds entries of
        // runs 1 and 2, interleaved, written as that version wrote them.
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 4)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.expect("open");
        before.run(&pool).await.expect("migrations 1-3");
        sqlx::raw_sql(
            "INSERT INTO connections (id, name, created_at) VALUES (1, 'acme', '2026-01-01T00:00:00.000000Z');
             INSERT INTO runs (id, connection_id, run_trigger, status, started_at, summary) VALUES
                 (1, 1, 'manual', 'succeeded', '2026-01-01T00:00:00.000000Z', '{}'),
                 (2, 1, 'manual', 'succeeded', '2026-01-01T00:00:00.000000Z', '{}'),
                 (3, 1, 'manual', 'succeeded', '2026-01-01T00:00:00.000000Z', '{}');
             INSERT INTO audit (connection_id, seq, run_id, stream, record_key, action, row_json, created_at, prev_hash, hash)
             VALUES (1, 1, 1, 'GLENTRY', 'k1', 'inserted', '{}', '2026-01-01T00:00:00.000000Z', zeroblob(32), zeroblob(32)),
                    (1, 2, 2, 'GLENTRY', 'k2', 'inserted', '{}', '2026-01-01T00:00:00.000000Z', zeroblob(32), zeroblob(32)),
                    (1, 3, 1, 'GLENTRY', 'k3', 'inserted', '{}', '2026-01-01T00:00:00.000000Z', zeroblob(32), zeroblob(32));
             INSERT INTO audit_head (connection_id, last_seq, last_hash) VALUES (1, 3, zeroblob(32));",
        )
        .execute(&pool)
        .await
        .expect("earlier entries");
        pool.close().await;
    }
    let store = ml_store::SqliteStore::open(&path, std::sync::Arc::new(ml_store::SystemClock))
        .await
        .expect("open and migrate");
    let keys_of = |run| conformance::run_keys(&store, RunId(run));
    assert_eq!(keys_of(1).await, ["k1", "k3"]);
    assert_eq!(keys_of(2).await, ["k2"]);
    assert!(keys_of(3).await.is_empty());
    let index: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'audit_by_run'")
            .fetch_optional(store.pool())
            .await
            .unwrap();
    assert_eq!(index, None, "the index the spans replace is gone");
    store.close().await;
}

/// The state file holds every record's row and the sealed credentials: only its owner may read it,
/// its WAL too, and a file an older version left readable by others is narrowed when opened.
#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let store = ml_store::SqliteStore::open(&path, std::sync::Arc::new(ml_store::SystemClock))
        .await
        .expect("open");
    use ml_store::Store as _;
    store.ensure_connection("demo").await.unwrap();
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("state.sqlite-wal");
    assert_eq!(mode(&wal), 0o600);
    store.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = ml_store::SqliteStore::open(&path, std::sync::Arc::new(ml_store::SystemClock))
        .await
        .expect("reopen");
    assert_eq!(mode(&path), 0o600, "an older, readable file is narrowed");
    store.close().await;
}
