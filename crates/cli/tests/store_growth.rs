//! The state store stays small: a run that changes nothing in Intacct adds no audit entry per
//! unchanged record (GL balances are read whole every run), only a summary per page, so the
//! SQLite state file grows by at most 100 KB, and the run still reports its counts.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::World;
use ml_connector::pipeline::{Events, RunOptions, RunReport, RunStatus};
use ml_sim_intacct as si;
use ml_store::{AuditAction, AuditFilter, RunId, SqliteStore, Store};

/// Growth allowed for a run that changes nothing (issue 18).
const MAX_GROWTH: u64 = 100 * 1024;

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

/// Opens the state store at `db` as SQLite, so that its log can be checkpointed.
async fn open(db: &Path) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(db, Arc::new(ml_store::SystemClock))
            .await
            .expect("open the state store"),
    )
}

/// The bytes the state store takes on disk once its write-ahead log is copied into the file and
/// emptied: the file and what is left of the log (nothing).
async fn state_bytes(store: &SqliteStore, db: &Path) -> u64 {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.writer())
        .await
        .expect("checkpoint");
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
        })
        .sum()
}

async fn sync(w: &World, store: Arc<SqliteStore>) -> RunReport {
    let conn = ml_connector_cli::demo::connect_demo(w.cfg.clone(), store, &w.key)
        .await
        .expect("connection");
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    report
}

#[tokio::test]
async fn a_run_that_changes_nothing_grows_the_store_by_at_most_100_kb() {
    // Enough GL balances (12 periods x 40 accounts x 3 departments x 3 locations = 4,320) that an
    // audit entry for each unchanged one would take well over the limit.
    let size = si::CompanySize {
        periods: 12,
        gl_accounts: 40,
        ..si::CompanySize::tiny()
    };
    let mut w = World::start(si::SimConfig {
        size,
        ..Default::default()
    })
    .await;
    // Every period is read again each run (by default only the open ones are, the closed on a
    // slower cadence): the worst case for the store, every balance found unchanged.
    for s in w.cfg.streams.iter_mut() {
        s.open_periods = 12;
    }
    let db = w.dir.path().join("state.sqlite");
    // The world's store is used through the SQLite type here, whose log can be checkpointed.
    w.store.close().await;
    let store = open(&db).await;

    let first = sync(&w, store.clone()).await;
    let balances = first
        .streams
        .iter()
        .find(|s| s.object == "GLACCOUNTBALANCE")
        .expect("GL balances stream");
    let count = balances.inserted;
    assert!(count >= 4000, "{balances:#?}");
    let before = state_bytes(&store, &db).await;

    // Nothing changes in Intacct.
    let second = sync(&w, store.clone()).await;
    let b = second
        .streams
        .iter()
        .find(|s| s.object == "GLACCOUNTBALANCE")
        .expect("GL balances stream");
    assert_eq!(
        (b.extracted, b.unchanged, b.inserted, b.updated, b.deleted),
        (count, count, 0, 0, 0),
        "{b:#?}"
    );
    let after = state_bytes(&store, &db).await;
    let growth = after.saturating_sub(before);
    eprintln!(
        "state store: {before} bytes after the full sync, {after} after a no-change run (+{growth})"
    );
    assert!(
        growth <= MAX_GROWTH,
        "a run that changed nothing grew the store by {growth} bytes ({before} -> {after})"
    );

    // The run's counts are kept in the store too.
    let detail = store
        .get_run(RunId(second.run))
        .await
        .unwrap()
        .expect("run");
    let kept = detail
        .streams
        .iter()
        .find(|s| s.stream == "GLACCOUNTBALANCE")
        .expect("stream result");
    assert_eq!(kept.result.unchanged, count, "{kept:#?}");

    // The unchanged balances are summarised (their count adds up), not entered one by one, and
    // the chain still verifies.
    let entries = store
        .audit_search(&AuditFilter {
            connection: Some(w.cfg.name.clone()),
            run: Some(RunId(second.run)),
            stream: Some("GLACCOUNTBALANCE".into()),
            limit: Some(100_000),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !entries.is_empty() && entries.len() < 10,
        "{} entries",
        entries.len()
    );
    let summarised: u64 = entries
        .iter()
        .filter(|e| e.action == AuditAction::Unchanged)
        .map(|e| {
            assert_eq!(e.record_key, None, "{e:?}");
            let detail: serde_json::Value =
                serde_json::from_str(e.detail.as_deref().expect("summary detail")).unwrap();
            detail["count"].as_u64().expect("count")
        })
        .sum();
    assert_eq!(summarised, count);
    // A balance's history is its staging entry, not a line for every run that found it unchanged.
    let staged = store
        .audit_search(&AuditFilter {
            connection: Some(w.cfg.name.clone()),
            run: Some(RunId(first.run)),
            stream: Some("GLACCOUNTBALANCE".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let key = staged[0]
        .record_key
        .clone()
        .expect("a staged balance's key");
    let history = store
        .audit_search(&AuditFilter {
            connection: Some(w.cfg.name.clone()),
            stream: Some("GLACCOUNTBALANCE".into()),
            record_key: Some(key),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|e| (e.run, e.action))
            .collect::<Vec<_>>(),
        vec![(Some(RunId(first.run)), AuditAction::Inserted)]
    );
    let verify = store.audit_verify(&w.cfg.name).await.unwrap();
    assert!(verify.ok, "{verify:?}");

    store.close().await;
}
