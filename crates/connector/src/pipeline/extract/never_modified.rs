//! Records never modified since creation (empty WHENMODIFIED): an incremental read finds them by
//! their audit creation time since the cursor, and every `never_modified_full_every` reads all of
//! them once more, the safety net for a record whose creation time fell behind the cursor (a clock
//! or a consistency delay longer than the lookback).
//!
//! The time of the last complete pass is the cursor of a marker stream, so it survives restarts,
//! like the time of the last key comparison (`deletes.rs`).

use chrono::NaiveDateTime;
use ml_intacct::{CreatedSince, Cursor as IntacctCursor};

use crate::config::StreamConfig;
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;
use crate::pipeline::marker;

/// The marker stream whose cursor holds the time every never-modified record was last read.
fn pass_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, "never-modified")
}

/// The marker stream whose cursor holds the newest creation time of a never-modified record a
/// confirmed read staged.
fn created_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, marker::CREATED)
}

/// The newest never-modified record a confirmed read staged, by creation time (Intacct's wall
/// clock) and RECORDNO, if any.
pub async fn created_high_water(
    conn: &Context,
    stream: &StreamConfig,
) -> Result<Option<(NaiveDateTime, i64)>, PipelineError> {
    marker::last_position(conn, &created_marker(stream)).await
}

/// Stages `newest` as the stream's creation high-water mark (committed with the cursor).
pub(super) async fn stage_created(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    newest: (NaiveDateTime, i64),
) -> Result<(), PipelineError> {
    marker::advance(conn, run, &created_marker(stream), newest).await
}

/// How the read of `stream` starting at `since` narrows its never-modified pass: by
/// `created_field` at or after the read's start (the cursor less the lookback), or not at all (a
/// full read, an object without a known creation field, or a full pass due).
pub async fn never_modified_filter(
    conn: &Context,
    stream: &StreamConfig,
    created_field: Option<&str>,
    since: Option<IntacctCursor>,
) -> Result<Option<CreatedSince>, PipelineError> {
    let (Some(since), Some(field)) = (since, created_field) else {
        return Ok(None);
    };
    if stream.never_modified_full_every.is_zero() {
        return Ok(None);
    }
    let every = chrono::Duration::from_std(stream.never_modified_full_every).unwrap_or_default();
    let now = conn.clock.now().naive_utc();
    Ok(match marker::last(conn, &pass_marker(stream)).await? {
        Some(last) if now < last + every => {
            // Records created up to the newest one a confirmed read saw were read by it: the
            // bound is that record (exactly, without a lookback; less the lookback with one),
            // when it is past the cursor's window. Without it, records created after the last
            // modification would be read again by every run until something else is modified.
            let lookback = chrono::Duration::from_std(stream.lookback).unwrap_or_default();
            let from_cursor = (since.when_modified, None);
            let bound = match created_high_water(conn, stream).await? {
                Some((t, n)) if lookback.is_zero() && t >= since.when_modified => (t, Some(n)),
                Some((t, _)) if t - lookback > since.when_modified => (t - lookback, None),
                _ => from_cursor,
            };
            Some(CreatedSince {
                field: field.to_string(),
                since: bound.0,
                after: bound.1,
            })
        }
        _ => None,
    })
}

/// Records that a read which took every never-modified record, started at `started`, is complete.
/// Committed at once, as a key comparison's time is once what it found is staged: the records it
/// read are staged already, and the stream's own cursor still decides what is read again.
pub(super) async fn full_pass_done(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    started: NaiveDateTime,
) -> Result<(), PipelineError> {
    marker::record(conn, run, &pass_marker(stream), started).await
}
