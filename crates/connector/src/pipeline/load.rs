//! Load: staged rows into Power BI, without losing or doubling any.
//!
//! - Replace streams rebuild the table from the mirror (delete all rows, push the mirror) when the mirror
//!   changed since the last confirmed load. A failed or ambiguous batch makes the rebuild start over:
//!   the result is the same table whatever happened before.
//! - Append streams send their outbox. Rows are marked *in flight* before their batch is sent; accepted
//!   batches are marked delivered. A batch whose fate is unknown (connection dropped after sending, a
//!   crash) is resolved by counting the table's rows with executeQueries before anything is re-sent.

use std::collections::BTreeMap;

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt, TryStreamExt};
use ml_powerbi::{Batch, BatchOutcome, BatchReport, Batcher, PushLimits, TableTarget};
use ml_store::{Delivery, DeliveryOutcome, RunId};

use super::dataset::Target;
use super::{Connection, Job, PipelineError, RunEvent, StreamReport};
use crate::config::{Mode, StreamConfig};
use crate::plan::StreamPlan;

/// A rebuild that keeps meeting ambiguous batches gives up after this many attempts (and stays dirty).
const MAX_REBUILDS: usize = 3;

fn table_target(target: &Target, plan: &StreamPlan) -> TableTarget {
    TableTarget {
        group_id: target.group_id.clone(),
        dataset_id: target.dataset_id.clone(),
        table: plan.table.clone(),
    }
}

/// Work an earlier run left unfinished: in-flight append batches are resolved, undelivered rows sent.
pub async fn finish_pending(job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
    let Job { stream, .. } = *job;
    if stream.mode == Mode::Append {
        resolve_in_flight(job).await?;
        send_outbox(job, report).await?;
    }
    Ok(())
}

pub async fn load(job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
    let Job {
        conn,
        stream,
        target,
        opts,
        ..
    } = *job;
    let full = opts.full;
    match stream.mode {
        Mode::Append => send_outbox(job, report).await?,
        Mode::Replace => {
            let state = conn
                .store
                .stream_state(&conn.config.name, &stream.object)
                .await?;
            if state.dirty || full || target.recreated {
                rebuild(job, report).await?;
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

/// Marks a replace table as needing a rebuild, durably, before anything makes the Power BI table differ
/// from the mirror (deleting its rows, changing its schema).
pub async fn mark_dirty(conn: &Connection, stream: &str, why: &str) -> Result<(), PipelineError> {
    conn.store.mark_dirty(&conn.config.name, stream).await?;
    tracing::info!(stream, reason = why, "table to be rebuilt from the mirror");
    Ok(())
}

/// Cuts rows into batches within the dataset's row and byte limits, remembering which ids each holds.
pub fn cut_batches<'a>(
    rows: impl Iterator<Item = (i64, &'a str)>,
    limits: &PushLimits,
) -> Result<Vec<(Vec<i64>, Batch)>, PipelineError> {
    let mut batcher = Batcher::new(limits);
    let mut ids = Vec::new();
    let mut out = Vec::new();
    for (id, json) in rows {
        ids.push(id);
        if let Some(b) = batcher
            .push(json)
            .map_err(|e| PipelineError::Other(e.to_string()))?
        {
            out.push(b);
        }
    }
    out.extend(batcher.finish());
    Ok(out
        .into_iter()
        .map(|b| {
            let r = b.row_range();
            (ids[r.start as usize..r.end as usize].to_vec(), b)
        })
        .collect())
}

/// Sends one batch through the pusher and records its POSTs for the pacer of the next process.
pub async fn send_one(
    conn: &Connection,
    target: &TableTarget,
    batch: Batch,
    rows_before: u64,
) -> BatchReport {
    let report = conn.pusher.send(target, batch, rows_before).await;
    super::pacing::remember(
        conn.store.as_ref(),
        &conn.pusher,
        &target.dataset_id,
        &report,
    )
    .await;
    report
}

/// Sends batches with at most the dataset's in-flight limit at once, telling each how many rows the
/// table held before it (the pusher's ≥ 250,000-row rule); yields each batch's report as it completes.
pub fn send_batches<'a>(
    conn: &'a Connection,
    target: &'a TableTarget,
    batches: Vec<Batch>,
    rows_before: u64,
) -> impl futures::Stream<Item = BatchReport> + 'a {
    let mut before = rows_before;
    futures::stream::iter(batches.into_iter().map(move |batch| {
        let rows_before = before;
        before += batch.row_count() as u64;
        send_one(conn, target, batch, rows_before)
    }))
    .buffer_unordered(conn.pusher.limits().max_in_flight)
}

/// Sends the append outbox, in chunks, with up to the dataset's in-flight limit of batches at once.
async fn send_outbox(job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        target,
        opts,
        events,
        ..
    } = *job;
    let name = conn.config.name.as_str();
    let tt = table_target(target, plan);
    let mut table_rows = conn
        .store
        .stream_state(name, &stream.object)
        .await?
        .table_rows;
    let mut failure: Option<String> = None;
    // As in `rebuild`: after a failure no new batch leaves, and those in flight are recorded.
    let stop = AtomicBool::new(false);
    let sends = outbox_batches(conn, &stream.object)
        .try_take_while(keep_sending(&stop, &opts.cancel))
        .map_ok(|(ids, batch)| {
            let tt = tt.clone();
            let before = table_rows;
            table_rows += ids.len() as u64;
            async move {
                // In flight before it leaves: a crash from here on is resolved by counting, not re-sending.
                conn.store
                    .mark_ambiguous(name, &stream.object, &ids, &batch.id.to_string())
                    .await?;
                let result = send_one(conn, &tt, batch, before).await;
                Ok::<_, PipelineError>((ids, result))
            }
        })
        .try_buffer_unordered(conn.pusher.limits().max_in_flight);
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
    if opts.cancel.is_cancelled() {
        return Err(PipelineError::Interrupted);
    }
    Ok(())
}

/// Writes a batch's fate to the store; returns the error text when it was not accepted.
async fn record_delivery(
    conn: &Connection,
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
    conn.store
        .mark_delivered(
            &conn.config.name,
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
        conn.store
            .clear_ambiguous(&conn.config.name, &stream.object, ids)
            .await?;
    }
    Ok(error)
}

/// Decides the fate of in-flight append batches by counting the table's rows: the rows Power BI holds
/// beyond those we know were delivered must be exactly some of the in-flight batches.
async fn resolve_in_flight(job: &Job<'_>) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        target,
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
    let actual = count_rows(conn, target, &plan.table).await?;
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

pub async fn count_rows(
    conn: &Connection,
    target: &Target,
    table: &str,
) -> Result<u64, PipelineError> {
    let dax = format!(
        "EVALUATE ROW(\"n\", COUNTROWS('{}'))",
        table.replace('\'', "''")
    );
    let result = conn
        .powerbi
        .execute_query(&target.group_id, &target.dataset_id, &dax)
        .await?;
    let row = result.rows.first().ok_or_else(|| {
        PipelineError::Other(format!(
            "executeQueries returned no row for the row count of table {table}"
        ))
    })?;
    // COUNTROWS of an empty table is BLANK, which Power BI leaves out of the row.
    match row.get("[n]") {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            PipelineError::Other(format!(
                "executeQueries returned {v} as the row count of table {table}"
            ))
        }),
    }
}

/// Rows read from the store for sending at a time: one batch's worth, so that memory holds the
/// batches in flight and the one being cut, not a large page beside them (peak RSS, BENCHMARKS.md).
const PAGE_ROWS: u32 = 10_000;

/// Rows read a page at a time by keyset (`fetch(after)` gives the page after `after`) and cut into
/// batches, with the ids `row` gives each row, as the batches are pulled. `next` is the keyset
/// position after a row.
fn paged_batches<'a, K, R, Fut>(
    conn: &'a Connection,
    start: K,
    fetch: impl Fn(K) -> Fut + 'a,
    next: fn(&R) -> K,
    row: fn(usize, &R) -> (i64, &str),
) -> impl futures::Stream<Item = Result<(Vec<i64>, Batch), PipelineError>> + 'a
where
    K: 'a,
    R: 'a,
    Fut: std::future::Future<Output = Result<Vec<R>, ml_store::StoreError>> + 'a,
{
    futures::stream::try_unfold(Some(start), move |after| {
        let page = after.map(&fetch);
        async move {
            let Some(page) = page else {
                return Ok::<_, PipelineError>(None);
            };
            let page = page.await?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            let after = next(last);
            let cut = cut_batches(
                page.iter().enumerate().map(|(i, r)| row(i, r)),
                conn.pusher.limits(),
            )?;
            Ok(Some((
                futures::stream::iter(cut.into_iter().map(Ok)),
                Some(after),
            )))
        }
    })
    .try_flatten()
}

/// The stream's waiting outbox rows by id, cut into batches that carry their row ids. Rows
/// marked in flight or sent in this pass are behind the keyset, so none is read twice.
fn outbox_batches<'a>(
    conn: &'a Connection,
    stream: &'a str,
) -> impl futures::Stream<Item = Result<(Vec<i64>, Batch), PipelineError>> + 'a {
    let name = conn.config.name.as_str();
    paged_batches(
        conn,
        0i64,
        move |after| conn.store.outbox_batch(name, stream, after, PAGE_ROWS),
        |r: &ml_store::OutboxRow| r.id,
        |_, r| (r.id, r.row_json.as_str()),
    )
}

/// The stream's mirror a keyset page at a time, each page cut into batches (in no particular order
/// within the page: a rebuild sends every row once, and Power BI keeps no order).
fn mirror_batches<'a>(
    conn: &'a Connection,
    stream: &'a str,
) -> impl futures::Stream<Item = Result<(Vec<i64>, Batch), PipelineError>> + 'a {
    let name = conn.config.name.as_str();
    futures::stream::try_unfold(Some(None::<String>), move |after| async move {
        let Some(after) = after else {
            return Ok::<_, PipelineError>(None);
        };
        let Some(page) = conn
            .store
            .mirror_rows(name, stream, after.as_deref(), PAGE_ROWS)
            .await?
        else {
            return Ok(None);
        };
        let cut = cut_batches(
            page.rows().enumerate().map(|(i, r)| (i as i64, r)),
            conn.pusher.limits(),
        )?;
        // A short page is the last one: no query for the empty page after it.
        let next = (page.len() == PAGE_ROWS as usize).then_some(Some(page.cursor));
        Ok(Some((futures::stream::iter(cut.into_iter().map(Ok)), next)))
    })
    .try_flatten()
}

/// Whether the next batch may leave: not after a failure (`stop`) or a cancel.
fn keep_sending<T>(
    stop: &AtomicBool,
    cancel: &tokio_util::sync::CancellationToken,
) -> impl FnMut(&T) -> futures::future::Ready<Result<bool, PipelineError>> {
    move |_| futures::future::ready(Ok(!stop.load(Ordering::Relaxed) && !cancel.is_cancelled()))
}

/// Awaits the batches still in flight (their results no longer matter: the table is rebuilt again
/// or the run fails), so that none can land after a later delete.
async fn drain<S: futures::Stream + Unpin>(sends: &mut S) {
    while sends.next().await.is_some() {}
}

/// Rebuilds a replace table from the mirror. Converges whatever the table held before.
async fn rebuild(job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        target,
        opts,
        events,
        ..
    } = *job;
    let name = conn.config.name.as_str();
    let tt = table_target(target, plan);
    let mut last_error = String::new();
    for attempt in 1..=MAX_REBUILDS {
        mark_dirty(conn, &stream.object, "rebuild started").await?;
        conn.powerbi
            .delete_rows(&target.group_id, &target.dataset_id, &plan.table)
            .await?;
        let mut pushed: u64 = 0;
        let mut deliveries = Vec::new();
        let mut ok = true;
        // Set on the first failure (or a cancel): no new batch leaves, but those in flight are
        // awaited, because one dropped mid-POST could still land after the next attempt's delete.
        let stop = AtomicBool::new(false);
        let mut rows_before = 0u64;
        let sends = mirror_batches(conn, &stream.object)
            .try_take_while(keep_sending(&stop, &opts.cancel))
            .map_ok(|(_, batch)| {
                let before = rows_before;
                rows_before += batch.row_count() as u64;
                send_one(conn, &tt, batch, before).map(Ok)
            })
            .try_buffer_unordered(conn.pusher.limits().max_in_flight);
        let mut sends = std::pin::pin!(sends);
        while let Some(result) = sends.next().await {
            let result = match result {
                Ok(r) => r,
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
