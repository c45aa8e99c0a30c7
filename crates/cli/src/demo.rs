//! `ml-connector demo`: the real job against both simulators, in-process, with nothing to set up.
//!
//! It starts a seeded mid-sized firm in the Intacct simulator and an empty Power BI workspace, seals the
//! simulators' credentials in a fresh store exactly like `credentials set` would, runs a full sync, then
//! adds, changes and deletes vendors and changes a bill, and runs an incremental sync that shows exactly
//! those changes arriving in Power BI and in the audit trail. `sim intacct` / `sim powerbi` / `sim fabric` serve one
//! simulator on a fixed port for trying the connector by hand.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use ml_sim_fabric as sim_fabric;
use ml_sim_intacct as sim_intacct;
use ml_sim_powerbi as sim_powerbi;
use ml_store::crypto::MasterKey;

use ml_connector::app::{self, IntacctSecrets, PowerBiSecrets};
use ml_connector::config::{
    ConnectionConfig, DeleteDetection, IntacctSection, Mode, PowerBiSection, Retention,
    SchemaDrift, StreamConfig,
};
use ml_connector::pipeline::{Connection, Events, RunEvent, RunOptions, RunReport};

/// The streams the demo syncs: every catalogue object, bills in replace mode and payments as a change log.
pub fn demo_streams(balances_through: Option<chrono::NaiveDate>) -> Vec<StreamConfig> {
    ml_connector::catalogue::all()
        .iter()
        .map(|e| StreamConfig {
            object: e.object.to_string(),
            kind: e.kind,
            table: e.table.to_string(),
            mode: if e.object == "APPYMT" {
                Mode::Append
            } else {
                Mode::Replace
            },
            fields: Vec::new(),
            custom_fields: Vec::new(),
            lookback: Duration::from_secs(2 * 3600),
            schema_drift: SchemaDrift::AddColumn,
            deletes: DeleteDetection::Auto,
            key_compare_every: Duration::ZERO,
            column_map: BTreeMap::new(),
            column_types: BTreeMap::new(),
            manage_schema: true,
            periods: 12,
            periods_through: balances_through,
            never_modified_full_every: Duration::from_secs(24 * 3600),
            open_periods: 2,
            closed_periods_every: Duration::from_secs(24 * 3600),
        })
        .collect()
}

/// A connection configured for the two in-process simulators.
pub fn demo_connection(
    intacct_endpoint: &str,
    powerbi_authority: &str,
    powerbi_api: &str,
    balances_through: Option<chrono::NaiveDate>,
) -> Result<ConnectionConfig> {
    Ok(ConnectionConfig {
        name: "demo".into(),
        schedule: None,
        refused_backoff: Duration::from_secs(6 * 3600),
        intacct: IntacctSection {
            sender_id: sim_intacct::DEFAULT_SENDER_ID.into(),
            company_id: sim_intacct::DEFAULT_COMPANY_ID.into(),
            user_id: sim_intacct::DEFAULT_USER_ID.into(),
            entity: None,
            endpoint: Some(intacct_endpoint.parse()?),
            allow_loopback_http: true,
            max_concurrent_requests: 2,
            page_size: 2000,
            request_timeout: Duration::from_secs(60),
            session_max_age: Duration::from_secs(50 * 60),
        },
        powerbi: PowerBiSection {
            cloud: "public".into(),
            tenant_id: sim_powerbi::DEFAULT_TENANT_ID.into(),
            client_id: sim_powerbi::DEFAULT_CLIENT_ID.into(),
            workspace: sim_powerbi::DEFAULT_WORKSPACE.into(),
            dataset: "Sage Intacct".into(),
            retention: Retention::None,
            authority_url: Some(powerbi_authority.parse()?),
            api_url: Some(powerbi_api.parse()?),
            allow_loopback_http: true,
            request_timeout: Duration::from_secs(60),
        },
        destination: ml_connector::config::DestinationKind::PowerBi,
        fabric: None,
        streams: demo_streams(balances_through),
    })
}

/// Seals the simulators' credentials like `credentials set` does, then builds the connection from them.
pub async fn connect_demo(
    cfg: ConnectionConfig,
    store: Arc<dyn ml_store::Store>,
    key: &MasterKey,
) -> Result<Connection> {
    app::seal_json(
        store.as_ref(),
        key,
        &cfg.name,
        "intacct",
        &IntacctSecrets {
            sender_password: sim_intacct::DEFAULT_SENDER_PASSWORD.into(),
            user_password: sim_intacct::DEFAULT_USER_PASSWORD.into(),
        },
        serde_json::json!({"sender_id": cfg.intacct.sender_id, "company_id": cfg.intacct.company_id, "user_id": cfg.intacct.user_id}),
    )
    .await?;
    app::seal_json(
        store.as_ref(),
        key,
        &cfg.name,
        "powerbi",
        &PowerBiSecrets::ClientSecret {
            client_secret: sim_powerbi::DEFAULT_CLIENT_SECRET.into(),
        },
        serde_json::json!({"tenant_id": cfg.powerbi.tenant_id, "client_id": cfg.powerbi.client_id}),
    )
    .await?;
    Ok(app::connect(cfg, store, key, ml_clock::system()).await?)
}

pub async fn run(data_dir: Option<PathBuf>, vendors: usize) -> Result<()> {
    let temp;
    let dir = match data_dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    println!(
        "ml-connector demo: a simulated Sage Intacct company and Power BI workspace, in this process.\n"
    );

    let mut icfg = sim_intacct::SimConfig::default();
    icfg.size.vendors = vendors as u64;
    let intacct = sim_intacct::Simulator::start(icfg).await?;
    let powerbi = sim_powerbi::Simulator::start(sim_powerbi::SimConfig::default()).await?;
    println!("Intacct simulator  {}", intacct.endpoint());
    println!("Power BI simulator {}", powerbi.api_url());
    println!("state              {}\n", dir.display());

    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(dir.join("state.sqlite"))).await?;
    let key = MasterKey::generate();
    let cfg = demo_connection(
        &intacct.endpoint(),
        &powerbi.authority_url(),
        &powerbi.api_url(),
        last_closed_month(&intacct.now()),
    )?;
    let conn = connect_demo(cfg, store.clone(), &key).await?;

    // Requests per stream, counted by the Intacct simulator as the run moves from stream to stream.
    let per_stream: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let intacct = Arc::new(intacct);
    let events = {
        let per_stream = per_stream.clone();
        let sim = intacct.clone();
        Events::new(move |e| match e {
            RunEvent::StreamStarted { stream, .. } => {
                per_stream
                    .lock()
                    .expect("lock")
                    .push((stream.clone(), sim.stats().http_requests));
            }
            RunEvent::StreamFinished { stream, .. } => {
                let mut v = per_stream.lock().expect("lock");
                if let Some(entry) = v.iter_mut().rev().find(|(s, _)| s == stream) {
                    entry.1 = sim.stats().http_requests - entry.1;
                }
            }
            RunEvent::Waiting {
                stream,
                reason,
                wait,
            } => {
                println!(
                    "  {stream}: waiting {:.0}s for {reason}",
                    wait.as_secs_f64()
                );
            }
            _ => {}
        })
    };

    println!("1. Full sync");
    run_and_summarise(&conn, &events, &per_stream, true).await?;
    per_stream.lock().expect("lock").clear();

    println!("\n2. Changes in Intacct");
    let changes = make_changes(&intacct);
    for c in &changes.described {
        println!("   {c}");
    }

    println!("\n3. Incremental sync");
    let report2 = run_and_summarise(&conn, &events, &per_stream, false).await?;

    println!("\n4. What arrived in Power BI (table Vendors)");
    let rows = powerbi
        .table_rows(sim_powerbi::DEFAULT_WORKSPACE, "Sage Intacct", "Vendors")
        .unwrap_or_default();
    for key in changes.vendor_keys.iter() {
        let found = rows
            .iter()
            .find(|r| r.get("RECORDNO").and_then(|v| v.as_i64()) == Some(*key as i64));
        match found {
            Some(r) => println!(
                "   RECORDNO {key}: {} {}",
                r.get("VENDORID").and_then(|v| v.as_str()).unwrap_or(""),
                r.get("NAME").and_then(|v| v.as_str()).unwrap_or("")
            ),
            None => println!("   RECORDNO {key}: not in the table (deleted)"),
        }
    }

    println!(
        "\n5. The audit trail of run {} (changed records only)",
        report2.run
    );
    let mut entries = Vec::new();
    for action in [
        ml_store::AuditAction::Inserted,
        ml_store::AuditAction::Updated,
        ml_store::AuditAction::Deleted,
    ] {
        entries.extend(
            store
                .audit_search(&ml_store::AuditFilter {
                    connection: Some("demo".into()),
                    run: Some(ml_store::RunId(report2.run)),
                    action: Some(action),
                    limit: Some(20),
                    ..Default::default()
                })
                .await?,
        );
    }
    entries.sort_by_key(|e| e.id);
    for e in &entries {
        println!(
            "   seq {:<7} {:<8} {:<9} RECORDNO {:<6} {}",
            e.seq,
            e.stream.as_deref().unwrap_or(""),
            e.action.as_str(),
            e.record_key.as_deref().unwrap_or("-"),
            e.row_json
                .as_deref()
                .map(|r| r.chars().take(90).collect::<String>())
                .unwrap_or_default()
        );
    }
    let verdict = store.audit_verify("demo").await?;
    println!(
        "   chain: {} entries, {}",
        verdict.entries_checked,
        if verdict.ok { "intact" } else { "BROKEN" }
    );

    println!("\n6. Verify: every Power BI table against the local mirror");
    let v = ml_connector::pipeline::verify::verify(&conn).await?;
    for t in &v.tables {
        println!("   {t}");
    }
    println!(
        "\n{}",
        if v.all_match() {
            "Every table matches. Try `ml-connector init` to connect your own company."
        } else {
            "Differences found (see above)."
        }
    );
    Ok(())
}

/// The month before the simulated company's "today" (its balances end there).
pub fn last_closed_month(intacct_now: &str) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    let today = ml_connector::pipeline::transform::parse_intacct_datetime(intacct_now)?.date();
    let first = today.with_day(1)?;
    (first - chrono::Duration::days(1)).with_day(1)
}

/// Runs the connection once and prints the per-table summary with each stream's Intacct requests.
async fn run_and_summarise(
    conn: &Connection,
    events: &Events,
    per_stream: &Mutex<Vec<(String, u64)>>,
    full: bool,
) -> Result<RunReport> {
    let started = Instant::now();
    let opts = RunOptions {
        trigger: "demo".into(),
        ..Default::default()
    };
    let report = conn.run(&opts, events).await?;
    print_summary(
        &report,
        &per_stream.lock().expect("lock"),
        started.elapsed(),
        full,
    );
    Ok(report)
}

struct Changes {
    described: Vec<String>,
    vendor_keys: Vec<u64>,
}

fn make_changes(sim: &sim_intacct::Simulator) -> Changes {
    sim.advance_clock(Duration::from_secs(3600));
    let mut described = Vec::new();
    let mut vendor_keys = Vec::new();
    for (id, name) in [
        ("V-DEMO-1", "Northwind Paper Co"),
        ("V-DEMO-2", "Contoso Freight"),
        ("V-DEMO-3", "Fabrikam Legal LLP"),
    ] {
        let fields: BTreeMap<String, String> = [
            ("VENDORID", id),
            ("NAME", name),
            ("STATUS", "active"),
            ("TOTALDUE", "0.00"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let recordno = sim.insert("VENDOR", fields);
        vendor_keys.push(recordno);
        described.push(format!("added vendor {id} {name} (RECORDNO {recordno})"));
    }
    let existing = sim.records("VENDOR");
    for rec in existing.iter().take(2) {
        let recordno: u64 = rec
            .get("RECORDNO")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let name = format!("{} (renamed)", rec.get("NAME").cloned().unwrap_or_default());
        sim.update(
            "VENDOR",
            recordno,
            [("NAME".to_string(), name.clone())].into_iter().collect(),
        );
        vendor_keys.push(recordno);
        described.push(format!("renamed vendor RECORDNO {recordno} to {name:?}"));
    }
    if let Some(rec) = existing.get(2) {
        let recordno: u64 = rec
            .get("RECORDNO")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        sim.delete("VENDOR", recordno);
        vendor_keys.push(recordno);
        described.push(format!("deleted vendor RECORDNO {recordno}"));
    }
    if let Some(bill) = sim.records("APBILL").first() {
        let recordno: u64 = bill
            .get("RECORDNO")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        sim.update(
            "APBILL",
            recordno,
            [("TOTALPAID".to_string(), "0.00".to_string())]
                .into_iter()
                .collect(),
        );
        described.push(format!(
            "changed bill RECORDNO {recordno}: TOTALPAID = 0.00"
        ));
    }
    Changes {
        described,
        vendor_keys,
    }
}

fn print_summary(report: &RunReport, requests: &[(String, u64)], elapsed: Duration, full: bool) {
    if let Some(e) = &report.setup_error {
        println!("   run {} failed before any stream: {e}", report.run);
        return;
    }
    println!(
        "   {:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "table", "read", "new", "changed", "deleted", "pushed", "in table", "requests"
    );
    for s in &report.streams {
        let req = requests
            .iter()
            .find(|(n, _)| *n == s.object)
            .map(|(_, r)| *r)
            .unwrap_or(0);
        match &s.error {
            None => println!(
                "   {:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}",
                s.table, s.extracted, s.inserted, s.updated, s.deleted, s.pushed, s.table_rows, req
            ),
            Some(e) => println!("   {:<14} FAILED: {e}", s.table),
        }
    }
    println!(
        "   run {} {} in {:.1}s{}",
        report.run,
        report.status.as_str(),
        elapsed.as_secs_f64(),
        if full {
            " (full)"
        } else {
            " (incremental: only what changed)"
        }
    );
}

/// `ml-connector sim intacct`: one simulator on a fixed port until Ctrl-C.
pub async fn serve_intacct(port: u16, vendors: usize, seed: u64) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let mut cfg = sim_intacct::SimConfig::default();
    cfg.size.vendors = vendors as u64;
    cfg.seed = seed;
    let sim = sim_intacct::Simulator::start_on(listener, cfg).await;
    println!("{}", intacct_banner(&sim.endpoint()));
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

/// `ml-connector sim powerbi`: one simulator on a fixed port until Ctrl-C.
pub async fn serve_powerbi(port: u16) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let sim = sim_powerbi::Simulator::start_on(listener, sim_powerbi::SimConfig::default()).await;
    println!("{}", powerbi_banner(&sim.api_url()));
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

/// `sim fabric`: the landing zone under `root` as plain files, replicated every two seconds as
/// Fabric would (on a timer here because a person is watching; tests call `replicate_now`).
pub async fn serve_fabric(root: PathBuf, port: u16) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let sim = Arc::new(
        sim_fabric::FabricSim::start_on(listener, sim_fabric::SimConfig::new(&root))
            .await
            .with_context(|| {
                format!("cannot start the Fabric simulator under {}", root.display())
            })?,
    );
    println!(
        "{}",
        fabric_banner(
            &sim.base_url(),
            &sim.landing_zone_url(),
            &sim.landing_zone_dir().display().to_string()
        )
    );
    let replicator = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let sim = sim.clone();
                // The replicator reads Parquet files from disk: off the async workers.
                let _ = tokio::task::spawn_blocking(move || sim.replicate_now()).await;
            }
        })
    };
    tokio::signal::ctrl_c().await?;
    replicator.abort();
    let _ = replicator.await;
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    Ok(())
}

/// What `sim fabric` prints: the lines to paste (valid TOML: the service principal lives in
/// `[connection.powerbi]`, the landing zone in `[connection.fabric]`), the client secret for
/// `credentials set powerbi`, where the files are, and its admin endpoints as the README lists them.
pub fn fabric_banner(url: &str, landing_zone_url: &str, landing_zone_dir: &str) -> String {
    format!(
        "Fabric open-mirroring simulator listening. In [[connection]]:\n\
         destination = \"fabric_mirroring\"\n\
         In [connection.powerbi] (the service principal; workspace is not used by this destination):\n\
         authority_url = \"{url}\"\n\
         allow_loopback_http = true\n\
         tenant_id = \"{}\"\n\
         client_id = \"{}\"\n\
         workspace = \"{}\"\n\
         In [connection.fabric]:\n\
         landing_zone_url = \"{landing_zone_url}\"\n\
         allow_loopback_http = true\n\
         client secret for `ml-connector credentials set powerbi`: \"{}\"\n\
         landing zone files: {landing_zone_dir} (replicated every 2 s)\n\
         admin: GET /stats, POST /admin/faults, POST /admin/replicate, GET /admin/tables, GET /admin/tables/{{table}}. Ctrl-C stops.",
        sim_fabric::DEFAULT_TENANT_ID,
        sim_fabric::DEFAULT_CLIENT_ID,
        sim_fabric::DEFAULT_WORKSPACE_ID,
        sim_fabric::DEFAULT_CLIENT_SECRET
    )
}

/// What `sim intacct` prints: the `[connection.intacct]` lines to paste (valid TOML), the
/// passwords for `credentials set`, and its admin endpoints as the README lists them.
pub fn intacct_banner(endpoint: &str) -> String {
    format!(
        "Intacct simulator listening. In [connection.intacct]:\n\
         endpoint = \"{endpoint}\"\n\
         allow_loopback_http = true\n\
         sender_id = \"{}\"\n\
         company_id = \"{}\"\n\
         user_id = \"{}\"\n\
         passwords for `ml-connector credentials set intacct`: sender \"{}\", user \"{}\"\n\
         admin: GET /stats, GET|POST /admin/records/{{object}}, PUT|DELETE /admin/records/{{object}}/{{recordno}}, \
         POST /admin/faults, POST /admin/clock/advance. Ctrl-C stops.",
        sim_intacct::DEFAULT_SENDER_ID,
        sim_intacct::DEFAULT_COMPANY_ID,
        sim_intacct::DEFAULT_USER_ID,
        sim_intacct::DEFAULT_SENDER_PASSWORD,
        sim_intacct::DEFAULT_USER_PASSWORD
    )
}

/// What `sim powerbi` prints: the `[connection.powerbi]` lines to paste (valid TOML: one key a
/// line), the client secret for `credentials set`, and its admin endpoints as the README lists them.
pub fn powerbi_banner(url: &str) -> String {
    format!(
        "Power BI simulator listening. In [connection.powerbi]:\n\
         authority_url = \"{url}\"\n\
         api_url = \"{url}\"\n\
         allow_loopback_http = true\n\
         tenant_id = \"{}\"\n\
         client_id = \"{}\"\n\
         workspace = \"{}\"\n\
         client secret for `ml-connector credentials set powerbi`: \"{}\"\n\
         admin: GET /stats, GET /admin/rows/{{workspace}}/{{dataset}}/{{table}}, POST /admin/faults. Ctrl-C stops.",
        sim_powerbi::DEFAULT_TENANT_ID,
        sim_powerbi::DEFAULT_CLIENT_ID,
        sim_powerbi::DEFAULT_WORKSPACE,
        sim_powerbi::DEFAULT_CLIENT_SECRET
    )
}
