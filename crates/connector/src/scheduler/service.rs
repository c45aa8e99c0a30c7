//! `ml-connector run`: the long-running service.
//!
//! Each scheduled connection gets its own loop ([`super::drive`]), so runs of one connection
//! never overlap; a lease in the store makes that hold across workers sharing one PostgreSQL database.
//! SIGTERM or Ctrl-C asks every run to stop after its current batch; the state left behind is the same
//! as after any interruption, and the next run resumes from it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::lease;
use crate::app::{App, AppError};
use crate::pipeline::{Events, RunOptions};

/// Runs every scheduled connection until SIGTERM or Ctrl-C.
pub async fn run(app: &App, worker_id: Option<String>) -> Result<(), AppError> {
    let worker = lease::worker_id(worker_id.as_deref());
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: the current batches finish, then the runs stop");
            stop.cancel();
        });
    }
    let key = app.master_key()?;
    let mut tasks = tokio::task::JoinSet::new();
    for cfg in app.config.connections.iter().cloned() {
        let Some(sched) = cfg.schedule.clone() else {
            tracing::info!(connection = %cfg.name, "no schedule: run it with `ml-connector sync`");
            continue;
        };
        let conn = Arc::new(app.connect(cfg.clone(), &key).await?);
        let store = app.store.clone();
        let stop = stop.clone();
        let worker = worker.clone();
        let clock = app.clock.clone();
        tracing::info!(connection = %cfg.name, schedule = %sched.expression, time_zone = %sched.time_zone, "scheduled");
        tasks.spawn(async move {
            let last = store
                .list_runs(Some(&cfg.name), 1)
                .await
                .ok()
                .and_then(|runs| runs.first().map(|r| r.started_at));
            let stop_signal = stop.clone();
            super::drive(
                &sched,
                clock.as_ref(),
                last,
                |trigger| {
                    let conn = conn.clone();
                    let worker = worker.clone();
                    let stop = stop.clone();
                    async move {
                        let name = conn.config.name.clone();
                        let opts = RunOptions {
                            trigger: trigger.to_string(),
                            cancel: stop.clone(),
                            worker: Some(worker.clone()),
                            ..Default::default()
                        };
                        // The run takes the connection's lease itself; another worker holding it is not an error.
                        match conn.run(&opts, &Events::default()).await {
                            Ok(r) => tracing::info!(connection = %name, run = r.run, status = r.status.as_str(), "run finished"),
                            Err(e) => tracing::warn!(connection = %name, error = %e, "run not done"),
                        }
                    }
                },
                &stop_signal,
            )
            .await;
        });
    }
    if tasks.is_empty() {
        return Err(AppError::NothingScheduled);
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
