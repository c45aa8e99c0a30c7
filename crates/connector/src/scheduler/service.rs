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
    let key = Arc::new(app.master_key()?);
    let mut tasks = tokio::task::JoinSet::new();
    for cfg in app.config.connections.iter().cloned() {
        let Some(sched) = cfg.schedule.clone() else {
            tracing::info!(connection = %cfg.name, "no schedule: run it with `ml-connector sync`");
            continue;
        };
        // Fails now, not at 2 a.m., when the credentials cannot be read at all.
        app.connect(cfg.clone(), &key).await?;
        let store = app.store.clone();
        let clock = app.clock.clone();
        let retention = app.config.audit_retention;
        let stop = stop.clone();
        let worker = worker.clone();
        let key = key.clone();
        let refusal: Arc<std::sync::Mutex<Option<Refusal>>> = Arc::default();
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
                    let (cfg, store, clock, key) =
                        (cfg.clone(), store.clone(), clock.clone(), key.clone());
                    let (worker, stop, refusal) = (worker.clone(), stop.clone(), refusal.clone());
                    let sched_for_log = sched.clone();
                    async move {
                        let name = cfg.name.clone();
                        let credentials = credentials_stamp(store.as_ref(), &name).await;
                        let paused = refusal
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone()
                            .filter(|r| r.holds(&credentials, clock.now(), cfg.refused_backoff));
                        if let Some(r) = paused {
                            tracing::warn!(
                                connection = %name,
                                refused_at = %r.at.to_rfc3339(),
                                resumes_at = %(r.at + chrono::Duration::from_std(cfg.refused_backoff).unwrap_or_default()).to_rfc3339(),
                                "run skipped: the last run's credentials were refused; `ml-connector credentials set` resumes the schedule at its next time"
                            );
                            return None;
                        }
                        // Built for each run, so credentials stored since the last one are used.
                        let conn =
                            match crate::app::connect(cfg.clone(), store.clone(), &key, clock.clone())
                                .await
                            {
                                Ok(mut c) => {
                                    c.ctx.audit_retention = retention;
                                    c
                                }
                                Err(e) => {
                                    tracing::warn!(connection = %name, error = %e, "run not started");
                                    return None;
                                }
                            };
                        let opts = RunOptions {
                            trigger: trigger.to_string(),
                            cancel: stop.clone(),
                            worker: Some(worker.clone()),
                            ..Default::default()
                        };
                        // The run takes the connection's lease itself; another worker holding it is not an error.
                        let started = clock.now();
                        match conn.run(&opts, &Events::default()).await {
                            Ok(r) => {
                                *refusal.lock().unwrap_or_else(|e| e.into_inner()) =
                                    r.refused.then(|| Refusal {
                                        at: clock.now(),
                                        credentials,
                                    });
                                let next = super::next_after(&sched_for_log, clock.now())
                                    .map(|t| t.to_rfc3339())
                                    .unwrap_or_else(|| "none".into());
                                tracing::info!(
                                    connection = %name,
                                    run = r.run,
                                    status = r.status.as_str(),
                                    read = r.streams.iter().map(|s| s.extracted).sum::<u64>(),
                                    pushed = r.streams.iter().map(|s| s.pushed).sum::<u64>(),
                                    failed_streams = r.streams.iter().filter(|s| s.error.is_some()).count(),
                                    postponed_streams = r.streams.iter().filter(|s| s.postponed.is_some()).count(),
                                    seconds = (clock.now() - started).num_milliseconds() as f64 / 1000.0,
                                    next_run = %next,
                                    "run finished"
                                );
                                // A rebuild postponed until the push budget frees runs again then.
                                r.streams.iter().filter_map(|s| s.postponed_until).min()
                            }
                            Err(e) => {
                                tracing::warn!(connection = %name, error = %e, "run not done");
                                None
                            }
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

/// Resolves at the first SIGTERM or Ctrl-C (SIGINT); `run` and `sync` cancel their runs on it.
pub async fn wait_for_signal() {
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

/// A run whose credentials a remote system refused: scheduled runs pause until the credentials
/// are stored again or the connection's `refused_backoff` has passed.
#[derive(Clone, Debug)]
struct Refusal {
    at: chrono::DateTime<chrono::Utc>,
    credentials: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Refusal {
    fn holds(
        &self,
        credentials: &[chrono::DateTime<chrono::Utc>],
        now: chrono::DateTime<chrono::Utc>,
        backoff: std::time::Duration,
    ) -> bool {
        self.credentials == credentials
            && now < self.at + chrono::Duration::from_std(backoff).unwrap_or_default()
    }
}

/// When each of the connection's credentials was last stored.
async fn credentials_stamp(
    store: &dyn ml_store::Store,
    connection: &str,
) -> Vec<chrono::DateTime<chrono::Utc>> {
    let mut stamps = Vec::new();
    for kind in ["intacct", "powerbi"] {
        if let Ok(Some(c)) = store.get_credential(connection, kind).await {
            stamps.push(c.updated_at);
        }
    }
    stamps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_pauses_until_the_credentials_change_or_the_backoff_passes() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let r = Refusal {
            at: t("2026-12-06T02:00:00Z"),
            credentials: vec![t("2026-12-01T09:00:00Z")],
        };
        let six_hours = std::time::Duration::from_secs(6 * 3600);
        assert!(r.holds(&r.credentials, t("2026-12-06T07:59:00Z"), six_hours));
        assert!(!r.holds(&r.credentials, t("2026-12-06T08:00:00Z"), six_hours));
        let stored_again = vec![t("2026-12-06T03:00:00Z")];
        assert!(!r.holds(&stored_again, t("2026-12-06T03:01:00Z"), six_hours));
    }
}
