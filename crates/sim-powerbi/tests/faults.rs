//! Fault injection over real HTTP: the ambiguous reset (rows stored, no answer), reset before apply,
//! 5xx, injected 429, delays, the admin endpoints and GET /stats.

mod common;

use common::{config, header, start};
use ml_sim_powerbi::{DEFAULT_WORKSPACE, FaultKind, FaultPlan, Operation, Stats, Trigger};
use reqwest::StatusCode;
use serde_json::json;

fn on_post_rows(n: u64, fault: FaultKind) -> FaultPlan {
    FaultPlan::none().with(
        Some(Operation::PostRows),
        Trigger::Nth { requests: vec![n] },
        fault,
    )
}

#[tokio::test]
async fn reset_after_apply_stores_rows_but_drops_the_answer() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    h.sim
        .set_faults(on_post_rows(2, FaultKind::ResetAfterApply));
    assert_eq!(h.push(&ds, 0, 3).await.status(), StatusCode::OK);
    let err = h
        .http
        .post(h.rows_url(&ds, "GL"))
        .bearer_auth(&h.token)
        .json(&json!({"rows": [{"Id": 3}, {"Id": 4}]}))
        .send()
        .await
        .expect_err("the connection must drop without an answer");
    assert!(!err.is_status(), "{err}");
    // The rows ARE stored: the client cannot tell this from a reset before apply.
    let rows = h.sim.table_rows(DEFAULT_WORKSPACE, &ds, "GL").unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4]["Id"], 4);
    // The simulator keeps serving after the drop.
    assert_eq!(h.push(&ds, 5, 1).await.status(), StatusCode::OK);
    assert_eq!(
        h.sim.stats().faults_injected.get("reset_after_apply"),
        Some(&1)
    );
}

#[tokio::test]
async fn reset_before_apply_stores_nothing() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    h.sim
        .set_faults(on_post_rows(1, FaultKind::ResetBeforeApply));
    let err = h.push_err(&ds).await;
    assert!(!err.is_status(), "{err}");
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        h.sim.in_flight_posts(&ds),
        0,
        "an aborted request leaves the in-flight count"
    );
}

#[tokio::test]
async fn status_throttle_and_delay_faults() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    h.sim.set_faults(
        FaultPlan::none()
            .with(
                Some(Operation::PostRows),
                Trigger::Nth { requests: vec![1] },
                FaultKind::Status { status: 503 },
            )
            .with(
                Some(Operation::PostRows),
                Trigger::Nth { requests: vec![2] },
                FaultKind::Status { status: 500 },
            )
            .with(
                Some(Operation::PostRows),
                Trigger::Nth { requests: vec![3] },
                FaultKind::Throttle {
                    retry_after_secs: 7,
                },
            )
            .with(
                Some(Operation::PostRows),
                Trigger::Nth { requests: vec![4] },
                FaultKind::Delay { millis: 1 },
            )
            .with(
                Some(Operation::GetDatasets),
                Trigger::Always,
                FaultKind::Status { status: 502 },
            ),
    );
    let r = h.push(&ds, 0, 1).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = h.push(&ds, 0, 1).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let r = h.push(&ds, 0, 1).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), Some("7"));
    assert_eq!(h.push(&ds, 0, 1).await.status(), StatusCode::OK);
    assert_eq!(
        h.get(&h.group("/datasets")).await.status(),
        StatusCode::BAD_GATEWAY
    );
    // Only the delayed request applied its rows.
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        1
    );
    let stats = h.sim.stats();
    assert_eq!(stats.throttled_by_reason.get("injected"), Some(&1));
    assert_eq!(stats.requests_by_operation.get("post_rows"), Some(&4));
}

#[tokio::test]
async fn probabilistic_faults_are_seeded() {
    let outcomes = || async {
        let h = start(config()).await;
        let ds = h.create_dataset("D", "None").await;
        h.sim.set_faults(
            FaultPlan::none()
                .with(
                    Some(Operation::PostRows),
                    Trigger::Probability { p: 0.5 },
                    FaultKind::Status { status: 503 },
                )
                .seeded(11),
        );
        let mut v = Vec::new();
        for i in 0..20 {
            v.push(h.push(&ds, i, 1).await.status().as_u16());
        }
        v
    };
    let a = outcomes().await;
    assert_eq!(a, outcomes().await);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn admin_faults_and_stats_over_http() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    let plan = json!({"rules": [{"operation": "post_rows", "trigger": {"type": "first_n", "n": 1},
        "fault": {"type": "status", "status": 502}}]});
    let r = h
        .http
        .post(format!("{}/admin/faults", h.sim.api_url()))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(h.push(&ds, 0, 1).await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(h.push(&ds, 0, 2).await.status(), StatusCode::OK);
    let r = h
        .http
        .post(format!("{}/admin/faults", h.sim.api_url()))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let stats: Stats = h
        .http
        .get(format!("{}/stats", h.sim.api_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.requests_by_operation.get("post_rows"), Some(&2));
    assert_eq!(stats.requests_by_operation.get("post_dataset"), Some(&1));
    assert_eq!(stats.rows_accepted.get(&ds), Some(&2));
    assert_eq!(
        stats.rows_stored.get(&format!("{DEFAULT_WORKSPACE}/D/GL")),
        Some(&2)
    );
    assert_eq!(stats.peak_in_flight_posts.get(&ds), Some(&1));
    assert_eq!(stats.faults_injected.get("status"), Some(&1));
    let r = h
        .http
        .get(format!(
            "{}/admin/rows/{DEFAULT_WORKSPACE}/D/Nope",
            h.sim.api_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn token_endpoint_faults_and_shutdown() {
    let h = start(config()).await;
    h.sim.set_faults(FaultPlan::none().with(
        Some(Operation::Token),
        Trigger::Always,
        FaultKind::ResetAfterApply,
    ));
    let err = h
        .http
        .post(h.sim.token_url(ml_sim_powerbi::DEFAULT_TENANT_ID))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect_err("dropped");
    assert!(!err.is_status());
    let url = h.sim.api_url();
    h.sim.shutdown().await;
    assert!(h.http.get(format!("{url}/stats")).send().await.is_err());
}

trait PushErr {
    async fn push_err(&self, ds: &str) -> reqwest::Error;
}

impl PushErr for common::Harness {
    async fn push_err(&self, ds: &str) -> reqwest::Error {
        self.http
            .post(self.rows_url(ds, "GL"))
            .bearer_auth(&self.token)
            .json(&json!({"rows": [{"Id": 1}]}))
            .send()
            .await
            .expect_err("the connection must drop without an answer")
    }
}
