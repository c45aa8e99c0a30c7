//! Push throughput and memory of the simulator: N rows (default 1,000,000; `ML_BENCH_ROWS` to change) in
//! 10,000-row POSTs from 5 concurrent tasks over real HTTP with limits off, then read-back and DAX timings.
//! Prints its figures; run with `cargo bench -p ml-sim-powerbi --bench push` (release) for meaningful numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ml_sim_powerbi::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE_ID, SimConfig,
    SimLimits, Simulator,
};
use serde_json::{Value, json};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("ML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch = 10_000.min(total.max(1));
    let sim = Simulator::start(SimConfig {
        limits: SimLimits {
            enforce: false,
            ..SimLimits::default()
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let http = reqwest::Client::new();
    let token: Value = http
        .post(sim.token_url(DEFAULT_TENANT_ID))
        .form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://analysis.windows.net/powerbi/api/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let base = format!("{}/v1.0/myorg/groups/{DEFAULT_WORKSPACE_ID}", sim.api_url());
    let created: Value = http
        .post(format!("{base}/datasets"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "Bench", "tables": [{"name": "GL", "columns": [
            {"name": "RecordNo", "dataType": "Int64"}, {"name": "Amount", "dataType": "Decimal"},
            {"name": "Posted", "dataType": "DateTime"}, {"name": "Account", "dataType": "String"},
            {"name": "Memo", "dataType": "String"}]}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ds = created["id"].as_str().unwrap().to_owned();
    let rows_url = format!("{base}/datasets/{ds}/tables/GL/rows");

    // Bodies are built on demand inside the senders, so the RSS growth below is the simulator's storage
    // (plus the in-flight buffers), not the benchmark's own data.
    let body = move |b: usize| -> String {
        let rows: Vec<String> = (b * batch..((b + 1) * batch).min(total))
            .map(|i| {
                format!(
                    r#"{{"RecordNo":{i},"Amount":{}.{:02},"Posted":"2024-{:02}-{:02}T00:00:00Z","Account":"{}","Memo":"Invoice {i} for services"}}"#,
                    i % 100_000,
                    i % 100,
                    i % 12 + 1,
                    i % 28 + 1,
                    4000 + i % 500
                )
            })
            .collect();
        format!(r#"{{"rows":[{}]}}"#, rows.join(","))
    };
    let batches = total.div_ceil(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let sent_bytes = Arc::new(AtomicUsize::new(0));
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (http, token, url) = (http.clone(), token.clone(), rows_url.clone());
        let (next, sent_bytes) = (next.clone(), sent_bytes.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let body = body(b);
                sent_bytes.fetch_add(body.len(), Ordering::Relaxed);
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let body_bytes = sent_bytes.load(Ordering::Relaxed);
    let push = started.elapsed();
    let rss_after = rss_kib();
    println!(
        "push: {total} rows, {:.1} MB of JSON in {:.2?} → {:.0} rows/s",
        body_bytes as f64 / 1e6,
        push,
        total as f64 / push.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        println!(
            "memory: RSS grew {:.1} MB ({:.0} bytes/row; includes allocator slack)",
            (b.saturating_sub(a)) as f64 / 1024.0,
            (b.saturating_sub(a)) as f64 * 1024.0 / total as f64
        );
    }
    let t = Instant::now();
    let rows = sim.table_rows(DEFAULT_WORKSPACE_ID, &ds, "GL").unwrap();
    assert_eq!(rows.len(), total);
    println!(
        "table_rows: {} rows parsed back in {:.2?}",
        rows.len(),
        t.elapsed()
    );
    drop(rows);
    for dax in [
        "EVALUATE ROW(\"n\", COUNTROWS('GL'))",
        "EVALUATE ROW(\"n\", COUNTROWS('GL'))",
        "EVALUATE ROW(\"s\", SUM('GL'[Amount]))",
    ] {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/datasets/{ds}/executeQueries"))
            .bearer_auth(&token)
            .json(&json!({"queries": [{"query": dax}]}))
            .send()
            .await
            .unwrap();
        let text = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
        println!(
            "executeQueries {dax}: {:.2?} → {}",
            t.elapsed(),
            text.trim_start_matches('\u{FEFF}')
        );
    }
    sim.shutdown().await;
}
