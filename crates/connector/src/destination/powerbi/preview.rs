//! `sync --dry-run` for a push dataset: the rows each table's delivery would push, priced against
//! what the dataset's POSTs of the last hour (every process's, as the store records them for the
//! pacer) left of its budgets. From the store alone: nothing is sent to Power BI.
//!
//! A replace table re-sends all its rows whenever the mirror changed (a push dataset cannot update
//! or delete by key), so its cost is the mirror's size, not the number of records that changed.
//! The tables are priced in the run's order, each against what the ones before it would leave, as
//! the run's own rebuild preflight would see them.

use chrono::{DateTime, Utc};
use ml_powerbi::PushLimits;
use ml_store::PushPost;

use super::PushDataset;
use super::budget::{self, Budget, RebuildCost, Used, thousands};
use crate::config::Mode;
use crate::destination::preview::{BudgetUse, DeliveryPreview, TablePreview};
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;
use crate::pipeline::preview::StreamRead;

pub(super) async fn preview(
    push: &PushDataset,
    ctx: &Context,
    reads: &[StreamRead],
    full: bool,
) -> Result<DeliveryPreview, PipelineError> {
    let name = ctx.name();
    let limits = push.pusher.limits();
    let dataset = ctx.store.dataset(name).await?;
    let (now, mut posts) = match &dataset {
        Some(d) => push.hour_of_posts(ctx, &d.dataset_id).await?,
        None => (ctx.clock.now(), Vec::new()),
    };
    let used = Used::of(limits, &posts, now);
    let mut tables = Vec::with_capacity(reads.len());
    for read in reads {
        let stream = &read.stream;
        let state = ctx.store.stream_state(name, &stream.object).await?;
        let mut t = TablePreview {
            object: stream.object.clone(),
            table: stream.table.clone(),
            dirty: state.dirty,
            ..TablePreview::default()
        };
        let table_after = match stream.mode {
            Mode::Replace => {
                let mirror = ctx.store.mirror_count(name, &stream.object).await?;
                // A read of everything leaves the table holding exactly what the read returns.
                let rows = match read.to_read() {
                    Some(n) if read.reads_all() => n,
                    _ => mirror,
                };
                t.rebuild_rows = Some(rows);
                let why = if full {
                    Some("rebuild (--full)")
                } else if dataset.is_none() {
                    Some("first load")
                } else if state.dirty {
                    Some("rebuild: the table is marked for one")
                } else if read.changed.is_none_or(|n| n > 0) {
                    Some("rebuild if the read changes the mirror")
                } else if read.never_modified.is_some_and(|n| n > 0) {
                    // Records never modified are read again every run; only a new one among them
                    // changes the mirror.
                    Some("rebuild only if a never-modified record read is new")
                } else {
                    None
                };
                match why {
                    Some(why) => {
                        t.rows = rows;
                        t.why = why.into();
                    }
                    None => t.why = "nothing changed: no push".into(),
                }
                rows
            }
            Mode::Append => {
                let outbox = ctx.store.outbox_count(name, &stream.object).await?;
                t.outbox = Some(outbox);
                t.rows = outbox + read.to_read().unwrap_or(0);
                t.why = format!(
                    "{} waiting in the outbox + the records read that changed",
                    thousands(outbox)
                );
                state.table_rows + t.rows
            }
        };
        if t.rows == 0 {
            t.budget = "-".into();
        } else {
            let cost = RebuildCost {
                large: table_after >= limits.large_table_rows,
                ..RebuildCost::of(t.rows, limits)
            };
            let (verdict, postponed) = verdict(limits, cost, &posts, now, stream.mode);
            t.budget = verdict;
            t.postponed = postponed;
            if !postponed {
                spend(&mut posts, cost, limits, now);
            }
        }
        tables.push(t);
    }
    Ok(DeliveryPreview {
        target: match dataset {
            Some(_) => format!("dataset {:?}", ctx.config.powerbi.dataset),
            None => format!(
                "dataset {:?} (not created yet: the first sync creates it)",
                ctx.config.powerbi.dataset
            ),
        },
        budget: Some(BudgetUse {
            rows_used: used.rows,
            rows_left: used.rows_left(limits),
            posts_used: used.posts,
            rows_per_hour: limits.rows_per_hour,
        }),
        tables,
    })
}

/// What the budget makes of a push of `cost`, and whether it would not start now.
fn verdict(
    limits: &PushLimits,
    cost: RebuildCost,
    posts: &[PushPost],
    now: DateTime<Utc>,
    mode: Mode,
) -> (String, bool) {
    match budget::check(limits, cost, posts, now) {
        Budget::Fits => ("fits".into(), false),
        Budget::FitsOnlyAnEmptyHour => (
            format!(
                "more than an hour's budget ({} rows): partial until it finishes",
                thousands(limits.rows_per_hour)
            ),
            false,
        ),
        Budget::Later { until, needs } => {
            let until = until.format("%Y-%m-%d %H:%M:%S UTC");
            match mode {
                // The run's preflight postpones the rebuild; the table keeps its rows meanwhile.
                Mode::Replace => (format!("{needs}; postponed until {until}"), true),
                // The pacer waits for the budget to free.
                Mode::Append => (format!("{needs}; waits until {until}"), true),
            }
        }
    }
}

/// Counts a push of `cost` at `now` in `posts`, as the run would have sent it.
fn spend(posts: &mut Vec<PushPost>, cost: RebuildCost, limits: &PushLimits, now: DateTime<Utc>) {
    let per_post = limits.max_rows_per_post.max(1) as u64;
    let mut left = cost.rows;
    for _ in 0..cost.posts {
        let rows = left.min(per_post);
        left -= rows;
        posts.push(PushPost { at: now, rows });
    }
}
