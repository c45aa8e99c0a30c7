//! What a button starts. A run goes through the library exactly as `ml-connector sync` does
//! (`app::connect` from the sealed credentials, then `Connection::run`, which takes the connection's
//! run lease itself), so the console adds no way of running of its own. A preview of the next run
//! is the library's dry run (`pipeline::preview`, what `sync --dry-run` prints): it reads Intacct
//! (one count request per stream) and the store, and changes nothing.

use ml_connector::pipeline::preview::DryRun;
use ml_connector::pipeline::{Events, PipelineError, RunOptions};

use crate::Shared;

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no connection named {0:?} is configured")]
    Unknown(String),
    #[error("this console cannot start or preview runs: the master key is not available to it")]
    NoRunner,
    #[error("a run of {0} is under way (worker {1}); wait for it to finish")]
    Busy(String, String),
    #[error(transparent)]
    App(#[from] ml_connector::app::AppError),
    #[error(transparent)]
    Store(#[from] ml_store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// What the next run of the connection would read and push (`sync --dry-run`): nothing is staged,
/// pushed or recorded, no cursor moves and no lease is taken.
pub async fn preview(c: &Shared, name: &str) -> Result<DryRun, StartError> {
    let cfg = c
        .connection(name)
        .ok_or_else(|| StartError::Unknown(name.to_string()))?
        .clone();
    let runner = c.runner.as_ref().ok_or(StartError::NoRunner)?;
    let conn =
        ml_connector::app::connect(cfg, c.store.clone(), &runner.key, c.clock.clone()).await?;
    let opts = RunOptions {
        trigger: "console".into(),
        ..Default::default()
    };
    Ok(ml_connector::pipeline::preview::preview(&conn, &opts).await?)
}

/// Starts a run of the connection in the background; its outcome is recorded in the store like
/// any run's, and logged.
pub async fn start_run(c: &Shared, name: &str) -> Result<(), StartError> {
    let cfg = c
        .connection(name)
        .ok_or_else(|| StartError::Unknown(name.to_string()))?
        .clone();
    let runner = c.runner.as_ref().ok_or(StartError::NoRunner)?;
    // Said now rather than found later in the log: the run itself would stop on the lease.
    if let Ok(Some(lease)) = c.store.current_lease(name).await
        && lease.expires_at > c.clock.now()
    {
        return Err(StartError::Busy(name.to_string(), lease.worker_id));
    }
    let mut conn =
        ml_connector::app::connect(cfg, c.store.clone(), &runner.key, c.clock.clone()).await?;
    conn.ctx.audit_retention = runner.audit_retention;
    let name = name.to_string();
    tokio::spawn(async move {
        let opts = RunOptions {
            trigger: "console".into(),
            ..Default::default()
        };
        match conn.run(&opts, &Events::default()).await {
            Ok(r) => {
                tracing::info!(connection = %name, run = r.run, status = r.status.as_str(), "run from the console finished")
            }
            Err(PipelineError::LeaseHeld(why)) => {
                tracing::warn!(connection = %name, reason = %why, "run from the console not started")
            }
            Err(e) => tracing::warn!(connection = %name, error = %e, "run from the console failed"),
        }
    });
    Ok(())
}
