//! Streams with nothing to read this run, found in one request before any stream reads.
//!
//! An incremental read with nothing to find still costs a request for each of its two passes and
//! one for its deletes; a run of twenty quiet objects, sixty. Asked together (see
//! `IntacctClient::quiet`), the same questions cost one request, and a stream whose read would
//! return nothing skips it: its cursor stays where it is, so nothing can be missed, and its
//! delivery still runs (a table waiting for a rebuild gets it).
//!
//! Only a read that is fully decided by its cursor is asked about: incremental, never-modified
//! records narrowed by their creation time (no full pass due), deletes from AUDITHISTORY or not
//! looked for; GL balances of the open periods by their WHENMODIFIED (not when every period is
//! due). Full reads, key comparisons, first runs and a lookback window due read as always.

use std::collections::HashMap;

use ml_intacct::{ChangedSince, Probe};

use super::extract::{
    created_high_water, never_modified_filter, newest_balance_seen, newest_delete_seen,
    parse_cursor, periods_to_read, read_from,
};
use super::job::{Context, RunOptions};
use super::marker;
use super::plan::StreamPlan;
use super::{PipelineError, Planned};
use crate::catalogue::StreamKind;
use crate::config::{DeleteDetection, StreamConfig};

/// AUDITHISTORY's ACCESSTIME is GMT while the cursor is the user's wall clock: the delete check
/// looks a day further back (`extract::deletes`), and so does this question.
const DELETE_MARGIN_HOURS: i64 = 24;

/// The marker stream whose cursor holds when the stream's lookback window was last read.
fn window_marker(object: &str) -> String {
    marker::name(object, "window")
}

/// Records that `stream`'s read, begun at `started` (UTC), covered its lookback window.
pub(super) async fn window_read(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    started: chrono::NaiveDateTime,
) -> Result<(), PipelineError> {
    marker::record(conn, run, &window_marker(&stream.object), started).await
}

/// The streams of `planned` whose read this run would return nothing, each with whether its
/// question rested on the stream's cursor (a cursor reset meanwhile means reading after all).
/// Any doubt (a question Intacct did not answer, a failure) leaves the stream to read as always.
pub(super) async fn quiet_streams(
    conn: &Context,
    planned: &Planned,
    opts: &RunOptions,
) -> HashMap<String, bool> {
    if opts.full {
        return HashMap::new();
    }
    let mut probes = Vec::new();
    let mut objects = Vec::new();
    for (stream, plan) in planned {
        let Ok(plan) = plan else { continue };
        match probe(conn, stream, plan).await {
            Ok(Some(p)) => {
                let on_cursor = matches!(p, Probe::Read { .. });
                probes.push(p);
                objects.push((stream.object.clone(), on_cursor));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(stream = %stream.object, error = %e, "not asked whether quiet")
            }
        }
    }
    if probes.is_empty() {
        return HashMap::new();
    }
    match conn.intacct.quiet(&probes).await {
        Ok(answers) => objects
            .into_iter()
            .zip(answers)
            .filter_map(|(object, quiet)| match quiet {
                Ok(true) => Some(object),
                _ => None,
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "could not ask which streams are quiet; every stream reads");
            HashMap::new()
        }
    }
}

/// The question for a GL balances stream: whether a balance of the periods this run would read
/// changed after the newest change a confirmed read saw. Not asked when every period is due, nor
/// when the lookback window is due (the open periods are then read whole, which also finds a
/// balance Intacct showed late).
async fn balances_probe(
    conn: &Context,
    stream: &StreamConfig,
) -> Result<Option<Probe>, PipelineError> {
    let (periods, read_all) = periods_to_read(conn, stream, false).await?;
    if read_all || periods.is_empty() || !window_recent(conn, stream).await? {
        return Ok(None);
    }
    let Some(seen) = newest_balance_seen(conn, stream).await? else {
        return Ok(None);
    };
    Ok(Some(Probe::Balances {
        periods,
        modified_after: seen,
    }))
}

/// The stream's lookback window was read less than `lookback` ago (always, without a lookback).
async fn window_recent(conn: &Context, stream: &StreamConfig) -> Result<bool, PipelineError> {
    if stream.lookback.is_zero() {
        return Ok(true);
    }
    let lookback = chrono::Duration::from_std(stream.lookback).unwrap_or(chrono::Duration::MAX);
    let now = conn.clock.now().naive_utc();
    Ok(marker::last(conn, &window_marker(&stream.object))
        .await?
        .is_some_and(|read| now < read + lookback))
}

/// The question for `stream`'s read, when its read is one the answer fully decides.
async fn probe(
    conn: &Context,
    stream: &StreamConfig,
    plan: &StreamPlan,
) -> Result<Option<Probe>, PipelineError> {
    if plan.kind == StreamKind::Balances {
        return balances_probe(conn, stream).await;
    }
    let deletes_by_audit = match stream.deletes {
        DeleteDetection::Auto | DeleteDetection::AuditHistory => true,
        DeleteDetection::None => false,
        DeleteDetection::KeyCompare => return Ok(None),
    };
    let committed = conn
        .store
        .cursor(&conn.config.name, &stream.object)
        .await?
        .and_then(|c| c.committed);
    // A cursor the pipeline cannot read is a full read, whatever the question would say.
    if committed.as_ref().and_then(parse_cursor).is_none() {
        return Ok(None);
    }
    // The question is about what came after the cursor itself. The read's `lookback` window
    // before it is there for records Intacct shows late: it is read again at least once every
    // `lookback` (a stream whose window was read longer ago than that reads as always), so a
    // late record waits at most that long more, and none falls behind the window.
    let Some(since) = read_from(committed.as_ref(), false, std::time::Duration::ZERO) else {
        return Ok(None);
    };
    if !window_recent(conn, stream).await? {
        return Ok(None);
    }
    let Some(mut created_since) =
        never_modified_filter(conn, stream, plan.created_field.as_deref(), Some(since)).await?
    else {
        // Every never-modified record is read again (no creation field, or the full pass is due).
        return Ok(None);
    };
    // Created after the newest record a confirmed read saw (exactly: by creation time and
    // RECORDNO), when that is past the cursor.
    if let Some((t, n)) = created_high_water(conn, stream).await?
        && t >= created_since.since
    {
        created_since.since = t;
        created_since.after = Some(n);
    }
    // Deletes are looked for a day before the cursor (AUDITHISTORY's GMT against the user's wall
    // clock). Asked that way, one delete keeps the stream from being quiet for a day; asked after
    // the newest delete event a confirmed read saw, only a new one does. Events of that very
    // second, or shown late, are found by the window's read, at least once every lookback (with
    // no lookback the question keeps the day's margin).
    let mut deleted_after = since.when_modified - chrono::Duration::hours(DELETE_MARGIN_HOURS);
    if !stream.lookback.is_zero()
        && let Some(seen) = newest_delete_seen(conn, stream).await?
    {
        deleted_after = deleted_after.max(seen);
    }
    Ok(Some(Probe::Read {
        read: ChangedSince {
            object: plan.object.clone(),
            fields: plan.select.clone(),
            since: Some(since),
            page_size: Some(1),
            created_since: Some(created_since),
        },
        deleted_after: deletes_by_audit.then_some(deleted_after),
    }))
}
