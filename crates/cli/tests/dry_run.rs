//! `sync --dry-run` against both simulators: it says what a run would read and push, and changes
//! nothing (no run, no cursor, no request to Power BI).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{World, tiny_intacct};
use ml_connector::config::Mode;
use ml_connector::pipeline::preview::preview;
use ml_connector::pipeline::{Events, RunOptions, RunStatus};

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

/// Every stream's committed cursor.
async fn cursors(w: &World) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for s in &w.cfg.streams {
        let c = w.store.cursor(&w.cfg.name, &s.object).await.unwrap();
        out.insert(s.object.clone(), c.map(|c| format!("{:?}", c.committed)));
    }
    out
}

#[tokio::test]
async fn a_dry_run_counts_what_a_sync_would_read_and_push_and_changes_nothing() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let first_sync_rows: u64 = report.streams.iter().map(|s| s.pushed).sum();
    assert!(first_sync_rows > 0);

    // Two vendors change in Intacct.
    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendors = w.intacct.records("VENDOR");
    for v in &vendors[..2] {
        let n: u64 = v["RECORDNO"].parse().unwrap();
        let fields = BTreeMap::from([("NAME".to_string(), format!("Renamed {n}"))]);
        assert!(w.intacct.update("VENDOR", n, fields));
    }

    let runs_before = w.store.list_runs(None, 100).await.unwrap().len();
    let cursors_before = cursors(&w).await;
    let powerbi_before = w.powerbi.stats().requests_by_operation;

    let dry = preview(&conn, &opts()).await.expect("dry run");
    assert_eq!(dry.streams.len(), w.cfg.streams.len());
    let vendor = dry
        .streams
        .iter()
        .find(|s| s.stream.object == "VENDOR")
        .unwrap();
    assert!(vendor.since.is_some(), "an incremental read: {vendor:?}");
    assert!(
        vendor.to_read().is_some_and(|n| n >= 2),
        "the two changed vendors are read: {vendor:?}"
    );
    let delivery = dry
        .delivery
        .as_ref()
        .expect("Power BI says what it would push");
    let budget = delivery
        .budget
        .as_ref()
        .expect("a push dataset has a budget");
    assert_eq!(
        budget.rows_used, first_sync_rows,
        "the first sync's rows are the hour's use"
    );
    assert_eq!(budget.rows_left, budget.rows_per_hour - first_sync_rows);
    let vendors_table = delivery
        .tables
        .iter()
        .find(|t| t.object == "VENDOR")
        .unwrap();
    let mirror = w.store.mirror_count(&w.cfg.name, "VENDOR").await.unwrap();
    assert_eq!(
        vendors_table.rebuild_rows,
        Some(mirror),
        "{vendors_table:?}"
    );
    assert_eq!(
        vendors_table.rows, mirror,
        "a replace table re-sends all its rows"
    );
    assert!(!vendors_table.dirty);
    assert_eq!(vendors_table.budget, "fits", "{vendors_table:?}");
    // Append tables say what waits in their outbox (nothing, after a complete sync).
    for (s, t) in w.cfg.streams.iter().zip(&delivery.tables) {
        assert_eq!(s.object, t.object);
        if s.mode == Mode::Append {
            assert_eq!(t.outbox, Some(0), "{t:?}");
        }
    }

    // Nothing changed: no run, the same cursors, not one request to Power BI.
    assert_eq!(
        w.store.list_runs(None, 100).await.unwrap().len(),
        runs_before
    );
    assert_eq!(cursors(&w).await, cursors_before);
    assert_eq!(w.powerbi.stats().requests_by_operation, powerbi_before);

    // One stream, by its table name; the real sync afterwards reads what the dry run counted.
    let only = RunOptions {
        streams: vec!["Vendors".into()],
        ..opts()
    };
    let dry = preview(&conn, &only).await.expect("dry run");
    assert_eq!(dry.streams.len(), 1);
    let counted = dry.streams[0].to_read().unwrap();
    let report = conn.run(&only, &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(report.streams[0].extracted, counted);
    assert_eq!(report.streams[0].pushed, mirror);
}

fn bin(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json"])
        .args(args)
        .env_remove("ML_CONNECTOR_MASTER_KEY")
        .env_remove("ML_CONNECTOR_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// The command as a user runs it: a table, exit code 0, and the run's log says before each table's
/// delivery how many rows it pushes and what the budget has left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_dry_run_prints_a_table_and_exits_0() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    common::write_config(&w, &config);
    let run = |args: Vec<&'static str>, stdin: Option<String>| {
        let c = config.clone();
        tokio::task::spawn_blocking(move || bin(&c, &args, stdin.as_deref()))
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for (args, stdin) in [
        (vec!["init", "--key-only"], None),
        (
            vec!["credentials", "set", "intacct", "--stdin"],
            Some(format!(
                "{}\n{}\n",
                ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
                ml_sim_intacct::DEFAULT_USER_PASSWORD
            )),
        ),
        (
            vec!["credentials", "set", "powerbi", "--stdin"],
            Some(format!("{}\n", ml_sim_powerbi::DEFAULT_CLIENT_SECRET)),
        ),
    ] {
        let out = run(args, stdin).await.unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = run(vec!["sync", "--quiet"], None).await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("rows to push (rebuild)") && log.contains("rows left"),
        "{log}"
    );

    let posts_before = w
        .powerbi
        .stats()
        .requests_by_operation
        .get("post_rows")
        .copied();
    let out = run(vec!["sync", "--dry-run"], None).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("dry run of connection demo"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("VENDOR") && l.contains("Vendors") && l.contains("replace")),
        "{stdout}"
    );
    assert!(stdout.contains("rows used in the last hour"), "{stdout}");
    assert_eq!(
        w.powerbi
            .stats()
            .requests_by_operation
            .get("post_rows")
            .copied(),
        posts_before
    );
}
