//! Rebuilding a replace table from the mirror: delete all rows, push the mirror. A push dataset
//! cannot update or delete by key, so this is how a replace table follows Intacct.
//!
//! The rebuild records how far it got as it goes: the mirror's version when it started, the page
//! up to which every row is in the table, and the pages beyond it already there (batches complete
//! out of order). An interrupted rebuild (a kill, a cancel, Power BI failing beyond the pusher's
//! own retries) then resumes from there instead of emptying the table again, as long as the mirror
//! has not changed since and the table holds exactly the rows recorded; otherwise, and after a
//! batch of unknown fate, it starts over with a delete, so the result is the same table whatever
//! happened before. A pass that Power BI failed is tried again within the run, after a wait
//! ([`RETRY_WAITS`]), so a short outage does not leave the table partial until the next run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use ml_powerbi::BatchOutcome;
use ml_store::{Delivery, DeliveryOutcome, RebuildProgress, StreamState};

use super::PushDataset;
use super::batches::{drain, mirror_page_rows, mirror_pages, paced_sends};
use super::budget::{self, Budget, RebuildCost, thousands};
use super::count::count_rows;
use super::target::{Target, mark_dirty};
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::RunEvent;
use crate::pipeline::job::Job;
use crate::pipeline::report::StreamReport;

/// The waits before a rebuild's next pass when Power BI failed one beyond the pusher's own retries
/// (a 5xx burst, a batch of unknown fate): four passes over about a minute, then the stream fails
/// and the next run resumes.
pub const RETRY_WAITS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(45),
];

/// Rebuilds a replace table from the mirror, or resumes its interrupted rebuild. Converges whatever
/// the table held before.
pub(super) async fn rebuild(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
    state: StreamState,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        opts,
        ..
    } = *job;
    let name = conn.config.name.as_str();
    let mut resume = resumable(push, job, target, &state).await;
    preflight(push, job, target, resume.as_ref()).await?;
    let mut last_error = String::new();
    // The accepted batches of the passes since the last delete, for the audit trail.
    let mut deliveries = Vec::new();
    for attempt in 0..=push.rebuild_retries.len() {
        if attempt > 0 {
            let wait = push.rebuild_retries[attempt - 1];
            tracing::warn!(
                table = %plan.table,
                attempt,
                error = %last_error,
                resume = resume.is_some(),
                "Power BI failed the rebuild; trying again in {wait:?}"
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = opts.cancel.cancelled() => return Err(PipelineError::Interrupted),
            }
        }
        let progress = match resume.take() {
            Some(p) => {
                tracing::info!(table = %plan.table, rows = p.rows, "resuming the rebuild where it stopped");
                p
            }
            None => {
                deliveries.clear();
                // The version before the first page is read: staging after it changes it.
                let version = conn
                    .store
                    .stream_state(name, &stream.object)
                    .await?
                    .mirror_version;
                mark_dirty(conn, &stream.object, "rebuild started").await?;
                if let Err(e) = push
                    .client
                    .delete_rows(&target.group_id, &target.dataset_id, &plan.table)
                    .await
                {
                    if !e.is_retryable() {
                        return Err(e.into());
                    }
                    last_error = e.to_string();
                    continue;
                }
                let p = RebuildProgress {
                    mirror_version: version,
                    cursor: None,
                    rows: 0,
                    done: Vec::new(),
                    page_rows: mirror_page_rows(push.pusher.limits()),
                };
                conn.store
                    .save_rebuild_progress(name, &stream.object, &p)
                    .await?;
                p
            }
        };
        match pass(push, job, target, progress, &mut deliveries, report).await? {
            Pass::Done { rows } => {
                conn.store
                    .mark_reloaded(name, &stream.object, run, rows, &deliveries)
                    .await?;
                return Ok(());
            }
            Pass::Failed { resume: r, why } => {
                resume = r;
                last_error = why;
            }
        }
    }
    Err(PipelineError::Other(format!(
        "table {} could not be rebuilt after {} attempts ({last_error}); the next run {} it",
        plan.table,
        push.rebuild_retries.len() + 1,
        if resume.is_some() {
            "resumes"
        } else {
            "rebuilds"
        }
    )))
}

/// The interrupted rebuild to resume, if any: the table is dirty with progress recorded, the mirror
/// has not changed since that rebuild started, and the table holds exactly the rows it confirmed
/// (more means a batch of unknown fate landed; fewer, that someone deleted rows). `--full` and a
/// dataset created in this run start over.
async fn resumable(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
    state: &StreamState,
) -> Option<RebuildProgress> {
    let p = state.rebuild.as_ref()?;
    if !state.dirty || job.opts.full || target.recreated || p.page_rows == 0 {
        return None;
    }
    let table = &job.plan.table;
    if p.mirror_version != state.mirror_version {
        tracing::info!(%table, "the mirror changed since the interrupted rebuild started: rebuilding from the start");
        return None;
    }
    match count_rows(&push.client, target, table).await {
        Ok(n) if n == p.rows => Some(p.clone()),
        Ok(n) => {
            tracing::warn!(%table, holds = n, confirmed = p.rows, "the table does not hold the rows the interrupted rebuild confirmed: rebuilding from the start");
            None
        }
        Err(e) => {
            tracing::warn!(%table, error = %e, "could not count the table's rows to resume its rebuild: rebuilding from the start");
            None
        }
    }
}

/// How one pass over the mirror ended (errors and cancels aside).
enum Pass {
    /// Every row is in the table.
    Done { rows: u64 },
    /// Power BI failed a batch; `resume` is where the next pass may continue without a delete
    /// (None after a batch of unknown fate: it may have landed).
    Failed {
        resume: Option<RebuildProgress>,
        why: String,
    },
}

/// Pushes the mirror's pages not yet in the table (per `progress`), recording the progress as pages
/// complete.
async fn pass(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
    progress: RebuildProgress,
    deliveries: &mut Vec<Delivery>,
    report: &mut StreamReport,
) -> Result<Pass, PipelineError> {
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
    let start = progress.cursor.clone();
    let page_rows = progress.page_rows;
    let rows_before = progress.rows;
    let tracker = Mutex::new(Tracker::new(progress));
    let lock = || tracker.lock().unwrap_or_else(|e| e.into_inner());
    let on_page = |after: Option<&str>, cursor: &str, rows: u64, batches: usize| {
        lock().read(after, cursor, rows, batches)
    };
    let mut failure: Option<String> = None;
    let mut ambiguous = false;
    // Set on the first failure (or a cancel): no new batch leaves, but those in flight are awaited,
    // because one dropped mid-POST could still land after the next attempt's delete.
    let stop = AtomicBool::new(false);
    // Progress is recorded as pages complete, by the sends themselves (see `paced_sends`), one
    // write at a time and always the newest.
    let saved = tokio::sync::Mutex::new(0u64);
    let after_send = |page: &usize, sent: &ml_powerbi::BatchReport| {
        let changed = matches!(sent.outcome, BatchOutcome::Accepted) && lock().accepted(*page);
        let (saved, lock) = (&saved, &lock);
        async move {
            if !changed {
                return Ok(());
            }
            let mut saved = saved.lock().await;
            let (generation, progress) = {
                let t = lock();
                (t.generation, t.progress.clone())
            };
            if generation > *saved {
                conn.store
                    .save_rebuild_progress(name, &stream.object, &progress)
                    .await?;
                *saved = generation;
            }
            Ok::<_, PipelineError>(())
        }
    };
    let sends = paced_sends(
        conn,
        push,
        &tt,
        mirror_pages(conn, push, &stream.object, start, page_rows, &on_page),
        rows_before,
        &stop,
        &opts.cancel,
        |_, _| futures::future::ready(Ok(())),
        &after_send,
    );
    let mut sends = std::pin::pin!(sends);
    while let Some(result) = sends.next().await {
        let (_, result) = match result {
            Ok(r) => r,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                drain(&mut sends).await;
                return Err(e);
            }
        };
        match &result.outcome {
            BatchOutcome::Accepted => {
                report.pushed += result.rows as u64;
                events.emit(RunEvent::Pushed {
                    stream: stream.object.clone(),
                    rows: report.pushed,
                });
                deliveries.push(Delivery {
                    run,
                    batch_id: result.batch_id.to_string(),
                    request_id: result.request_id.clone(),
                    outcome: DeliveryOutcome::Accepted,
                    error: None,
                });
            }
            BatchOutcome::Ambiguous { why } => {
                failure.get_or_insert(format!(
                    "batch {} of table {} had an unknown fate: {why}",
                    result.batch_id, plan.table
                ));
                ambiguous = true;
                stop.store(true, Ordering::Relaxed);
            }
            BatchOutcome::Failed(e) => {
                stop.store(true, Ordering::Relaxed);
                if !e.is_retryable() {
                    // A refused row or a permission problem will not change by trying again.
                    drain(&mut sends).await;
                    return Err(PipelineError::Other(e.to_string()));
                }
                failure.get_or_insert(e.to_string());
            }
        }
    }
    if opts.cancel.is_cancelled() {
        // The table stays dirty, with the progress recorded: the next run resumes from there.
        return Err(PipelineError::Interrupted);
    }
    let progress = lock().progress.clone();
    Ok(match failure {
        None => Pass::Done {
            rows: progress.rows,
        },
        Some(why) => Pass::Failed {
            resume: (!ambiguous).then_some(progress),
            why,
        },
    })
}

/// Which pages of a pass are in the table: the progress record, and the pages read but not yet
/// part of its contiguous prefix (by their place in the pass).
struct Tracker {
    progress: RebuildProgress,
    /// Counts the changes of `progress`.
    generation: u64,
    pages: BTreeMap<usize, Page>,
    next: usize,
}

struct Page {
    after: Option<String>,
    cursor: String,
    rows: u64,
    /// Batches not yet accepted (0: the page is in the table).
    left: usize,
}

impl Tracker {
    fn new(progress: RebuildProgress) -> Self {
        Tracker {
            progress,
            generation: 0,
            pages: BTreeMap::new(),
            next: 0,
        }
    }

    /// A page was read: the tag of its batches, or None when it is in the table already.
    fn read(
        &mut self,
        after: Option<&str>,
        cursor: &str,
        rows: u64,
        batches: usize,
    ) -> Option<usize> {
        let i = self.next;
        self.next += 1;
        let done = after.is_some_and(|a| self.progress.done.iter().any(|d| d == a));
        self.pages.insert(
            i,
            Page {
                after: after.map(str::to_string),
                cursor: cursor.to_string(),
                rows,
                left: if done { 0 } else { batches },
            },
        );
        self.advance();
        (!done && batches > 0).then_some(i)
    }

    /// A batch of page `i` was accepted: whether that completed the page (the progress changed).
    fn accepted(&mut self, i: usize) -> bool {
        let Some(page) = self.pages.get_mut(&i) else {
            return false;
        };
        let Some(left) = page.left.checked_sub(1) else {
            return false;
        };
        page.left = left;
        if left > 0 {
            return false;
        }
        self.progress.rows += page.rows;
        if let Some(after) = &page.after {
            self.progress.done.push(after.clone());
        }
        self.advance();
        self.generation += 1;
        true
    }

    /// Moves the prefix over the complete pages at its end.
    fn advance(&mut self) {
        while let Some(first) = self.pages.first_entry() {
            if first.get().left > 0 {
                break;
            }
            let page = first.remove();
            if let Some(after) = page.after {
                self.progress.done.retain(|d| *d != after);
            }
            self.progress.cursor = Some(page.cursor);
        }
    }
}

/// A rebuild empties the table first, so it starts only when it can finish: Power BI answers just
/// before, and what the last hour's POSTs (every process's) left of the dataset's budgets covers
/// the whole table. Otherwise the stream is postponed and the table keeps its rows.
async fn preflight(
    push: &PushDataset,
    job: &Job<'_>,
    target: &Target,
    resume: Option<&RebuildProgress>,
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
    let (now, posts) = push.hour_of_posts(conn, &target.dataset_id).await?;
    // A resumed rebuild needs only the rows not yet in the table (the table's size still decides
    // whether the POSTs-per-hour rule applies).
    let done = resume.map_or(0, |p| p.rows);
    super::log_cost(
        limits,
        &plan.table,
        rows.saturating_sub(done),
        if done > 0 {
            "rebuild, resumed"
        } else {
            "rebuild"
        },
        &posts,
        now,
    );
    let cost = RebuildCost {
        large: rows >= limits.large_table_rows,
        ..RebuildCost::of(rows.saturating_sub(done), limits)
    };
    match budget::check(limits, cost, &posts, now) {
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
                "{}: {} {needs}; postponed until {}; the table keeps its current rows",
                plan.table,
                if done > 0 {
                    format!(
                        "the rest of an interrupted rebuild ({} of {} rows)",
                        thousands(rows.saturating_sub(done)),
                        thousands(rows)
                    )
                } else {
                    format!("rebuild of {} rows", thousands(rows))
                },
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            until: Some(until),
        }),
    }
}
