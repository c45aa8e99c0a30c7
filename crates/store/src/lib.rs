//! ml-store: the connector's durable state — runs, cursors, the staged mirror and outbox, the
//! hash-chained audit trail, leases, and encrypted credentials — behind one object-safe [`Store`]
//! trait with a SQLite and a PostgreSQL back end.
//!
//! # Layout
//!
//! | module                  | job |
//! |-------------------------|-----|
//! | [`model`]               | plain data types exchanged with the store |
//! | [`store`]               | the [`Store`] trait (used as `Arc<dyn Store>`) and the injectable [`Clock`] |
//! | `backend`               | the SQL shared by both back ends: one job a file, each a macro instantiated for both back ends (see why there) |
//! | `backend::connections`  | connections, the name → id cache, sealed credentials |
//! | `backend::runs`         | runs and their per-stream results |
//! | `backend::cursors`      | a stream's pull position: read, committed, reset |
//! | `backend::staging`      | one page staged: mirror, audit entries, outbox or dirty flag, pending cursor |
//! | `backend::audit_append` | appending to a connection's audit chain inside a write transaction |
//! | `backend::key_index`    | the audit trail's lagging key index (`audit_keys`) |
//! | `backend::outbox`       | append streams' delivery: outbox batches, delivered, ambiguous rows |
//! | `backend::stream_state` | replace streams' table state: dirty, reloaded |
//! | `backend::mirror`       | reads of the mirror: by key, key pages, row pages for a rebuild |
//! | `backend::replay`       | rows pushed by a run, rows as of a run, from the audit trail |
//! | `backend::audit_trail`  | audit search, verify and prune |
//! | `backend::leases`       | which worker may sync a connection |
//! | `backend::power_bi`     | a connection's dataset state and the POST history that paces pushes |
//! | `backend::multi_row`    | multi-row statement text, cached, and argument room |
//! | `backend::convert`      | column values ↔ model values (counts, hashes, enums) |
//! | `backend::prelude`      | the names the macros' bodies use where they expand |
//! | `backend::dispatch`     | the `impl Store` block, each trait method handed to its job's file |
//! | [`sqlite`]              | [`SqliteStore`]: a WAL-mode file in the data dir |
//! | [`postgres`]            | [`PgStore`]: for several workers sharing one database |
//! | [`audit`]               | canonical encoding, hashing and verification of the audit chain (pure) |
//! | [`crypto`]              | [`MasterKey`], [`seal`]/[`open`] of credentials (XChaCha20-Poly1305) |
//! | [`rotate`]              | re-encrypting every credential under a new master key in one transaction |
//! | [`export`]              | audit export as CSV or JSON lines |
//! | [`backup`]              | SQLite backup (`VACUUM INTO`) and checked restore; telling a damaged file from other failures |
//! | [`error`]               | [`StoreError`] |
//!
//! Both back ends apply their embedded, checksummed migrations (`migrations/sqlite`,
//! `migrations/postgres`) when opened with [`open`].

pub mod audit;
mod backend;
pub mod backup;
pub mod crypto;
mod damage;
pub mod error;
pub mod export;
pub mod model;
pub mod postgres;
pub mod rotate;
pub mod sqlite;
pub mod store;

use std::sync::Arc;

pub use crypto::{CryptoError, MasterKey, SealedSecret, credential_name, seal};
pub use error::StoreError;
pub use export::{ExportFormat, export_audit};
pub use model::*;
pub use postgres::PgStore;
pub use rotate::{RotateReport, rotate_key};
pub use sqlite::SqliteStore;
pub use store::{Clock, Store, SystemClock};

/// Re-exported so callers can name `crypto::open` without clashing with [`open`].
pub use crypto::open as open_credential;

/// Opens (creating if needed) the store and applies pending migrations.
pub async fn open(loc: &StoreLocation) -> Result<Arc<dyn Store>, StoreError> {
    open_with_clock(loc, Arc::new(SystemClock)).await
}

/// [`open`] with an injected clock (tests of lease expiry and audit pruning).
pub async fn open_with_clock(
    loc: &StoreLocation,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match loc {
        StoreLocation::Sqlite(path) => Arc::new(SqliteStore::open(path, clock).await?),
        StoreLocation::Postgres(url) => Arc::new(PgStore::open(url, clock).await?),
    })
}
