//! The SQL shared by both back ends, one job a file, and `impl_store!`, which puts the jobs
//! together for a back end.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, fixed-width text timestamps, integer flags), but sqlx types every query by its
//! database, and writing this code generically over `sqlx::Database` needs a wall of
//! higher-ranked `Encode`/`Decode` bounds. So the implementation is written as macros and
//! instantiated for each back end, which supplies only: its pool type, how a write transaction
//! begins (`BEGIN IMMEDIATE` on SQLite so the single writer is taken up front, a plain `BEGIN` on
//! PostgreSQL), and the row-lock suffix used on the audit chain head (`FOR UPDATE` on PostgreSQL;
//! SQLite's writer lock already serialises appends).
//!
//! Each job's file holds one macro that expands to an inherent `impl` block of the back end's
//! type: the job's [`Store`](crate::Store) methods, under the trait's own names, and the helpers
//! they need. `dispatch` writes the `impl Store` block that hands the trait's calls to them (it
//! says why the bodies cannot sit in that block). The crate's `# Layout` table lists the files.
//!
//! Only what names the back end's sqlx types is in a macro; constants, `MultiRow` and the value
//! conversions are plain items. Helpers that several jobs call (`cid`, `append`, `index_keys`,
//! `mirror_column`) are methods of the type, so the job files never import each other.

pub(crate) mod audit_append;
pub(crate) mod audit_trail;
pub(crate) mod connections;
pub(crate) mod convert;
pub(crate) mod cursors;
pub(crate) mod destination_state;
pub(crate) mod dispatch;
pub(crate) mod key_index;
pub(crate) mod leases;
pub(crate) mod mirror;
pub(crate) mod multi_row;
pub(crate) mod outbox;
pub(crate) mod power_bi;
pub(crate) mod prelude;
pub(crate) mod replay;
pub(crate) mod runs;
pub(crate) mod staging;
pub(crate) mod stream_state;

/// The whole back end for `$ty`: every job's part, and the `impl Store` that hands calls to them.
/// `$ty` has the fields `pool`, `clock` and `cache`, and the methods `writer`, `begin_write`,
/// `close_pools` and `after_stage` (see `sqlite` and `postgres`).
macro_rules! impl_store {
    ($ty:ident, $db:ty, $conn:ty, lock = $lock:literal, backend = $backend:literal, anonymous_placeholders = $anon:literal) => {
        impl $ty {
            /// Every time the store writes or compares (runs, audit entries, leases, credentials)
            /// comes from the injected clock, never the system's.
            fn now(&self) -> DateTime<Utc> {
                self.clock.now()
            }
        }

        crate::backend::multi_row::impl_with_room!($ty, $db);
        crate::backend::connections::impl_connections!($ty, $db);
        crate::backend::runs::impl_runs!($ty, $db);
        crate::backend::cursors::impl_cursors!($ty);
        crate::backend::staging::impl_staging!($ty, anonymous_placeholders = $anon);
        crate::backend::audit_append::impl_audit_append!(
            $ty,
            $conn,
            lock = $lock,
            anonymous_placeholders = $anon
        );
        crate::backend::key_index::impl_key_index!($ty, $conn);
        crate::backend::outbox::impl_outbox!($ty, $db);
        crate::backend::stream_state::impl_stream_state!($ty);
        crate::backend::mirror::impl_mirror!(
            $ty,
            $conn,
            backend = $backend,
            anonymous_placeholders = $anon
        );
        crate::backend::replay::impl_replay!($ty);
        crate::backend::audit_trail::impl_audit_trail!($ty, $db, $conn);
        crate::backend::leases::impl_leases!($ty);
        crate::backend::power_bi::impl_power_bi!($ty, anonymous_placeholders = $anon);
        crate::backend::destination_state::impl_destination_state!($ty);
        crate::backend::dispatch::impl_dispatch!($ty, backend = $backend);
    };
}
pub(crate) use impl_store;
