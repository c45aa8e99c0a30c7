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
}

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
        })
    }

    /// The underlying pool (tests and maintenance tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
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
