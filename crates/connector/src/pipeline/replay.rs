//! `ml-connector replay --run ID`: push again exactly what an earlier run pushed, from the audit trail.
//!
//! For a replace stream that is the whole table as it was after that run (rebuilt from the audit trail,
//! not from today's mirror), so replaying restores it. For an append stream it is the rows that run
//! delivered, appended once more: the user asks for it explicitly (a dry run shows the count first).

use futures::StreamExt;
use ml_powerbi::{BatchOutcome, TableTarget};

use super::{Connection, Events, PipelineError, RunEvent};
use crate::config::Mode;
use crate::destination::powerbi::PushDataset;
use crate::destination::powerbi::batches::{cut_batches, send_batches};
use crate::destination::powerbi::pacing;

#[derive(Debug, Clone, Default)]
pub struct ReplayedTable {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    pub tables: Vec<ReplayedTable>,
}

const PAGE: u32 = 50_000;

pub async fn replay(
    conn: &Connection,
    run: i64,
    only: Option<&str>,
    dry_run: bool,
    events: &Events,
) -> Result<ReplayReport, PipelineError> {
    let name = conn.config.name.as_str();
    let push = PushDataset::of(conn.destination.as_ref(), name, "replay")?;
    let state = conn.store.dataset(name).await?.ok_or_else(|| {
        PipelineError::Other(format!(
            "connection {name} has no dataset yet: nothing was ever pushed"
        ))
    })?;
    let detail = conn
        .store
        .get_run(ml_store::RunId(run))
        .await?
        .ok_or_else(|| PipelineError::Other(format!("there is no run {run}")))?;
    let mut report = ReplayReport::default();
    for stream in &conn.config.streams {
        if let Some(o) = only
            && !stream.object.eq_ignore_ascii_case(o)
            && !stream.table.eq_ignore_ascii_case(o)
        {
            continue;
        }
        if !detail.streams.iter().any(|s| s.stream == stream.object) {
            continue;
        }
        let target = TableTarget {
            group_id: state.group_id.clone(),
            dataset_id: state.dataset_id.clone(),
            table: stream.table.clone(),
        };
        pacing::seed(
            conn.store.as_ref(),
            conn.clock.as_ref(),
            &push.pusher,
            &target.dataset_id,
        )
        .await?;
        // Count first (and for a dry run, only count).
        let rows = collect(
            conn,
            push,
            run,
            &stream.object,
            stream.mode,
            true,
            None,
            events,
        )
        .await?;
        if !dry_run {
            if stream.mode == Mode::Replace {
                // From here the table holds that run's rows, not the mirror's: marked first, so the
                // next sync brings it back to current whatever happens to this replay.
                conn.store.mark_dirty(name, &stream.object).await?;
                push.client
                    .delete_rows(&target.group_id, &target.dataset_id, &target.table)
                    .await?;
            }
            collect(
                conn,
                push,
                run,
                &stream.object,
                stream.mode,
                false,
                Some(&target),
                events,
            )
            .await?;
        }
        report.tables.push(ReplayedTable {
            table: stream.table.clone(),
            rows,
        });
    }
    if report.tables.is_empty() {
        return Err(PipelineError::Other(format!(
            "run {run} has no stream{} to replay",
            only.map(|o| format!(" {o}")).unwrap_or_default()
        )));
    }
    Ok(report)
}

/// Pages through the rows of `run` for one stream; pushes them when `target` is given.
#[allow(clippy::too_many_arguments)]
async fn collect(
    conn: &Connection,
    push: &PushDataset,
    run: i64,
    stream: &str,
    mode: Mode,
    count_only: bool,
    target: Option<&TableTarget>,
    events: &Events,
) -> Result<u64, PipelineError> {
    let name = conn.config.name.as_str();
    let limits = push.pusher.limits().clone();
    let mut total: u64 = 0;
    let mut after_key: Option<String> = None;
    let mut after_seq: i64 = 0;
    loop {
        let rows: Vec<String> = match mode {
            Mode::Replace => {
                let page = conn
                    .store
                    .rows_as_of_run(
                        name,
                        stream,
                        ml_store::RunId(run),
                        after_key.as_deref(),
                        PAGE,
                    )
                    .await?;
                after_key = page.last().map(|r| r.key.clone());
                page.into_iter().map(|r| r.row_json).collect()
            }
            Mode::Append => {
                let page = conn
                    .store
                    .rows_pushed_by_run(ml_store::RunId(run), stream, after_seq, PAGE)
                    .await?;
                after_seq = page.last().map(|r| r.id).unwrap_or(after_seq);
                page.into_iter().map(|r| r.row_json).collect()
            }
        };
        if rows.is_empty() {
            return Ok(total);
        }
        if !count_only && let Some(t) = target {
            let batches = cut_batches(
                rows.iter().enumerate().map(|(i, r)| (i as i64, r.as_str())),
                &limits,
            )?;
            let mut sends = send_batches(
                conn,
                push,
                t,
                batches.into_iter().map(|(_, b)| b).collect(),
                total,
            );
            while let Some(r) = sends.next().await {
                match r.outcome {
                    BatchOutcome::Accepted => events.emit(RunEvent::Pushed {
                        stream: stream.to_string(),
                        rows: total + r.rows as u64,
                    }),
                    BatchOutcome::Ambiguous { why } => {
                        return Err(PipelineError::Other(format!(
                            "replay of {stream}: batch {} had an unknown fate ({why}); check the table with `ml-connector verify`",
                            r.batch_id
                        )));
                    }
                    BatchOutcome::Failed(e) => return Err(e.into()),
                }
            }
        }
        total += rows.len() as u64;
    }
}
