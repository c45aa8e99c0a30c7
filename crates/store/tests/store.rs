//! Runs the conformance suite against SQLite (a temp dir per test) and PostgreSQL (a fresh
//! database per test, created from env `ML_CONNECTOR_TEST_DATABASE_URL`; skipped when unset
//! unless `CI=true`).

mod conformance;
mod harness;

macro_rules! conformance_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::TestDb::sqlite().await;
                    crate::harness::run(db, crate::conformance::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::TestDb::postgres().await else { return };
                    crate::harness::run(db, crate::conformance::$name).await;
                }
            )+
        }
    };
}

conformance_tests!(
    connections_and_credentials,
    key_rotation,
    secrets_not_in_clear,
    runs_lifecycle,
    cursors,
    staging_append_classifies,
    outbox_delivery,
    replace_mode_and_mirror,
    mark_dirty_flags_a_rebuild,
    replay_as_of_run,
    dataset_state,
    push_history,
    leases,
    leases_race,
    audit_search_and_export,
    audit_verify_detects_tampering,
    audit_prune_keeps_chain_verifiable,
    concurrent_staging_serialises_chain,
);
