//! GL balances: a snapshot of the configured periods, staged like records; balances that
//! disappeared are deleted. The latest `open_periods` months, which postings can still change, are
//! read every run; all `periods` months (the closed ones too, and the months that left the window
//! are deleted then) once per `closed_periods_every`, and on a full sync. The time of the last
//! read of every period is the cursor of a marker stream, like a key comparison's.

use std::collections::HashSet;

use chrono::NaiveDateTime;

use ml_powerbi::schema::RowEncoder;

use super::deletes::keys_missing_from;
use super::records::{staged_record, typed_record};
use super::stage::{STAGE_BATCH_RECORDS, StagedPage, stage};
use crate::config::StreamConfig;
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::RunEvent;
use crate::pipeline::job::{Context, Job};
use crate::pipeline::marker;
use crate::pipeline::report::StreamReport;

/// GL balances: a snapshot of the configured periods each run; balances that disappeared are deleted.
pub(super) async fn extract_balances(
    job: &Job<'_>,
    report: &mut StreamReport,
) -> Result<(), PipelineError> {
    let Job {
        conn,
        run,
        stream,
        plan,
        time,
        opts,
        events,
        ..
    } = *job;
    let encoder = RowEncoder::new(&plan.table_schema());
    let now = conn.clock.now().naive_utc();
    let (periods, read_all) = periods_to_read(conn, stream, opts.full).await?;
    let records = conn
        .intacct
        .account_balances(ml_intacct::BalancesRequest {
            periods: periods.clone(),
            // WHENMODIFIED is read even when not pushed: its newest value lets later runs ask
            // whether any balance changed (see `quiet`).
            fields: {
                let mut f = plan.select.clone();
                if !f.iter().any(|x| x.eq_ignore_ascii_case("WHENMODIFIED")) {
                    f.push("WHENMODIFIED".into());
                }
                f
            },
            filter: None,
            modified_since: None,
        })
        .await?;
    report.extracted = records.len() as u64;
    let newest_modified = records
        .iter()
        .filter_map(|r| r.get("WHENMODIFIED"))
        .filter_map(ml_intacct::protocol::values::parse_timestamp)
        .max();
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
    // A balance's key is ACCOUNTNO|PERIOD|...: only the periods read can have lost rows (reading
    // all of them also deletes the months that left the window).
    let read: HashSet<String> = periods.iter().cloned().collect();
    let kept = |k: &str| -> bool {
        seen.contains(k) || (!read_all && !k.split('|').nth(1).is_some_and(|p| read.contains(p)))
    };
    let deletes = keys_missing_from(conn, stream, kept).await?;
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
    if read_all {
        marker::record(conn, run, &all_marker(stream), now).await?;
    }
    if let Some(newest) = newest_modified {
        stage_newest_modified(conn, run, stream, newest).await?;
    }
    Ok(())
}

fn all_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, "all-periods")
}

/// The marker stream whose cursor holds the newest WHENMODIFIED among the balances a confirmed
/// read saw (Intacct's clock).
fn modified_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, marker::MODIFIED)
}

/// The newest WHENMODIFIED among the balances a confirmed read saw, if any.
pub async fn newest_balance_seen(
    conn: &Context,
    stream: &StreamConfig,
) -> Result<Option<NaiveDateTime>, PipelineError> {
    marker::last(conn, &modified_marker(stream)).await
}

async fn stage_newest_modified(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    newest: NaiveDateTime,
) -> Result<(), PipelineError> {
    marker::advance(conn, run, &modified_marker(stream), (newest, 0)).await
}

/// The periods a run reads, and whether they are all of them: the latest `open_periods` every
/// run, every period once per `closed_periods_every` and on a full run.
pub async fn periods_to_read(
    conn: &Context,
    stream: &StreamConfig,
    full: bool,
) -> Result<(Vec<String>, bool), PipelineError> {
    let through = stream
        .periods_through
        .unwrap_or_else(|| conn.clock.now().date_naive());
    let all = recent_periods(through, stream.periods);
    let now = conn.clock.now().naive_utc();
    let last_all = marker::last(conn, &all_marker(stream)).await?;
    let every = chrono::Duration::from_std(stream.closed_periods_every).unwrap_or_default();
    let read_all = full
        || stream.closed_periods_every.is_zero()
        || stream.open_periods >= stream.periods
        || last_all.is_none_or(|t| now >= t + every);
    let periods = if read_all {
        all
    } else {
        all[all.len().saturating_sub(stream.open_periods as usize)..].to_vec()
    };
    Ok((periods, read_all))
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
