//! The `impl Store` block of a back end: every trait method handed to the inherent method of the
//! same name that its job's file defines (the list below is grouped by those files).
//!
//! Why a hand-over rather than the bodies themselves: `async_trait` rewrites the methods of the
//! block it is written on before any macro inside that block expands, so one `impl Store` cannot
//! be put together from several files' macros. `<Type>::name` finds the inherent method before the
//! trait's; being private to the back end's module, the inherent method never shadows the trait's
//! for callers anywhere else.

macro_rules! impl_dispatch {
    ($ty:ident, backend = $backend:literal) => {
        crate::backend::dispatch::forward_to_inherent! {
            $ty, backend = $backend;

            // connections
            ensure_connection(name: &str) -> ConnectionId;
            list_connections() -> Vec<String>;
            put_credential(connection: &str, kind: &str, sealed: SealedSecret, public_fields: serde_json::Value) -> ();
            get_credential(connection: &str, kind: &str) -> Option<Credential>;
            list_credentials() -> Vec<Credential>;
            delete_credential(connection: &str, kind: &str) -> bool;
            replace_credentials(creds: Vec<Credential>) -> ();

            // runs
            begin_run(connection: &str, trigger: &str) -> RunId;
            record_stream_result(run: RunId, stream: &str, result: &StreamResult) -> ();
            finish_run(run: RunId, status: RunStatus, summary: serde_json::Value) -> ();
            record_skipped_run(connection: &str, trigger: &str, reason: &str) -> RunId;
            list_runs(connection: Option<&str>, limit: u32) -> Vec<RunRecord>;
            get_run(run: RunId) -> Option<RunDetail>;
            unfinished_runs(connection: &str) -> Vec<RunRecord>;
            run_totals() -> RunTotals;

            // cursors
            cursor(connection: &str, stream: &str) -> Option<Cursor>;
            commit_cursor(connection: &str, stream: &str) -> ();
            reset_cursor(connection: &str, stream: &str) -> ();

            // staging
            stage_page(page: StagePage) -> StageSummary;

            // outbox
            outbox_batch(connection: &str, stream: &str, after_id: i64, limit: u32) -> Vec<OutboxRow>;
            outbox_count(connection: &str, stream: &str) -> u64;
            mark_delivered(connection: &str, stream: &str, ids: &[i64], delivery: &Delivery) -> u64;
            mark_ambiguous(connection: &str, stream: &str, ids: &[i64], batch_id: &str) -> ();
            ambiguous_rows(connection: &str, stream: &str, after_id: i64, limit: u32) -> Vec<OutboxRow>;
            clear_ambiguous(connection: &str, stream: &str, ids: &[i64]) -> ();

            // mirror
            mirror_page(connection: &str, stream: &str, after_key: Option<&str>, limit: u32) -> Vec<MirrorRow>;
            mirror_rows(connection: &str, stream: &str, after: Option<&str>, limit: u32) -> Option<MirrorRows>;
            mirror_count(connection: &str, stream: &str) -> u64;
            mirror_versions(connection: &str, stream: &str, keys: &[String]) -> Vec<(String, Option<String>)>;
            mirror_keys_page(connection: &str, stream: &str, after_key: Option<&str>, limit: u32) -> Vec<String>;
            mirror_keys_by_column(connection: &str, stream: &str, column: &str, values: &[String]) -> Vec<(String, String)>;

            // stream_state
            stream_state(connection: &str, stream: &str) -> StreamState;
            mark_dirty(connection: &str, stream: &str) -> ();
            save_rebuild_progress(connection: &str, stream: &str, progress: &RebuildProgress) -> ();
            mark_reloaded(connection: &str, stream: &str, run: RunId, rows: u64, batches: &[Delivery]) -> ();

            // replay
            rows_pushed_by_run(run: RunId, stream: &str, after_seq: i64, limit: u32) -> Vec<ReplayRow>;
            rows_as_of_run(connection: &str, stream: &str, run: RunId, after_key: Option<&str>, limit: u32) -> Vec<ReplayRow>;

            // power_bi
            save_dataset(connection: &str, state: &DatasetState) -> ();
            dataset(connection: &str) -> Option<DatasetState>;
            save_dataset_migration(connection: &str, migration: Option<&DatasetMigration>) -> ();
            dataset_migration(connection: &str) -> Option<DatasetMigration>;
            record_posts(dataset_id: &str, posts: &[PushPost], forget_before: DateTime<Utc>) -> ();
            recent_posts(dataset_id: &str, since: DateTime<Utc>) -> Vec<PushPost>;

            // destination_state
            destination_state(connection: &str, destination: &str, stream: &str) -> Option<String>;
            save_destination_state(connection: &str, destination: &str, stream: &str, state: &str) -> ();

            // leases
            try_acquire_lease(connection: &str, worker_id: &str, ttl: Duration) -> Option<Lease>;
            renew_lease(connection: &str, token: &str, ttl: Duration) -> Option<Lease>;
            release_lease(connection: &str, token: &str) -> bool;
            current_lease(connection: &str) -> Option<Lease>;

            // audit_trail
            audit_search(filter: &AuditFilter) -> Vec<AuditEntry>;
            audit_verify(connection: &str) -> VerifyReport;
            audit_prune(connection: &str, before: DateTime<Utc>) -> PruneReport;
        }
    };
}
pub(crate) use impl_dispatch;

/// Writes `impl Store for $ty` from a list of `name(args) -> T;`, each method returning
/// `Result<T, StoreError>` from `<$ty>::name`.
macro_rules! forward_to_inherent {
    ($ty:ident, backend = $backend:literal; $( $name:ident($($arg:ident: $t:ty),*) -> $ret:ty; )*) => {
        #[async_trait]
        impl Store for $ty {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            $(
                async fn $name(&self, $($arg: $t),*) -> Result<$ret, StoreError> {
                    <$ty>::$name(self, $($arg),*).await
                }
            )*
        }
    };
}
pub(crate) use forward_to_inherent;
