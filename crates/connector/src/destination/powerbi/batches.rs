//! Rows to batches to POSTs: cutting staged rows into batches within the push limits, sending them
//! with at most the dataset's in-flight limit at once, and recording each batch's POSTs for the
//! pacer of the next process.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, TryStreamExt};
use ml_powerbi::{Batch, BatchReport, Batcher, PushLimits, TableTarget};

use super::PushDataset;
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;

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
    ctx: &Context,
    push: &PushDataset,
    target: &TableTarget,
    batch: Batch,
    rows_before: u64,
) -> BatchReport {
    let report = push.pusher.send(target, batch, rows_before).await;
    super::pacing::remember(
        ctx.store.as_ref(),
        ctx.clock.as_ref(),
        &push.pusher,
        &target.dataset_id,
        &report,
    )
    .await;
    report
}

/// Sends batches with at most the dataset's in-flight limit at once, telling each how many rows the
/// table held before it (the pusher's ≥ 250,000-row rule); yields each batch's report as it completes.
pub fn send_batches<'a>(
    ctx: &'a Context,
    push: &'a PushDataset,
    target: &'a TableTarget,
    batches: Vec<Batch>,
    rows_before: u64,
) -> impl futures::Stream<Item = BatchReport> + 'a {
    let mut before = rows_before;
    futures::stream::iter(batches.into_iter().map(move |batch| {
        let rows_before = before;
        before += batch.row_count() as u64;
        send_one(ctx, push, target, batch, rows_before)
    }))
    .buffer_unordered(push.pusher.limits().max_in_flight)
}

/// Rows read from the store for sending at a time: one batch's worth, so that memory holds the
/// batches in flight and the one being cut, not a large page beside them (peak RSS, BENCHMARKS.md).
const PAGE_ROWS: u32 = 10_000;

/// Rows read a page at a time by keyset (`fetch(after)` gives the page after `after`) and cut into
/// batches, with the ids `row` gives each row, as the batches are pulled. `next` is the keyset
/// position after a row.
fn paged_batches<'a, K, R, Fut>(
    push: &'a PushDataset,
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
                push.pusher.limits(),
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
pub(super) fn outbox_batches<'a>(
    ctx: &'a Context,
    push: &'a PushDataset,
    stream: &'a str,
) -> impl futures::Stream<Item = Result<(Vec<i64>, Batch), PipelineError>> + 'a {
    let name = ctx.config.name.as_str();
    paged_batches(
        push,
        0i64,
        move |after| ctx.store.outbox_batch(name, stream, after, PAGE_ROWS),
        |r: &ml_store::OutboxRow| r.id,
        |_, r| (r.id, r.row_json.as_str()),
    )
}

/// The rows of a page of a rebuild's mirror reads: one batch's worth at most, so that a page is
/// usually one batch and a resumed rebuild skips whole pages (and at most `PAGE_ROWS`).
pub(super) fn mirror_page_rows(limits: &PushLimits) -> u32 {
    u32::try_from(limits.max_rows_per_post.max(1)).map_or(PAGE_ROWS, |n| n.min(PAGE_ROWS))
}

/// The stream's mirror a keyset page of `page_rows` at a time from `start` (None: the first page),
/// each page cut into batches (in no particular order within the page: a rebuild sends every row
/// once, and Power BI keeps no order). `on_page` is told of each page as it is read (the cursor it
/// was read after, its own cursor, its rows and its batches) and answers the tag its batches carry,
/// or None to skip the page (one already in the table).
pub(super) fn mirror_pages<'a, T, F>(
    ctx: &'a Context,
    push: &'a PushDataset,
    stream: &'a str,
    start: Option<String>,
    page_rows: u32,
    on_page: &'a F,
) -> impl futures::Stream<Item = Result<(T, Batch), PipelineError>> + 'a
where
    T: Clone + 'a,
    F: Fn(Option<&str>, &str, u64, usize) -> Option<T> + Sync + 'a,
{
    let name = ctx.config.name.as_str();
    futures::stream::try_unfold(Some(start), move |after| async move {
        let Some(after) = after else {
            return Ok::<_, PipelineError>(None);
        };
        let Some(page) = ctx
            .store
            .mirror_rows(name, stream, after.as_deref(), page_rows)
            .await?
        else {
            return Ok(None);
        };
        let cut = cut_batches(
            page.rows().enumerate().map(|(i, r)| (i as i64, r)),
            push.pusher.limits(),
        )?;
        let tag = on_page(after.as_deref(), &page.cursor, page.len() as u64, cut.len());
        let batches: Vec<_> = match tag {
            Some(tag) => cut.into_iter().map(|(_, b)| Ok((tag.clone(), b))).collect(),
            None => Vec::new(),
        };
        // A short page is the last one: no query for the empty page after it.
        let next = (page.len() == page_rows as usize).then_some(Some(page.cursor));
        Ok(Some((futures::stream::iter(batches), next)))
    })
    .try_flatten()
}

/// Whether the next batch may leave: not after a failure (`stop`) or a cancel.
pub(super) fn keep_sending<T>(
    stop: &AtomicBool,
    cancel: &tokio_util::sync::CancellationToken,
) -> impl FnMut(&T) -> futures::future::Ready<Result<bool, PipelineError>> {
    move |_| futures::future::ready(Ok(!stop.load(Ordering::Relaxed) && !cancel.is_cancelled()))
}

/// Awaits the batches still in flight (their results no longer matter: the table is rebuilt again
/// or the run fails), so that none can land after a later delete.
pub(super) async fn drain<S: futures::Stream + Unpin>(sends: &mut S) {
    while sends.next().await.is_some() {}
}

/// Sends `batches` (each with a tag: the ids of its rows, or its page) with up to the dataset's in-flight limit at once,
/// each told how many rows the table held before it (`rows_before` for the first). `before_send`
/// runs for each batch just before it leaves: the outbox marks its rows in flight there, so a crash
/// from then on is settled by counting, never by sending again. `after_send` runs for each batch
/// as soon as its report is in, still among the sends in flight: a store write there cannot wait
/// on a connection that a send paused behind the caller holds (the SQLite writer is one). Once
/// `stop` is set or the run is cancelled no new batch leaves; the caller awaits those in flight
/// with [`drain`].
#[allow(clippy::too_many_arguments)]
pub(super) fn paced_sends<'a, T, S, F, Fut, G, GFut>(
    ctx: &'a Context,
    push: &'a PushDataset,
    target: &'a TableTarget,
    batches: S,
    rows_before: u64,
    stop: &'a AtomicBool,
    cancel: &'a tokio_util::sync::CancellationToken,
    mut before_send: F,
    after_send: &'a G,
) -> impl futures::Stream<Item = Result<(T, BatchReport), PipelineError>> + 'a
where
    T: 'a,
    S: futures::Stream<Item = Result<(T, Batch), PipelineError>> + 'a,
    F: FnMut(&T, &Batch) -> Fut + 'a,
    Fut: std::future::Future<Output = Result<(), PipelineError>> + 'a,
    G: Fn(&T, &BatchReport) -> GFut + 'a,
    GFut: std::future::Future<Output = Result<(), PipelineError>> + 'a,
{
    let mut before = rows_before;
    batches
        .try_take_while(keep_sending(stop, cancel))
        .map_ok(move |(ids, batch)| {
            let rows_before = before;
            before += batch.row_count() as u64;
            let ready = before_send(&ids, &batch);
            async move {
                ready.await?;
                let report = send_one(ctx, push, target, batch, rows_before).await;
                after_send(&ids, &report).await?;
                Ok((ids, report))
            }
        })
        .try_buffer_unordered(push.pusher.limits().max_in_flight)
}
