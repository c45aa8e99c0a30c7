//! [`PgStore`]: PostgreSQL back end, for several workers sharing one database.
//!
//! Audit appends lock the connection's `audit_head` row (`SELECT ... FOR UPDATE`) inside the
//! writing transaction, so each connection's chain grows strictly one transaction at a time while
//! different connections proceed in parallel. Leases are taken with one guarded upsert
//! (`ON CONFLICT ... DO UPDATE ... WHERE expires_at <= now`), which PostgreSQL executes atomically.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};

use crate::backend::prelude::*;

/// PostgreSQL back end.
pub struct PgStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    /// Connection name → id; connections are never deleted, so entries never go stale.
    cache: Mutex<HashMap<String, i64>>,
    /// Rows staged by this process, and the count at which the staging tables are next analysed.
    staged: std::sync::atomic::AtomicU64,
    analyse_at: std::sync::atomic::AtomicU64,
}

/// Staged rows before the first `ANALYZE`; after it, each doubling triggers the next.
const FIRST_ANALYSE: u64 = 10_000;

impl PgStore {
    /// Connects and migrates.
    pub async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            location: crate::error::redact_url(url),
            source,
        };
        let opts: PgConnectOptions = url.parse().map_err(open_err)?;
        // sqlx prepares every statement once per connection, and after five runs PostgreSQL may
        // keep a *generic* plan for it. Planned while the mirror was still empty, the generic plan
        // of the staging lookup (`record_key IN (1,000 keys)`) is a sequential scan, and stays one
        // as the table grows: staging fell to 440 records/s at 200,000 records. Custom plans (made
        // with the actual keys each time) use the index; planning costs well under a millisecond.
        let opts = opts.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            pool,
            clock,
            cache: Mutex::new(HashMap::new()),
            staged: std::sync::atomic::AtomicU64::new(0),
            analyse_at: std::sync::atomic::AtomicU64::new(FIRST_ANALYSE),
        })
    }

    /// The underlying pool (tests and maintenance tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL takes writes on any connection: one pool serves both.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn close_pools(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Keeps the planner's statistics up with a fast-growing mirror. Without column statistics
    /// PostgreSQL assumes `connection_id = $1 AND stream = $2` matches 0.5 % x 0.5 % of the rows, so
    /// it plans the staging lookup as a bitmap scan of those two columns that filters the keys:
    /// at 800,000 mirror rows that read the whole table for every page (340 ms a lookup).
    /// Autovacuum analyses at most once a minute, too late for a first sync of a million records;
    /// so the staging tables are analysed after the first 10,000 rows and at every doubling.
    async fn after_stage(&self, rows: u64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let staged = self.staged.fetch_add(rows, Ordering::Relaxed) + rows;
        let due = self.analyse_at.load(Ordering::Relaxed);
        if staged < due
            || self
                .analyse_at
                .compare_exchange(
                    due,
                    staged.saturating_mul(2),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(());
        }
        // The page is committed; statistics only speed up the next ones, so a failure here is
        // reported but does not fail the page.
        if let Err(e) = sqlx::query("ANALYZE mirror, audit, outbox")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "ANALYZE of the staging tables failed; staging goes on, perhaps slower");
        }
        Ok(())
    }
}

crate::backend::impl_store!(
    PgStore,
    Postgres,
    PgConnection,
    lock = " FOR UPDATE",
    backend = "postgres",
    anonymous_placeholders = false
);
