//! End-to-end: the Fabric open-mirroring destination, over real HTTP, against the Intacct simulator
//! and the Fabric simulator (whose replicator merges the landing zone like Fabric does).
//!
//! What must hold after every finished run: each mirrored table equals Intacct's records; each
//! table folder's data files are numbered 1..=n with no gap; a published file never changes or
//! disappears; and every changed record is written once — also when a run was cancelled or a
//! OneLake call failed part-way and the next run finished the job.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ml_connector::app::{self, IntacctSecrets, PowerBiSecrets};
use ml_connector::config::{ConnectionConfig, DestinationKind, FabricSection, Mode};
use ml_connector::pipeline::transform::parse_gmt_offset;
use ml_connector::pipeline::{Connection, Events, RunOptions, RunReport, RunStatus};
use ml_sim_fabric as sf;
use ml_sim_intacct as si;
use ml_store::crypto::MasterKey;

const STREAMS: [&str; 2] = ["VENDOR", "DEPARTMENT"];

struct FabricWorld {
    intacct: si::Simulator,
    fabric: sf::FabricSim,
    store: Arc<dyn ml_store::Store>,
    key: MasterKey,
    cfg: ConnectionConfig,
    _dir: tempfile::TempDir,
    /// Every data file seen so far and its bytes: a published file must never change or go.
    published: BTreeMap<String, Vec<u8>>,
}

impl FabricWorld {
    async fn start() -> FabricWorld {
        let intacct = si::Simulator::start(common::tiny_intacct())
            .await
            .expect("intacct sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let fabric = sf::FabricSim::start(sf::SimConfig::new(dir.path().join("onelake")))
            .await
            .expect("fabric sim");
        let store = ml_store::open(&ml_store::StoreLocation::Sqlite(
            dir.path().join("state.sqlite"),
        ))
        .await
        .expect("store");
        let mut cfg = ml_connector_cli::demo::demo_connection(
            &intacct.endpoint(),
            &fabric.base_url(),
            &fabric.base_url(),
            None,
        )
        .expect("config");
        cfg.streams.retain(|s| STREAMS.contains(&s.object.as_str()));
        assert_eq!(cfg.streams.len(), STREAMS.len());
        // The service principal is [connection.powerbi]'s; here it is the Fabric simulator's app.
        cfg.powerbi.tenant_id = sf::DEFAULT_TENANT_ID.into();
        cfg.powerbi.client_id = sf::DEFAULT_CLIENT_ID.into();
        cfg.destination = DestinationKind::FabricMirroring;
        cfg.fabric = Some(FabricSection {
            workspace: None,
            mirrored_database: None,
            cloud: "public".into(),
            landing_zone_url: fabric.landing_zone_url(),
            allow_loopback_http: true,
        });
        FabricWorld {
            intacct,
            fabric,
            store,
            key: MasterKey::generate(),
            cfg,
            _dir: dir,
            published: BTreeMap::new(),
        }
    }

    /// Seals the simulators' credentials as `credentials set` does and builds the connection as
    /// the CLI does.
    async fn connection(&self) -> Connection {
        let c = &self.cfg;
        app::seal_json(
            self.store.as_ref(),
            &self.key,
            &c.name,
            "intacct",
            &IntacctSecrets {
                sender_password: si::DEFAULT_SENDER_PASSWORD.into(),
                user_password: si::DEFAULT_USER_PASSWORD.into(),
            },
            serde_json::json!({"sender_id": c.intacct.sender_id, "company_id": c.intacct.company_id, "user_id": c.intacct.user_id}),
        )
        .await
        .expect("seal intacct");
        app::seal_json(
            self.store.as_ref(),
            &self.key,
            &c.name,
            "powerbi",
            &PowerBiSecrets::ClientSecret {
                client_secret: sf::DEFAULT_CLIENT_SECRET.into(),
            },
            serde_json::json!({"tenant_id": c.powerbi.tenant_id, "client_id": c.powerbi.client_id}),
        )
        .await
        .expect("seal powerbi");
        app::connect(c.clone(), self.store.clone(), &self.key, ml_clock::system())
            .await
            .expect("connection")
    }

    fn table_name(&self, object: &str) -> String {
        self.cfg
            .streams
            .iter()
            .find(|s| s.object == object)
            .map(|s| s.table.clone())
            .unwrap()
    }

    /// Rows the replicator has merged so far, per table.
    fn rows_replicated(&self) -> u64 {
        STREAMS
            .iter()
            .filter_map(|o| self.fabric.table(&self.table_name(o)))
            .map(|t| t.rows_replicated)
            .sum()
    }

    /// Replicates, then: every mirrored table equals Intacct's records (keys and every column),
    /// replication is running, not blocked, and never saw an insert of a held key or an update
    /// of a missing one.
    fn assert_mirrored_equal_intacct(&self, offset: chrono::FixedOffset) {
        self.fabric.replicate_now();
        for object in STREAMS {
            let table = self.table_name(object);
            let t = self
                .fabric
                .table(&table)
                .unwrap_or_else(|| panic!("{table}: not mirrored"));
            assert_eq!(t.status, sf::TableStatus::Running, "{table}: {:?}", t.error);
            assert_eq!(t.blocked, None, "{table}");
            assert_eq!(
                (t.duplicate_inserts, t.updates_of_missing),
                (0, 0),
                "{table}"
            );
            let rows: Vec<serde_json::Map<String, serde_json::Value>> = t
                .row_values()
                .into_iter()
                .map(|r| r.into_iter().collect())
                .collect();
            common::assert_rows_equal(
                &table,
                &self.intacct.records(object),
                &rows,
                offset,
                Mode::Replace,
            );
        }
    }

    /// Each table folder's data files are 1..=n, no gap; every file seen before is still there
    /// with the same bytes; after a finished run (`finished`), no upload is left over. Returns the
    /// number of data files per table.
    fn assert_files(&mut self, finished: bool) -> BTreeMap<String, u64> {
        let lz = self.fabric.landing_zone_dir();
        let mut counts = BTreeMap::new();
        for object in STREAMS {
            let table = self.table_name(object);
            let dir = lz.join(&table);
            let mut numbers = Vec::new();
            for e in std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "_metadata.json" {
                    continue;
                }
                if !finished && name.starts_with('_') {
                    continue;
                }
                assert!(
                    !name.starts_with('_'),
                    "{table}/{name}: an upload left behind after a finished run"
                );
                let stem = name.strip_suffix(".parquet").unwrap_or_else(|| {
                    panic!("{table}/{name}: not a data file");
                });
                assert_eq!(stem.len(), 20, "{table}/{name}: not a 20-digit name");
                numbers.push(stem.parse::<u64>().unwrap());
                let bytes = std::fs::read(e.path()).unwrap();
                let key = format!("{table}/{name}");
                if let Some(before) = self.published.get(&key) {
                    assert!(*before == bytes, "{key}: a published file was overwritten");
                }
                self.published.insert(key, bytes);
            }
            numbers.sort();
            let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
            assert_eq!(numbers, expected, "{table}: data files with a gap");
            counts.insert(table, numbers.len() as u64);
        }
        for key in self.published.keys() {
            assert!(
                lz.join(key).is_file(),
                "{key}: a published file disappeared"
            );
        }
        counts
    }

    /// One insert, one update and one delete in each stream; returns the changed records.
    fn make_changes(&self, round: usize) -> u64 {
        self.intacct.advance_clock(Duration::from_secs(3600));
        let vendors = self.intacct.records("VENDOR");
        let v1: u64 = vendors[0]["RECORDNO"].parse().unwrap();
        let v2: u64 = vendors[1]["RECORDNO"].parse().unwrap();
        self.intacct.insert(
            "VENDOR",
            fields(&[
                ("VENDORID", &format!("V-FAB-{round}")),
                ("NAME", &format!("Fabrikam {round} & Sons")),
                ("STATUS", "active"),
            ]),
        );
        assert!(self.intacct.update(
            "VENDOR",
            v1,
            fields(&[("NAME", &format!("Renamed in round {round}"))])
        ));
        assert!(self.intacct.delete("VENDOR", v2));
        // Departments are few: each round adds two and deletes one, so they never run out.
        let departments = self.intacct.records("DEPARTMENT");
        let d1: u64 = departments[0]["RECORDNO"].parse().unwrap();
        let d2: u64 = departments[1]["RECORDNO"].parse().unwrap();
        for i in 0..2 {
            self.intacct.insert(
                "DEPARTMENT",
                fields(&[
                    ("DEPARTMENTID", &format!("D-FAB-{round}-{i}")),
                    ("TITLE", &format!("Department {round}.{i}")),
                    ("STATUS", "active"),
                ]),
            );
        }
        assert!(self.intacct.update(
            "DEPARTMENT",
            d1,
            fields(&[("TITLE", &format!("Retitled in round {round}"))])
        ));
        assert!(self.intacct.delete("DEPARTMENT", d2));
        3 + 4
    }
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

async fn offset(conn: &Connection) -> chrono::FixedOffset {
    let f = conn.intacct.user_formatting().await.expect("formatting");
    parse_gmt_offset(&f.gmt_offset).expect("offset")
}

async fn run_ok(conn: &Connection) -> RunReport {
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    report
}

fn stream<'a>(r: &'a RunReport, object: &str) -> &'a ml_connector::pipeline::StreamReport {
    r.streams.iter().find(|s| s.object == object).unwrap()
}

#[tokio::test]
async fn full_then_incremental_sync_mirrors_intacct_with_one_row_per_changed_record() {
    let mut w = FabricWorld::start().await;
    let conn = w.connection().await;
    let report = run_ok(&conn).await;
    let offset = offset(&conn).await;
    w.assert_mirrored_equal_intacct(offset);
    let files = w.assert_files(true);
    assert!(
        files.values().all(|n| *n == 1),
        "one snapshot file each: {files:?}"
    );
    for object in STREAMS {
        let s = stream(&report, object);
        assert_eq!(s.pushed, w.intacct.records(object).len() as u64, "{s:#?}");
    }

    let replicated = w.rows_replicated();
    let changed = w.make_changes(1);
    let report = run_ok(&conn).await;
    for object in STREAMS {
        let s = stream(&report, object);
        let records = s.inserted + s.updated + s.deleted;
        assert!(records > 0, "{s:#?}");
        assert_eq!(s.pushed, records, "one row per changed record: {s:#?}");
    }
    w.assert_mirrored_equal_intacct(offset);
    assert_eq!(
        w.rows_replicated() - replicated,
        changed,
        "rows written to the landing zone per changed record must be 1"
    );
    let files = w.assert_files(true);
    assert!(files.values().all(|n| *n == 2), "{files:?}");

    // Nothing changed: no file, no row.
    let report = run_ok(&conn).await;
    assert!(report.streams.iter().all(|s| s.pushed == 0), "{report:#?}");
    let files = w.assert_files(true);
    assert!(files.values().all(|n| *n == 2), "{files:?}");
}

/// How a run is disturbed before a clean run finishes the job.
#[derive(Debug, Clone)]
enum Disturbance {
    /// The run's cancel token fires at its n-th event (after the stream starts, after staging, ...).
    CancelAtEvent(usize),
    /// The n-th request of an operation (and the retries after it) answers 429 with
    /// `Retry-After: 0`, so the call fails at once after its last try.
    FailCall(sf::Operation, u64),
    /// The n-th request of an operation is applied, then answers 500 (the client cannot know).
    FailAfterApply(sf::Operation, u64),
}

fn plan(d: &Disturbance) -> sf::FaultPlan {
    let rules = match d {
        Disturbance::CancelAtEvent(_) => vec![],
        Disturbance::FailCall(op, n) => vec![sf::FaultRule {
            operation: *op,
            requests: (*n..*n + 5).collect(),
            fault: sf::FaultKind::Throttle {
                retry_after_secs: 0,
            },
        }],
        Disturbance::FailAfterApply(op, n) => vec![sf::FaultRule {
            operation: *op,
            requests: vec![*n],
            fault: sf::FaultKind::StatusAfterApply { status: 500 },
        }],
    };
    sf::FaultPlan { rules }
}

#[tokio::test]
async fn a_run_cancelled_or_failed_at_any_point_is_finished_by_the_next_with_no_gap_and_nothing_doubled()
 {
    let mut w = FabricWorld::start().await;
    let conn = w.connection().await;
    run_ok(&conn).await;
    let offset = offset(&conn).await;
    w.assert_mirrored_equal_intacct(offset);
    w.assert_files(true);

    // An undisturbed incremental run, to learn its events (each a point to cancel at) and its
    // OneLake requests (each a point to fail at).
    w.make_changes(1);
    let before = w.fabric.stats().requests;
    let count = Arc::new(AtomicUsize::new(0));
    let events = {
        let count = count.clone();
        Events::new(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        })
    };
    conn.run(&opts(), &events).await.expect("run");
    let events_per_run = count.load(Ordering::SeqCst);
    w.assert_mirrored_equal_intacct(offset);
    w.assert_files(true);
    let requests = |op: sf::Operation| {
        let after = w.fabric.stats().requests;
        after.get(op.name()).copied().unwrap_or(0) - before.get(op.name()).copied().unwrap_or(0)
    };
    let mut disturbances: Vec<Disturbance> = (1..=events_per_run)
        .map(Disturbance::CancelAtEvent)
        .collect();
    for op in [
        sf::Operation::Create,
        sf::Operation::Append,
        sf::Operation::Flush,
        sf::Operation::Rename,
        sf::Operation::List,
    ] {
        for n in 1..=requests(op) {
            disturbances.push(Disturbance::FailCall(op, n));
        }
    }
    for op in [sf::Operation::Flush, sf::Operation::Rename] {
        for n in 1..=requests(op) {
            disturbances.push(Disturbance::FailAfterApply(op, n));
        }
    }
    assert!(disturbances.len() > 20, "{disturbances:?}");

    let mut disturbed_runs = 0;
    for (round, d) in disturbances.iter().enumerate() {
        let replicated = w.rows_replicated();
        let changed = w.make_changes(round + 2);
        w.fabric.set_faults(plan(d));
        let mut o = opts();
        let events = match d {
            Disturbance::CancelAtEvent(n) => {
                let cancel = o.cancel.clone();
                let seen = AtomicUsize::new(0);
                let n = *n;
                Events::new(move |_| {
                    if seen.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        cancel.cancel();
                    }
                })
            }
            _ => Events::default(),
        };
        o.trigger = format!("test {d:?}");
        let report = conn.run(&o, &events).await.expect("disturbed run");
        if report.status != RunStatus::Succeeded {
            disturbed_runs += 1;
        }
        w.fabric.set_faults(sf::FaultPlan::default());
        // Fabric may replicate what the disturbed run published before the next run starts.
        w.fabric.replicate_now();
        w.assert_files(false);

        let report = run_ok(&conn).await;
        w.assert_mirrored_equal_intacct(offset);
        w.assert_files(true);
        assert_eq!(
            w.rows_replicated() - replicated,
            changed,
            "{d:?}: each changed record written once across the disturbed and the next run ({report:#?})"
        );
    }
    // The faults and cancellations must actually have disturbed runs, or the test proves nothing.
    assert!(
        disturbed_runs * 2 >= disturbances.len(),
        "only {disturbed_runs} of {} runs were disturbed",
        disturbances.len()
    );
}

/// Fabric's replicator must never see a half-written file: every data file it processed is whole
/// Parquet (the simulator reads it), and the landing zone holds nothing it would reject.
#[tokio::test]
async fn the_landing_zone_holds_only_metadata_and_whole_data_files() {
    let mut w = FabricWorld::start().await;
    let conn = w.connection().await;
    run_ok(&conn).await;
    let lz = w.fabric.landing_zone_dir();
    for object in STREAMS {
        let table = w.table_name(object);
        let meta = std::fs::read_to_string(lz.join(&table).join("_metadata.json")).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(
            meta["keyColumns"],
            serde_json::json!(["RECORDNO"]),
            "{table}"
        );
    }
    assert_eq!(w.assert_files(true).len(), STREAMS.len());
    assert!(!Path::new(&lz.join("_scratchPad")).exists());
}
