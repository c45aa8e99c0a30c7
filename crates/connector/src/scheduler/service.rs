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
use crate::pipeline::{Events, PipelineError, RunOptions};

/// Runs every scheduled connection until SIGTERM or Ctrl-C.
///
/// At start each scheduled connection signs in once to Intacct and to Power BI. When every one of
/// them is refused, nothing could ever run until a person stores the right credentials: the
/// service stops at once with [`AppError::AllRefused`] (exit code 4). A connection refused while
/// others are fine is paused (its scheduled runs are recorded `skipped` with the reason) until its
/// credentials are stored again or its `refused_backoff` passes; the service goes on.
pub async fn run(app: &App, worker_id: Option<String>) -> Result<(), AppError> {
    let worker = lease::worker_id(worker_id.as_deref());
    let key = Arc::new(app.master_key()?);
    let mut scheduled = Vec::new();
    for cfg in app.config.connections.iter().cloned() {
        let Some(sched) = cfg.schedule.clone() else {
            tracing::info!(connection = %cfg.name, "no schedule: run it with `ml-connector sync`");
            continue;
        };
        // Fails now, not at 2 a.m., when the credentials cannot be read at all.
        app.connect(cfg.clone(), &key).await?;
        scheduled.push((cfg, sched));
    }
    if scheduled.is_empty() {
        return Err(AppError::NothingScheduled);
    }
    let mut refusals = Vec::with_capacity(scheduled.len());
    for (cfg, _) in &scheduled {
        let refusal = match refused_sign_in(app, cfg, &key).await {
            Some((system, why)) => {
                tracing::warn!(
                    connection = %cfg.name,
                    system,
                    error = %why,
                    "credentials refused at start: the connection's runs are skipped until `ml-connector credentials set {system}` stores them again"
                );
                Some(Refusal {
                    at: app.clock.now(),
                    credentials: credentials_stamp(app.store.as_ref(), &cfg.name).await,
                    system: Some(system),
                    why,
                })
            }
            None => None,
        };
        refusals.push(refusal);
    }
    if refusals.iter().all(Option::is_some) {
        let each: Vec<String> = scheduled
            .iter()
            .zip(&refusals)
            .filter_map(|((cfg, _), r)| r.as_ref().map(|r| (cfg, r)))
            .map(|(cfg, r)| {
                let system = r.system.unwrap_or("intacct");
                format!(
                    "connection {}: {}; store the right ones with `ml-connector credentials set {system} --connection {}`",
                    cfg.name, r.why, cfg.name
                )
            })
            .collect();
        return Err(AppError::AllRefused(format!(
            "the credentials of every scheduled connection were refused, so no run can start ({}); then start `ml-connector run` again",
            each.join("; ")
        )));
    }
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping: the current batches finish, then the runs stop");
            stop.cancel();
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for ((cfg, sched), at_start) in scheduled.into_iter().zip(refusals) {
        let store = app.store.clone();
        let clock = app.clock.clone();
        let retention = app.config.audit_retention;
        let stop = stop.clone();
        let worker = worker.clone();
        let key = key.clone();
        let refusal: Arc<std::sync::Mutex<Option<Refusal>>> =
            Arc::new(std::sync::Mutex::new(at_start));
        tracing::info!(connection = %cfg.name, schedule = %sched.expression, time_zone = %sched.time_zone, "scheduled");
        tasks.spawn(async move {
            let last = last_run_started(store.as_ref(), &cfg.name).await;
            let stop_signal = stop.clone();
            let overran = {
                let (store, name) = (store.clone(), cfg.name.clone());
                move |o: super::Overrun| {
                    let (store, name) = (store.clone(), name.clone());
                    async move { skip(store.as_ref(), &name, "schedule", &overrun_reason(&o)).await }
                }
            };
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
                            let resumes_at = r.at
                                + chrono::Duration::from_std(cfg.refused_backoff).unwrap_or_default();
                            let system = r.system.unwrap_or("intacct|powerbi");
                            let reason = format!(
                                "credentials refused at {} ({}); `ml-connector credentials set {system} --connection {name}` resumes the schedule at its next time, else it resumes after {}",
                                r.at.to_rfc3339(),
                                r.why,
                                resumes_at.to_rfc3339()
                            );
                            skip(store.as_ref(), &name, trigger, &reason).await;
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
                                    skip(store.as_ref(), &name, trigger, &format!("not started: {e}")).await;
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
                                        system: None,
                                        why: r
                                            .setup_error
                                            .clone()
                                            .or_else(|| {
                                                r.streams
                                                    .iter()
                                                    .find(|s| s.refused)
                                                    .and_then(|s| s.error.clone())
                                            })
                                            .unwrap_or_else(|| "refused".into()),
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
                            Err(PipelineError::LeaseHeld(why)) => {
                                skip(store.as_ref(), &name, trigger, &why).await;
                                None
                            }
                            Err(e) => {
                                tracing::warn!(connection = %name, error = %e, "run not done");
                                None
                            }
                        }
                    }
                },
                overran,
                &stop_signal,
            )
            .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// When the connection's last run that did run started (a skipped one did nothing, so a time it
/// skipped is still caught up at start); `None` when there is none among the latest ones.
async fn last_run_started(
    store: &dyn ml_store::Store,
    connection: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let runs = store.list_runs(Some(connection), 100).await.ok()?;
    runs.iter()
        .find(|r| r.status != ml_store::RunStatus::Skipped)
        .map(|r| r.started_at)
}

/// One sign-in to each system with the connection's stored credentials: which refused them, and
/// its words. Anything else (a system unreachable) is for the runs to meet and retry.
async fn refused_sign_in(
    app: &App,
    cfg: &crate::config::ConnectionConfig,
    key: &ml_store::crypto::MasterKey,
) -> Option<(&'static str, String)> {
    if let Ok(intacct) = crate::app::intacct_client(cfg, app.store.as_ref(), key).await {
        match intacct.ping().await {
            Err(e) if e.is_refusal() => return Some(("intacct", e.to_string())),
            _ => {}
        }
    }
    let powerbi = crate::app::powerbi_client(cfg, app.store.as_ref(), key)
        .await
        .ok()?;
    match powerbi.find_workspace(&cfg.powerbi.workspace).await {
        Err(e) if e.is_refusal() => Some(("powerbi", e.to_string())),
        _ => None,
    }
}

/// A scheduled time not run: logged and recorded in the store as a `skipped` run with its reason.
async fn skip(store: &dyn ml_store::Store, connection: &str, trigger: &str, reason: &str) {
    tracing::warn!(connection, trigger, reason, "run skipped");
    if let Err(e) = store.record_skipped_run(connection, trigger, reason).await {
        tracing::warn!(connection, error = %e, "the skipped run could not be recorded");
    }
}

fn overrun_reason(o: &super::Overrun) -> String {
    let more = match o.count {
        1 => String::new(),
        n => format!(
            " and {} later scheduled time(s) up to {}",
            n - 1,
            o.last.to_rfc3339()
        ),
    };
    format!(
        "the run started at {} was still going at {}{more}; the next scheduled run reads what these would have",
        o.run_started.to_rfc3339(),
        o.first.to_rfc3339()
    )
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
    /// Which system refused, when known (`intacct` or `powerbi`, as `credentials set` names them).
    system: Option<&'static str>,
    /// The refusing system's words.
    why: String,
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
            system: Some("intacct"),
            why: "Sign-in information is incorrect".into(),
        };
        let six_hours = std::time::Duration::from_secs(6 * 3600);
        assert!(r.holds(&r.credentials, t("2026-12-06T07:59:00Z"), six_hours));
        assert!(!r.holds(&r.credentials, t("2026-12-06T08:00:00Z"), six_hours));
        let stored_again = vec![t("2026-12-06T03:00:00Z")];
        assert!(!r.holds(&stored_again, t("2026-12-06T03:01:00Z"), six_hours));
    }
}
