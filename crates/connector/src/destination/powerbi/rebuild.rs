//! Rebuilding a replace table from the mirror: delete all rows, push the mirror. A push dataset
//! cannot update or delete by key, so this is how a replace table follows Intacct; a failed or
//! ambiguous batch makes the rebuild start over, so the result is the same table whatever happened
//! before.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use ml_powerbi::BatchOutcome;
use ml_store::{Delivery, DeliveryOutcome};

use super::PushDataset;
use super::batches::{drain, mirror_batches, paced_sends};
use super::budget::{self, Budget, RebuildCost, thousands};
use super::target::{Target, mark_dirty};
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::RunEvent;
use crate::pipeline::job::Job;
use crate::pipeline::report::StreamReport;

/// A rebuild that keeps meeting ambiguous batches gives up after this many attempts (and stays dirty).
const MAX_REBUILDS: usize = 3;

/// Rebuilds a replace table from the mirror. Converges whatever the table held before.
pub(super) async fn rebuild(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        opts,
        events,
        ..
    } = *job;
    let name = conn.config.name.as_str();
    let tt = target.table(&plan.table);
    preflight(push, job, target).await?;
    let mut last_error = String::new();
    for attempt in 1..=MAX_REBUILDS {
        mark_dirty(conn, &stream.object, "rebuild started").await?;
        push.client
            .delete_rows(&target.group_id, &target.dataset_id, &plan.table)
            .await?;
        let mut pushed: u64 = 0;
        let mut deliveries = Vec::new();
        let mut ok = true;
        // Set on the first failure (or a cancel): no new batch leaves, but those in flight are
        // awaited, because one dropped mid-POST could still land after the next attempt's delete.
        let stop = AtomicBool::new(false);
        let sends = paced_sends(
            conn,
            push,
            &tt,
            mirror_batches(conn, push, &stream.object),
            0,
            &stop,
            &opts.cancel,
            |_, _| futures::future::ready(Ok(())),
        );
        let mut sends = std::pin::pin!(sends);
        while let Some(result) = sends.next().await {
            let result = match result {
                Ok((_, r)) => r,
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    drain(&mut sends).await;
                    return Err(e);
                }
            };
            match &result.outcome {
                BatchOutcome::Accepted => {
                    pushed += result.rows as u64;
                    report.pushed += result.rows as u64;
                    events.emit(RunEvent::Pushed {
                        stream: stream.object.clone(),
                        rows: report.pushed,
                    });
                }
                BatchOutcome::Ambiguous { why } => {
                    last_error = format!(
                        "batch {} of table {} had an unknown fate: {why}",
                        result.batch_id, plan.table
                    );
                    ok = false;
                    stop.store(true, Ordering::Relaxed);
                }
                BatchOutcome::Failed(e) => {
                    last_error = e.to_string();
                    ok = false;
                    stop.store(true, Ordering::Relaxed);
                    if !e.is_retryable() {
                        // A refused row or a permission problem will not change by rebuilding again.
                        drain(&mut sends).await;
                        return Err(PipelineError::Other(last_error));
                    }
                }
            }
            deliveries.push(Delivery {
                run,
                batch_id: result.batch_id.to_string(),
                request_id: result.request_id.clone(),
                outcome: match result.outcome {
                    BatchOutcome::Accepted => DeliveryOutcome::Accepted,
                    BatchOutcome::Ambiguous { .. } => DeliveryOutcome::Ambiguous,
                    BatchOutcome::Failed(_) => DeliveryOutcome::Failed,
                },
                error: None,
            });
        }
        if opts.cancel.is_cancelled() {
            // The table stays dirty: the next run rebuilds it from the start.
            return Err(PipelineError::Interrupted);
        }
        if ok {
            conn.store
                .mark_reloaded(name, &stream.object, run, pushed, &deliveries)
                .await?;
            return Ok(());
        }
        tracing::warn!(table = %plan.table, attempt, error = %last_error, "rebuilding the table again");
    }
    Err(PipelineError::Other(format!(
        "table {} could not be rebuilt after {MAX_REBUILDS} attempts ({last_error}); it will be rebuilt on the next run",
        plan.table
    )))
}

/// A rebuild empties the table first, so it starts only when it can finish: Power BI answers just
/// before, and what the last hour's POSTs (every process's) left of the dataset's budgets covers
/// the whole table. Otherwise the stream is postponed and the table keeps its rows.
async fn preflight(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
) -> Result<(), PipelineError> {
    let Job {
        conn, stream, plan, ..
    } = *job;
    if let Err(e) = push
        .client
        .list_tables(&target.group_id, &target.dataset_id)
        .await
    {
        if !e.is_retryable() {
            return Err(e.into());
        }
        return Err(PipelineError::Postponed {
            message: format!(
                "{}: Power BI did not answer just before the rebuild ({e}); the table keeps its current rows, and the next run rebuilds it",
                plan.table
            ),
            until: None,
        });
    }
    let limits = push.pusher.limits();
    let rows = conn
        .store
        .mirror_count(&conn.config.name, &stream.object)
        .await?;
    let now = conn.clock.now();
    let hour = chrono::Duration::from_std(limits.hour).unwrap_or(chrono::Duration::hours(1));
    let posts = conn
        .store
        .recent_posts(&target.dataset_id, now - hour)
        .await?;
    match budget::check(limits, RebuildCost::of(rows, limits), &posts, now) {
        Budget::Fits => Ok(()),
        Budget::FitsOnlyAnEmptyHour => {
            tracing::warn!(
                table = %plan.table,
                rows,
                "the table is larger than one hour of Power BI's push budget ({} rows): the rebuild will leave it partial until it finishes; mode = \"append\" or a destination that updates by key avoids rebuilds",
                thousands(limits.rows_per_hour)
            );
            Ok(())
        }
        Budget::Later { until, needs } => Err(PipelineError::Postponed {
            message: format!(
                "{}: rebuild of {} rows {needs}; postponed until {}; the table keeps its current rows",
                plan.table,
                thousands(rows),
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            until: Some(until),
        }),
    }
}
