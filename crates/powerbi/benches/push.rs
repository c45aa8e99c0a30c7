//! Push benchmarks (harness = false; prints its figures).
//!
//! * `encode`: rows/s encoded and batched, no network (12-column row).
//! * `sim`: rows/s pushed to the in-process simulator with limits off and no latency.
//! * `real-limits` (only when asked: `ML_BENCH_REAL_LIMITS=1` or argument `real-limits`): 1,000,000 rows pushed
//!   with the service's real limits, printing wall time against the 1M rows/hour ceiling (about one hour).
//!
//! Sizes: `ML_BENCH_ROWS` (default 1,000,000 for encode, 500,000 for sim).
//! Run: `cargo bench -p ml-powerbi --bench push` (release) or with `-- real-limits`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use futures::StreamExt;
use ml_powerbi::{
    Batch, BatchOutcome, Batcher, ClientCredential, Cloud, Column, DataType, DatasetSchema,
    PowerBiClient, PowerBiSettings, PushEvent, PushLimits, Pusher, Retention, RowEncoder,
    TableSchema, TableTarget, Value,
};
use ml_sim_powerbi as sim;
use rust_decimal::Decimal;

fn table() -> TableSchema {
    let cols = [
        ("RecordNo", DataType::Int64),
        ("BatchNo", DataType::Int64),
        ("Amount", DataType::Decimal),
        ("TrxAmount", DataType::Decimal),
        ("Rate", DataType::Double),
        ("Posted", DataType::Boolean),
        ("EntryDate", DataType::DateTime),
        ("WhenModified", DataType::DateTime),
        ("AccountNo", DataType::String),
        ("Department", DataType::String),
        ("Vendor", DataType::String),
        ("Memo", DataType::String),
    ];
    TableSchema::new(
        "GLEntry",
        cols.iter().map(|(n, t)| Column::new(*n, *t)).collect(),
    )
}

fn row(i: i64) -> Vec<Value> {
    let d = NaiveDate::from_ymd_opt(2024, 1 + (i % 12) as u32, 1 + (i % 28) as u32).unwrap();
    vec![
        Value::Int64(i),
        Value::Int64(i / 50),
        Value::Decimal(Decimal::new(i * 12_345 % 10_000_000, 2)),
        Value::Decimal(Decimal::new(-(i % 99_999), 2)),
        Value::Double(1.0 + (i % 1000) as f64 / 1000.0),
        Value::Boolean(i % 2 == 0),
        Value::DateTime(d.and_hms_opt(0, 0, 0).unwrap()),
        Value::DateTime(d.and_hms_opt((i % 24) as u32, (i % 60) as u32, 7).unwrap()),
        Value::String(format!("{}", 1000 + i % 400)),
        Value::String("Finance".into()),
        Value::String(format!("V-{:05}", i % 3000)),
        Value::String(format!("Accrual for period {} \"adj\"", i % 12)),
    ]
}

fn rows_env(default: i64) -> i64 {
    std::env::var("ML_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rows are generated outside the timed section; only encoding and batching are measured.
fn encode_and_batch(
    t: &TableSchema,
    values: &[Vec<Value>],
    limits: &PushLimits,
) -> (Vec<Batch>, Duration) {
    let enc = RowEncoder::new(t);
    let mut b = Batcher::new(limits);
    let mut out = Vec::new();
    let mut json = String::with_capacity(512);
    let mut truncated = Vec::new();
    let start = Instant::now();
    for v in values {
        json.clear();
        enc.encode_into(v, &mut json, &mut truncated).unwrap();
        out.extend(b.push(&json).unwrap());
    }
    out.extend(b.finish());
    (out, start.elapsed())
}

fn bench_encode() {
    let n = rows_env(1_000_000);
    let t = table();
    let values: Vec<Vec<Value>> = (0..n).map(row).collect();
    let (batches, took) = encode_and_batch(&t, &values, &PushLimits::default());
    let bytes: usize = batches.iter().map(Batch::byte_len).sum();
    println!(
        "encode+batch: {n} rows (12 columns) in {:.3} s = {:.0} rows/s, {} batches, {:.1} MB (target >= 500,000 rows/s in release)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        batches.len(),
        bytes as f64 / 1e6
    );
}

fn settings(s: &sim::Simulator) -> PowerBiSettings {
    let mut st = PowerBiSettings::new(
        Cloud::Public,
        sim::DEFAULT_TENANT_ID,
        sim::DEFAULT_CLIENT_ID,
        ClientCredential::Secret(sim::DEFAULT_CLIENT_SECRET.to_string().into()),
    );
    st.authority_url = Some(s.authority_url().parse().unwrap());
    st.api_url = Some(s.api_url().parse().unwrap());
    st.allow_loopback_http = true;
    st
}

async fn push(
    n: i64,
    sim_limits: sim::SimLimits,
    limits: PushLimits,
    concurrency: usize,
) -> (Duration, usize, u32) {
    let s = sim::Simulator::start(sim::SimConfig {
        limits: sim_limits,
        ..sim::SimConfig::default()
    })
    .await
    .unwrap();
    let c = PowerBiClient::new(settings(&s)).unwrap();
    let t = table();
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    let ds = c
        .create_push_dataset(
            &g.id,
            &DatasetSchema {
                name: "Bench".into(),
                tables: vec![t.clone()],
                relationships: vec![],
            },
            Retention::None,
        )
        .await
        .unwrap();
    let target = TableTarget {
        group_id: g.id,
        dataset_id: ds.id.clone(),
        table: t.name.clone(),
    };
    let values: Vec<Vec<Value>> = (0..n).map(row).collect();
    let pusher = Pusher::new(c, limits.clone());
    let mut events = pusher.events();
    let printer = tokio::spawn(async move {
        let mut last = Instant::now() - Duration::from_secs(60);
        while let Ok(e) = events.recv().await {
            if let PushEvent::Waiting {
                dataset,
                reason,
                wait,
            } = e
                && last.elapsed() > Duration::from_secs(30)
            {
                println!(
                    "  waiting {:.0} s for the {reason} of dataset {dataset}",
                    wait.as_secs_f64()
                );
                last = Instant::now();
            }
        }
    });
    let start = Instant::now();
    let (batches, _) = encode_and_batch(&t, &values, &limits);
    drop(values);
    let reports: Vec<_> = futures::stream::iter(batches)
        .map(|b| {
            // Rows ahead of this batch in push order: what the table holds when it lands (large-table POST cap).
            let before = b.row_range().start;
            pusher.send(&target, b, before)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = start.elapsed();
    printer.abort();
    let accepted = reports
        .iter()
        .filter(|r| matches!(r.outcome, BatchOutcome::Accepted))
        .map(|r| r.rows)
        .sum();
    let throttled = reports.iter().map(|r| r.throttled).sum();
    s.shutdown().await;
    (took, accepted, throttled)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let real = args.iter().any(|a| a == "real-limits")
        || std::env::var("ML_BENCH_REAL_LIMITS").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if real {
        let n = rows_env(1_000_000);
        println!(
            "real limits: pushing {n} rows at 10,000 rows/POST, 120 POSTs/min, 5 in flight, 1,000,000 rows/hour"
        );
        let (took, accepted, throttled) =
            rt.block_on(push(n, sim::SimLimits::default(), PushLimits::default(), 8));
        // Lower bound set by the limits: 120 POSTs per minute, and each further 1,000,000 rows one more hour (the
        // first million of a rolling hour may go as fast as the POST rate allows).
        let posts = (n as f64 / 10_000.0).ceil();
        let post_bound_min = ((posts - 1.0).max(0.0) / 120.0).floor();
        let hour_bound_min = 60.0 * ((n as f64 - 1.0) / 1_000_000.0).floor().max(0.0);
        println!(
            "real limits: {accepted} rows accepted in {:.1} min = {:.0} rows/hour; limits allow it in no less than {:.0} min \
             (ceiling 1,000,000 rows/hour); {throttled} x 429",
            took.as_secs_f64() / 60.0,
            accepted as f64 / took.as_secs_f64() * 3600.0,
            post_bound_min.max(hour_bound_min)
        );
        return;
    }
    bench_encode();
    let n = rows_env(500_000);
    let off = sim::SimLimits {
        enforce: false,
        ..sim::SimLimits::default()
    };
    let (took, accepted, throttled) = rt.block_on(push(n, off, PushLimits::unlimited(), 8));
    println!(
        "push to in-process simulator (limits off, no latency): {accepted}/{n} rows in {:.3} s = {:.0} rows/s, {throttled} x 429 (target >= 500,000 rows/s in release)",
        took.as_secs_f64(),
        accepted as f64 / took.as_secs_f64()
    );
}
