//! Test databases: a temp-dir SQLite file or a fresh PostgreSQL database per test.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use ml_store::{Clock, Store, StoreLocation};

/// A clock tests move by hand.
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(TestClock(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        )))
    }
    pub fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        db_name: String,
        url: String,
    },
}

pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub clock: Arc<TestClock>,
    pub backend: Backend,
}

pub const PG_ENV: &str = "ML_CONNECTOR_TEST_DATABASE_URL";

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("state.db");
        let clock = TestClock::new();
        let store = ml_store::open_with_clock(&StoreLocation::Sqlite(path.clone()), clock.clone())
            .await
            .unwrap();
        TestDb {
            store,
            clock,
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    /// `None` (after printing why) when PostgreSQL is not configured; panics under CI=true.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var(PG_ENV) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but {PG_ENV} is unset: the PostgreSQL conformance tests cannot run"
                );
            }
            println!("skipped: PostgreSQL tests need {PG_ENV}");
            return None;
        };
        let db_name = format!("mlstore_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE \"{db_name}\""))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = with_database(&admin_url, &db_name);
        let clock = TestClock::new();
        let store = ml_store::open_with_clock(&StoreLocation::Postgres(url.clone()), clock.clone())
            .await
            .unwrap();
        Some(TestDb {
            store,
            clock,
            backend: Backend::Postgres {
                admin_url,
                db_name,
                url,
            },
        })
    }

    /// Runs raw SQL (one or more statements) behind the store's back (tampering tests).
    pub async fn exec(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres { url, .. } => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    /// Everything the database holds, as bytes: the SQLite files (db, -wal, -shm) or every
    /// row of every PostgreSQL table rendered as text.
    pub async fn dump(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut out = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", path.display()));
                    if let Ok(b) = std::fs::read(&p) {
                        out.extend(b);
                    }
                }
                out
            }
            Backend::Postgres { url, .. } => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(&pool)
                .await
                .unwrap();
                let mut out = Vec::new();
                for t in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT t::text FROM \"{t}\" t"))
                            .fetch_all(&pool)
                            .await
                            .unwrap();
                    for r in rows {
                        out.extend(r.into_bytes());
                        out.push(b'\n');
                    }
                }
                pool.close().await;
                out
            }
        }
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Backend::Postgres {
            admin_url, db_name, ..
        } = &self.backend
        {
            let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
            sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
            ))
            .execute(&admin)
            .await
            .unwrap();
            admin.close().await;
        }
    }
}

/// Runs `body` against `db`, then drops the database even when the body panicked.
pub async fn run<F, Fut>(db: TestDb, body: F)
where
    F: FnOnce(Arc<TestDb>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(db);
    let result = tokio::spawn(body(db.clone())).await;
    let db = Arc::try_unwrap(db).ok().expect("test kept the database");
    db.cleanup().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
