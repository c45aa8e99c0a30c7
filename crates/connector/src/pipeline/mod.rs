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
//! | [`marker`] | when a stream's periodic work was last done |
//! | `quiet` | which streams have nothing to read this run, asked in one request |
//! | [`events`] | progress events for the CLI's bars and logs |
//! | [`report`] | what a run reports: per-stream counts, errors, outcome |
//! | [`error`] | [`PipelineError`] |
//! | [`replay`], [`verify`] | re-pushing an earlier run; comparing the destination with the mirror |

pub mod error;
pub mod events;
pub mod extract;
pub mod job;
pub mod marker;
pub mod plan;
pub mod preview;
mod quiet;
pub mod replay;
pub mod report;
pub mod transform;
pub mod verify;

use std::sync::Arc;

pub use error::PipelineError;
pub use events::{Events, RunEvent};
pub use job::{Context, Job, Ready, RunOptions};
pub use report::{RunReport, RunStatus, StreamReport};

use ml_store::RunId;

use crate::config::StreamConfig;
use crate::destination::Destination;
use crate::scheduler::lease;
use plan::StreamPlan;
use report::{store_status, stream_result};
use transform::TimeContext;

/// Streams of one run read side by side at most. Memory bounds it: each holds a staging batch
/// (up to 10,000 records while pages come fast) and a page or two fetched ahead.
const MAX_STREAMS_AT_ONCE: usize = 8;

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
        // The user's formatting and every stream's object definition: one round trip.
        let (time, planned) = self.set_up(streams).await?;
        let ok_plans: Vec<&StreamPlan> = planned
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .collect();

        // The destination is prepared (datasets looked up, tables checked) while the streams read
        // their first pages; staging waits for it (see `Ready`), delivering too. Should it fail,
        // the reads stop, nothing was staged, and the run fails with its error, as before any
        // read.
        let reading = opts.cancel.child_token();
        let stream_opts = RunOptions {
            cancel: reading.clone(),
            ..opts.clone()
        };
        let (ready_tx, ready) = tokio::sync::watch::channel(None::<bool>);
        let failed_setup = std::sync::Mutex::new(None::<PipelineError>);
        let prepare = async {
            let outcome = self.destination.prepare(&self.ctx, &ok_plans).await;
            let ok = outcome.is_ok();
            if let Err(e) = outcome {
                *failed_setup.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                reading.cancel();
            }
            let _ = ready_tx.send(Some(ok));
        };
        // Deliveries go one at a time: each prices itself against the hour's push budget left
        // by the ones before (rebuild preflight), which deliveries running side by side could
        // both count as theirs. Reads do not wait for them.
        let delivering = tokio::sync::Mutex::new(());
        let gate = Gate {
            ready: Ready::when(ready),
            delivering: &delivering,
        };
        // Streams run side by side and share the company's request slots (the client's
        // concurrency limit): a slot one stream leaves free while it stages or delivers goes to
        // another's next page, and queries waiting together go out in one request (the first
        // pages of several streams, their deletes). Up to eight at a time.
        let width = planned.len().clamp(1, MAX_STREAMS_AT_ONCE);
        let streams = async {
            // Which streams have nothing to read: one request for all (see `quiet`), while the
            // destination is prepared.
            let quiet = quiet::quiet_streams(&self.ctx, &planned, opts).await;
            // Built in a loop, not by a closure: a closure's future is not provably `Send` for
            // every lifetime, which the scheduler's spawned runs need.
            let mut jobs = Vec::with_capacity(planned.len());
            for (stream, plan) in &planned {
                let quiet = quiet.get(&stream.object).copied();
                jobs.push(self.stream_in_run(
                    run,
                    (stream, plan, quiet),
                    &time,
                    &stream_opts,
                    events,
                    &gate,
                ));
            }
            futures::StreamExt::collect::<Vec<_>>(futures::StreamExt::buffered(
                futures::stream::iter(jobs),
                width,
            ))
            .await
        };
        let (reports, ()) = tokio::join!(streams, prepare);
        if let Some(e) = failed_setup.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        reports.into_iter().collect()
    }

    /// One stream's part of a run, recorded in the store when it ends.
    #[allow(clippy::too_many_arguments)]
    async fn stream_in_run(
        &self,
        run: RunId,
        (stream, plan, quiet): (
            &StreamConfig,
            &Result<StreamPlan, PipelineError>,
            Option<bool>,
        ),
        time: &TimeContext,
        opts: &RunOptions,
        events: &Events,
        gate: &Gate<'_>,
    ) -> Result<StreamReport, PipelineError> {
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
                    stream,
                    plan,
                    time,
                    opts,
                    events,
                    ready: &gate.ready,
                };
                self.run_stream(&job, &mut report, gate, quiet).await
            }
            Err(e) => {
                report.refused = e.is_refusal();
                report.error = Some(e.to_string());
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            // The destination could not be prepared: the run fails with that error, not this
            // stream with a consequence of it.
            Err(_) if gate.failed() => return Ok(report),
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
        Ok(report)
    }

    async fn run_stream(
        &self,
        job: &Job<'_>,
        report: &mut StreamReport,
        gate: &Gate<'_>,
        quiet: Option<bool>,
    ) -> Result<(), PipelineError> {
        let conn = self.config.name.as_str();
        let Job { stream, opts, .. } = *job;
        if opts.full {
            self.store.reset_cursor(conn, &stream.object).await?;
        }
        let read_from = self.committed_cursor(&stream.object).await?;
        // `Some(on_cursor)`: Intacct said this read would return nothing; `on_cursor`: the
        // question rested on the stream's cursor.
        if let Some(on_cursor) = quiet {
            let turn = gate.delivery_turn().await?;
            // Unless preparing the destination reset the cursor (a table whose columns changed
            // needs every record again), Intacct has nothing for this read: the cursor stays,
            // nothing is staged, and the delivery still runs (a table due for a rebuild gets it).
            // (A question that rested on the cursor: none now means it was reset.)
            if !on_cursor || self.committed_cursor(&stream.object).await?.is_some() {
                tracing::debug!(stream = %stream.object, "nothing changed since the cursor; not read");
                self.destination.settle(job, report).await?;
                self.destination.deliver(job, report).await?;
                return Ok(());
            }
            drop(turn);
        }
        let started = self.clock.now().naive_utc();
        extract::extract_and_stage(job, report).await?;
        job.check_cancel()?;
        let _turn = gate.delivery_turn().await?;
        // The destination was prepared while this stream read. Preparing can reset a cursor (a
        // table whose columns changed must get every record again, not just the changed ones):
        // then the read just made was not enough, and the whole object is read now.
        if read_from.is_some() && self.committed_cursor(&stream.object).await?.is_none() {
            tracing::info!(stream = %stream.object, "the destination asked for every record again; reading the whole object");
            *report = StreamReport {
                object: report.object.clone(),
                table: report.table.clone(),
                ..Default::default()
            };
            extract::extract_and_stage(job, report).await?;
            job.check_cancel()?;
        }
        // Work a crashed or failed run left behind (batches of unknown fate) is settled before
        // anything new is delivered, so a resumed run finishes it.
        self.destination.settle(job, report).await?;
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
        marker::confirm_with_cursor(&self.ctx, &stream.object).await?;
        if !stream.lookback.is_zero() {
            quiet::window_read(&self.ctx, job.run, stream, started).await?;
        }
        Ok(())
    }

    async fn committed_cursor(
        &self,
        stream: &str,
    ) -> Result<Option<ml_store::CursorPos>, PipelineError> {
        Ok(self
            .store
            .cursor(&self.config.name, stream)
            .await?
            .and_then(|c| c.committed))
    }

    /// The run's set-up in one Intacct round trip: the API user's time zone (`readUserFormatting`)
    /// and a plan for each stream from its object's `lookup`. It is also the run's first Intacct
    /// call: a sign-in Intacct refuses stops the run here, before every stream meets the same
    /// refusal.
    async fn set_up(
        &self,
        streams: Vec<StreamConfig>,
    ) -> Result<(TimeContext, Planned), PipelineError> {
        let objects: Vec<&str> = streams.iter().map(lookup_object).collect();
        let setup = match self.intacct.setup(&objects).await {
            Ok(s) => s,
            Err(e) if e.is_refused_sign_in() => return Err(e.into()),
            // The request as a whole failed (Intacct unreachable after the retries): every
            // stream fails with it, and the run says so per stream.
            Err(e) => {
                tracing::warn!(error = %e, "could not read the API user's formatting; reading timestamps as UTC");
                let planned = streams
                    .into_iter()
                    .map(|s| (s, Err(PipelineError::from(e.clone()))))
                    .collect();
                return Ok((TimeContext::default(), planned));
            }
        };
        let time = time_context(setup.formatting);
        let planned = streams
            .into_iter()
            .zip(setup.lookups)
            .map(|(s, lookup)| {
                let plan = plan(&s, lookup);
                (s, plan)
            })
            .collect();
        Ok((time, planned))
    }
}

/// Each configured stream with its plan, or why it has none.
type Planned = Vec<(StreamConfig, Result<StreamPlan, PipelineError>)>;

/// The object whose definition a stream's plan is made from.
fn lookup_object(stream: &StreamConfig) -> &str {
    if stream.kind == crate::catalogue::StreamKind::Balances {
        "GLACCOUNTBALANCE"
    } else {
        stream.object.as_str()
    }
}

/// A stream's plan from its object's `lookup`.
fn plan(
    stream: &StreamConfig,
    lookup: Result<ml_intacct::protocol::ObjectDefinition, ml_intacct::IntacctError>,
) -> Result<StreamPlan, PipelineError> {
    let fields = match lookup {
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
            tracing::warn!(object = lookup_object(stream), error = %e, "lookup failed; using the catalogue's fields");
            None
        }
    };
    Ok(plan::plan_stream(stream, fields.as_ref())?)
}

/// The API user's time zone from `readUserFormatting`; UTC with a warning when it cannot be read.
fn time_context(
    formatting: Result<ml_intacct::UserFormatting, ml_intacct::IntacctError>,
) -> TimeContext {
    match formatting {
        Ok(f) => match transform::parse_gmt_offset(&f.gmt_offset) {
            Some(user_offset) => TimeContext { user_offset },
            None => {
                tracing::warn!(gmtoffset = %f.gmt_offset, "unreadable GMT offset in the API user's formatting; reading timestamps as UTC");
                TimeContext::default()
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not read the API user's formatting; reading timestamps as UTC");
            TimeContext::default()
        }
    }
}

/// Where a stream waits, after its reads, for the destination to be prepared and for its turn to
/// deliver.
struct Gate<'a> {
    ready: Ready,
    delivering: &'a tokio::sync::Mutex<()>,
}

impl Gate<'_> {
    /// Waits for the destination, then for the other streams' deliveries to finish.
    async fn delivery_turn(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, PipelineError> {
        self.ready.wait().await?;
        Ok(self.delivering.lock().await)
    }

    fn failed(&self) -> bool {
        self.ready.failed()
    }
}
