//! Power BI push datasets as a destination.
//!
//! A push dataset has no update or delete by key, so:
//! - a `replace` table is rebuilt from the local mirror (delete all rows, push the mirror) whenever
//!   the mirror changed since the last confirmed load ([`rebuild`]);
//! - an `append` table gets each staged row once, through the outbox, with batches of unknown fate
//!   settled by counting the table's rows ([`outbox`]).
//!
//! | module | job |
//! |---|---|
//! | [`target`] | the dataset a run delivers to; marking a table for a rebuild |
//! | [`dataset`] | finding, adopting or creating the dataset; keeping its tables in line with the plans |
//! | [`migrate`] | `dataset migrate`: a new dataset with every configured table, filled, reports rebound |
//! | [`batches`] | rows → batches → paced POSTs, recorded for the next process's pacer |
//! | [`budget`] | whether a rebuild fits what the hour's budgets left, before the table is emptied |
//! | [`rebuild`] | rebuilding a replace table from the mirror |
//! | [`outbox`] | the append outbox and the settling of batches of unknown fate |
//! | [`count`] | a table's row count through executeQueries |
//! | [`preview`] | `sync --dry-run`: the rows each table would push, priced against the hour's budget |
//! | [`pacing`] | POST history in the store, so every process starts from the hour's real budget |

pub mod batches;
pub mod budget;
pub mod count;
pub mod dataset;
pub mod migrate;
pub mod outbox;
pub mod pacing;
pub mod preview;
pub mod rebuild;
pub mod target;

use std::any::Any;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ml_clock::SharedClock;
use ml_powerbi::{PowerBiClient, PushLimits, Pusher};

use super::Destination;
use super::preview::DeliveryPreview;
use crate::config::Mode;
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::{Events, RunEvent};
use crate::pipeline::job::{Context, Job};
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::preview::StreamRead;
use crate::pipeline::report::StreamReport;
pub use target::Target;

/// A connection's push dataset: the REST client, the pacer every POST goes through, and the
/// dataset this run delivers to (set by [`Destination::prepare`]).
pub struct PushDataset {
    pub client: PowerBiClient,
    pub pusher: Arc<Pusher>,
    prepared: Mutex<Option<Target>>,
    /// The waits before a rebuild's next pass when Power BI failed one (see [`rebuild`]).
    rebuild_retries: Vec<std::time::Duration>,
}

impl PushDataset {
    pub fn new(client: PowerBiClient, pusher: Arc<Pusher>) -> Self {
        PushDataset {
            client,
            pusher,
            prepared: Mutex::new(None),
            rebuild_retries: rebuild::RETRY_WAITS.to_vec(),
        }
    }

    /// With other waits before a rebuild's next pass after Power BI failed one (one pass more than
    /// waits; none: a failed pass fails the stream).
    pub fn with_rebuild_retries(mut self, waits: Vec<std::time::Duration>) -> Self {
        self.rebuild_retries = waits;
        self
    }

    /// With its own pacer under `limits`, dating its POSTs by `clock` (the history the next
    /// process paces from).
    pub fn with_limits(client: PowerBiClient, limits: PushLimits, clock: SharedClock) -> Self {
        let pusher = Arc::new(Pusher::new(client.clone(), limits).with_clock(clock));
        Self::new(client, pusher)
    }

    /// The push dataset behind a connection's destination, for the commands only it supports
    /// (`replay`, `verify`, `powerbi push`).
    pub fn of<'a>(
        destination: &'a dyn Destination,
        connection: &str,
        command: &str,
    ) -> Result<&'a PushDataset, PipelineError> {
        destination.as_any().downcast_ref().ok_or_else(|| {
            PipelineError::Other(format!(
                "connection {connection} delivers to a {}; `{command}` works with Power BI push datasets only",
                destination.describe()
            ))
        })
    }

    /// Says, before a table's delivery, how many rows it will push and what the hour's budget has
    /// left (every process's POSTs, as the store records them).
    /// Now, and the dataset's POSTs (every process's) that still count against the hour's budget.
    pub(super) async fn hour_of_posts(
        &self,
        ctx: &Context,
        dataset_id: &str,
    ) -> Result<(chrono::DateTime<chrono::Utc>, Vec<ml_store::PushPost>), PipelineError> {
        let now = ctx.clock.now();
        let hour = chrono::Duration::from_std(self.pusher.limits().hour)
            .unwrap_or(chrono::Duration::hours(1));
        Ok((now, ctx.store.recent_posts(dataset_id, now - hour).await?))
    }

    async fn log_cost(
        &self,
        ctx: &Context,
        target: &Target,
        table: &str,
        rows: u64,
        how: &str,
    ) -> Result<(), PipelineError> {
        let (now, posts) = self.hour_of_posts(ctx, &target.dataset_id).await?;
        log_cost(self.pusher.limits(), table, rows, how, &posts, now);
        Ok(())
    }

    /// The dataset this run prepared.
    fn target(&self) -> Result<Target, PipelineError> {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                PipelineError::Other(
                    "internal: the Power BI dataset was not prepared before delivery".into(),
                )
            })
    }
}

#[async_trait]
impl Destination for PushDataset {
    fn describe(&self) -> &'static str {
        "Power BI push dataset"
    }

    async fn prepare(&self, ctx: &Context, plans: &[&StreamPlan]) -> Result<(), PipelineError> {
        let target = dataset::ensure(ctx, &self.client, plans).await?;
        pacing::seed(
            ctx.store.as_ref(),
            ctx.clock.as_ref(),
            &self.pusher,
            &target.dataset_id,
        )
        .await?;
        *self.prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(target);
        Ok(())
    }

    /// In-flight append batches are resolved by counting, then undelivered rows are sent.
    async fn settle(&self, job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
        if job.stream.mode == Mode::Append {
            let target = self.target()?;
            outbox::resolve_in_flight(self, job, &target).await?;
            outbox::send_outbox(self, job, &target, report).await?;
        }
        Ok(())
    }

    async fn deliver(&self, job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
        let Job {
            conn, stream, opts, ..
        } = *job;
        let target = self.target()?;
        match stream.mode {
            Mode::Append => {
                let rows = conn
                    .store
                    .outbox_count(&conn.config.name, &stream.object)
                    .await?;
                self.log_cost(conn, &target, &stream.table, rows, "append")
                    .await?;
                outbox::send_outbox(self, job, &target, report).await?
            }
            Mode::Replace => {
                let state = conn
                    .store
                    .stream_state(&conn.config.name, &stream.object)
                    .await?;
                if state.dirty || opts.full || target.recreated {
                    // The rebuild's preflight reads the table's rows and the hour's POSTs, and
                    // logs the cost from them.
                    rebuild::rebuild(self, job, &target, state, report).await?;
                } else {
                    self.log_cost(conn, &target, &stream.table, 0, "unchanged")
                        .await?;
                }
            }
        }
        report.table_rows = conn
            .store
            .stream_state(&conn.config.name, &stream.object)
            .await?
            .table_rows;
        Ok(())
    }

    async fn preview(
        &self,
        ctx: &Context,
        reads: &[StreamRead],
        full: bool,
    ) -> Result<Option<DeliveryPreview>, PipelineError> {
        preview::preview(self, ctx, reads, full).await.map(Some)
    }

    /// Relays the pusher's "waiting for a budget" notices to the run's events while it runs.
    fn relay_events(&self, events: &Events) -> Option<tokio::task::JoinHandle<()>> {
        let mut rx = self.pusher.events();
        let events = events.clone();
        Some(tokio::spawn(async move {
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
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The line a run logs before a table's delivery: what it will push, and the budget left.
pub(super) fn log_cost(
    limits: &ml_powerbi::PushLimits,
    table: &str,
    rows: u64,
    how: &str,
    posts: &[ml_store::PushPost],
    now: chrono::DateTime<chrono::Utc>,
) {
    let used = budget::Used::of(limits, posts, now);
    tracing::info!(
        table,
        rows,
        delivery = how,
        budget_rows_left = used.rows_left(limits),
        "{table}: {} rows to push ({how}); {} of the hour's {} rows left",
        budget::thousands(rows),
        budget::thousands(used.rows_left(limits)),
        budget::thousands(limits.rows_per_hour)
    );
}
