//! Extract and stage: pages from Intacct become typed rows, staged one page per transaction.
//!
//! Memory stays flat: one page (≤ 2,000 records) is held at a time (a few more are being fetched), plus
//! the keys read (RECORDNOs in a compressed bitmap: ~130 KB for a million), which on a full pull find
//! deletes by comparison.
//!
//! Reads run as parallel chains (see `IntacctClient::full_read`), so pages arrive in any order and a
//! record changed during the read can arrive as its new version before its old one: the versions seen
//! decide, and an older version arriving later is not staged over the newer one.

use std::collections::HashSet;

use foldhash::{HashMapExt, HashSetExt};

use chrono::NaiveDateTime;
use futures::{FutureExt, StreamExt};
use ml_intacct::{ChangedSince, Cursor as IntacctCursor, Record, RecordShape};
use ml_powerbi::schema::RowEncoder;
use ml_store::{CursorPos, FailedRecord, StageMode, StagePage, StagedRecord};

use super::{Context, Events, Job, PipelineError, RunEvent, StreamReport};
use crate::catalogue::StreamKind;
use crate::config::{DeleteDetection, Mode, StreamConfig};
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::transform::{self, TimeContext, TypedRecord};

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
    let since = match (&committed, full) {
        (Some(pos), false) => parse_cursor(pos).map(|(ts, recordno)| {
            let lookback = chrono::Duration::from_std(stream.lookback).unwrap_or_default();
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
        }),
        _ => None,
    };
    let incremental = since.is_some();
    // Pages of parallel chains come in any order: versions are checked on every read, and the
    // keys of a full read find deletes.
    let mut seen_keys = Seen::default();
    let mut fields = Fields::default();
    let mut pages = Box::pin(conn.intacct.changed_since(ChangedSince {
        object: plan.object.clone(),
        fields: plan.select.clone(),
        since,
        page_size: Some(conn.config.intacct.page_size),
    }));
    let mut high_water: Option<(NaiveDateTime, i64)> = committed.as_ref().and_then(parse_cursor);
    // Pages are gathered into one staging transaction of up to STAGE_BATCH_RECORDS records.
    let mut batch = StagedPage {
        high_water,
        ..StagedPage::default()
    };
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

    // Deletes.
    let deletes: Vec<String> = if incremental {
        drop(seen_keys);
        incremental_deletes(conn, job.run, stream, since.map(|c| c.when_modified)).await?
    } else {
        keys_missing_from(conn, stream, |k| seen_keys.contains(k)).await?
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
    Ok(())
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

fn typed_record(
    record: &Record,
    plan: &StreamPlan,
    time: &TimeContext,
) -> Result<TypedRecord, PipelineError> {
    let key = record_key(record, plan);
    Ok(transform::transform(
        key,
        |f| record.get(f),
        &plan.columns,
        time,
    )?)
}

fn record_key(record: &Record, plan: &StreamPlan) -> String {
    match plan.kind {
        StreamKind::Balances => [
            "ACCOUNTNO",
            "PERIOD",
            "BOOKID",
            "CURRENCY",
            "DEPARTMENTID",
            "LOCATIONID",
        ]
        .iter()
        .map(|f| record.get(f).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("|"),
        _ => record.get("RECORDNO").unwrap_or("").trim().to_string(),
    }
}

/// Keys a pull has seen: RECORDNOs (the usual key) in a compressed bitmap, ~130 KB for a million
/// keys, anything else in a set. No times are kept here: a record read a second time is rare (it
/// changed during the read) and is compared with the version staged, which the mirror holds
/// (`VersionCheck`).
#[derive(Default)]
struct Seen {
    numbers: roaring::RoaringBitmap,
    other: HashSet<String>,
}

impl Seen {
    /// Records the key; false when it was seen before.
    fn insert(&mut self, key: &str) -> bool {
        match canonical_number(key).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => self.numbers.insert(n),
            None => self.other.insert(key.to_string()),
        }
    }

    fn contains(&self, key: &str) -> bool {
        match canonical_number(key).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => self.numbers.contains(n),
            None => self.other.contains(key),
        }
    }
}

/// One page's decision on which records to stage: a version older than one already staged in this
/// pull (from an earlier page, or earlier in this page) is not staged over it. Pages of parallel
/// chains come in any order, so a record changed during the read can arrive as its new version
/// before its old one.
struct VersionCheck<'p> {
    /// Newest WHENMODIFIED (Unix seconds, `i64::MIN` for never modified) of each key of the page so
    /// far: the mirror's version for a key seen in an earlier page, none yet for a new key.
    newest: foldhash::HashMap<&'p str, i64>,
}

impl<'p> VersionCheck<'p> {
    /// Takes the page's keys, marks them seen, and finds the versions this pull admitted before of
    /// those seen in an earlier page (usually none): in `gathered`, the records of earlier pages
    /// not staged yet, else in the mirror.
    async fn new(
        store: &dyn ml_store::Store,
        connection: &str,
        stream: &str,
        seen: &mut Seen,
        gathered: &[StagedRecord],
        keys: impl ExactSizeIterator<Item = &'p str>,
    ) -> Result<VersionCheck<'p>, PipelineError> {
        // Every key of the page starts as "never modified", older than any version: a key new to the
        // pull keeps that, one seen in an earlier page takes its admitted version below.
        let mut newest = foldhash::HashMap::with_capacity(keys.len());
        let mut again: Vec<&'p str> = Vec::new();
        for key in keys {
            if let std::collections::hash_map::Entry::Vacant(slot) = newest.entry(key) {
                slot.insert(i64::MIN);
                if !seen.insert(key) {
                    again.push(key);
                }
            }
        }
        if again.is_empty() {
            return Ok(VersionCheck { newest });
        }
        // A version gathered and not staged yet was admitted over the mirror's: it is the newer one.
        let mut in_batch = foldhash::HashSet::new();
        for r in gathered {
            if let Some(slot) = newest.get_mut(r.key.as_str()) {
                *slot = (*slot).max(staged_version_time(r.when_modified.as_deref()));
                in_batch.insert(r.key.as_str());
            }
        }
        let ask: Vec<String> = again
            .iter()
            .filter(|k| !in_batch.contains(**k))
            .map(|k| k.to_string())
            .collect();
        if !ask.is_empty() {
            for (key, when_modified) in store.mirror_versions(connection, stream, &ask).await? {
                if let Some(slot) = newest.get_mut(key.as_str()) {
                    *slot = staged_version_time(when_modified.as_deref());
                }
            }
        }
        Ok(VersionCheck { newest })
    }

    /// Whether this version of `key` may be staged: not when a strictly newer one came before.
    fn admit(&mut self, key: &'p str, when_modified: Option<&str>) -> bool {
        let wm = version_time(when_modified.and_then(transform::parse_intacct_datetime));
        let slot = self.newest.entry(key).or_insert(i64::MIN);
        if *slot > wm {
            return false;
        }
        *slot = wm;
        true
    }
}

/// A version's WHENMODIFIED as a number to compare: never modified (none) is older than any
/// modification.
fn version_time(when_modified: Option<NaiveDateTime>) -> i64 {
    when_modified.map_or(i64::MIN, |t| t.and_utc().timestamp())
}

/// [`version_time`] of a staged record's WHENMODIFIED, in the store's ISO form.
fn staged_version_time(when_modified: Option<&str>) -> i64 {
    version_time(when_modified.and_then(transform::parse_iso_seconds))
}

/// The number a key spells when it is one canonically (so that number and text are the same key).
/// Checked on the text rather than by printing the number back: this runs for every record of a
/// full pull, and the round trip allocated a string each time.
fn canonical_number(key: &str) -> Option<i64> {
    let n: i64 = key.parse().ok()?;
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = !digits.starts_with('+')
        && if digits.starts_with('0') {
            key == "0"
        } else {
            true
        };
    canonical.then_some(n)
}

/// Where a stream's columns are in the records of a page, resolved once per record shape.
#[derive(Default)]
struct Fields {
    shape: Option<RecordShape>,
    columns: Vec<Option<usize>>,
    when_modified: Option<usize>,
    recordno: Option<usize>,
}

/// One record's texts in column order.
struct Texts<'r> {
    key: std::borrow::Cow<'r, str>,
    columns: Vec<&'r str>,
    when_modified: Option<&'r str>,
}

impl Fields {
    fn texts<'r>(&mut self, record: &'r Record, plan: &StreamPlan) -> Texts<'r> {
        if !self.shape.as_ref().is_some_and(|s| s.fits(record)) {
            let shape = record.shape();
            self.columns = plan
                .columns
                .iter()
                .map(|c| shape.position(&c.field))
                .collect();
            self.when_modified = shape.position("WHENMODIFIED");
            self.recordno = shape.position("RECORDNO");
            self.shape = Some(shape);
        }
        let at = |i: Option<usize>| i.and_then(|i| record.value_at(i));
        Texts {
            key: match plan.kind {
                StreamKind::Balances => record_key(record, plan).into(),
                _ => at(self.recordno).unwrap_or("").trim().into(),
            },
            columns: self.columns.iter().map(|i| at(*i).unwrap_or("")).collect(),
            when_modified: at(self.when_modified),
        }
    }
}

fn staged_record(encoder: &RowEncoder, typed: TypedRecord) -> Result<StagedRecord, PipelineError> {
    let encoded = encoder.encode(&typed.values).map_err(|e| {
        let hint = match &e {
            ml_powerbi::ValueError::DecimalScale { column, .. } => format!(
                " (set column_types = {{ {column} = \"Double\" }} on this stream to keep every decimal)"
            ),
            _ => String::new(),
        };
        PipelineError::Other(format!("record {}: cannot be encoded for Power BI: {e}{hint}", typed.key))
    })?;
    if !encoded.truncated.is_empty() {
        tracing::warn!(
            record = %typed.key,
            columns = ?encoded.truncated,
            "values longer than Power BI's 4,000 characters were truncated"
        );
    }
    Ok(StagedRecord {
        key: typed.key,
        when_modified: typed
            .when_modified
            .as_ref()
            .map(transform::format_iso_seconds),
        source_hash: typed.source_hash,
        row_json: encoded.json,
    })
}

async fn stage(
    job: &Job<'_>,
    page: StagedPage,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        events,
        ..
    } = *job;
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
const STAGE_BATCH_RECORDS: usize = 10_000;
/// ... or this many bytes of rows, whichever comes first: wide rows keep the batch's memory bounded.
const STAGE_BATCH_BYTES: usize = 8 << 20;
/// A batch is staged early when the next page takes longer than this to come: a fraction of one
/// Intacct round trip (~200 ms), and longer than most gaps between pages that come faster than they
/// are staged (the benchmark's simulator: 30–60 ms at 300,000 records). 50 ms lost most of the
/// batching's gain there; a fixed batch left up to five pages to stage after the last one.
const STAGE_WHEN_IDLE: std::time::Duration = std::time::Duration::from_millis(75);

/// What one staging transaction carries.
#[derive(Default)]
struct StagedPage {
    records: Vec<StagedRecord>,
    deletes: Vec<String>,
    failed: Vec<FailedRecord>,
    high_water: Option<(NaiveDateTime, i64)>,
    /// Bytes of the records' rows.
    bytes: usize,
    /// `high_water` moved since the last staging: a page without records (the last one of a pass)
    /// still moves the watermark.
    cursor_moved: bool,
}

impl StagedPage {
    /// Nothing to stage: no record, no failure, no new watermark.
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.failed.is_empty() && !self.cursor_moved
    }

    /// As much as one staging transaction carries.
    fn is_full(&self) -> bool {
        self.records.len() + self.failed.len() >= STAGE_BATCH_RECORDS
            || self.bytes >= STAGE_BATCH_BYTES
    }
}

/// Stages the batch gathered so far, if it holds anything, and starts a new one.
async fn flush(
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

pub fn parse_cursor(pos: &CursorPos) -> Option<(NaiveDateTime, i64)> {
    transform::parse_iso_seconds(&pos.when_modified).map(|t| (t, pos.recordno))
}

/// Keys in the mirror that a full pull did not see: deleted in Intacct.
async fn keys_missing_from(
    conn: &Context,
    stream: &StreamConfig,
    seen: impl Fn(&str) -> bool,
) -> Result<Vec<String>, PipelineError> {
    let name = conn.config.name.as_str();
    let mut missing = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = conn
            .store
            .mirror_keys_page(name, &stream.object, after.as_deref(), 10_000)
            .await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        missing.extend(page.into_iter().filter(|k| !seen(k)));
        after = Some(last);
    }
    Ok(missing)
}

/// Deletes since the cursor: AUDITHISTORY when allowed, else a comparison of all keys.
async fn incremental_deletes(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    since: Option<NaiveDateTime>,
) -> Result<Vec<String>, PipelineError> {
    let use_audit = matches!(
        stream.deletes,
        DeleteDetection::Auto | DeleteDetection::AuditHistory
    );
    if stream.deletes == DeleteDetection::None {
        return Ok(Vec::new());
    }
    if use_audit && let Some(since) = since {
        // AUDITHISTORY's ACCESSTIME is GMT while the cursor is the user's wall clock: a day of margin
        // costs nothing (a delete of a key the mirror no longer has is a no-op).
        match conn
            .intacct
            .deleted_since(&stream.object, since - chrono::Duration::hours(24))
            .await
        {
            Ok(deleted) => {
                return Ok(deleted
                    .into_iter()
                    .filter_map(|d| d.recordno)
                    .map(|k| k.to_string())
                    .collect());
            }
            Err(e)
                if stream.deletes == DeleteDetection::Auto
                    && (e.is_audit_history_denied() || e.is_permission_denied()) =>
            {
                tracing::warn!(
                    object = %stream.object,
                    error = %e,
                    "AUDITHISTORY is not readable by the API user; finding deletes by comparing keys instead \
                     (grant the role 'View' on audit history to make this cheaper)"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Comparing every key costs ⌈records/2000⌉ requests: done at most once per `key_compare_every`. The
    // time of the last comparison is kept as the cursor of a marker stream, so it survives restarts.
    let marker = format!("{}#key-compare", stream.object);
    let now = conn.clock.now().naive_utc();
    if !stream.key_compare_every.is_zero()
        && let Some(last) = conn
            .store
            .cursor(&conn.config.name, &marker)
            .await?
            .and_then(|c| c.committed)
            .as_ref()
            .and_then(parse_cursor)
        && now < last.0 + chrono::Duration::from_std(stream.key_compare_every).unwrap_or_default()
    {
        return Ok(Vec::new());
    }
    let mut present = HashSet::new();
    let mut keys = Box::pin(conn.intacct.all_keys(&stream.object));
    while let Some(page) = keys.next().await {
        present.extend(page?.into_iter().map(|k| k.to_string()));
    }
    let missing = keys_missing_from(conn, stream, |k| present.contains(k)).await?;
    conn.store
        .stage_page(StagePage {
            connection: conn.config.name.clone(),
            run,
            stream: marker.clone(),
            mode: StageMode::Replace,
            records: Vec::new(),
            deletes: Vec::new(),
            failed: Vec::new(),
            pending_cursor: Some(CursorPos {
                when_modified: transform::format_iso_seconds(&now),
                recordno: 0,
            }),
        })
        .await?;
    conn.store.commit_cursor(&conn.config.name, &marker).await?;
    Ok(missing)
}

/// GL balances: a snapshot of the configured periods each run; balances that disappeared are deleted.
async fn extract_balances(job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
    let Job {
        conn,
        stream,
        plan,
        time,
        events,
        ..
    } = *job;
    let encoder = RowEncoder::new(&plan.table_schema());
    let through = stream
        .periods_through
        .unwrap_or_else(|| conn.clock.now().date_naive());
    let periods = recent_periods(through, stream.periods);
    let records = conn
        .intacct
        .account_balances(ml_intacct::BalancesRequest {
            periods,
            fields: plan.select.clone(),
            filter: None,
            modified_since: None,
        })
        .await?;
    report.extracted = records.len() as u64;
    events.emit(RunEvent::Extracted {
        stream: stream.object.clone(),
        records: report.extracted,
    });
    let mut seen = HashSet::new();
    for chunk in records.chunks(STAGE_BATCH_RECORDS) {
        let mut staged = Vec::with_capacity(chunk.len());
        for record in chunk {
            let typed = typed_record(record, plan, time)?;
            seen.insert(typed.key.clone());
            staged.push(staged_record(&encoder, typed)?);
        }
        stage(
            job,
            StagedPage {
                records: staged,
                ..StagedPage::default()
            },
            report,
        )
        .await?;
    }
    let deletes = keys_missing_from(conn, stream, |k| seen.contains(k)).await?;
    if !deletes.is_empty() {
        stage(
            job,
            StagedPage {
                deletes,
                ..StagedPage::default()
            },
            report,
        )
        .await?;
    }
    Ok(())
}

/// Intacct's names of the `count` most recent monthly reporting periods up to `today`'s month
/// ("Month Ended November 2026").
pub fn recent_periods(today: chrono::NaiveDate, count: u32) -> Vec<String> {
    use chrono::Datelike;
    let mut out = Vec::new();
    let (mut y, mut m) = (today.year(), today.month());
    for _ in 0..count {
        let name = chrono::NaiveDate::from_ymd_opt(y, m, 1)
            .map(|d| d.format("%B").to_string())
            .unwrap_or_default();
        out.push(format!("Month Ended {name} {y}"));
        if m == 1 {
            m = 12;
            y -= 1;
        } else {
            m -= 1;
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_store::Store as _;

    #[test]
    fn a_key_is_a_number_only_when_it_spells_one_canonically() {
        for (key, want) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-0", None),
            ("042", None),
            ("-042", None),
            ("00", None),
            ("+5", None),
            (" 5", None),
            ("5 ", None),
            ("", None),
            ("V-1", None),
            ("9223372036854775808", None),
        ] {
            assert_eq!(canonical_number(key), want, "key {key:?}");
            // The same answer as printing the number back.
            let printed = key.parse::<i64>().ok().filter(|n| n.to_string() == key);
            assert_eq!(canonical_number(key), printed, "key {key:?}");
        }
    }

    #[test]
    fn seen_keys_are_numbers_when_canonical_and_text_otherwise() {
        let mut seen = Seen::default();
        assert!(seen.insert("42"));
        assert!(!seen.insert("42"));
        assert!(seen.insert("V-1"));
        // Beyond 32 bits, negative, or not canonical: kept as text, exactly.
        assert!(seen.insert("9876543210"));
        assert!(seen.insert("-5"));
        assert!(seen.insert("042"));
        assert!(!seen.insert("9876543210"));
        for key in ["42", "V-1", "9876543210", "-5", "042"] {
            assert!(seen.contains(key), "{key}");
        }
        // "042" is another key than "42", and "43" was never seen.
        assert!(!seen.contains("43") && !seen.contains("0042"));
        assert!(seen.insert("4294967295") && seen.contains("4294967295"));
    }

    /// A record as the pipeline stages it: its Intacct WHENMODIFIED in the store's ISO form.
    fn store_record(key: &str, when_modified: Option<&str>) -> StagedRecord {
        StagedRecord {
            key: key.to_string(),
            when_modified: when_modified
                .and_then(transform::parse_intacct_datetime)
                .map(|t| transform::format_iso_seconds(&t)),
            source_hash: format!("h-{key}-{when_modified:?}"),
            row_json: "{}".to_string(),
        }
    }

    /// A SQLite store in a temp dir (kept alive by the returned guard) with connection "acme" and
    /// a run of it.
    async fn store_with_run() -> (tempfile::TempDir, ml_store::SqliteStore, ml_store::RunId) {
        let dir = tempfile::tempdir().unwrap();
        let store = ml_store::SqliteStore::open(
            &dir.path().join("state.db"),
            std::sync::Arc::new(ml_store::SystemClock),
        )
        .await
        .unwrap();
        store.ensure_connection("acme").await.unwrap();
        let run = store.begin_run("acme", "test").await.unwrap();
        (dir, store, run)
    }

    /// Stages `records` of VENDOR (replace mode) as the pipeline does once it admitted them.
    async fn stage_admitted(
        store: &ml_store::SqliteStore,
        run: ml_store::RunId,
        records: Vec<StagedRecord>,
    ) {
        store
            .stage_page(StagePage {
                connection: "acme".into(),
                run,
                stream: "VENDOR".into(),
                mode: StageMode::Replace,
                records,
                deletes: vec![],
                failed: vec![],
                pending_cursor: None,
            })
            .await
            .unwrap();
    }

    /// A record read twice during one pull (it changed while the chains ran): a version older than
    /// one staged before, in an earlier page (the mirror's) or earlier in the same page, is refused.
    #[tokio::test]
    async fn an_older_version_arriving_after_a_newer_one_is_refused() {
        let (_dir, store, run) = store_with_run().await;
        let mut seen = Seen::default();

        // Page 1: 42 in its new version (read first by one chain), 7 never modified, 9 as it was.
        let page1 = ["42", "7", "9"];
        let mut check =
            VersionCheck::new(&store, "acme", "VENDOR", &mut seen, &[], page1.into_iter())
                .await
                .unwrap();
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("7", None));
        assert!(check.admit("9", Some("01/02/2017 08:00:00")));
        // The pipeline stages what it admitted.
        stage_admitted(
            &store,
            run,
            vec![
                store_record("42", Some("07/24/2017 15:19:46")),
                store_record("7", None),
                store_record("9", Some("01/02/2017 08:00:00")),
            ],
        )
        .await;

        // Page 2, from the other chain: 42 in its old version, then twice again; 7 now modified;
        // 9 never modified (older than any modification); 11 new, twice, the older one last.
        let page2 = ["42", "7", "9", "11", "11", "42", "42"];
        let mut check =
            VersionCheck::new(&store, "acme", "VENDOR", &mut seen, &[], page2.into_iter())
                .await
                .unwrap();
        assert!(
            !check.admit("42", Some("07/24/2017 15:19:45")),
            "older than the mirror's"
        );
        assert!(
            check.admit("7", Some("07/24/2017 15:19:46")),
            "a modification is newer"
        );
        assert!(
            !check.admit("9", None),
            "never modified is older than a modification"
        );
        assert!(check.admit("11", Some("03/01/2017 00:00:00")));
        assert!(
            !check.admit("11", Some("02/01/2017 00:00:00")),
            "older than earlier in the page"
        );
        // The same version again is harmless (it stages as unchanged); a newer one goes.
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("42", Some("07/25/2017 00:00:00")));
        for key in ["42", "7", "9", "11"] {
            assert!(seen.contains(key));
        }
        assert!(!seen.contains("12"));
        store.close().await;
    }

    /// Pages gathered into one staging batch are not in the mirror yet: a record read again in a
    /// later page of the same batch is compared with the gathered version, not the mirror's.
    #[tokio::test]
    async fn an_older_version_is_refused_against_a_gathered_page_not_yet_staged() {
        let (_dir, store, run) = store_with_run().await;
        // The mirror holds 42 as it was before the pull.
        stage_admitted(
            &store,
            run,
            vec![store_record("42", Some("01/01/2017 00:00:00"))],
        )
        .await;
        let mut seen = Seen::default();

        // Page 1 admits 42's new version and 7; both wait in the batch, unstaged.
        let mut check = VersionCheck::new(
            &store,
            "acme",
            "VENDOR",
            &mut seen,
            &[],
            ["42", "7"].into_iter(),
        )
        .await
        .unwrap();
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("7", Some("03/01/2017 00:00:00")));
        let gathered = vec![
            store_record("42", Some("07/24/2017 15:19:46")),
            store_record("7", Some("03/01/2017 00:00:00")),
        ];

        // Page 2 of the same batch: 42 in a version newer than the mirror's but older than the
        // gathered one is refused; 7 in the same version again goes (it stages as unchanged), a
        // newer 42 goes.
        let mut check = VersionCheck::new(
            &store,
            "acme",
            "VENDOR",
            &mut seen,
            &gathered,
            ["42", "7", "8"].into_iter(),
        )
        .await
        .unwrap();
        assert!(
            !check.admit("42", Some("06/01/2017 00:00:00")),
            "older than the gathered version, though newer than the mirror's"
        );
        assert!(check.admit("7", Some("03/01/2017 00:00:00")));
        assert!(check.admit("8", None), "a key new to the pull");
        assert!(check.admit("42", Some("07/25/2017 00:00:00")));
        store.close().await;
    }

    #[test]
    fn periods_are_named_like_intacct_and_cross_years() {
        let p = recent_periods(chrono::NaiveDate::from_ymd_opt(2026, 2, 10).unwrap(), 3);
        assert_eq!(
            p,
            vec![
                "Month Ended December 2025",
                "Month Ended January 2026",
                "Month Ended February 2026"
            ]
        );
    }
}
