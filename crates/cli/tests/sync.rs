//! End-to-end: the real pipeline against both simulators over HTTP.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Timelike;

use common::{World, tiny_intacct};
use ml_connector::destination::powerbi::PushDataset;
use ml_connector::pipeline::transform::parse_gmt_offset;
use ml_connector::pipeline::{Events, RunOptions, RunStatus};

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

async fn user_offset(conn: &ml_connector::pipeline::Connection) -> chrono::FixedOffset {
    let f = conn
        .intacct
        .user_formatting()
        .await
        .expect("user formatting");
    parse_gmt_offset(&f.gmt_offset).expect("offset")
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn full_then_incremental_sync_keeps_every_table_equal_to_intacct() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let offset = user_offset(&conn).await;
    let compared = w.assert_tables_equal_source(offset);
    assert!(compared >= 10, "compared only {compared} tables");
    let balances = w.table("GLBalances");
    assert!(!balances.is_empty(), "GL balances were not loaded");

    // Changes in Intacct: inserts, updates, deletes, and a bill changed.
    w.intacct.advance_clock(Duration::from_secs(3600));
    let new_vendor = w.intacct.insert(
        "VENDOR",
        fields(&[
            ("VENDORID", "V-NEW"),
            ("NAME", "New & Co <Ltd>"),
            ("STATUS", "active"),
        ]),
    );
    let vendors = w.intacct.records("VENDOR");
    let first: u64 = vendors[0]["RECORDNO"].parse().unwrap();
    let second: u64 = vendors[1]["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("VENDOR", first, fields(&[("NAME", "Renamed Vendor")]))
    );
    assert!(w.intacct.delete("VENDOR", second));
    let bill: u64 = w.intacct.records("APBILL")[0]["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("APBILL", bill, fields(&[("TOTALPAID", "0.00")]))
    );

    let report = conn
        .run(&opts(), &Events::default())
        .await
        .expect("incremental run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let v = report
        .streams
        .iter()
        .find(|s| s.object == "VENDOR")
        .unwrap();
    assert_eq!((v.inserted, v.updated, v.deleted), (1, 1, 1), "{v:#?}");
    let b = report
        .streams
        .iter()
        .find(|s| s.object == "APBILL")
        .unwrap();
    assert_eq!(b.updated, 1, "{b:#?}");
    let unchanged_pushes: u64 = report
        .streams
        .iter()
        .filter(|s| !["VENDOR", "APBILL", "GLACCOUNTBALANCE"].contains(&s.object.as_str()))
        .map(|s| s.pushed)
        .sum();
    assert_eq!(
        unchanged_pushes, 0,
        "unchanged streams must not be pushed again"
    );
    w.assert_tables_equal_source(offset);
    let rows = w.table("Vendors");
    assert!(
        rows.iter()
            .any(|r| r["RECORDNO"].as_u64() == Some(new_vendor) && r["NAME"] == "New & Co <Ltd>")
    );

    // The audit trail has the changes and verifies.
    let entries = w
        .store
        .audit_search(&ml_store::AuditFilter {
            connection: Some("demo".into()),
            run: Some(ml_store::RunId(report.run)),
            stream: Some("VENDOR".into()),
            record_key: Some(second.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == ml_store::AuditAction::Deleted),
        "{entries:#?}"
    );
    assert!(w.store.audit_verify("demo").await.unwrap().ok);

    // verify agrees, then catches a row injected behind the connector's back.
    let v = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert!(v.all_match(), "{:#?}", v.tables);
    let mut row = serde_json::Map::new();
    row.insert("RECORDNO".into(), serde_json::json!(999_999));
    row.insert("TOTALDUE".into(), serde_json::json!(10));
    assert!(w.powerbi.inject_row(
        ml_sim_powerbi::DEFAULT_WORKSPACE,
        common::DATASET,
        "Vendors",
        row
    ));
    let v = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    let vendors = v.tables.iter().find(|t| t.table == "Vendors").unwrap();
    assert!(!vendors.matches(), "{vendors}");
    assert_eq!(vendors.powerbi_rows, vendors.expected_rows + 1);
}

/// When every key of `object` was last compared with Intacct (the marker stream's cursor).
async fn last_key_comparison(w: &World, object: &str) -> Option<String> {
    w.store
        .cursor("demo", &format!("{object}#key-compare"))
        .await
        .unwrap()
        .and_then(|c| c.committed)
        .map(|c| c.when_modified)
}

fn rows_with(w: &World, table: &str, column: &str, value: &str) -> usize {
    w.table(table)
        .iter()
        .filter(|r| r[column].as_str() == Some(value))
        .count()
}

/// AUDITHISTORY names a deleted vendor by its VENDORID and a customer by its CUSTOMERID: the
/// next incremental sync finds their RECORDNOs through the mirror and deletes their rows, without
/// comparing every key. A delete event whose key the mirror cannot resolve (a vendor renamed and
/// deleted between two syncs, a key it never had) makes the stream compare every key in the same
/// run, which finds the renamed vendor gone.
#[tokio::test]
async fn deletes_named_by_business_id_reach_power_bi() {
    let mut cfg = tiny_intacct();
    // Intacct's clock and the connector's agree, as in production: a key comparison covers the
    // delete events older than it.
    cfg.clock_start = (chrono::Utc::now() - chrono::Duration::days(2))
        .naive_utc()
        .with_nanosecond(0)
        .unwrap();
    let w = World::start(cfg).await;
    let conn = w.connection().await;
    let offset = user_offset(&conn).await;
    let table_of = |object: &str| {
        w.cfg
            .streams
            .iter()
            .find(|s| s.object == object)
            .unwrap()
            .table
            .clone()
    };
    let (vendors, customers) = (table_of("VENDOR"), table_of("CUSTOMER"));
    for round in ["full", "incremental"] {
        let report = conn.run(&opts(), &Events::default()).await.expect(round);
        assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    }
    w.assert_tables_equal_source(offset);
    let compared = last_key_comparison(&w, "VENDOR").await;

    // A vendor and a customer deleted: the delete events carry their business IDs.
    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendor = w.intacct.records("VENDOR")[1].clone();
    let customer = w.intacct.records("CUSTOMER")[2].clone();
    for (object, record) in [("VENDOR", &vendor), ("CUSTOMER", &customer)] {
        assert!(
            w.intacct
                .delete(object, record["RECORDNO"].parse().unwrap())
        );
    }
    let events = w.intacct.records("AUDITHISTORY");
    for id in [&vendor["VENDORID"], &customer["CUSTOMERID"]] {
        assert!(events.iter().any(|e| &e["OBJECTKEY"] == id), "{id}");
    }
    assert_eq!(rows_with(&w, &vendors, "VENDORID", &vendor["VENDORID"]), 1);
    assert_eq!(
        rows_with(&w, &customers, "CUSTOMERID", &customer["CUSTOMERID"]),
        1
    );
    let report = conn
        .run(&opts(), &Events::default())
        .await
        .expect("incremental run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    for object in ["VENDOR", "CUSTOMER"] {
        let s = report.streams.iter().find(|s| s.object == object).unwrap();
        assert_eq!(s.deleted, 1, "{s:#?}");
    }
    assert_eq!(rows_with(&w, &vendors, "VENDORID", &vendor["VENDORID"]), 0);
    assert_eq!(
        rows_with(&w, &customers, "CUSTOMERID", &customer["CUSTOMERID"]),
        0
    );
    w.assert_tables_equal_source(offset);
    assert_eq!(
        last_key_comparison(&w, "VENDOR").await,
        compared,
        "resolved through the mirror: no key comparison"
    );

    // After that comparison: a vendor renamed and deleted between two syncs (its event names a
    // VENDORID the mirror never had), and an event for a key no record ever had.
    w.intacct.advance_clock(Duration::from_secs(3 * 86_400));
    let renamed = w.intacct.records("VENDOR")[2].clone();
    let renamed_no: u64 = renamed["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("VENDOR", renamed_no, fields(&[("VENDORID", "V-RENAMED")]))
    );
    assert!(w.intacct.delete("VENDOR", renamed_no));
    let now = w.intacct.now();
    w.intacct.insert(
        "AUDITHISTORY",
        fields(&[
            ("OBJECTTYPE", "vendor"),
            ("OBJECTKEY", "V-NEVER-SEEN"),
            ("OBJECTDESC", "V-NEVER-SEEN"),
            ("USERID", "Admin"),
            ("ACCESSMODE", "D"),
            ("ACCESSTIME", now.as_str()),
            ("SOURCE", "api"),
        ]),
    );
    let report = conn
        .run(&opts(), &Events::default())
        .await
        .expect("incremental run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let v = report
        .streams
        .iter()
        .find(|s| s.object == "VENDOR")
        .unwrap();
    assert_eq!(v.deleted, 1, "{v:#?}");
    assert_ne!(
        last_key_comparison(&w, "VENDOR").await,
        compared,
        "an unresolvable key compares every key in the same run"
    );
    assert_eq!(rows_with(&w, &vendors, "VENDORID", &renamed["VENDORID"]), 0);
    w.assert_tables_equal_source(offset);
}

#[tokio::test]
async fn one_streams_intacct_failure_leaves_the_others_complete() {
    let mut cfg = tiny_intacct();
    cfg.denied_objects.insert("CLASS".into());
    let w = World::start(cfg).await;
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Partial);
    let class = report.streams.iter().find(|s| s.object == "CLASS").unwrap();
    let err = class.error.as_deref().unwrap();
    assert!(err.contains("PL04000005"), "{err}");
    assert!(err.to_lowercase().contains("permission"), "{err}");
    assert!(
        w.table("Classes").is_empty(),
        "nothing of a failed stream is pushed"
    );
    for s in report.streams.iter().filter(|s| s.object != "CLASS") {
        assert!(s.error.is_none(), "{}: {:?}", s.object, s.error);
    }
    assert!(!w.table("Vendors").is_empty());

    // `runs show` reads it from the store; the audit trail has it too.
    let detail = w
        .store
        .get_run(ml_store::RunId(report.run))
        .await
        .unwrap()
        .unwrap();
    let stored = detail.streams.iter().find(|s| s.stream == "CLASS").unwrap();
    assert!(
        stored
            .result
            .error
            .as_deref()
            .unwrap()
            .contains("PL04000005")
    );
    let entries = w
        .store
        .audit_search(&ml_store::AuditFilter {
            connection: Some("demo".into()),
            run: Some(ml_store::RunId(report.run)),
            stream: Some("CLASS".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.error.as_deref().is_some_and(|t| t.contains("PL04000005"))),
        "{entries:#?}"
    );
}

#[tokio::test]
async fn replay_of_an_older_run_restores_its_tables() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    let first = conn.run(&opts(), &Events::default()).await.unwrap();
    let vendors_after_first = w.table("Vendors");

    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendors = w.intacct.records("VENDOR");
    let k: u64 = vendors[3]["RECORDNO"].parse().unwrap();
    w.intacct
        .update("VENDOR", k, fields(&[("NAME", "Changed later")]));
    w.intacct
        .delete("VENDOR", vendors[4]["RECORDNO"].parse().unwrap());
    conn.run(&opts(), &Events::default()).await.unwrap();
    assert_ne!(
        sorted(w.table("Vendors")),
        sorted(vendors_after_first.clone())
    );

    let dry = ml_connector::pipeline::replay::replay(
        &conn,
        first.run,
        Some("VENDOR"),
        true,
        &Events::default(),
    )
    .await
    .unwrap();
    assert_eq!(dry.tables[0].rows as usize, vendors_after_first.len());
    assert_ne!(
        sorted(w.table("Vendors")),
        sorted(vendors_after_first.clone()),
        "a dry run pushes nothing"
    );

    ml_connector::pipeline::replay::replay(
        &conn,
        first.run,
        Some("VENDOR"),
        false,
        &Events::default(),
    )
    .await
    .unwrap();
    assert_eq!(sorted(w.table("Vendors")), sorted(vendors_after_first));

    // The replayed table no longer matches the mirror: `verify` says so, and the next sync, with
    // nothing changed in Intacct, brings it back to current.
    let v = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert!(!v.all_match(), "{:?}", v.tables);
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let offset = user_offset(&conn).await;
    w.assert_tables_equal_source(offset);
    let v = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert!(v.all_match(), "{:?}", v.tables);
}

/// `sync --stream` runs one stream, but the dataset keeps every table, and `verify` checks them all.
#[tokio::test]
async fn a_sync_of_one_stream_keeps_the_dataset_schema_and_verify_checks_every_table() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let all = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert!(all.all_match(), "{:?}", all.tables);
    let one = RunOptions {
        streams: vec!["VENDOR".into()],
        ..opts()
    };
    let report = conn.run(&one, &Events::default()).await.unwrap();
    assert_eq!(report.streams.len(), 1);
    let after = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert_eq!(after.tables.len(), all.tables.len(), "{:?}", after.tables);
    assert_eq!(after.tables.len(), w.cfg.streams.len());
    assert!(after.all_match(), "{:?}", after.tables);
}

fn sorted(mut rows: Vec<serde_json::Map<String, serde_json::Value>>) -> Vec<String> {
    let mut out: Vec<String> = rows
        .drain(..)
        .map(|r| serde_json::Value::Object(r).to_string())
        .collect();
    out.sort();
    out
}

/// A batch whose connection dropped after Power BI stored it must not be sent again; one dropped before
/// it was stored must be. The next run tells them apart by counting the table's rows.
#[tokio::test]
async fn an_append_batch_of_unknown_fate_is_resolved_without_doubling() {
    use ml_sim_powerbi::{FaultKind, FaultPlan, Operation, Trigger};
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    assert_eq!(
        conn.run(&opts(), &Events::default()).await.unwrap().status,
        RunStatus::Succeeded
    );
    let offset = user_offset(&conn).await;

    for (round, fault) in [FaultKind::ResetAfterApply, FaultKind::ResetBeforeApply]
        .into_iter()
        .enumerate()
    {
        w.intacct.advance_clock(Duration::from_secs(3600));
        for i in 0..3 {
            let total = format!("{round}{i}.25");
            w.intacct.insert(
                "APPYMT",
                fields(&[
                    ("VENDORID", "V00001"),
                    ("STATE", "C"),
                    ("TOTALENTERED", total.as_str()),
                ]),
            );
        }
        let before = w.table("APPayments").len();
        w.powerbi.set_faults(FaultPlan::none().with(
            Some(Operation::PostRows),
            Trigger::FirstN { n: 1 },
            fault.clone(),
        ));
        let report = conn.run(&opts(), &Events::default()).await.unwrap();
        assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
        let pay = report
            .streams
            .iter()
            .find(|s| s.object == "APPYMT")
            .unwrap();
        assert!(
            pay.error.as_deref().unwrap().contains("may or may not"),
            "{pay:#?}"
        );
        let expected_now = if matches!(fault, FaultKind::ResetAfterApply) {
            before + 3
        } else {
            before
        };
        assert_eq!(w.table("APPayments").len(), expected_now, "{fault:?}");

        w.powerbi.set_faults(FaultPlan::none());
        let report = conn.run(&opts(), &Events::default()).await.unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
        assert_eq!(
            w.table("APPayments").len(),
            before + 3,
            "{fault:?}: lost or doubled rows"
        );
        w.assert_tables_equal_source(offset);
    }
}

/// A field that appears in a stream's plan (a custom field configured later) becomes a new column: the
/// table's schema is changed and the table rebuilt, so every row has it. With `schema_drift = "block"`
/// the stream stops instead and says which fields are new.
#[tokio::test]
async fn a_new_field_becomes_a_column_or_blocks_the_stream() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    assert_eq!(
        conn.run(&opts(), &Events::default()).await.unwrap().status,
        RunStatus::Succeeded
    );
    assert!(
        w.table("Vendors")
            .iter()
            .all(|r| !r.contains_key("VENDOR_TIER"))
    );

    let mut conn2 = conn.clone();
    let vendor = conn2
        .config
        .streams
        .iter_mut()
        .find(|s| s.object == "VENDOR")
        .unwrap();
    vendor.custom_fields = vec!["VENDOR_TIER".into()];
    let gl = conn2
        .config
        .streams
        .iter_mut()
        .find(|s| s.object == "GLACCOUNT")
        .unwrap();
    gl.custom_fields = vec!["REPORTING_GROUP".into()];
    gl.schema_drift = ml_connector::config::SchemaDrift::Block;
    let report = conn2.run(&opts(), &Events::default()).await.unwrap();
    // The run stops at the dataset step when a blocked table drifts: no table is half-changed.
    assert_eq!(report.status, RunStatus::Failed);
    let err = report.setup_error.clone().unwrap_or_default();
    assert!(
        err.contains("REPORTING_GROUP") && err.contains("block"),
        "{report:#?}"
    );

    let gl = conn2
        .config
        .streams
        .iter_mut()
        .find(|s| s.object == "GLACCOUNT")
        .unwrap();
    gl.schema_drift = ml_connector::config::SchemaDrift::AddColumn;
    let report = conn2.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let source: BTreeMap<String, String> = w
        .intacct
        .records("VENDOR")
        .into_iter()
        .map(|r| {
            (
                r["RECORDNO"].clone(),
                r.get("VENDOR_TIER").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let rows = w.table("Vendors");
    assert_eq!(rows.len(), source.len());
    for r in rows {
        let key = r["RECORDNO"].to_string();
        let tier = r.get("VENDOR_TIER").and_then(|v| v.as_str()).unwrap_or("");
        assert_eq!(tier, source[&key], "vendor {key}");
    }
    assert!(
        w.table("GLAccounts")
            .iter()
            .any(|r| r.contains_key("REPORTING_GROUP"))
    );
}

/// Never two runs of one connection at once: while another worker holds the run lease, a run refuses
/// to start and names the holder.
#[tokio::test]
async fn a_second_run_of_the_same_connection_is_refused() {
    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
    let other = ml_connector::scheduler::lease::acquire(&w.store, "demo", "other-host:4242")
        .await
        .unwrap()
        .expect("free lease");
    let err = conn
        .run(&opts(), &Events::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in progress") && err.contains("other-host:4242"),
        "{err}"
    );
    assert!(
        w.store
            .list_runs(Some("demo"), 10)
            .await
            .unwrap()
            .is_empty(),
        "no run was started"
    );
    other.release().await;
    assert_eq!(
        conn.run(&opts(), &Events::default()).await.unwrap().status,
        RunStatus::Succeeded
    );
}

/// A push dataset someone else defined: the stream's column mapping is checked against the table's real
/// columns before anything is pushed, the table's schema is left alone, and rows arrive under the
/// user's column names.
#[tokio::test]
async fn a_dataset_defined_by_someone_else_is_fed_through_a_column_mapping() {
    use ml_sim_powerbi::{PresetDataset, PresetKind, PresetTable, Retention};
    let mut pcfg = ml_sim_powerbi::SimConfig::default();
    pcfg.workspaces[0].datasets.push(PresetDataset {
        id: "0c0ffee0-0000-4000-8000-000000000001".into(),
        name: "Finance Model".into(),
        kind: PresetKind::Push(Retention::None),
        tables: vec![PresetTable {
            name: "Suppliers".into(),
            columns: vec![
                ("RECORDNO".into(), "Int64".into()),
                ("Supplier".into(), "String".into()),
                ("Balance".into(), "Decimal".into()),
            ],
        }],
    });
    let mut w = World::start_with(tiny_intacct(), pcfg).await;
    w.cfg.powerbi.dataset = "Finance Model".into();
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let vendor = &mut w.cfg.streams[0];
    vendor.table = "Suppliers".into();
    vendor.manage_schema = false;
    vendor.column_map = [
        ("RECORDNO", "RECORDNO"),
        ("NAME", "Nope"),
        ("TOTALDUE", "Balance"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();

    // A mapping to a column the table lacks is refused before any row is pushed.
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    let err = report.setup_error.clone().unwrap_or_default();
    assert!(
        err.contains("Nope") && err.contains("Supplier"),
        "{report:#?}"
    );
    let rows = w.powerbi.table_rows(
        ml_sim_powerbi::DEFAULT_WORKSPACE,
        "Finance Model",
        "Suppliers",
    );
    assert_eq!(rows.map(|r| r.len()), Some(0));

    w.cfg.streams[0]
        .column_map
        .insert("NAME".into(), "Supplier".into());
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let rows = w
        .powerbi
        .table_rows(
            ml_sim_powerbi::DEFAULT_WORKSPACE,
            "Finance Model",
            "Suppliers",
        )
        .unwrap();
    let source = w.intacct.records("VENDOR");
    assert_eq!(rows.len(), source.len());
    for r in &rows {
        let key = r["RECORDNO"].to_string();
        let src = source.iter().find(|s| s["RECORDNO"] == key).unwrap();
        assert_eq!(r["Supplier"], src["NAME"]);
        let mut cols: Vec<&String> = r.keys().collect();
        cols.sort();
        assert!(
            cols.iter()
                .all(|c| ["Balance", "RECORDNO", "Supplier"].contains(&c.as_str())),
            "{cols:?}"
        );
    }
}

/// Without AUDITHISTORY, deletes are found by comparing every key, at most once per
/// `key_compare_every`: every run by default, and not again within the cadence.
#[tokio::test]
async fn without_audit_history_deletes_are_found_by_key_comparison_at_its_cadence() {
    let mut icfg = tiny_intacct();
    icfg.audit_history_readable = false;
    let w = World::start(icfg).await;
    let mut conn = w.connection().await;
    assert_eq!(
        conn.run(&opts(), &Events::default()).await.unwrap().status,
        RunStatus::Succeeded
    );
    let keys = |w: &World| -> Vec<i64> {
        w.table("Vendors")
            .iter()
            .map(|r| r["RECORDNO"].as_i64().unwrap())
            .collect()
    };

    w.intacct.advance_clock(Duration::from_secs(3600));
    let a: i64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    w.intacct.delete("VENDOR", a as u64);
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(
        report
            .streams
            .iter()
            .find(|s| s.object == "VENDOR")
            .unwrap()
            .deleted,
        1
    );
    assert!(!keys(&w).contains(&a));

    // Compared keys a moment ago: with a 24-hour cadence the next run does not compare again.
    conn.config
        .streams
        .iter_mut()
        .find(|s| s.object == "VENDOR")
        .unwrap()
        .key_compare_every = Duration::from_secs(24 * 3600);
    let b: i64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    w.intacct.delete("VENDOR", b as u64);
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(
        report
            .streams
            .iter()
            .find(|s| s.object == "VENDOR")
            .unwrap()
            .deleted,
        0
    );
    assert!(
        keys(&w).contains(&b),
        "within the cadence the delete waits for the next comparison"
    );

    // With the cadence back to every run, it is found.
    conn.config
        .streams
        .iter_mut()
        .find(|s| s.object == "VENDOR")
        .unwrap()
        .key_compare_every = Duration::ZERO;
    conn.run(&opts(), &Events::default()).await.unwrap();
    assert!(!keys(&w).contains(&b));
}

/// The next process (the next `ml-connector sync`, another worker) pushing into the dataset within
/// the hour knows what the last one sent (the POSTs recorded in the store), so it draws no 429s
/// from Power BI, and a rebuild that the hour's remaining budget cannot finish is postponed before
/// its table is emptied: every table keeps all its rows.
#[tokio::test]
async fn a_new_process_paces_from_the_posts_the_last_one_recorded() {
    fn deletes(w: &World) -> u64 {
        w.powerbi
            .stats()
            .requests_by_operation
            .get("delete_rows")
            .copied()
            .unwrap_or(0)
    }
    // How many rows one full sync pushes (the tiny company is generated the same every time).
    let rows_per_sync = {
        let probe = World::start(tiny_intacct()).await;
        let report = probe
            .connection()
            .await
            .run(&opts(), &Events::default())
            .await
            .expect("probe run");
        report.streams.iter().map(|s| s.pushed).sum::<u64>()
    };
    assert!(rows_per_sync > 100, "{rows_per_sync}");
    // An "hour" of two seconds holding one and a half syncs' rows: the second full sync must wait
    // for the first one's rows to age out.
    let hour = Duration::from_secs(2);
    let budget = rows_per_sync * 3 / 2;
    let w = World::start_with(
        tiny_intacct(),
        ml_sim_powerbi::SimConfig {
            limits: ml_sim_powerbi::SimLimits {
                rows_per_hour: budget,
                hour,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let process = || async {
        let mut conn = w.connection().await;
        let limits = ml_powerbi::PushLimits {
            rows_per_hour: budget,
            hour,
            // A 429 would fail the batch instead of being retried out of sight.
            max_attempts: 1,
            ..Default::default()
        };
        let client = PushDataset::of(conn.destination.as_ref(), "demo", "test")
            .unwrap()
            .client
            .clone();
        conn.destination =
            std::sync::Arc::new(PushDataset::with_limits(client, limits, conn.clock.clone()));
        conn
    };
    let first = process().await;
    let report = first.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    drop(first);

    let deletes_before = deletes(&w);
    let second = process().await;
    let full = RunOptions {
        full: true,
        ..opts()
    };
    let report = second.run(&full, &Events::default()).await.expect("run");
    // The second full sync does not fit the hour beside the first one: the rebuilds the budget
    // left room for ran, the others were postponed before their tables were emptied.
    assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
    let postponed: Vec<&str> = report
        .streams
        .iter()
        .filter_map(|s| s.postponed.as_deref())
        .collect();
    assert!(!postponed.is_empty(), "{report:#?}");
    for why in &postponed {
        assert!(
            why.contains("rows of budget")
                && why.contains("postponed until")
                && why.contains("keeps its current rows"),
            "{why}"
        );
    }
    assert!(
        report.streams.iter().all(|s| s.error.is_none()),
        "{report:#?}"
    );
    let pushed_again = report.streams.iter().map(|s| s.pushed).sum::<u64>();
    assert!(
        rows_per_sync + pushed_again <= budget,
        "the second process counted the first one's rows: {rows_per_sync} + {pushed_again} > {budget}"
    );
    let stats = w.powerbi.stats();
    assert_eq!(stats.throttled_429, 0, "{stats:?}");
    // Only the rebuilds that ran emptied their tables.
    let rebuilt = report
        .streams
        .iter()
        .filter(|s| s.postponed.is_none() && s.pushed > 0)
        .count() as u64;
    assert_eq!(deletes(&w) - deletes_before, rebuilt, "{report:#?}");
    let offset = user_offset(&second).await;
    w.assert_tables_equal_source(offset);
}

/// A full read ends with an empty page whose cursor is the watermark. When Intacct's latency paces
/// the pull, the pages before it are staged while the next one is awaited, so that last page comes
/// alone: it must still move the watermark, or the next run reads everything again.
#[tokio::test]
async fn a_watermark_that_comes_alone_after_the_last_records_is_kept() {
    let mut cfg = tiny_intacct();
    cfg.latency.per_request = Duration::from_millis(200);
    let mut w = World::start(cfg).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let cursor = w
        .store
        .cursor(&w.cfg.name, "VENDOR")
        .await
        .expect("cursor")
        .expect("a cursor row");
    assert!(
        cursor.committed.is_some(),
        "the full read's watermark was not kept: {cursor:?}"
    );
}

/// A rebuild empties its table first, so it starts only when Power BI answers just before: during
/// an outage the stream is postponed (the run is partial, not failed) and the table keeps every row;
/// the next run, with Power BI back, rebuilds it.
#[tokio::test]
async fn a_rebuild_is_postponed_while_power_bi_does_not_answer_and_the_table_keeps_its_rows() {
    let mut w = World::start(tiny_intacct()).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let before = w.table("Vendors").len();
    assert!(before > 0);

    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendors = w.intacct.records("VENDOR");
    let first: u64 = vendors[0]["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("VENDOR", first, fields(&[("NAME", "Renamed Vendor")]))
    );
    // Power BI goes down after the run's set-up listed the dataset's tables: it answers 503 from
    // the listing the rebuild checks with just before it would delete (the run's second; the
    // client's own retries of it fail too), and to every delete.
    w.powerbi.set_faults(
        ml_sim_powerbi::FaultPlan::none()
            .with(
                Some(ml_sim_powerbi::Operation::GetTables),
                // Counted from when the plan is set.
                ml_sim_powerbi::Trigger::Nth {
                    requests: (2..40).collect(),
                },
                ml_sim_powerbi::FaultKind::Status { status: 503 },
            )
            .with(
                Some(ml_sim_powerbi::Operation::DeleteRows),
                ml_sim_powerbi::Trigger::Always,
                ml_sim_powerbi::FaultKind::Status { status: 503 },
            ),
    );
    let deletes = |w: &World| {
        w.powerbi
            .stats()
            .requests_by_operation
            .get("delete_rows")
            .copied()
            .unwrap_or(0)
    };
    let deletes_before = deletes(&w);
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
    let vendor = &report.streams[0];
    let why = vendor.postponed.as_deref().expect("postponed");
    assert!(
        why.contains("did not answer") && why.contains("keeps its current rows"),
        "{why}"
    );
    assert_eq!(deletes(&w), deletes_before, "no delete was even tried");
    assert_eq!(w.table("Vendors").len(), before, "the table kept every row");
    // `runs show` has the reason.
    let stored = w
        .store
        .get_run(ml_store::RunId(report.run))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.streams[0].result.status,
        Some(ml_store::StreamStatus::Postponed)
    );

    w.powerbi.set_faults(ml_sim_powerbi::FaultPlan::none());
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let offset = user_offset(&conn).await;
    w.assert_tables_equal_source(offset);
}

fn delete_calls(w: &World) -> u64 {
    w.powerbi
        .stats()
        .requests_by_operation
        .get("delete_rows")
        .copied()
        .unwrap_or(0)
}

/// A connection of `w` whose rebuilds push two rows a batch (the tiny company's 25 vendors make
/// 13 batches, more than Power BI's 5 in flight), its pusher retrying a 5xx once, quickly, and its
/// rebuilds passing again after `rebuild_retries`.
async fn with_small_batches(
    w: &World,
    rebuild_retries: Vec<Duration>,
) -> ml_connector::pipeline::Connection {
    let mut conn = w.connection().await;
    let limits = ml_powerbi::PushLimits {
        max_rows_per_post: 2,
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let client = PushDataset::of(conn.destination.as_ref(), "demo", "test")
        .unwrap()
        .client
        .clone();
    conn.destination = std::sync::Arc::new(
        PushDataset::with_limits(client, limits, conn.clock.clone())
            .with_rebuild_retries(rebuild_retries),
    );
    conn
}

/// A rebuild interrupted mid-way (the run cancelled once its first batches landed) keeps what Power
/// BI confirmed: the next run, with the mirror unchanged, pushes only the rest, in the same pages,
/// and deletes nothing.
#[tokio::test]
async fn an_interrupted_rebuild_resumes_without_deleting_again() {
    let mut w = World::start(tiny_intacct()).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let conn = with_small_batches(&w, Vec::new()).await;
    let total = w.intacct.records("VENDOR").len();
    assert!(total > 20, "{total}");

    let first = opts();
    let cancel = first.cancel.clone();
    let events = {
        let cancel = cancel.clone();
        Events::new(move |e| {
            if let ml_connector::pipeline::events::RunEvent::Pushed { rows, .. } = e
                && *rows >= 4
            {
                cancel.cancel();
            }
        })
    };
    let report = conn.run(&first, &events).await.expect("run");
    assert_eq!(report.status, RunStatus::Interrupted, "{report:#?}");
    let landed = w.table("Vendors").len();
    assert_eq!(landed as u64, report.streams[0].pushed, "{report:#?}");
    assert!(landed >= 4 && landed < total, "{landed} of {total}");
    let state = w.store.stream_state("demo", "VENDOR").await.unwrap();
    assert!(state.dirty, "{state:?}");
    assert_eq!(
        state.rebuild.as_ref().map(|p| p.rows),
        Some(landed as u64),
        "{state:?}"
    );

    let deletes_before = delete_calls(&w);
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(
        delete_calls(&w),
        deletes_before,
        "the table was emptied again"
    );
    assert_eq!(
        report.streams[0].pushed,
        (total - landed) as u64,
        "{report:#?}"
    );
    let offset = user_offset(&conn).await;
    w.assert_tables_equal_source(offset);
    let state = w.store.stream_state("demo", "VENDOR").await.unwrap();
    assert!(!state.dirty && state.rebuild.is_none(), "{state:?}");
    assert_eq!(state.table_rows, total as u64);

    // With the mirror changed since, an interrupted rebuild starts over.
    let again = RunOptions {
        full: true,
        ..opts()
    };
    let cancel = again.cancel.clone();
    let events = Events::new(move |e| {
        if let ml_connector::pipeline::events::RunEvent::Pushed { rows, .. } = e
            && *rows >= 4
        {
            cancel.cancel();
        }
    });
    let report = conn.run(&again, &events).await.expect("run");
    assert_eq!(report.status, RunStatus::Interrupted, "{report:#?}");
    w.intacct.advance_clock(Duration::from_secs(3600));
    let first_vendor: u64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    assert!(w.intacct.update(
        "VENDOR",
        first_vendor,
        fields(&[("NAME", "Renamed Vendor")])
    ));
    let deletes_before = delete_calls(&w);
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(delete_calls(&w), deletes_before + 1);
    assert_eq!(report.streams[0].pushed, total as u64, "{report:#?}");
    w.assert_tables_equal_source(offset);
}

/// A burst of 503s on POST rows, longer than the pusher's own retries of a batch but shorter than
/// the rebuild's retries within the run: the same run ends with the table complete, resumed from
/// the rows Power BI confirmed rather than emptied again.
#[tokio::test]
async fn a_503_burst_during_a_rebuild_is_retried_within_the_run() {
    use ml_sim_powerbi::{FaultKind, FaultPlan, Operation, Trigger};
    let mut w = World::start(tiny_intacct()).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let conn = with_small_batches(&w, vec![Duration::from_millis(100); 8]).await;
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let total = w.table("Vendors").len();

    w.intacct.advance_clock(Duration::from_secs(3600));
    let first_vendor: u64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    assert!(w.intacct.update(
        "VENDOR",
        first_vendor,
        fields(&[("NAME", "Renamed Vendor")])
    ));
    // The first three batches land; then 503 for the next 12 POSTs (each batch is tried twice).
    w.powerbi.set_faults(FaultPlan::none().with(
        Some(Operation::PostRows),
        Trigger::Nth {
            requests: (4..16).collect(),
        },
        FaultKind::Status { status: 503 },
    ));
    let deletes_before = delete_calls(&w);
    let report = conn.run(&opts(), &Events::default()).await.expect("run");
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert_eq!(
        delete_calls(&w),
        deletes_before + 1,
        "the rebuild resumed; it did not empty the table again"
    );
    assert_eq!(report.streams[0].pushed, total as u64, "{report:#?}");
    let stats = w.powerbi.stats();
    assert!(
        stats.faults_injected.values().sum::<u64>() >= 2,
        "{stats:?}"
    );
    let offset = user_offset(&conn).await;
    w.assert_tables_equal_source(offset);
}

/// A renamed vendor leaves the row count and every numeric sum as they were: `verify` also totals
/// the length of every text column, so Power BI holding the old name is a difference.
#[tokio::test]
async fn verify_sees_a_changed_name_that_counts_and_sums_miss() {
    let mut w = World::start(tiny_intacct()).await;
    w.cfg.streams.retain(|s| s.object == "VENDOR");
    let conn = w.connection().await;
    let first = conn.run(&opts(), &Events::default()).await.unwrap();
    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendors = w.intacct.records("VENDOR");
    let k: u64 = vendors[0]["RECORDNO"].parse().unwrap();
    let renamed = format!("{} and Sons", vendors[0]["NAME"]);
    assert!(w.intacct.update("VENDOR", k, fields(&[("NAME", &renamed)])));
    let second = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(second.status, RunStatus::Succeeded, "{second:#?}");
    let ok = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    assert!(ok.all_match(), "{:?}", ok.tables);
    assert!(
        ok.tables[0].sums.iter().any(|s| s.column == "LEN(NAME)"),
        "{:?}",
        ok.tables
    );

    // Power BI gets the first run's rows back (the old name), and the store is told the table is
    // clean: only the text check can still see the difference.
    ml_connector::pipeline::replay::replay(
        &conn,
        first.run,
        Some("VENDOR"),
        false,
        &Events::default(),
    )
    .await
    .unwrap();
    let rows = w.table("Vendors").len() as u64;
    w.store
        .mark_reloaded("demo", "VENDOR", ml_store::RunId(second.run), rows, &[])
        .await
        .unwrap();
    let v = ml_connector::pipeline::verify::verify(&conn).await.unwrap();
    let t = &v.tables[0];
    assert_eq!(t.powerbi_rows, t.expected_rows, "{t:?}");
    assert!(
        t.sums
            .iter()
            .filter(|s| !s.column.starts_with("LEN("))
            .all(|s| s.matches()),
        "{t:?}"
    );
    let name = t.sums.iter().find(|s| s.column == "LEN(NAME)").unwrap();
    assert!(!name.matches(), "{t:?}");
    assert!(!v.all_match());
}
