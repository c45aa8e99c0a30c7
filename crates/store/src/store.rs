//! The [`Store`] trait: everything the connector persists, behind one object-safe interface.
//!
//! Every method that changes more than one row does so in one transaction. Methods that take a
//! connection name fail with [`StoreError::UnknownConnection`] until
//! [`Store::ensure_connection`] has created it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;
use crate::crypto::SealedSecret;
use crate::model::*;

/// The one time source (lease expiry, audit timestamps): see `ml_clock`.
pub use ml_clock::{Clock, SystemClock};

type R<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// Closes the pool (waits for connections to be returned).
    async fn close(&self);

    // ---- connections ----
    /// Creates the connection (and its audit chain) if absent; idempotent.
    async fn ensure_connection(&self, name: &str) -> R<ConnectionId>;
    async fn list_connections(&self) -> R<Vec<String>>;

    // ---- credentials (sealed; see crate::crypto) ----
    async fn put_credential(
        &self,
        connection: &str,
        kind: &str,
        sealed: SealedSecret,
        public_fields: serde_json::Value,
    ) -> R<()>;
    async fn get_credential(&self, connection: &str, kind: &str) -> R<Option<Credential>>;
    /// Every credential of every connection.
    async fn list_credentials(&self) -> R<Vec<Credential>>;
    async fn delete_credential(&self, connection: &str, kind: &str) -> R<bool>;
    /// Overwrites the given credentials in ONE transaction (key rotation): all or nothing.
    async fn replace_credentials(&self, creds: Vec<Credential>) -> R<()>;

    // ---- runs ----
    async fn begin_run(&self, connection: &str, trigger: &str) -> R<RunId>;
    /// Upserts the stream's counters for this run. A failed stream's error also goes to the audit trail.
    async fn record_stream_result(&self, run: RunId, stream: &str, result: &StreamResult) -> R<()>;
    async fn finish_run(&self, run: RunId, status: RunStatus, summary: serde_json::Value) -> R<()>;
    /// A scheduled run that did not happen, as one finished run with status `skipped` and
    /// `{"skipped": reason}` as its summary, so `runs list` shows the gaps in a schedule and why.
    async fn record_skipped_run(&self, connection: &str, trigger: &str, reason: &str) -> R<RunId>;
    /// Newest first.
    async fn list_runs(&self, connection: Option<&str>, limit: u32) -> R<Vec<RunRecord>>;
    async fn get_run(&self, run: RunId) -> R<Option<RunDetail>>;
    /// Runs still `running` (e.g. the process died), oldest first.
    async fn unfinished_runs(&self, connection: &str) -> R<Vec<RunRecord>>;
    /// Runs by status and per-stream sums over every run (the console's metrics).
    async fn run_totals(&self) -> R<RunTotals>;

    // ---- cursors ----
    async fn cursor(&self, connection: &str, stream: &str) -> R<Option<Cursor>>;
    /// Promotes pending → committed (after the stream's load is confirmed). No-op without pending.
    async fn commit_cursor(&self, connection: &str, stream: &str) -> R<()>;
    /// Forgets both positions (`--full`).
    async fn reset_cursor(&self, connection: &str, stream: &str) -> R<()>;

    // ---- staging ----
    /// Stages one page atomically: mirror, audit entries, outbox (append) or dirty flag (replace),
    /// pending cursor.
    async fn stage_page(&self, page: StagePage) -> R<StageSummary>;

    // ---- outbox (append streams) ----
    /// Rows not flagged ambiguous, by id.
    async fn outbox_batch(
        &self,
        connection: &str,
        stream: &str,
        after_id: i64,
        limit: u32,
    ) -> R<Vec<OutboxRow>>;
    /// All rows waiting, ambiguous ones included.
    async fn outbox_count(&self, connection: &str, stream: &str) -> R<u64>;
    /// One transaction: audit entries for every row; Accepted deletes the rows and adds them to
    /// the table's row count; Ambiguous flags them; Failed leaves them. Returns rows found.
    async fn mark_delivered(
        &self,
        connection: &str,
        stream: &str,
        ids: &[i64],
        delivery: &Delivery,
    ) -> R<u64>;
    /// Flags rows whose batch had an unknown fate (no audit entry; see `mark_delivered`).
    async fn mark_ambiguous(
        &self,
        connection: &str,
        stream: &str,
        ids: &[i64],
        batch_id: &str,
    ) -> R<()>;
    async fn ambiguous_rows(
        &self,
        connection: &str,
        stream: &str,
        after_id: i64,
        limit: u32,
    ) -> R<Vec<OutboxRow>>;
    /// Un-flags rows found NOT to have landed, so `outbox_batch` sends them again.
    async fn clear_ambiguous(&self, connection: &str, stream: &str, ids: &[i64]) -> R<()>;

    // ---- mirror (replace streams) ----
    /// Keyset page in bytewise key order.
    async fn mirror_page(
        &self,
        connection: &str,
        stream: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> R<Vec<MirrorRow>>;
    /// Up to `limit` of the stream's mirror rows, joined into a few texts, after `after` (None for
    /// the first page, else the previous page's `cursor`); None past the last page. Pages come in
    /// the order the back end reads cheapest (SQLite: the order rows were added; PostgreSQL: key
    /// order): a rebuild needs every row once, not an order.
    async fn mirror_rows(
        &self,
        connection: &str,
        stream: &str,
        after: Option<&str>,
        limit: u32,
    ) -> R<Option<MirrorRows>>;
    async fn mirror_count(&self, connection: &str, stream: &str) -> R<u64>;
    /// The WHENMODIFIED the mirror holds for those of `keys` it has (None: never modified), in no
    /// particular order: what a pull compares a record read twice against.
    async fn mirror_versions(
        &self,
        connection: &str,
        stream: &str,
        keys: &[String],
    ) -> R<Vec<(String, Option<String>)>>;
    async fn mirror_keys_page(
        &self,
        connection: &str,
        stream: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> R<Vec<String>>;
    /// The (value, key) of every mirror row of `stream` whose row holds one of `values` in
    /// `column` (a column of the row JSON, compared as text), in no particular order; a value held
    /// by several rows comes once a row. What turns a record's business ID (an AUDITHISTORY delete
    /// naming a vendor by its VENDORID) into the mirror's key. Reads every row of the stream once
    /// per 1,000 values.
    async fn mirror_keys_by_column(
        &self,
        connection: &str,
        stream: &str,
        column: &str,
        values: &[String],
    ) -> R<Vec<(String, String)>>;
    async fn stream_state(&self, connection: &str, stream: &str) -> R<StreamState>;
    /// Flags a replace table for a rebuild from the mirror before anything makes the Power BI table
    /// differ from it (emptying it, changing its schema); its row count is 0 until the rebuild is done,
    /// and any rebuild progress is forgotten (the next rebuild starts by emptying the table).
    async fn mark_dirty(&self, connection: &str, stream: &str) -> R<()>;
    /// Records how far the rebuild of a dirty table got (and `table_rows = progress.rows`); does
    /// nothing when the table is not dirty. `mark_dirty` and `mark_reloaded` forget it.
    async fn save_rebuild_progress(
        &self,
        connection: &str,
        stream: &str,
        progress: &RebuildProgress,
    ) -> R<()>;
    /// One transaction: an audit entry per batch; when every batch was accepted the stream is
    /// clean and `last_loaded_run = run`, otherwise it stays dirty. `table_rows = rows` either way,
    /// and any rebuild progress is forgotten.
    async fn mark_reloaded(
        &self,
        connection: &str,
        stream: &str,
        run: RunId,
        rows: u64,
        batches: &[Delivery],
    ) -> R<()>;

    // ---- replay ----
    /// Rows accepted by Power BI in `run` for `stream` (append), from the audit trail, in chain
    /// order: page with the last row's `id` (the seq of its `pushed` entry).
    async fn rows_pushed_by_run(
        &self,
        run: RunId,
        stream: &str,
        after_seq: i64,
        limit: u32,
    ) -> R<Vec<ReplayRow>>;
    /// The stream's rows as they were after `run` (replace), from the audit trail, by key.
    /// Entries removed by `audit_prune` are not available.
    async fn rows_as_of_run(
        &self,
        connection: &str,
        stream: &str,
        run: RunId,
        after_key: Option<&str>,
        limit: u32,
    ) -> R<Vec<ReplayRow>>;

    // ---- dataset ----
    async fn save_dataset(&self, connection: &str, state: &DatasetState) -> R<()>;
    async fn dataset(&self, connection: &str) -> R<Option<DatasetState>>;
    /// Records the connection's dataset migration under way, or (None) that none is.
    async fn save_dataset_migration(
        &self,
        connection: &str,
        migration: Option<&DatasetMigration>,
    ) -> R<()>;
    /// The connection's dataset migration under way, if any.
    async fn dataset_migration(&self, connection: &str) -> R<Option<DatasetMigration>>;

    // ---- Power BI push history (pacing across processes) ----
    /// Records POSTs to a dataset and forgets its POSTs older than `forget_before`.
    async fn record_posts(
        &self,
        dataset_id: &str,
        posts: &[PushPost],
        forget_before: DateTime<Utc>,
    ) -> R<()>;
    /// The dataset's POSTs answered at or after `since`, oldest first.
    async fn recent_posts(&self, dataset_id: &str, since: DateTime<Utc>) -> R<Vec<PushPost>>;

    // ---- a destination's own state ----
    /// What `destination` recorded for `stream` (JSON it defines), if anything.
    async fn destination_state(
        &self,
        connection: &str,
        destination: &str,
        stream: &str,
    ) -> R<Option<String>>;
    /// Replaces it, in one statement.
    async fn save_destination_state(
        &self,
        connection: &str,
        destination: &str,
        stream: &str,
        state: &str,
    ) -> R<()>;

    // ---- leases ----
    /// Takes the connection's lease if free or expired.
    async fn try_acquire_lease(
        &self,
        connection: &str,
        worker_id: &str,
        ttl: Duration,
    ) -> R<Option<Lease>>;
    /// Extends a lease still held with `token`; `None` when another worker took it.
    async fn renew_lease(&self, connection: &str, token: &str, ttl: Duration) -> R<Option<Lease>>;
    async fn release_lease(&self, connection: &str, token: &str) -> R<bool>;
    async fn current_lease(&self, connection: &str) -> R<Option<Lease>>;

    // ---- audit ----
    /// Entries matching the filter, by id.
    async fn audit_search(&self, filter: &AuditFilter) -> R<Vec<AuditEntry>>;
    /// Walks the connection's chain from its anchor (or genesis) to its head.
    async fn audit_verify(&self, connection: &str) -> R<VerifyReport>;
    /// Deletes entries created before `before` (a verified prefix of the chain, never one an
    /// outbox row still refers to) and records the last one as the anchor.
    async fn audit_prune(&self, connection: &str, before: DateTime<Utc>) -> R<PruneReport>;
}
