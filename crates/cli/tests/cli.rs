//! The binary as a user runs it: init, credentials from stdin, ping, sync, runs, audit — against the
//! simulators — and proof that no secret reaches the terminal, the logs or the state files in clear.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{World, tiny_intacct, write_config};

fn bin(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json"])
        .args(args)
        .env("ML_CONNECTOR_LOG", "debug")
        .env_remove("ML_CONNECTOR_MASTER_KEY")
        .env_remove("ML_CONNECTOR_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn run_blocking<F: FnOnce() -> Output + Send + 'static>(f: F) -> Output {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sets_up_and_syncs_without_any_secret_leaking() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");

    // init writes the example and a 0600 key file, and refuses to overwrite the config.
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["init"], None)).await;
    assert!(out.status.success(), "{}", text(&out));
    let key_file = w.dir.path().join(".ml-connector/master.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["init"], None)).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"));

    // Point it at the simulators (data_dir = "state"), keep the key init made.
    write_config(&w, &config);
    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    std::fs::rename(&key_file, w.dir.path().join("state/master.key")).unwrap();

    let sender_pw = ml_sim_intacct::DEFAULT_SENDER_PASSWORD;
    let user_pw = ml_sim_intacct::DEFAULT_USER_PASSWORD;
    let secret = ml_sim_powerbi::DEFAULT_CLIENT_SECRET;

    // A wrong user password is stored, then diagnosed by ping with exit code 4.
    let c = config.clone();
    let input = format!("{sender_pw}\nnot-the-password\n");
    let out = run_blocking(move || {
        bin(
            &c,
            &["credentials", "set", "intacct", "--stdin"],
            Some(&input),
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["intacct", "ping"], None)).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("Sign-in information is incorrect"),
        "{}",
        text(&out)
    );

    // A sync with the wrong password is refused with exit code 4 after exactly one failed sign-in
    // (Intacct locks users out after repeated failures), not one per stream and lookup.
    let c = config.clone();
    let input = format!("{secret}\n");
    let out = run_blocking(move || {
        bin(
            &c,
            &["credentials", "set", "powerbi", "--stdin"],
            Some(&input),
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let logins_before = w.intacct.stats().logins;
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["sync", "--quiet"], None)).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("Sign-in information is incorrect"),
        "{}",
        text(&out)
    );
    assert_eq!(
        w.intacct.stats().logins - logins_before,
        1,
        "one failed sign-in per run"
    );

    // The right ones.
    let mut all_output = String::new();
    let c = config.clone();
    let input = format!("{sender_pw}\n{user_pw}\n");
    let out = run_blocking(move || {
        bin(
            &c,
            &["credentials", "set", "intacct", "--stdin"],
            Some(&input),
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    all_output += &text(&out);
    let c = config.clone();
    let input = format!("{secret}\n");
    let out = run_blocking(move || {
        bin(
            &c,
            &["credentials", "set", "powerbi", "--stdin"],
            Some(&input),
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    all_output += &text(&out);

    for args in [
        vec!["credentials", "show"],
        vec!["ping"],
        vec!["sync"],
        vec!["runs", "list"],
        vec!["runs", "show", "1"],
        vec!["audit", "verify"],
        vec!["verify"],
        vec![
            "intacct",
            "query",
            "VENDOR",
            "--fields",
            "RECORDNO,NAME",
            "--where",
            "STATUS = 'active'",
            "--limit",
            "3",
        ],
    ] {
        let c = config.clone();
        let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_blocking(move || {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            bin(&c, &refs, None)
        })
        .await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        all_output += &text(&out);
    }
    // `runs list --status` picks runs by state: the refused sync failed, the good one succeeded.
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["runs", "list", "--status", "failed"], None)).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.lines().skip(1).count() == 1 && listed.contains(" failed "),
        "{listed}"
    );
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["runs", "list", "--status", "succeeded"], None)).await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.lines().skip(1).count() >= 1 && !listed.contains(" failed "),
        "{listed}"
    );

    // `audit search` takes a stream's table name as well as its object, and says on stderr when it
    // stopped at its limit.
    let search = |args: &'static [&'static str]| {
        let c = config.clone();
        run_blocking(move || bin(&c, args, None))
    };
    let by_table = search(&["audit", "search", "--stream", "Vendors", "--limit", "2"]).await;
    assert!(by_table.status.success(), "{}", text(&by_table));
    let by_object = search(&["audit", "search", "--stream", "vendor", "--limit", "2"]).await;
    assert_eq!(by_table.stdout, by_object.stdout);
    let rows = String::from_utf8_lossy(&by_table.stdout).to_string();
    assert_eq!(rows.lines().count(), 3, "a header and 2 entries: {rows}");
    assert!(rows.lines().skip(1).all(|l| l.contains("VENDOR")), "{rows}");
    assert!(
        String::from_utf8_lossy(&by_table.stderr).contains("stopped at --limit 2"),
        "{}",
        text(&by_table)
    );
    let jsonl = search(&[
        "audit", "search", "--stream", "Vendors", "--limit", "3", "--format", "jsonl",
    ])
    .await;
    assert!(jsonl.status.success(), "{}", text(&jsonl));
    assert_eq!(String::from_utf8_lossy(&jsonl.stdout).lines().count(), 3);
    assert!(String::from_utf8_lossy(&jsonl.stderr).contains("stopped at --limit 3"));
    // Every entry of the run fits in a large limit: nothing is said.
    let all = search(&["audit", "search", "--run", "2", "--limit", "1000000"]).await;
    assert!(all.status.success(), "{}", text(&all));
    assert!(
        !String::from_utf8_lossy(&all.stderr).contains("stopped at"),
        "{}",
        text(&all)
    );

    // Rotating the master key keeps every credential readable (the next command still connects).
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["credentials", "rotate-key"], None)).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(w.dir.path().join("state/master.key.old").exists());
    // `powerbi push` loads a JSON-lines file by hand into an existing table.
    let rows_file = w.dir.path().join("rows.jsonl");
    std::fs::write(
        &rows_file,
        "{\"RECORDNO\": 900001, \"NAME\": \"By hand\"}\n\n{\"RECORDNO\": 900002}\n",
    )
    .unwrap();
    let before = w.table("Vendors").len();
    // Its POST joins the dataset's push history, which the next process paces from.
    let posts = || async {
        let store = ml_store::open(&ml_store::StoreLocation::Sqlite(
            w.dir.path().join("state/state.sqlite"),
        ))
        .await
        .expect("open the store");
        let dataset = store
            .dataset(&w.cfg.name)
            .await
            .unwrap()
            .expect("the sync created the dataset")
            .dataset_id;
        let since = chrono::Utc::now() - chrono::Duration::hours(1);
        let posts = store.recent_posts(&dataset, since).await.unwrap();
        store.close().await;
        posts
    };
    let posts_before = posts().await;
    assert!(!posts_before.is_empty(), "the sync's POSTs are recorded");
    let (c, f) = (config.clone(), rows_file.clone());
    let out = run_blocking(move || {
        bin(
            &c,
            &["powerbi", "push", "Vendors", f.to_str().unwrap()],
            None,
        )
    })
    .await;
    assert!(out.status.success(), "{}", text(&out));
    all_output += &text(&out);
    assert_eq!(w.table("Vendors").len(), before + 2);
    let posts_after = posts().await;
    assert_eq!(posts_after.len(), posts_before.len() + 1, "{posts_after:?}");
    let newest = posts_after.iter().max_by_key(|p| p.at).unwrap();
    assert_eq!(
        newest.rows, 2,
        "the hand push's POST of 2 rows is the newest: {posts_after:?}"
    );
    // ... and `verify` now reports the difference with exit code 5.
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["verify"], None)).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("DIFFERENT"));

    assert!(all_output.contains("Intacct   OK"), "{all_output}");
    assert!(all_output.contains("Power BI  OK"), "{all_output}");
    assert!(all_output.contains("verified"), "{all_output}");
    assert_eq!(
        all_output
            .lines()
            .filter(|l| l.starts_with("{\"RECORDNO\""))
            .count(),
        3,
        "intacct query prints JSON lines"
    );

    // A stream name that matches nothing is a usage error (exit 2), said before any run starts.
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["sync", "--stream", "VENDORS_TYPO"], None)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("has no stream"), "{}", text(&out));

    // A reader that goes away (`audit search | head -1`) ends the command quietly, with success.
    let c = config.clone();
    let out = run_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .arg("--config")
            .arg(&c)
            .args(["--log-format", "json", "audit", "search"])
            .env_remove("ML_CONNECTOR_MASTER_KEY")
            .env_remove("ML_CONNECTOR_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Closed before the command has opened its store, so its first line meets a closed pipe.
        drop(child.stdout.take());
        child.wait_with_output().expect("wait")
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));

    // No secret in anything printed or logged, nor in clear in the state files.
    for s in [sender_pw, user_pw, secret] {
        assert!(!all_output.contains(s), "a secret reached the output");
    }
    for entry in std::fs::read_dir(w.dir.path().join("state")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "master.key" {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for s in [sender_pw, user_pw, secret] {
            assert!(
                !bytes.windows(s.len()).any(|win| win == s.as_bytes()),
                "{} holds a secret in clear",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        ml_connector::config::EXAMPLE.replace("retention = \"none\"", "retention = \"forever\""),
    )
    .unwrap();
    let c = config.clone();
    let out = run_blocking(move || bin(&c, &["sync"], None)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("bad.toml:") && t.contains("`powerbi.retention`") && t.contains("basicFIFO"),
        "{t}"
    );
}

/// `ml-connector run`: a missed scheduled run happens once at start; SIGTERM stops the service cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_catches_up_a_missed_run_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    // An hourly schedule: the last scheduled time has passed with no run, so one catch-up run is due.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "name = \"demo\"\n",
        "name = \"demo\"\nschedule = \"0 * * * *\"\ntime_zone = \"Europe/Paris\"\n",
    );
    std::fs::write(&config, text).unwrap();
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
    let c = config.clone();
    let (finished, status) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .arg("--config")
            .arg(&c)
            .args(["--log-format", "json", "run", "--worker-id", "test-worker"])
            .env_remove("ML_CONNECTOR_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut finished = false;
        for line in BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("\"run finished\"") {
                // With what it did, how long it took and when the schedule runs next.
                finished = line.contains("\"status\":\"succeeded\"")
                    && line.contains("\"read\":")
                    && line.contains("\"pushed\":")
                    && line.contains("\"seconds\":")
                    && line.contains("\"next_run\":\"20");
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        (finished, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(finished, "the catch-up run did not succeed");
    assert!(
        status.success(),
        "SIGTERM must stop the service cleanly: {status:?}"
    );
    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(state.join("state.sqlite")))
        .await
        .unwrap();
    let runs = store.list_runs(Some("demo"), 10).await.unwrap();
    assert_eq!(runs.len(), 1, "exactly one catch-up run");
    assert_eq!(runs[0].trigger, "catch-up");
    assert!(
        store.current_lease("demo").await.unwrap().is_none(),
        "the lease is released after the run"
    );
}

/// `bench` on a small company: both scenarios run through the child process and every figure
/// the issue asks for is printed (requests against their floor, 429s, CPU, memory, store size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_prints_both_scenarios_for_a_small_company() {
    let out = run_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .args([
                "bench",
                "--records",
                "4000",
                "--latency",
                "10ms",
                "--changes",
                "10",
            ])
            .env("ML_CONNECTOR_LOG", "warn")
            .output()
            .expect("spawn")
    })
    .await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let row = |prefix: &str| {
        t.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{t}"))
            .split('|')
            .map(str::trim)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Limits scenario: 4,000 vendors are 2 pages; at most 3 requests over that floor (the two
    // passes' last pages, and the full read's question for AUDITHISTORY's newest deletion, which
    // lets the next runs ask only after it), no 429.
    let full = row("| full | VENDOR |");
    assert_eq!((full[3].as_str(), full[5].as_str()), ("4000", "2"), "{t}");
    let requests: u64 = full[4].parse().unwrap();
    assert!((2..=5).contains(&requests), "{t}");
    assert_eq!(full[10], "0", "Power BI 429s: {t}");
    assert!(t.contains(" 0 Intacct 429s"), "{t}");
    // Cost scenario: every record read and pushed, and the store's size on disk.
    assert!(t.contains("| store on disk |"), "{t}");
    let cost = row("| full | 4000 |");
    assert_eq!(cost[3], "4000", "rows pushed: {t}");
    let store_mb: f64 = cost[13].trim_end_matches(" MB").parse().unwrap();
    assert!(store_mb > 0.0, "{t}");
}

/// `sync` stops on SIGTERM like `run`: the current batch finishes, the run is recorded
/// `interrupted` (not left `running`), and while it was under way `runs show` showed it so far.
/// Human logs to a pipe carry no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stops_on_sigterm_and_records_the_run_interrupted() {
    use std::io::{BufRead, BufReader};
    let mut intacct = tiny_intacct();
    intacct.latency.per_request = std::time::Duration::from_millis(150);
    let w = World::start(intacct).await;
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
    let c = config.clone();
    let (status, stdout, logs, while_running, listed_running) =
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
                .arg("--config")
                .arg(&c)
                .args(["--log-format", "human", "sync"])
                .env("ML_CONNECTOR_LOG", "info")
                .env_remove("ML_CONNECTOR_MASTER_KEY")
                .env_remove("ML_CONNECTOR_DATABASE_URL")
                .env_remove("NO_COLOR")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut logs = String::new();
            let mut while_running = None;
            let mut listed_running = None;
            for line in BufReader::new(child.stderr.take().unwrap())
                .lines()
                .map_while(Result::ok)
            {
                logs += &line;
                logs.push('\n');
                if while_running.is_none() && line.contains("stream_started") {
                    // Mid-run: what the other commands show of it.
                    let listed = bin(&c, &["runs", "list", "--status", "running"], None);
                    let shown = bin(&c, &["runs", "show", "1"], None);
                    listed_running = Some(text(&listed));
                    while_running = Some(text(&shown));
                    let _ = Command::new("kill")
                        .args(["-TERM", &child.id().to_string()])
                        .status();
                }
            }
            let mut stdout = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
            (
                child.wait().unwrap(),
                stdout,
                logs,
                while_running.expect("the sync started a stream"),
                listed_running.unwrap(),
            )
        })
        .await
        .unwrap();
    assert!(
        listed_running.lines().any(|l| l.contains(" running ")),
        "{listed_running}"
    );
    assert!(
        while_running.contains("run 1 of demo (manual): running")
            && while_running.contains("under way")
            && while_running.contains("pending"),
        "{while_running}"
    );
    assert_eq!(status.code(), Some(1), "{stdout}\n{logs}");
    assert!(stdout.contains("run 1: interrupted"), "{stdout}\n{logs}");
    assert!(logs.contains("stopping"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs: {logs:?}"
    );

    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(state.join("state.sqlite")))
        .await
        .unwrap();
    let runs = store.list_runs(Some("demo"), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ml_store::RunStatus::Interrupted);
    assert!(runs[0].finished_at.is_some());
    assert!(
        store.current_lease("demo").await.unwrap().is_none(),
        "the lease is released"
    );
    store.close().await;
    let c = config.clone();
    let out =
        run_blocking(move || bin(&c, &["runs", "list", "--status", "interrupted"], None)).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().skip(1).count(),
        1,
        "{}",
        text(&out)
    );
}
