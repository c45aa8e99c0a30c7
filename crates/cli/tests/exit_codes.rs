//! The exit codes the README documents, asserted on the binary for the cases a new user meets first:
//! refused credentials (4) from every command that signs in, a connector defect (1), bad usage (2).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{World, tiny_intacct, write_config};

fn bin(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
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
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn run(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let (c, a, s) = (
        config.to_path_buf(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        stdin.map(str::to_string),
    );
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        bin(&c, &refs, s.as_deref())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_4_from_every_command_that_signs_in() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    ml_store::crypto::MasterKey::create_file(&w.dir.path().join("state/master.key")).unwrap();
    let sender = ml_sim_intacct::DEFAULT_SENDER_PASSWORD;
    let out = run(
        &config,
        &["credentials", "set", "intacct", "--stdin"],
        Some(&format!("{sender}\nnot-the-password\n")),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let secret = ml_sim_powerbi::DEFAULT_CLIENT_SECRET;
    let out = run(
        &config,
        &["credentials", "set", "powerbi", "--stdin"],
        Some(&format!("{secret}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    for args in [
        vec!["intacct", "ping"],
        vec!["intacct", "query", "VENDOR", "--limit", "1"],
        vec!["sync", "--quiet"],
    ] {
        let out = run(&config, &args, None).await;
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("Sign-in information is incorrect"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // A wrong sender password is refused too, and says what to check.
    let out = run(
        &config,
        &["credentials", "set", "intacct", "--stdin"],
        Some(&format!(
            "wrong-sender-secret\n{}\n",
            ml_sim_intacct::DEFAULT_USER_PASSWORD
        )),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &config,
        &["intacct", "query", "VENDOR", "--limit", "1"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("sender ID and sender password"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("Sage support"), "{}", text(&out));
}

/// An object the company does not have (a typo): `ping` names it with Intacct's words and exits 2;
/// a sync fails that stream only, with Intacct's error, and delivers the others (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_object_is_found_by_ping_and_fails_only_its_stream() {
    let mut w = World::start(tiny_intacct()).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let mut typo = w.cfg.streams[0].clone();
    typo.object = "LOCATIONS".into();
    w.cfg.streams.push(typo);
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    ml_store::crypto::MasterKey::create_file(&w.dir.path().join("state/master.key")).unwrap();
    let out = run(
        &config,
        &["credentials", "set", "intacct", "--stdin"],
        Some(&format!(
            "{}\n{}\n",
            ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
            ml_sim_intacct::DEFAULT_USER_PASSWORD
        )),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        &config,
        &["credentials", "set", "powerbi", "--stdin"],
        Some(&format!("{}\n", ml_sim_powerbi::DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let out = run(&config, &["ping"], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("stream LOCATIONS"), "{said}");
    assert!(said.contains("not found"), "{said}");

    let out = run(&config, &["sync", "--quiet"], None).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("not found"), "{said}");
    assert!(!said.contains("table not found"), "{said}");
    assert!(
        !w.table("Vendors").is_empty(),
        "the other stream was delivered"
    );
}

/// A damaged state file is said once, with the fix; `store backup` and `store restore` are that fix;
/// `init --key-only` makes a key without touching an edited configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_is_said_once_and_a_backup_restores_it() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    let edited = std::fs::read(&config).unwrap();
    let out = run(&config, &["init", "--key-only"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(&config).unwrap(),
        edited,
        "the configuration is untouched"
    );
    let out = run(&config, &["init", "--key-only"], None).await;
    assert!(!out.status.success(), "an existing key is never replaced");
    let out = run(
        &config,
        &["credentials", "set", "intacct", "--stdin"],
        Some(&format!(
            "{}\n{}\n",
            ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
            ml_sim_intacct::DEFAULT_USER_PASSWORD
        )),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let backup = w.dir.path().join("backup.sqlite");
    let out = run(
        &config,
        &["store", "backup", backup.to_str().unwrap()],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let state = w.dir.path().join("state/state.sqlite");
    let head = std::fs::read(&state).unwrap()[..100].to_vec();
    std::fs::write(&state, head).unwrap();
    let _ = std::fs::remove_file(w.dir.path().join("state/state.sqlite-wal"));
    let out = run(&config, &["credentials", "show"], None).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(said.matches("damaged").count(), 1, "{said}");
    assert!(said.contains("store restore"), "{said}");
    assert!(!said.contains("writable"), "{said}");

    let out = run(
        &config,
        &["store", "restore", backup.to_str().unwrap()],
        None,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&config, &["credentials", "show"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("intacct"), "{}", text(&out));
}

/// `objects` lists what can be configured, and with `--check` whether the company has each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_lists_the_catalogue_and_checks_the_company() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_config(&w, &config);
    let out = run(&config, &["objects"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("VENDOR ") && l.contains("Vendors") && l.contains("VENDORID")),
        "{listed}"
    );
    let entries = ml_connector::catalogue::all().len();

    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    ml_store::crypto::MasterKey::create_file(&w.dir.path().join("state/master.key")).unwrap();
    let out = run(
        &config,
        &["credentials", "set", "intacct", "--stdin"],
        Some(&format!(
            "{}\n{}\n",
            ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
            ml_sim_intacct::DEFAULT_USER_PASSWORD
        )),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&config, &["objects", "--check"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let checked = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(checked.matches("yes (").count(), entries, "{checked}");
}

/// The configuration `write_config` writes, with every connection on a daily schedule (02:00
/// passed since any run, so each starts with a catch-up run) and, when `second` names one, a copy
/// of the connection under that name.
fn write_scheduled_config(w: &World, config: &Path, second: Option<&str>) {
    write_config(w, config);
    let text = std::fs::read_to_string(config).unwrap();
    let name_line = format!("name = \"{}\"\n", w.cfg.name);
    let scheduled = text.replace(
        &name_line,
        &format!("{name_line}schedule = \"0 2 * * *\"\n"),
    );
    let mut out = scheduled.clone();
    if let Some(other) = second {
        let block = &scheduled[scheduled.find("[[connection]]").unwrap()..];
        out.push('\n');
        out.push_str(&block.replace(&name_line, &format!("name = \"{other}\"\n")));
    }
    std::fs::write(config, out).unwrap();
}

async fn set_credentials(config: &Path, connection: &str, user_password: &str) {
    let out = run(
        config,
        &[
            "credentials",
            "set",
            "intacct",
            "--stdin",
            "--connection",
            connection,
        ],
        Some(&format!(
            "{}\n{user_password}\n",
            ml_sim_intacct::DEFAULT_SENDER_PASSWORD
        )),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = run(
        config,
        &[
            "credentials",
            "set",
            "powerbi",
            "--stdin",
            "--connection",
            connection,
        ],
        Some(&format!("{}\n", ml_sim_powerbi::DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

/// `run` whose every scheduled connection is refused at its start-up sign-in stops at once with
/// exit code 4, naming the fix, after one failed sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_4_when_every_connection_is_refused_at_start() {
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_scheduled_config(&w, &config, None);
    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    ml_store::crypto::MasterKey::create_file(&w.dir.path().join("state/master.key")).unwrap();
    set_credentials(&config, &w.cfg.name, "not-the-password").await;
    let logins = w.intacct.stats().logins;
    let out = run(&config, &["run"], None).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("Sign-in information is incorrect"), "{said}");
    assert!(
        said.contains("ml-connector credentials set intacct --connection demo"),
        "{said}"
    );
    assert_eq!(w.intacct.stats().logins - logins, 1, "one failed sign-in");
}

/// One connection refused, another fine: `run` goes on; the refused one's catch-up is recorded as
/// a skipped run with its reason (`runs list --status skipped`), the other's runs; SIGTERM stops the
/// service with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_keeps_going_when_one_connection_is_refused_and_records_its_skips() {
    use std::io::BufRead;
    let w = World::start(tiny_intacct()).await;
    let config = w.dir.path().join("ml-connector.toml");
    write_scheduled_config(&w, &config, Some("refused"));
    std::fs::create_dir_all(w.dir.path().join("state")).unwrap();
    ml_store::crypto::MasterKey::create_file(&w.dir.path().join("state/master.key")).unwrap();
    set_credentials(&config, &w.cfg.name, ml_sim_intacct::DEFAULT_USER_PASSWORD).await;
    set_credentials(&config, "refused", "not-the-password").await;

    let config2 = config.clone();
    let (status, lines) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .arg("--config")
            .arg(&config2)
            .args(["--log-format", "json", "run"])
            .env_remove("ML_CONNECTOR_MASTER_KEY")
            .env_remove("ML_CONNECTOR_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = Vec::new();
        let (mut skipped, mut finished, mut stopped) = (false, false, false);
        for line in std::io::BufReader::new(child.stderr.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let msg = v["message"].as_str().unwrap_or_default();
            skipped |= msg == "run skipped" && v["connection"] == "refused";
            finished |= msg == "run finished" && v["connection"] == "demo";
            lines.push(line);
            if skipped && finished && !stopped {
                stopped = true;
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        (child.wait().unwrap(), lines)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{}", lines.join("\n"));
    assert!(!w.table("Vendors").is_empty(), "the good connection ran");

    let out = run(&config, &["runs", "list", "--status", "skipped"], None).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let skipped: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(skipped.len(), 1, "{listed}");
    assert!(skipped[0].contains("refused"), "{listed}");
    assert!(skipped[0].contains("catch-up"), "{listed}");
    assert!(
        skipped[0].contains("credentials refused") && skipped[0].contains("Sign-in information"),
        "{listed}"
    );
    assert!(
        skipped[0].contains("ml-connector credentials set intacct --connection refused"),
        "{listed}"
    );
}
