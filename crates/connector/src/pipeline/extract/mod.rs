//! Extract and stage: pages from Intacct become typed rows, staged one page per transaction.
//!
//! Memory stays flat: one page (≤ 2,000 records) is held at a time (a few more are being fetched), plus
//! the keys read (RECORDNOs in a compressed bitmap: ~130 KB for a million), which on a full pull find
//! deletes by comparison.
//!
//! Reads run as parallel chains (see `IntacctClient::full_read`), so pages arrive in any order and a
//! record changed during the read can arrive as its new version before its old one: the versions seen
//! decide, and an older version arriving later is not staged over the newer one.

mod balances;
mod deletes;
mod never_modified;
mod records;
mod stage;
mod total;

pub use balances::{newest_balance_seen, periods_to_read, recent_periods};
pub use deletes::{newest_delete_seen, parse_cursor};
pub use never_modified::{created_high_water, never_modified_filter};

use chrono::NaiveDateTime;
use futures::{FutureExt, StreamExt};
use ml_intacct::{ChangedSince, Cursor as IntacctCursor};
use ml_powerbi::schema::RowEncoder;
use ml_store::FailedRecord;

use crate::catalogue::StreamKind;
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::{Events, RunEvent};
use crate::pipeline::job::Job;
use crate::pipeline::report::StreamReport;
use crate::pipeline::transform;
use balances::extract_balances;
use deletes::{incremental_deletes, keys_missing_from};
use records::{Fields, Seen, Texts, VersionCheck, staged_record};
use stage::{STAGE_WHEN_IDLE, StagedPage, flush, stage};

pub async fn extract_and_stage(
    job: &Job<'_>,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        stream,
        plan,
        time,
        opts,
        events,
        ..
    } = *job;
    let full = opts.full;
    if plan.kind == StreamKind::Balances {
        return extract_balances(job, report).await;
    }
    let name = conn.config.name.as_str();
    let encoder = RowEncoder::new(&plan.table_schema());
    let cursor = conn.store.cursor(name, &stream.object).await?;
    let committed = cursor.and_then(|c| c.committed);
    let since = read_from(committed.as_ref(), full, stream.lookback);
    let incremental = since.is_some();
    if !incremental {
        deletes::note_newest_deletion(conn, job.run, stream).await?;
    }
    let created_since =
        never_modified_filter(conn, stream, plan.created_field.as_deref(), since).await?;
    let started = conn.clock.now().naive_utc();
    // Pages of parallel chains come in any order: versions are checked on every read, and the
    // keys of a full read find deletes.
    let mut seen_keys = Seen::default();
    let mut fields = Fields::default();
    // The creation field is read too (not pushed unless configured): its newest value bounds the
    // next runs' never-modified pass.
    let mut fields_read = plan.select.clone();
    if let Some(f) = plan.created_field.as_deref()
        && !fields_read.iter().any(|s| s.eq_ignore_ascii_case(f))
    {
        fields_read.push(f.to_string());
    }
    let mut pages = Box::pin(conn.intacct.changed_since(ChangedSince {
        object: plan.object.clone(),
        fields: fields_read,
        since,
        page_size: Some(conn.config.intacct.page_size),
        created_since: created_since.clone(),
    }));
    let mut high_water: Option<(NaiveDateTime, i64)> = committed.as_ref().and_then(parse_cursor);
    // Pages are gathered into one staging transaction of up to STAGE_BATCH_RECORDS records.
    let mut batch = StagedPage {
        high_water,
        ..StagedPage::default()
    };
    let mut read_total = total::ReadTotal::default();
    // The newest creation time among the never-modified records read (see `never_modified`).
    let mut newest_created: Option<(NaiveDateTime, i64)> = None;
    loop {
        // Gather while pages come quickly; when the next one keeps us waiting, stage what was
        // gathered meanwhile. A pull paced by Intacct's latency so stages each page as it comes (no
        // batch is left to stage after the last page), one faster than staging fills batches.
        let next = match pages.next().now_or_never() {
            Some(next) => next,
            None if batch.is_empty() => pages.next().await,
            None => match tokio::time::timeout(STAGE_WHEN_IDLE, pages.next()).await {
                Ok(next) => next,
                Err(_) => {
                    flush(job, &mut batch, report).await?;
                    pages.next().await
                }
            },
        };
        let Some(page) = next else { break };
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                // What the pull read before the failure is staged, as it would have been page by page.
                flush(job, &mut batch, report).await?;
                return Err(e.into());
            }
        };
        report.extracted += page.records.len() as u64;
        if page.pass == ml_intacct::Pass::NeverModified
            && let Some(field) = plan.created_field.as_deref()
        {
            let newest = page
                .records
                .iter()
                .filter_map(|r| {
                    let created = ml_intacct::protocol::values::parse_timestamp(r.get(field)?)?;
                    Some((created, r.get("RECORDNO")?.trim().parse::<i64>().ok()?))
                })
                .max();
            newest_created = newest_created.max(newest);
        }
        if let Some(records) = read_total.page(&page) {
            events.emit(RunEvent::Total {
                stream: stream.object.clone(),
                records,
            });
        }
        events.emit(RunEvent::Extracted {
            stream: stream.object.clone(),
            records: report.extracted,
        });
        let texts: Vec<Texts> = page
            .records
            .iter()
            .map(|record| fields.texts(record, plan))
            .collect();
        let mut versions = VersionCheck::new(
            conn.store.as_ref(),
            name,
            &stream.object,
            &mut seen_keys,
            &batch.records,
            texts.iter().map(|t| t.key.as_ref()),
        )
        .await?;
        for (record, texts) in page.records.iter().zip(&texts) {
            if !versions.admit(texts.key.as_ref(), texts.when_modified) {
                // A newer version of this record was already staged in this pull.
                continue;
            }
            let key = texts.key.to_string();
            let typed = transform::transform_texts(
                key.clone(),
                &texts.columns,
                texts.when_modified,
                &plan.columns,
                time,
            );
            match typed
                .map_err(PipelineError::from)
                .and_then(|typed| staged_record(&encoder, typed))
            {
                Ok(r) => {
                    batch.bytes += r.row_json.len();
                    batch.records.push(r);
                }
                Err(e) => {
                    // Audited as failed and never pushed; the stream fails at its end so the cursor does
                    // not move past the record, and the next run reads it again.
                    report.failed.push(e.to_string());
                    batch.failed.push(FailedRecord {
                        key,
                        when_modified: record.get("WHENMODIFIED").map(str::to_string),
                        source_hash: None,
                        error: e.to_string(),
                    });
                }
            }
        }
        // The page's keyset position is the watermark once the page is staged.
        if let Some(c) = page.cursor
            && high_water.is_none_or(|hw| (c.when_modified, c.recordno) > hw)
        {
            high_water = Some((c.when_modified, c.recordno));
        }
        if batch.high_water != high_water {
            batch.high_water = high_water;
            batch.cursor_moved = true;
        }
        if batch.is_full() {
            flush(job, &mut batch, report).await?;
        }
        if opts.cancel.is_cancelled() {
            flush(job, &mut batch, report).await?;
            return Err(PipelineError::Interrupted);
        }
    }
    drop(pages);
    flush(job, &mut batch, report).await?;
    if created_since.is_none() && plan.created_field.is_some() {
        never_modified::full_pass_done(conn, job.run, stream, started).await?;
    }
    if let Some(newest) = newest_created {
        never_modified::stage_created(conn, job.run, stream, newest).await?;
    }

    // Deletes.
    let (deletes, compared) = if incremental {
        drop(seen_keys);
        let found =
            incremental_deletes(conn, job.run, stream, plan, since.map(|c| c.when_modified))
                .await?;
        (found.keys, found.compared)
    } else {
        let missing = keys_missing_from(conn, stream, |k| seen_keys.contains(k)).await?;
        (missing, None)
    };
    if deletes.is_empty() {
        // The delete check (an AUDITHISTORY query, or the comparison of every key) is part of
        // reading the source: the totals again say where the pull ends and the push begins.
        emit_staged(events, &stream.object, report);
    } else {
        stage(
            job,
            StagedPage {
                deletes,
                high_water,
                ..StagedPage::default()
            },
            report,
        )
        .await?;
    }
    // A comparison of every key counts as done once what it found is staged.
    if let Some(marker) = compared {
        conn.store.commit_cursor(name, &marker).await?;
    }
    Ok(())
}

/// Where an incremental read of a stream starts: after its committed cursor, or from the start of
/// the lookback window before it; `None` (read everything) without a cursor or with `full`. The one
/// place the read's start is decided, for the run and for `sync --dry-run`.
pub fn read_from(
    committed: Option<&ml_store::CursorPos>,
    full: bool,
    lookback: std::time::Duration,
) -> Option<IntacctCursor> {
    if full {
        return None;
    }
    parse_cursor(committed?).map(|(ts, recordno)| {
        let lookback = chrono::Duration::from_std(lookback).unwrap_or_default();
        if lookback.is_zero() {
            IntacctCursor {
                when_modified: ts,
                recordno,
            }
        } else {
            // Re-read the lookback window from its start: records staged again are recognised as
            // unchanged by their hash.
            IntacctCursor {
                when_modified: ts - lookback,
                recordno: 0,
            }
        }
    })
}

/// The stream's staging totals so far.
fn emit_staged(events: &Events, stream: &str, report: &StreamReport) {
    events.emit(RunEvent::Staged {
        stream: stream.to_string(),
        inserted: report.inserted,
        updated: report.updated,
        unchanged: report.unchanged,
        deleted: report.deleted,
    });
}
