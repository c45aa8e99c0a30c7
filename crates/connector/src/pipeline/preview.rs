//! `sync --dry-run`: what a run would read from Intacct and what its deliveries would push, before
//! anything is spent. Reads only: nothing is staged or pushed, no cursor moves, no run is recorded
//! and no lease is taken.
//!
//! Each stream's read is counted the cheap way: the run's own first request (both passes of
//! `changed_since`, from the same start the run would use, see [`super::extract::read_from`]) with
//! a page size of 1, whose `totalcount` says how many records each pass would return. The
//! destination then prices the deliveries ([`crate::destination::Destination::preview`]).

use chrono::NaiveDateTime;
use ml_intacct::ChangedSince;

use super::extract::read_from;
use super::{Connection, PipelineError, RunOptions};
use crate::catalogue::StreamKind;
use crate::config::StreamConfig;
use crate::destination::preview::DeliveryPreview;
use crate::pipeline::job::Context;

/// What a run would read of one stream.
#[derive(Clone, Debug)]
pub struct StreamRead {
    pub stream: StreamConfig,
    /// Where the read starts (the cursor less the stream's lookback); `None`: it reads everything
    /// (no cursor yet, or `--full`).
    pub since: Option<NaiveDateTime>,
    /// Records modified after `since` (all modified records when it reads everything).
    pub changed: Option<u64>,
    /// Records never modified since their creation: every run reads them again.
    pub never_modified: Option<u64>,
    /// Why the read was not counted (balances are a snapshot; an Intacct error).
    pub note: Option<String>,
}

impl StreamRead {
    /// Records Intacct would return to the run's read, when counted.
    pub fn to_read(&self) -> Option<u64> {
        Some(self.changed? + self.never_modified?)
    }

    /// The read covers every record (a full read): the table will hold what it returns.
    pub fn reads_all(&self) -> bool {
        self.since.is_none()
    }
}

/// What `sync --dry-run` reports.
#[derive(Clone, Debug)]
pub struct DryRun {
    pub connection: String,
    pub streams: Vec<StreamRead>,
    /// `None` when the destination cannot tell what it would push.
    pub delivery: Option<DeliveryPreview>,
}

/// What a run with `opts` would read and push, without changing anything.
pub async fn preview(conn: &Connection, opts: &RunOptions) -> Result<DryRun, PipelineError> {
    let streams = conn.selected_streams(opts)?;
    let reads = futures::future::join_all(
        streams
            .into_iter()
            .map(|s| count_read(&conn.ctx, s, opts.full)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let delivery = conn
        .destination
        .preview(&conn.ctx, &reads, opts.full)
        .await?;
    Ok(DryRun {
        connection: conn.config.name.clone(),
        streams: reads,
        delivery,
    })
}

/// Counts what the run's read of `stream` would return: one request, page size 1.
async fn count_read(
    ctx: &Context,
    stream: StreamConfig,
    full: bool,
) -> Result<StreamRead, PipelineError> {
    let mut read = StreamRead {
        since: None,
        changed: None,
        never_modified: None,
        note: None,
        stream,
    };
    if read.stream.kind == StreamKind::Balances {
        read.note = Some(format!(
            "a snapshot of the last {} period(s), read whole every run",
            read.stream.periods
        ));
        return Ok(read);
    }
    let cursor = ctx.store.cursor(ctx.name(), &read.stream.object).await?;
    let since = read_from(
        cursor.and_then(|c| c.committed).as_ref(),
        full,
        read.stream.lookback,
    );
    read.since = since.map(|c| c.when_modified);
    let req = ChangedSince {
        object: read.stream.object.clone(),
        // The keys alone: the count does not depend on the columns.
        fields: Vec::new(),
        since,
        page_size: Some(1),
        // The run's own narrowing of the never-modified records (by the catalogue's creation
        // field: the dry run reads no definition).
        created_since: super::extract::never_modified_filter(
            ctx,
            &read.stream,
            crate::catalogue::entry(&read.stream.object)
                .and_then(crate::catalogue::Entry::created_field),
            since,
        )
        .await?,
    };
    match ctx.intacct.first_pages(std::slice::from_ref(&req)).await {
        Ok(pages) => {
            let count =
                |p: &ml_intacct::Page| p.total_count.or_else(|| p.records.is_empty().then_some(0));
            if let Some(first) = pages.first() {
                read.changed = count(&first.modified);
                read.never_modified = count(&first.never_modified);
            }
            if read.to_read().is_none() {
                read.note = Some("Intacct did not say how many records match".into());
            }
        }
        Err(e) => read.note = Some(format!("not counted: {e}")),
    }
    Ok(read)
}
