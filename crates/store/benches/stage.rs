//! Staging throughput: 1,000,000 records (mirror + audit + outbox, append mode, pages of 2,000)
//! into SQLite in a temp dir. Prints records/s and the database size. Target: >= 100,000
//! records/s on one core in release.
//!
//! `cargo bench -p ml-store --bench stage`; env `ML_STORE_BENCH_RECORDS` changes the count
//! (e.g. 20000 for a quick sanity run in debug). "One core": run the built binary under
//! `taskset -c 1` (the pipeline and SQLite's worker thread then share that core).
//!
//! With `ML_STORE_BENCH_DATABASE_URL=postgres://...` it stages into a fresh PostgreSQL database
//! created beside the one named (and dropped afterwards) instead; the CPU figure then counts only
//! this process, not the server's.

use std::time::Instant;

use ml_store::*;
use sqlx::Connection as _;

const PAGE: usize = 2_000;

fn main() {
    let total: usize = std::env::var("ML_STORE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let postgres = match std::env::var("ML_STORE_BENCH_DATABASE_URL") {
            Ok(url) => Some(FreshPostgres::create(&url).await),
            Err(_) => None,
        };
        let location = match &postgres {
            Some(pg) => StoreLocation::Postgres(pg.url.clone()),
            None => StoreLocation::Sqlite(path.clone()),
        };
        let store = open(&location).await.expect("open");
        store.ensure_connection("bench").await.expect("connection");
        let run = store.begin_run("bench", "manual").await.expect("run");
        // Pages are built outside the timed region: the bench measures the store.
        let pages: Vec<Vec<StagedRecord>> = (0..total.div_ceil(PAGE))
            .map(|p| {
                (p * PAGE..((p + 1) * PAGE).min(total))
                    .map(|n| StagedRecord {
                        key: n.to_string(),
                        when_modified: Some(format!("2026-01-{:02}T10:00:00", n % 28 + 1)),
                        source_hash: format!("{:064x}", n as u128 * 0x9E37_79B9_7F4A_7C15),
                        row_json: format!(
                            "{{\"RECORDNO\":{n},\"BATCHNO\":{},\"ACCOUNTNO\":\"{}\",\"AMOUNT\":{}.{:02},\
                             \"DEPARTMENTID\":\"D{}\",\"LOCATIONID\":\"L{}\",\"ENTRY_DATE\":\"2026-01-{:02}T00:00:00\",\
                             \"MEMO\":\"Journal line {n}\"}}",
                            n / 10,
                            4000 + n % 300,
                            n % 100_000,
                            n % 100,
                            n % 40,
                            n % 12,
                            n % 28 + 1
                        ),
                    })
                    .collect()
            })
            .collect();
        let started = Instant::now();
        let cpu_before = cpu_seconds();
        let mut staged = 0u64;
        for (i, records) in pages.into_iter().enumerate() {
            let sum = store
                .stage_page(StagePage {
                    connection: "bench".into(),
                    run,
                    stream: "GLENTRY".into(),
                    mode: StageMode::Append,
                    records,
                    deletes: vec![],
                    failed: vec![],
                    pending_cursor: Some(CursorPos {
                        when_modified: "2026-01-28T10:00:00".into(),
                        recordno: i as i64,
                    }),
                })
                .await
                .expect("stage");
            staged += sum.inserted;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        store.close().await;
        let size: u64 = match postgres {
            Some(pg) => pg.size_then_drop().await,
            None => ["", "-wal"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
                .map(|m| m.len())
                .sum(),
        };
        println!(
            "stage: {staged} records in {secs:.2} s = {:.0} records/s; CPU {cpu:.2} s (all threads) = {:.0} records per CPU-second; \
             database {:.1} MiB ({:.0} bytes/record)",
            staged as f64 / secs,
            staged as f64 / cpu.max(0.01),
            size as f64 / (1024.0 * 1024.0),
            size as f64 / staged.max(1) as f64
        );
    });
}

/// A database of its own on the server `ML_STORE_BENCH_DATABASE_URL` points at.
struct FreshPostgres {
    admin: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    async fn create(admin: &str) -> Self {
        let name = format!("ml_store_bench_{}", std::process::id());
        let (base, _) = admin
            .rsplit_once('/')
            .expect("ML_STORE_BENCH_DATABASE_URL is postgres://user@host:port/database");
        let mut c = sqlx::PgConnection::connect(admin).await.expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .expect("create database");
        FreshPostgres {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The database's size in bytes; then drops it.
    async fn size_then_drop(self) -> u64 {
        let mut c = sqlx::PgConnection::connect(&self.admin)
            .await
            .expect("connect");
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(&self.name)
            .fetch_one(&mut c)
            .await
            .expect("size");
        sqlx::query(&format!("DROP DATABASE {}", self.name))
            .execute(&mut c)
            .await
            .expect("drop database");
        u64::try_from(size).unwrap_or(0)
    }
}

/// User + system CPU seconds of the whole process (every thread, SQLite's worker included), from
/// /proc/self/stat in USER_HZ ticks (1/100 s on Linux); 0 elsewhere. The wall-clock figure moves
/// with whatever else the machine runs; this one does not.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    tick(11) + tick(12)
}
