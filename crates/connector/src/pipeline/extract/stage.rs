//! Staging: a gathered page of records, deletes and failures written in one store transaction
//! (mirror, audit entries, outbox, pending cursor), and how many records go into one.

use chrono::NaiveDateTime;
use ml_store::{CursorPos, FailedRecord, StageMode, StagePage, StagedRecord};

use super::emit_staged;
use crate::config::Mode;
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Job;
use crate::pipeline::report::StreamReport;
use crate::pipeline::transform;

pub(super) async fn stage(
    job: &Job<'_>,
    page: StagedPage,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        events,
        ready,
        ..
    } = *job;
    ready.wait().await?;
    let StagedPage {
        records,
        deletes,
        failed,
        high_water,
        ..
    } = page;
    let summary = conn
        .store
        .stage_page(StagePage {
            connection: conn.config.name.clone(),
            run,
            stream: stream.object.clone(),
            mode: match stream.mode {
                Mode::Replace => StageMode::Replace,
                Mode::Append => StageMode::Append,
            },
            records,
            deletes,
            failed,
            pending_cursor: high_water.map(|(ts, recordno)| CursorPos {
                when_modified: transform::format_iso_seconds(&ts),
                recordno,
            }),
        })
        .await?;
    report.inserted += summary.inserted;
    report.updated += summary.updated;
    report.unchanged += summary.unchanged;
    report.deleted += summary.deleted;
    emit_staged(events, &stream.object, report);
    Ok(())
}

/// Most records one staging transaction carries (five of Intacct's 2,000-record pages). SQLite
/// writes every index page a transaction touched when it commits, and a full pull's modified
/// records arrive in WHENMODIFIED order, their keys spread over the whole key range: a 2,000-record
/// transaction touched most leaves of the mirror's and the audit trail's key indexes, to change a
/// few entries in each. Five pages a transaction share those writes. Measured with the stage bench
/// in that arrival order (BENCHMARKS.md): at 300,000 records 60,000 → 88,000 records per
/// CPU-second and 8.4 → 3.2 KB written per record; at 1,000,000, 31,000 → 54,000.
pub(super) const STAGE_BATCH_RECORDS: usize = 10_000;
/// ... or this many bytes of rows, whichever comes first: wide rows keep the batch's memory bounded.
pub(super) const STAGE_BATCH_BYTES: usize = 8 << 20;
/// A batch is staged early when the next page takes longer than this to come: a fraction of one
/// Intacct round trip (~200 ms), and longer than most gaps between pages that come faster than they
/// are staged (the benchmark's simulator: 30–60 ms at 300,000 records). 50 ms lost most of the
/// batching's gain there; a fixed batch left up to five pages to stage after the last one.
pub(super) const STAGE_WHEN_IDLE: std::time::Duration = std::time::Duration::from_millis(75);

/// What one staging transaction carries.
#[derive(Default)]
pub(super) struct StagedPage {
    pub(super) records: Vec<StagedRecord>,
    pub(super) deletes: Vec<String>,
    pub(super) failed: Vec<FailedRecord>,
    pub(super) high_water: Option<(NaiveDateTime, i64)>,
    /// Bytes of the records' rows.
    pub(super) bytes: usize,
    /// `high_water` moved since the last staging: a page without records (the last one of a pass)
    /// still moves the watermark.
    pub(super) cursor_moved: bool,
}

impl StagedPage {
    /// Nothing to stage: no record, no failure, no new watermark.
    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.failed.is_empty() && !self.cursor_moved
    }

    /// As much as one staging transaction carries.
    pub(super) fn is_full(&self) -> bool {
        self.records.len() + self.failed.len() >= STAGE_BATCH_RECORDS
            || self.bytes >= STAGE_BATCH_BYTES
    }
}

/// Stages the batch gathered so far, if it holds anything, and starts a new one.
pub(super) async fn flush(
    job: &Job<'_>,
    batch: &mut StagedPage,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    if batch.is_empty() {
        return Ok(());
    }
    let high_water = batch.high_water;
    let page = std::mem::replace(
        batch,
        StagedPage {
            high_water,
            ..StagedPage::default()
        },
    );
    stage(job, page, report).await
}
