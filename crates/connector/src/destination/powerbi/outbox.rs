//! The append outbox: rows staged for an append table, sent once each.
//!
//! Rows are marked *in flight* before their batch is sent; accepted batches are marked delivered. A
//! batch whose fate is unknown (connection dropped after sending, a crash) is resolved by counting the
//! table's rows with executeQueries before anything is re-sent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use ml_powerbi::{BatchOutcome, BatchReport};
use ml_store::{Delivery, DeliveryOutcome, RunId};

use super::PushDataset;
use super::batches::{drain, outbox_batches, paced_sends};
use super::count::count_rows;
use super::target::Target;
use crate::config::StreamConfig;
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::RunEvent;
use crate::pipeline::job::{Context, Job};
use crate::pipeline::report::StreamReport;

/// Sends the append outbox, in chunks, with up to the dataset's in-flight limit of batches at once.
pub(super) async fn send_outbox(
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
    let table_rows = conn
        .store
        .stream_state(name, &stream.object)
        .await?
        .table_rows;
    let mut failure: Option<String> = None;
    // As in a rebuild: after a failure no new batch leaves, and those in flight are recorded.
    let stop = AtomicBool::new(false);
    let sends = paced_sends(
        conn,
        push,
        &tt,
        outbox_batches(conn, push, &stream.object),
        table_rows,
        &stop,
        &opts.cancel,
        |ids, batch| {
            let (ids, batch_id) = (ids.to_vec(), batch.id.to_string());
            // In flight before it leaves: a crash from here on is resolved by counting, not re-sending.
            async move {
                conn.store
                    .mark_ambiguous(name, &stream.object, &ids, &batch_id)
                    .await?;
                Ok(())
            }
        },
        &|_: &Vec<i64>, _: &BatchReport| futures::future::ready(Ok(())),
    );
    let mut sends = std::pin::pin!(sends);
    while let Some(sent) = sends.next().await {
        let recorded = match sent {
            Ok((ids, result)) => record_delivery(conn, run, stream, &ids, &result)
                .await
                .map(|r| (ids.len(), r)),
            Err(e) => Err(e),
        };
        match recorded {
            Err(e) => {
                // Batches still in flight stay marked in flight: the next run counts the table.
                stop.store(true, Ordering::Relaxed);
                drain(&mut sends).await;
                return Err(e);
            }
            Ok((_, Some(err))) => {
                stop.store(true, Ordering::Relaxed);
                failure = failure.or(Some(err));
            }
            Ok((rows, None)) => {
                report.pushed += rows as u64;
                events.emit(RunEvent::Pushed {
                    stream: stream.object.clone(),
                    rows: report.pushed,
                });
            }
        }
    }
    if let Some(err) = failure {
        return Err(PipelineError::Other(err));
    }
    job.check_cancel()
}

/// Writes a batch's fate to the store; returns the error text when it was not accepted.
async fn record_delivery(
    ctx: &Context,
    run: RunId,
    stream: &StreamConfig,
    ids: &[i64],
    report: &BatchReport,
) -> Result<Option<String>, PipelineError> {
    let (outcome, error) = match &report.outcome {
        BatchOutcome::Accepted => (DeliveryOutcome::Accepted, None),
        BatchOutcome::Ambiguous { why } => (
            DeliveryOutcome::Ambiguous,
            Some(format!(
                "Power BI may or may not have stored batch {} ({} rows): {why}. It stays in flight; the next run counts the table's rows before sending anything again",
                report.batch_id, report.rows
            )),
        ),
        BatchOutcome::Failed(e) => (DeliveryOutcome::Failed, Some(e.to_string())),
    };
    let definitely_not_stored = outcome == DeliveryOutcome::Failed;
    ctx.store
        .mark_delivered(
            &ctx.config.name,
            &stream.object,
            ids,
            &Delivery {
                run,
                batch_id: report.batch_id.to_string(),
                request_id: report.request_id.clone(),
                outcome,
                error: error.clone(),
            },
        )
        .await?;
    if definitely_not_stored {
        // Power BI answered and refused: the rows were not stored, so they may be sent again.
        ctx.store
            .clear_ambiguous(&ctx.config.name, &stream.object, ids)
            .await?;
    }
    Ok(error)
}

/// Decides the fate of in-flight append batches by counting the table's rows: the rows Power BI holds
/// beyond those we know were delivered must be exactly some of the in-flight batches.
pub(super) async fn resolve_in_flight(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        ..
    } = *job;
    let name = conn.config.name.as_str();
    let mut by_batch: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let rows = conn
            .store
            .ambiguous_rows(name, &stream.object, after, 50_000)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for r in rows {
            by_batch
                .entry(r.batch_id.unwrap_or_default())
                .or_default()
                .push(r.id);
        }
    }
    if by_batch.is_empty() {
        return Ok(());
    }
    let known = conn
        .store
        .stream_state(name, &stream.object)
        .await?
        .table_rows;
    let actual = count_rows(&push.client, target, &plan.table).await?;
    let extra = actual.checked_sub(known).ok_or_else(|| {
        PipelineError::Other(format!(
            "table {} holds {actual} rows, fewer than the {known} delivered: rows were deleted in Power BI. Run `ml-connector sync --full --stream {}` to rebuild it",
            plan.table, stream.object
        ))
    })?;
    let batches: Vec<(String, Vec<i64>)> = by_batch.into_iter().collect();
    let sizes: Vec<u64> = batches.iter().map(|(_, ids)| ids.len() as u64).collect();
    let Some(landed) = unique_subset_with_sum(&sizes, extra) else {
        return Err(PipelineError::Other(format!(
            "table {} holds {extra} rows more than delivered, which matches no combination of the {} batches whose fate is unknown; nothing was re-sent. Run `ml-connector sync --full --stream {}` to rebuild it",
            plan.table,
            batches.len(),
            stream.object
        )));
    };
    for (i, (batch_id, ids)) in batches.iter().enumerate() {
        if landed[i] {
            conn.store
                .mark_delivered(
                    name,
                    &stream.object,
                    ids,
                    &Delivery {
                        run,
                        batch_id: batch_id.clone(),
                        request_id: None,
                        outcome: DeliveryOutcome::Accepted,
                        error: None,
                    },
                )
                .await?;
        } else {
            conn.store
                .clear_ambiguous(name, &stream.object, ids)
                .await?;
        }
    }
    tracing::info!(
        table = %plan.table,
        landed = landed.iter().filter(|l| **l).count(),
        resent = landed.iter().filter(|l| !**l).count(),
        "resolved batches whose fate was unknown by counting rows"
    );
    Ok(())
}

/// Which of `sizes` sum to `target`, when exactly one combination does (a handful of batches at most).
fn unique_subset_with_sum(sizes: &[u64], target: u64) -> Option<Vec<bool>> {
    if sizes.len() > 16 {
        return None;
    }
    let mut found: Option<Vec<bool>> = None;
    for mask in 0u32..(1 << sizes.len()) {
        let sum: u64 = sizes
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| s)
            .sum();
        if sum == target {
            if found.is_some() {
                return None;
            }
            found = Some((0..sizes.len()).map(|i| mask & (1 << i) != 0).collect());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::unique_subset_with_sum;

    #[test]
    fn in_flight_batches_are_matched_by_row_count_only_when_unambiguous() {
        assert_eq!(
            unique_subset_with_sum(&[10_000, 3_000], 3_000),
            Some(vec![false, true])
        );
        assert_eq!(
            unique_subset_with_sum(&[10_000, 3_000], 0),
            Some(vec![false, false])
        );
        assert_eq!(
            unique_subset_with_sum(&[10_000, 3_000], 13_000),
            Some(vec![true, true])
        );
        // Two batches of the same size, one landed: which one is unknowable.
        assert_eq!(unique_subset_with_sum(&[5_000, 5_000], 5_000), None);
        assert_eq!(unique_subset_with_sum(&[5_000], 4_000), None);
    }
}
