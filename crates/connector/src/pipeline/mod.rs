//! One run of a connection: for each stream, extract what changed, stage it durably, load it into Power BI.
//!
//! The order of durable steps is what makes a crash at any point harmless (DESIGN.md invariants 1 and 2):
//!
//! 1. Pages are staged (mirror, audit, outbox, *pending* cursor) in one transaction each.
//! 2. Rows are marked in flight before a batch is sent, delivered only after Power BI accepted it. A crash
//!    between the two leaves them "in flight", which the next run resolves by counting the table's rows
//!    (append) or by rebuilding the table (replace) — never by blindly sending again.
//! 3. The cursor is committed only after the stream's load is confirmed.
//!
//! An error in one stream (an Intacct failure, a refused row) fails that stream only; the run is then
//! `partial` and the error, with Intacct's correction text, is in `runs show` and the audit trail.

pub mod dataset;
pub mod events;
pub mod extract;
pub mod load;
pub mod pacing;

use std::sync::Arc;

use ml_intacct::IntacctClient;
use ml_powerbi::{PowerBiClient, Pusher};
use ml_store::{RunId, Store};

pub use events::{Events, RunEvent};

use crate::config::{ConnectionConfig, StreamConfig};
use crate::plan::{self, StreamPlan};
use crate::transform::TimeContext;

/// Everything a run of one connection needs.
#[derive(Clone)]
pub struct Connection {
    pub config: ConnectionConfig,
    pub store: Arc<dyn Store>,
    pub intacct: IntacctClient,
    pub powerbi: PowerBiClient,
    pub pusher: Arc<Pusher>,
    /// Prune audit entries older than this after each run.
    pub audit_retention: Option<std::time::Duration>,
}

/// One stream's work within a run: what every extract and load step needs.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub conn: &'a Connection,
    pub run: RunId,
    pub stream: &'a StreamConfig,
    pub plan: &'a StreamPlan,
    pub target: &'a dataset::Target,
    pub time: &'a TimeContext,
    pub opts: &'a RunOptions,
    pub events: &'a Events,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Why the run happens: `manual`, `schedule`, `catch-up`, `demo`.
    pub trigger: String,
    /// Only these streams (object or table names); all when empty.
    pub streams: Vec<String>,
    /// Ignore cursors, compare keys for deletes, reload every table.
    pub full: bool,
    /// Cancelled by SIGTERM: the run stops after the current page or batches, leaving resumable state.
    pub cancel: tokio_util::sync::CancellationToken,
    /// The worker id in the run lease (default `host:pid`).
    pub worker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Partial,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    pub object: String,
    pub table: String,
    pub extracted: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub pushed: u64,
    pub table_rows: u64,
    /// Records that could not be transformed (each message names the record and field).
    pub failed: Vec<String>,
    pub error: Option<String>,
    pub elapsed: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run: i64,
    pub status: RunStatus,
    pub streams: Vec<StreamReport>,
    /// A failure before any stream could start (credentials, workspace, dataset).
    pub setup_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Intacct(Box<ml_intacct::IntacctError>),
    #[error(transparent)]
    PowerBi(Box<ml_powerbi::PowerBiError>),
    #[error(transparent)]
    Store(#[from] ml_store::StoreError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Transform(#[from] crate::transform::TransformError),
    #[error("interrupted: the run stopped after its current batch; the next run resumes from here")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl From<ml_intacct::IntacctError> for PipelineError {
    fn from(e: ml_intacct::IntacctError) -> Self {
        PipelineError::Intacct(Box::new(e))
    }
}

impl From<ml_powerbi::PowerBiError> for PipelineError {
    fn from(e: ml_powerbi::PowerBiError) -> Self {
        PipelineError::PowerBi(Box::new(e))
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
                    return Err(PipelineError::Other(format!(
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
        // One run of a connection at a time, whatever process starts it.
        let worker = crate::lease::worker_id(opts.worker.as_deref());
        let held =
            crate::lease::acquire_or_explain(&self.store, &self.config.name, &worker).await?;
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
        let forward = self.forward_push_events(events);
        let outcome = self.run_streams(run, opts, events).await;
        let (status, streams, setup_error) = match outcome {
            Ok(streams) => {
                let failed = streams.iter().filter(|s| s.error.is_some()).count();
                let status = if opts.cancel.is_cancelled() && failed > 0 {
                    RunStatus::Interrupted
                } else if failed == 0 {
                    RunStatus::Succeeded
                } else if failed == streams.len() {
                    RunStatus::Failed
                } else {
                    RunStatus::Partial
                };
                (status, streams, None)
            }
            Err(e) => (RunStatus::Failed, Vec::new(), Some(e.to_string())),
        };
        let summary = serde_json::json!({
            "setup_error": setup_error,
            "streams": streams.iter().map(|s| serde_json::json!({
                "object": s.object, "table": s.table, "extracted": s.extracted, "inserted": s.inserted,
                "updated": s.updated, "unchanged": s.unchanged, "deleted": s.deleted, "pushed": s.pushed,
                "error": s.error,
            })).collect::<Vec<_>>(),
        });
        forward.abort();
        self.store
            .finish_run(run, store_status(&status), summary)
            .await?;
        if let Some(keep) = self.audit_retention {
            let before = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
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
        })
    }

    async fn run_streams(
        &self,
        run: RunId,
        opts: &RunOptions,
        events: &Events,
    ) -> Result<Vec<StreamReport>, PipelineError> {
        let streams = self.selected_streams(opts)?;
        let time = self.time_context().await;
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
        let target = dataset::ensure(self, &ok_plans).await?;
        pacing::seed(self.store.as_ref(), &self.pusher, &target.dataset_id).await?;

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
                    self.run_stream(
                        run,
                        &stream,
                        &plan,
                        &target,
                        &time,
                        opts,
                        events,
                        &mut report,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                report.error = Some(e.to_string());
            }
            report.elapsed = started.elapsed();
            self.store
                .record_stream_result(run, &stream.object, &stream_result(&report))
                .await?;
            events.emit(RunEvent::StreamFinished {
                stream: stream.object.clone(),
                ok: report.error.is_none(),
                message: report.error.clone(),
            });
            reports.push(report);
        }
        Ok(reports)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_stream(
        &self,
        run: RunId,
        stream: &StreamConfig,
        plan: &StreamPlan,
        target: &dataset::Target,
        time: &TimeContext,
        opts: &RunOptions,
        events: &Events,
        report: &mut StreamReport,
    ) -> Result<(), PipelineError> {
        let conn = self.config.name.as_str();
        let job = Job {
            conn: self,
            run,
            stream,
            plan,
            target,
            time,
            opts,
            events,
        };
        // Work a crashed or failed run left behind comes first, so a resumed run finishes it.
        load::finish_pending(&job, report).await?;
        if opts.full {
            self.store.reset_cursor(conn, &stream.object).await?;
        }
        extract::extract_and_stage(&job, report).await?;
        if opts.cancel.is_cancelled() {
            return Err(PipelineError::Interrupted);
        }
        load::load(&job, report).await?;
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

    /// Relays the pusher's "waiting for a budget" notices to the run's events while it runs.
    fn forward_push_events(&self, events: &Events) -> tokio::task::JoinHandle<()> {
        let mut rx = self.pusher.events();
        let events = events.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ml_powerbi::PushEvent::Waiting {
                        dataset,
                        reason,
                        wait,
                    }) => events.emit(RunEvent::Waiting {
                        stream: dataset,
                        reason: reason.to_string(),
                        wait,
                    }),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
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
    async fn time_context(&self) -> TimeContext {
        match self.intacct.user_formatting().await {
            Ok(f) => match crate::transform::parse_gmt_offset(&f.gmt_offset) {
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
}

fn store_status(s: &RunStatus) -> ml_store::RunStatus {
    match s {
        RunStatus::Succeeded => ml_store::RunStatus::Succeeded,
        RunStatus::Partial => ml_store::RunStatus::Partial,
        RunStatus::Failed => ml_store::RunStatus::Failed,
        RunStatus::Interrupted => ml_store::RunStatus::Interrupted,
    }
}

fn stream_result(r: &StreamReport) -> ml_store::StreamResult {
    ml_store::StreamResult {
        status: Some(if r.error.is_none() {
            ml_store::StreamStatus::Ok
        } else {
            ml_store::StreamStatus::Failed
        }),
        extracted: r.extracted,
        staged: r.inserted + r.updated + r.unchanged + r.deleted,
        inserted: r.inserted,
        updated: r.updated,
        deleted: r.deleted,
        unchanged: r.unchanged,
        pushed: r.pushed,
        error: r.error.clone(),
    }
}
