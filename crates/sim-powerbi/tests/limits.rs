//! Every push limit over real HTTP, with small limits and the simulator's manual clock (no sleeping).

mod common;

use std::time::Duration;

use common::{Harness, config, header, start};
use ml_sim_powerbi::{DEFAULT_WORKSPACE, SimConfig, SimLimits};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn with_limits(limits: SimLimits) -> SimConfig {
    // Tests advance the clock by up to an hour: keep the token valid throughout.
    SimConfig {
        limits,
        token_lifetime: Duration::from_secs(86_400),
        ..config()
    }
}

async fn assert_429(r: reqwest::Response, retry_after: u64, message: &str) {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&r, "retry-after"),
        Some(retry_after.to_string().as_str())
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["message"], message, "{b}");
}

const REQUESTS: &str = "You have exceeded the amount of requests allowed in the current time frame and further requests will fail.";

#[tokio::test]
async fn rows_per_post_and_body_size() {
    let h = start(with_limits(SimLimits {
        rows_per_post: 5,
        max_body_bytes: 400,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    assert_eq!(h.push(&ds, 0, 5).await.status(), StatusCode::OK);
    let r = h.push(&ds, 0, 6).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("6 rows"),
        "{b}"
    );
    let big = json!({"rows": [{"Memo": "m".repeat(500)}]});
    let r = h.post(&h.rows_url(&ds, "GL"), &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "RequestEntityTooLarge");
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn in_flight_limit_per_dataset() {
    let h = std::sync::Arc::new(start(config()).await);
    let ds = h.create_dataset("D", "None").await;
    h.sim.hold_row_posts(true);
    let mut tasks = Vec::new();
    for i in 0..5 {
        let h = h.clone();
        let ds = ds.clone();
        tasks.push(tokio::spawn(async move {
            h.push(&ds, i * 10, 1).await.status()
        }));
    }
    // Bounded wait on the real condition: all five are inside the simulator.
    for _ in 0..2000 {
        if h.sim.in_flight_posts(&ds) == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(h.sim.in_flight_posts(&ds), 5);
    let r = h.push(&ds, 100, 1).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), Some("1"));
    h.sim.hold_row_posts(false);
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(h.sim.in_flight_posts(&ds), 0);
    let stats = h.sim.stats();
    assert_eq!(stats.peak_in_flight_posts.get(&ds), Some(&6));
    assert_eq!(stats.throttled_by_reason.get("in_flight"), Some(&1));
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn posts_per_minute_sliding_window() {
    let h = start(with_limits(SimLimits {
        posts_per_minute: 3,
        minute: Duration::from_secs(60),
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    let other = h.create_dataset("E", "None").await;
    for i in 0..3 {
        assert_eq!(h.push(&ds, i, 1).await.status(), StatusCode::OK);
        h.sim.advance_clock(Duration::from_secs(10));
    }
    // Now t=30: the first POST (t=0) frees its slot at t=60.
    assert_429(h.push(&ds, 9, 1).await, 30, REQUESTS).await;
    // The budget is per dataset.
    assert_eq!(h.push(&other, 0, 1).await.status(), StatusCode::OK);
    h.sim.advance_clock(Duration::from_secs(29));
    assert_429(h.push(&ds, 9, 1).await, 1, REQUESTS).await;
    h.sim.advance_clock(Duration::from_secs(1));
    assert_eq!(h.push(&ds, 9, 1).await.status(), StatusCode::OK);
    let stats = h.sim.stats();
    assert_eq!(stats.throttled_by_reason.get("posts_per_minute"), Some(&2));
    // Within one minute window: t=0..50 saw 3 accepted + 2 refused (the t=60 one pushes t=0 out).
    assert_eq!(stats.max_posts_in_minute_window.get(&ds), Some(&5));
}

#[tokio::test]
async fn rows_per_hour_budget() {
    let h = start(with_limits(SimLimits {
        rows_per_hour: 10,
        hour: Duration::from_secs(3600),
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    assert_eq!(h.push(&ds, 0, 6).await.status(), StatusCode::OK);
    h.sim.advance_clock(Duration::from_secs(600));
    assert_eq!(h.push(&ds, 6, 4).await.status(), StatusCode::OK);
    assert_429(
        h.push(&ds, 10, 1).await,
        3000,
        "Maximum number of rows exceeded in time window. Please retry later",
    )
    .await;
    h.sim.advance_clock(Duration::from_secs(3000));
    assert_eq!(h.push(&ds, 10, 6).await.status(), StatusCode::OK);
    assert_eq!(h.sim.stats().rows_accepted.get(&ds), Some(&16));
}

#[tokio::test]
async fn large_table_posts_per_hour() {
    let h = start(with_limits(SimLimits {
        large_table_rows: 5,
        large_table_posts_per_hour: 2,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    assert_eq!(h.push(&ds, 0, 5).await.status(), StatusCode::OK);
    // The table now holds 5 rows: one POST already counts in this hour, one more fits.
    assert_eq!(h.push(&ds, 5, 1).await.status(), StatusCode::OK);
    h.sim.advance_clock(Duration::from_secs(100));
    assert_429(h.push(&ds, 6, 1).await, 3500, REQUESTS).await;
    // Clearing the table lifts the large-table rule.
    assert_eq!(
        h.delete(&h.rows_url(&ds, "GL")).await.status(),
        StatusCode::OK
    );
    assert_eq!(h.push(&ds, 6, 1).await.status(), StatusCode::OK);
    assert_eq!(
        h.sim
            .stats()
            .throttled_by_reason
            .get("large_table_posts_per_hour"),
        Some(&1)
    );
}

#[tokio::test]
async fn basic_fifo_keeps_newest_rows() {
    let h = start(with_limits(SimLimits {
        fifo_max_rows: 10,
        fifo_high_water: 12,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "basicFIFO").await;
    assert_eq!(h.push(&ds, 0, 12).await.status(), StatusCode::OK);
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        12
    );
    assert_eq!(h.push(&ds, 12, 1).await.status(), StatusCode::OK);
    let ids: Vec<i64> = ids(&h, &ds);
    assert_eq!(ids, (3..13).collect::<Vec<_>>());
}

fn ids(h: &Harness, ds: &str) -> Vec<i64> {
    h.sim
        .table_rows(DEFAULT_WORKSPACE, ds, "GL")
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn retention_none_caps_table_size() {
    let h = start(with_limits(SimLimits {
        none_max_rows: 5,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    assert_eq!(h.push(&ds, 0, 4).await.status(), StatusCode::OK);
    let r = h.push(&ds, 4, 2).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.push(&ds, 4, 1).await.status(), StatusCode::OK);
    assert_eq!(ids(&h, &ds), vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn enforce_off_accepts_everything() {
    let h = start(with_limits(SimLimits {
        enforce: false,
        rows_per_post: 2,
        posts_per_minute: 1,
        rows_per_hour: 3,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    for i in 0..3 {
        assert_eq!(h.push(&ds, i * 5, 5).await.status(), StatusCode::OK);
    }
    assert_eq!(ids(&h, &ds).len(), 15);
    assert_eq!(h.sim.stats().throttled_429, 0);
}

#[tokio::test]
async fn execute_queries_per_minute() {
    let h = start(with_limits(SimLimits {
        queries_per_minute: 2,
        ..SimLimits::default()
    }))
    .await;
    let ds = h.create_dataset("D", "None").await;
    let q = "EVALUATE ROW(\"n\", COUNTROWS('GL'))";
    assert_eq!(h.query(&ds, q).await.0, StatusCode::OK);
    h.sim.advance_clock(Duration::from_secs(15));
    assert_eq!(h.query(&ds, q).await.0, StatusCode::OK);
    let (s, _) = h.query(&ds, q).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    h.sim.advance_clock(Duration::from_secs(45));
    assert_eq!(h.query(&ds, q).await.0, StatusCode::OK);
}
