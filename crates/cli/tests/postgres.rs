//! The whole sync with its state in PostgreSQL (the scaled-out set-up): a full and an incremental run
//! against the simulators, every table equal to Intacct. Needs `ML_CONNECTOR_TEST_DATABASE_URL`; skipped
//! with a notice without it, and failing instead when `CI=true`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{World, tiny_intacct};
use ml_connector::pipeline::{Events, RunOptions, RunStatus};

const PG_ENV: &str = "ML_CONNECTOR_TEST_DATABASE_URL";

/// A fresh database for this test; dropped at the end.
async fn fresh_database() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {PG_ENV} is unset: the PostgreSQL sync test cannot run"
        );
        println!("skipped: the PostgreSQL sync test needs {PG_ENV}");
        return None;
    };
    let name = format!("mlconn_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    Some((admin_url, name, url.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_with_its_state_in_postgresql_keeps_tables_equal_to_intacct() {
    let Some((admin_url, name, url)) = fresh_database().await else {
        return;
    };
    let mut w = World::start(tiny_intacct()).await;
    w.store = ml_store::open(&ml_store::StoreLocation::Postgres(url))
        .await
        .unwrap();
    let conn = w.connection().await;
    let opts = RunOptions {
        trigger: "test".into(),
        ..Default::default()
    };
    let report = conn.run(&opts, &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    let offset = ml_connector::pipeline::transform::parse_gmt_offset(
        &conn.intacct.user_formatting().await.unwrap().gmt_offset,
    )
    .unwrap();
    w.assert_tables_equal_source(offset);

    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendors = w.intacct.records("VENDOR");
    w.intacct
        .delete("VENDOR", vendors[0]["RECORDNO"].parse().unwrap());
    w.intacct.update(
        "VENDOR",
        vendors[1]["RECORDNO"].parse().unwrap(),
        [("NAME".to_string(), "Changed in PostgreSQL test".to_string())]
            .into_iter()
            .collect(),
    );
    let report = conn.run(&opts, &Events::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    w.assert_tables_equal_source(offset);
    assert!(w.store.audit_verify("demo").await.unwrap().ok);

    let store: Arc<dyn ml_store::Store> = w.store.clone();
    store.close().await;
    drop(conn);
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
