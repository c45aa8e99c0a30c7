//! Datasets that grow (issue 17): a stream added to a connection whose push dataset already exists
//! cannot get its table (Power BI does not add tables to a push dataset), so the sync names
//! `ml-connector dataset migrate`, which makes a new dataset with every table, fills it from the
//! mirror, rebinds the reports and lists the tiles to re-pin, and survives being stopped halfway.
//! Also: a `dataset` renamed in the configuration is honoured.

mod common;

use std::collections::BTreeMap;

use common::{World, tiny_intacct};
use ml_connector::destination::powerbi::migrate::{MigrateOutcome, migrate};
use ml_connector::pipeline::{Connection, Events, RunOptions, RunStatus};
use ml_sim_powerbi::DEFAULT_WORKSPACE;

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

async fn user_offset(conn: &Connection) -> chrono::FixedOffset {
    let f = conn.intacct.user_formatting().await.unwrap();
    ml_connector::pipeline::transform::parse_gmt_offset(&f.gmt_offset).unwrap()
}

fn sorted(rows: Option<Vec<serde_json::Map<String, serde_json::Value>>>) -> Vec<String> {
    let mut out: Vec<String> = rows
        .expect("the table exists")
        .into_iter()
        .map(|r| serde_json::Value::Object(r).to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn an_added_stream_is_migrated_to_a_new_dataset_and_the_reports_follow() {
    let mut w = World::start(tiny_intacct()).await;
    let all = w.cfg.streams.clone();
    w.cfg
        .streams
        .retain(|s| s.object == "VENDOR" || s.object == "GLACCOUNT");
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let datasets = w.powerbi.datasets(DEFAULT_WORKSPACE).unwrap();
    assert_eq!(datasets.len(), 1);
    let old = datasets[0].id.clone();
    let report_id = w
        .powerbi
        .add_report(DEFAULT_WORKSPACE, "Payables", &old)
        .unwrap();
    let dashboard = w
        .powerbi
        .add_dashboard(DEFAULT_WORKSPACE, "Finance")
        .unwrap();
    let tile = w
        .powerbi
        .add_tile(
            DEFAULT_WORKSPACE,
            &dashboard,
            "Vendors by balance",
            &old,
            Some(&report_id),
        )
        .unwrap();
    let old_tables: BTreeMap<&str, Vec<String>> = ["Vendors", "GLAccounts"]
        .into_iter()
        .map(|t| (t, sorted(w.powerbi.table_rows(DEFAULT_WORKSPACE, &old, t))))
        .collect();

    // A third stream: the dataset cannot gain its table, and the sync says what to run.
    let department = all.iter().find(|s| s.object == "DEPARTMENT").unwrap();
    w.cfg.streams.push(department.clone());
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed, "{report:#?}");
    let err = report.setup_error.clone().unwrap_or_default();
    assert!(
        err.contains("ml-connector dataset migrate --connection demo")
            && err.contains(&department.table)
            && err.contains("ItemNotFound"),
        "{err}"
    );

    // The dry run says what would happen and changes nothing.
    let dry = migrate(&conn, &opts(), true, &Events::default())
        .await
        .unwrap();
    assert_eq!(dry.outcome, MigrateOutcome::DryRun);
    assert_eq!(dry.tables.len(), 3);
    assert!(
        dry.tables
            .iter()
            .any(|t| t.table == department.table && !t.in_old_dataset)
    );
    assert_eq!(dry.reports.len(), 1);
    assert_eq!(dry.reports[0].id, report_id);
    assert_eq!(dry.tiles.len(), 1);
    assert_eq!(w.powerbi.datasets(DEFAULT_WORKSPACE).unwrap().len(), 1);
    assert!(w.store.dataset_migration("demo").await.unwrap().is_none());

    // Stopped right after the new dataset was created (as by Ctrl-C): not finished, reports stay.
    let stopped = opts();
    stopped.cancel.cancel();
    let first = migrate(&conn, &stopped, false, &Events::default())
        .await
        .unwrap();
    assert!(
        matches!(first.outcome, MigrateOutcome::Incomplete(_)),
        "{:?}",
        first.outcome
    );
    let new = first
        .new_dataset_id
        .clone()
        .expect("the new dataset exists");
    assert_ne!(new, old);
    assert_eq!(
        w.powerbi.reports(DEFAULT_WORKSPACE).unwrap()[0].dataset_id,
        old
    );

    // Run again: the same new dataset is filled (no third one), the report follows it.
    let done = migrate(&conn, &opts(), false, &Events::default())
        .await
        .unwrap();
    assert_eq!(done.outcome, MigrateOutcome::Done, "{done:#?}");
    assert!(done.resumed);
    assert_eq!(done.new_dataset_id.as_deref(), Some(new.as_str()));
    let datasets = w.powerbi.datasets(DEFAULT_WORKSPACE).unwrap();
    assert_eq!(datasets.len(), 2, "{datasets:#?}");
    let tables: Vec<&str> = datasets[1].tables.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(tables, ["Vendors", "GLAccounts", department.table.as_str()]);
    let offset = user_offset(&conn).await;
    for s in &w.cfg.streams {
        let rows = w
            .powerbi
            .table_rows(DEFAULT_WORKSPACE, &new, &s.table)
            .unwrap();
        let mirror = w.store.mirror_count("demo", &s.object).await.unwrap();
        assert!(mirror > 0, "{}: the mirror is empty", s.object);
        assert_eq!(rows.len() as u64, mirror, "{}", s.table);
        common::assert_rows_equal(
            &s.table,
            &w.intacct.records(&s.object),
            &rows,
            offset,
            s.mode,
        );
    }
    assert_eq!(
        w.powerbi.reports(DEFAULT_WORKSPACE).unwrap()[0].dataset_id,
        new
    );
    assert_eq!(done.reports.len(), 1);
    assert!(done.not_rebound.is_empty());
    assert_eq!(done.tiles.len(), 1);
    assert_eq!(done.tiles[0].tile_id, tile);
    assert!(w.store.dataset_migration("demo").await.unwrap().is_none());
    // The old dataset is as it was, and kept.
    for (t, rows) in &old_tables {
        assert_eq!(
            &sorted(w.powerbi.table_rows(DEFAULT_WORKSPACE, &old, t)),
            rows,
            "{t}"
        );
    }
    assert!(
        w.powerbi
            .table_rows(DEFAULT_WORKSPACE, &old, &department.table)
            .is_none()
    );

    // Nothing left to migrate; the next sync goes to the new dataset.
    let again = migrate(&conn, &opts(), false, &Events::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, MigrateOutcome::NothingToDo);
    let vendor: u64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    w.intacct
        .advance_clock(std::time::Duration::from_secs(3600));
    assert!(
        w.intacct.update(
            "VENDOR",
            vendor,
            [(
                "NAME".to_string(),
                "Renamed after the migration".to_string()
            )]
            .into()
        )
    );
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let rows = w
        .powerbi
        .table_rows(DEFAULT_WORKSPACE, &new, "Vendors")
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r["NAME"] == "Renamed after the migration")
    );
    assert_eq!(
        sorted(w.powerbi.table_rows(DEFAULT_WORKSPACE, &old, "Vendors")),
        old_tables["Vendors"]
    );
}

/// A `dataset` renamed in the configuration is not silently ignored: the dataset of the new name
/// is created and filled; the old one is left as it was.
#[tokio::test]
async fn a_renamed_dataset_is_created_and_filled() {
    let mut w = World::start(tiny_intacct()).await;
    w.cfg
        .streams
        .retain(|s| s.object == "VENDOR" || s.object == "GLACCOUNT");
    let conn = w.connection().await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let old = w.powerbi.datasets(DEFAULT_WORKSPACE).unwrap()[0].id.clone();
    let before = sorted(w.powerbi.table_rows(DEFAULT_WORKSPACE, &old, "Vendors"));

    w.cfg.powerbi.dataset = "Sage Intacct (finance)".into();
    let conn = w.connection().await;
    // A run of one stream still gives the new dataset every configured table.
    let one = RunOptions {
        streams: vec!["VENDOR".into()],
        ..opts()
    };
    let report = conn.run(&one, &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let datasets = w.powerbi.datasets(DEFAULT_WORKSPACE).unwrap();
    assert_eq!(datasets.len(), 2);
    assert_eq!(datasets[1].name, "Sage Intacct (finance)");
    let tables: Vec<&str> = datasets[1].tables.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(tables, ["Vendors", "GLAccounts"]);
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let offset = user_offset(&conn).await;
    for s in &w.cfg.streams {
        let rows = w
            .powerbi
            .table_rows(DEFAULT_WORKSPACE, &datasets[1].id, &s.table)
            .unwrap();
        common::assert_rows_equal(
            &s.table,
            &w.intacct.records(&s.object),
            &rows,
            offset,
            s.mode,
        );
    }
    assert_eq!(
        sorted(w.powerbi.table_rows(DEFAULT_WORKSPACE, &old, "Vendors")),
        before
    );
}
