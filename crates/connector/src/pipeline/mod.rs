//! One run of a connection: for each stream, extract what changed, stage it durably, and hand the
//! destination what changed since it last confirmed.
//!
//! The order of durable steps is what makes a crash at any point harmless (DESIGN.md invariants 1 and 2):
//!
//! 1. Pages are staged (mirror, audit, outbox, *pending* cursor) in one transaction each.
//! 2. The destination delivers and confirms (see [`crate::destination::Destination`] for what each
//!    destination guarantees); what an earlier run left of unknown fate is settled first.
//! 3. The cursor is committed only after the destination confirmed the stream's delivery.
//!
//! An error in one stream (an Intacct failure, a refused row) fails that stream only; the run is then
//! `partial` and the error, with Intacct's correction text, is in `runs show` and the audit trail.
//!
//! | module | job |
//! |---|---|
//! | [`job`] | the connection's sources ([`Context`]), [`RunOptions`], one stream's [`Job`] |
//! | [`plan`] | a stream's table schema, from the catalogue, `lookup` and the user's column mapping |
//! | [`transform`] | Intacct text values → typed values (pure) |
//! | [`extract`] | pages from Intacct → typed records → staged (mirror, audit, outbox, cursor), deletes |
//! | [`preview`] | `sync --dry-run`: what a run would read and push, changing nothing |
//! | [`events`] | progress events for the CLI's bars and logs |
//! | [`report`] | what a run reports: per-stream counts, errors, outcome |
//! | [`error`] | [`PipelineError`] |
//! | [`replay`], [`verify`] | re-pushing an earlier run; comparing the destination with the mirror |

pub mod error;
pub mod events;
pub mod extract;
pub mod job;
pub mod plan;
pub mod preview;
pub mod replay;
pub mod report;
pub mod transform;
pub mod verify;

use std::sync::Arc;

pub use error::PipelineError;
pub use events::{Events, RunEvent};
pub use job::{Context, Job, RunOptions};
pub use report::{RunReport, RunStatus, StreamReport};

use ml_store::RunId;

use crate::config::StreamConfig;
use crate::destination::Destination;
use crate::scheduler::lease;
use plan::StreamPlan;
use report::{store_status, stream_result};
use transform::TimeContext;

/// A connection ready to run: its sources and the destination its rows go to.
#[derive(Clone)]
pub struct Connection {
    pub ctx: Context,
    pub destination: Arc<dyn Destination>,
}

/// Everything of the context is read as `conn.store`, `conn.config`, ... : a connection *is* its
/// context plus where it delivers.
impl std::ops::Deref for Connection {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

impl Connection {
    fn selected_streams(&self, opts: &RunOptions) -> Result<Vec<StreamConfig>, PipelineError> {
        if opts.streams.is_empty() {
            return Ok(self.config.streams.clone());
        }
        let mut out = Vec::new();
        for wanted in &opts.streams {
            let found = self.config.streams.iter().find(|s| {
                s.object.eq_ignore_ascii_case(wanted) || s.table.eq_ignore_ascii_case(wanted)
            });
            match found {
                Some(s) => out.push(s.clone()),
                None => {
                    return Err(PipelineError::UnknownStream(format!(
                        "connection {} has no stream {wanted:?}; configured: {}",
                        self.config.name,
                        self.config
                            .streams
                            .iter()
                            .map(|s| s.object.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Runs the connection once. Errors of single streams are in the report; an `Err` means the run could
    /// not even start (the store is unreachable).
    pub async fn run(
        &self,
        opts: &RunOptions,
        events: &Events,
    ) -> Result<RunReport, PipelineError> {
        // A stream name that matches nothing is the caller's mistake: said before anything starts.
        self.selected_streams(opts)?;
        // One run of a connection at a time, whatever process starts it.
        let worker = lease::worker_id(opts.worker.as_deref());
        let held = lease::acquire_or_explain(&self.store, &self.config.name, &worker).await?;
        // Runs left `running` by a process that died are over: say so (their work is resumed below).
        for r in self.store.unfinished_runs(&self.config.name).await? {
            self.store
                .finish_run(
                    r.id,
                    ml_store::RunStatus::Interrupted,
                    serde_json::json!({"setup_error": "the process running it stopped; the next run resumed its work"}),
                )
                .await?;
        }
        let result = self.run_holding_lease(opts, events).await;
        held.release().await;
        result
    }

    async fn run_holding_lease(
        &self,
        opts: &RunOptions,
        events: &Events,
    ) -> Result<RunReport, PipelineError> {
        let name = self.config.name.clone();
        self.store.ensure_connection(&name).await?;
        let run = self.store.begin_run(&name, &opts.trigger).await?;
        events.emit(RunEvent::RunStarted {
            connection: name.clone(),
            run: run.0,
        });
        let forward = self.destination.relay_events(events);
        let outcome = self.run_streams(run, opts, events).await;
        let refused;
        let (status, streams, setup_error) = match outcome {
            Ok(streams) => {
                let failed = streams.iter().filter(|s| s.error.is_some()).count();
                let postponed = streams.iter().filter(|s| s.postponed.is_some()).count();
                let status = if opts.cancel.is_cancelled() && failed > 0 {
                    RunStatus::Interrupted
                } else if failed == 0 && postponed == 0 {
                    RunStatus::Succeeded
                } else if failed == streams.len() {
                    RunStatus::Failed
                } else {
                    RunStatus::Partial
                };
                refused = streams.iter().any(|s| s.refused);
                (status, streams, None)
            }
            Err(e) => {
                refused = e.is_refusal();
                (RunStatus::Failed, Vec::new(), Some(e.to_string()))
            }
        };
        let summary = serde_json::json!({
            "setup_error": setup_error,
            "streams": streams.iter().map(|s| serde_json::json!({
                "object": s.object, "table": s.table, "extracted": s.extracted, "inserted": s.inserted,
                "updated": s.updated, "unchanged": s.unchanged, "deleted": s.deleted, "pushed": s.pushed,
                "error": s.error, "postponed": s.postponed,
            })).collect::<Vec<_>>(),
        });
        if let Some(f) = forward {
            f.abort();
        }
        self.store
            .finish_run(run, store_status(&status), summary)
            .await?;
        if let Some(keep) = self.audit_retention {
            let before = self.clock.now() - chrono::Duration::from_std(keep).unwrap_or_default();
            match self.store.audit_prune(&name, before).await {
                Ok(p) if p.deleted > 0 => {
                    tracing::info!(deleted = p.deleted, "pruned old audit entries")
                }
                Ok(_) => {}
                // Pruning refuses a chain that does not verify: that must be seen, but the run itself is done.
                Err(e) => tracing::error!(error = %e, "audit entries were not pruned"),
            }
        }
        events.emit(RunEvent::RunFinished {
            run: run.0,
            status: status.as_str().into(),
        });
        Ok(RunReport {
            run: run.0,
            status,
            streams,
            setup_error,
            refused,
        })
    }

    async fn run_streams(
        &self,
        run: RunId,
        opts: &RunOptions,
        events: &Events,
    ) -> Result<Vec<StreamReport>, PipelineError> {
        let streams = self.selected_streams(opts)?;
        let time = self.time_context().await?;
        // Plans need each object's definition; a failed lookup only fails its own stream.
        let mut planned: Vec<(StreamConfig, Result<StreamPlan, PipelineError>)> = Vec::new();
        for s in streams {
            let plan = self.plan(&s).await;
            planned.push((s, plan));
        }
        let ok_plans: Vec<&StreamPlan> = planned
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .collect();
        self.destination.prepare(&self.ctx, &ok_plans).await?;

        let mut reports = Vec::new();
        for (stream, plan) in planned {
            let started = std::time::Instant::now();
            events.emit(RunEvent::StreamStarted {
                stream: stream.object.clone(),
                table: stream.table.clone(),
            });
            let mut report = StreamReport {
                object: stream.object.clone(),
                table: stream.table.clone(),
                ..Default::default()
            };
            let result = match plan {
                Ok(plan) => {
                    let job = Job {
                        conn: &self.ctx,
                        run,
                        stream: &stream,
                        plan: &plan,
                        time: &time,
                        opts,
                        events,
                    };
                    self.run_stream(&job, &mut report).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {}
                Err(PipelineError::Postponed { message, until }) => {
                    tracing::warn!(stream = %stream.object, "{message}");
                    report.postponed = Some(message);
                    report.postponed_until = until;
                }
                Err(e) => {
                    report.refused = e.is_refusal();
                    report.error = Some(e.to_string());
                }
            }
            report.elapsed = started.elapsed();
            self.store
                .record_stream_result(run, &stream.object, &stream_result(&report))
                .await?;
            events.emit(RunEvent::StreamFinished {
                stream: stream.object.clone(),
                ok: report.error.is_none() && report.postponed.is_none(),
                message: report.error.clone().or_else(|| report.postponed.clone()),
            });
            reports.push(report);
        }
        Ok(reports)
    }

    async fn run_stream(
        &self,
        job: &Job<'_>,
        report: &mut StreamReport,
    ) -> Result<(), PipelineError> {
        let conn = self.config.name.as_str();
        let Job { stream, opts, .. } = *job;
        // Work a crashed or failed run left behind comes first, so a resumed run finishes it.
        self.destination.settle(job, report).await?;
        if opts.full {
            self.store.reset_cursor(conn, &stream.object).await?;
        }
        extract::extract_and_stage(job, report).await?;
        job.check_cancel()?;
        self.destination.deliver(job, report).await?;
        if !report.failed.is_empty() {
            return Err(PipelineError::Other(format!(
                "{} record(s) could not be converted and were not pushed (the cursor stays before them, so they are read again next run): {}",
                report.failed.len(),
                report
                    .failed
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        self.store.commit_cursor(conn, &stream.object).await?;
        Ok(())
    }

    async fn plan(&self, stream: &StreamConfig) -> Result<StreamPlan, PipelineError> {
        let lookup_object = if stream.kind == crate::catalogue::StreamKind::Balances {
            "GLACCOUNTBALANCE"
        } else {
            stream.object.as_str()
        };
        let fields = match self.intacct.lookup(lookup_object).await {
            Ok(def) => Some(
                def.fields
                    .iter()
                    .map(|f| (f.id.to_ascii_uppercase(), f.data_type.clone()))
                    .collect::<plan::FieldTypes>(),
            ),
            Err(e) if e.is_retryable() => return Err(e.into()),
            // An object this company does not have (a typo such as LOCATIONS): Intacct's own error,
            // on this stream only; its table is left out of the dataset's preparation.
            Err(e) if e.kind == ml_intacct::ErrorKind::ObjectNotFound => return Err(e.into()),
            Err(e) => {
                // `lookup` succeeds even without read permission (reference §5.5), so a failure here is
                // unusual; fall back to the catalogue and let the read itself report what is wrong.
                tracing::warn!(object = lookup_object, error = %e, "lookup failed; using the catalogue's fields");
                None
            }
        };
        Ok(plan::plan_stream(stream, fields.as_ref())?)
    }

    /// The API user's time zone, from `readUserFormatting`; UTC with a warning when it cannot be read.
    /// Also the run's first Intacct call: a sign-in Intacct refuses stops the run here, before
    /// every stream would meet the same refusal.
    async fn time_context(&self) -> Result<TimeContext, PipelineError> {
        Ok(match self.intacct.user_formatting().await {
            Ok(f) => match transform::parse_gmt_offset(&f.gmt_offset) {
                Some(user_offset) => TimeContext { user_offset },
                None => {
                    tracing::warn!(gmtoffset = %f.gmt_offset, "unreadable GMT offset in the API user's formatting; reading timestamps as UTC");
                    TimeContext::default()
                }
            },
            Err(e) if e.is_refused_sign_in() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the API user's formatting; reading timestamps as UTC");
                TimeContext::default()
            }
        })
    }
}
