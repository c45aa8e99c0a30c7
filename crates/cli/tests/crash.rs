//! Crash safety: `ml-connector sync` is killed with SIGKILL at a random moment (after a random number of
//! its own log lines, so no sleeping), for 20 seeds; each time the next sync must converge to tables equal
//! to Intacct, with no row lost and none doubled.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{World, tiny_intacct, write_config};
use ml_connector::pipeline::transform::parse_gmt_offset;
use rand::{Rng, SeedableRng};

const SEEDS: u64 = 20;

/// Runs `sync`; with `kill_after = Some(n)`, SIGKILLs it after its n-th log line. Returns whether it ran to
/// the end by itself, and its exit status then.
fn sync(config: &Path, kill_after: Option<usize>) -> (bool, Option<i32>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--log-format",
            "json",
            "sync",
            "--quiet",
        ])
        .env("ML_CONNECTOR_LOG", "debug")
        .env_remove("ML_CONNECTOR_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ml-connector");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = 0;
    let mut tail = Vec::new();
    if let Some(n) = kill_after {
        while seen < n {
            match lines.next() {
                Some(Ok(l)) => {
                    seen += 1;
                    tail.push(l);
                }
                _ => break,
            }
        }
        if seen == n {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            return (false, None);
        }
    }
    for l in lines.map_while(Result::ok) {
        tail.push(l);
    }
    let status = child.wait().unwrap();
    if !status.success() {
        eprintln!("sync output:\n{}", tail.join("\n"));
    }
    (true, status.code())
}

fn fields(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_any_moment_converges_without_loss_or_doubles() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    let state = w.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let key = ml_store::crypto::MasterKey::create_file(&state.join("master.key")).unwrap();
    {
        let store = ml_store::open(&ml_store::StoreLocation::Sqlite(state.join("state.sqlite")))
            .await
            .unwrap();
        ml_connector_cli::demo::connect_demo(w.cfg.clone(), store.clone(), &key)
            .await
            .unwrap();
        store.close().await;
    }
    let offset = {
        let conn = w.connection().await;
        parse_gmt_offset(&conn.intacct.user_formatting().await.unwrap().gmt_offset).unwrap()
    };

    let mut kills = 0;
    for seed in 0..SEEDS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Change the source a little before each crash.
        w.intacct.advance_clock(Duration::from_secs(600));
        for i in 0..rng.random_range(0..4) {
            w.intacct.insert(
                "VENDOR",
                fields(&[
                    ("VENDORID", format!("V-{seed}-{i}")),
                    ("NAME", format!("Vendor {seed}/{i}")),
                    ("STATUS", "active".into()),
                ]),
            );
        }
        let vendors = w.intacct.records("VENDOR");
        if vendors.len() > 5 && rng.random_bool(0.5) {
            let k: u64 = vendors[rng.random_range(0..vendors.len())]["RECORDNO"]
                .parse()
                .unwrap();
            w.intacct.update(
                "VENDOR",
                k,
                fields(&[("NAME", format!("Renamed in {seed}"))]),
            );
        }
        if vendors.len() > 5 && rng.random_bool(0.3) {
            let k: u64 = vendors[rng.random_range(0..vendors.len())]["RECORDNO"]
                .parse()
                .unwrap();
            w.intacct.delete("VENDOR", k);
        }
        if rng.random_bool(0.5) {
            w.intacct.insert(
                "APPYMT",
                fields(&[
                    ("VENDORID", "V-1".into()),
                    ("STATE", "C".into()),
                    ("TOTALENTERED", format!("{seed}.50")),
                ]),
            );
        }

        let kill_after = rng.random_range(1..80);
        let config = config.clone();
        let (finished, _) = tokio::task::spawn_blocking(move || sync(&config, Some(kill_after)))
            .await
            .unwrap();
        if !finished {
            kills += 1;
        }
        let config2 = w.dir.path().join("ml-connector.toml");
        let (finished, code) = tokio::task::spawn_blocking(move || sync(&config2, None))
            .await
            .unwrap();
        assert!(
            finished && code == Some(0),
            "seed {seed}: the sync after the crash did not succeed (exit {code:?})"
        );
        w.assert_tables_equal_source(offset);
    }
    assert!(
        kills >= SEEDS / 2,
        "only {kills} of {SEEDS} syncs were killed mid-way: the kill points are too late"
    );
    // Killed runs are not left `running`: the next run marked them interrupted.
    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(state.join("state.sqlite")))
        .await
        .unwrap();
    let runs = store.list_runs(Some("demo"), 100).await.unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status != ml_store::RunStatus::Running),
        "{runs:#?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.status == ml_store::RunStatus::Interrupted)
    );
    assert!(store.audit_verify("demo").await.unwrap().ok);
}
