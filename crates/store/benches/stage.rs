//! Staging throughput: 1,000,000 records (mirror + audit + outbox, append mode, pages of 2,000)
//! into SQLite in a temp dir. Prints records/s and the database size. Target: >= 100,000
//! records/s on one core in release.
//!
//! `cargo bench -p ml-store --bench stage`; env `ML_STORE_BENCH_RECORDS` changes the count
//! (e.g. 20000 for a quick sanity run in debug), `ML_STORE_BENCH_ORDER=modified` delivers the keys
//! scattered as a full pull's modified pass does (WHENMODIFIED order) instead of in key order, and
//! `ML_STORE_BENCH_PAGE` sets the records per staging transaction (2,000). "One core": run the built binary under
//! `taskset -c 1` (the pipeline and SQLite's worker thread then share that core).
//!
//! With `ML_STORE_BENCH_DATABASE_URL=postgres://...` it stages into a fresh PostgreSQL database
//! created beside the one named (and dropped afterwards) instead; the CPU figure then counts only
//! this process, not the server's.

use std::time::Instant;

use ml_store::*;
use sqlx::Connection as _;

mod common;
use common::{bytes_written, cpu_seconds, pages, record_count, report, sqlite_size};

fn main() {
    let total = record_count();
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
        let pages = pages(total);
        let started = Instant::now();
        let cpu_before = cpu_seconds();
        let written_before = bytes_written();
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
        // After the close: it checkpoints what the WAL still holds into the file (0 for PostgreSQL,
        // whose server does the writing).
        let written = bytes_written() - written_before;
        let size: u64 = match postgres {
            Some(pg) => pg.size_then_drop().await,
            None => sqlite_size(&path),
        };
        report("stage", staged, secs, cpu, size, written);
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
