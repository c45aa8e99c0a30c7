//! Times a stream's periodic work was last done (a full pass over never-modified records, a
//! comparison of every key, a read of every GL period, a read of the lookback window), kept as the
//! cursor of a marker stream (`VENDOR#key-compare`) so they survive restarts and move with the
//! same transactions as the stream's own cursor.

use chrono::NaiveDateTime;
use ml_store::{CursorPos, RunId, StageMode, StagePage};

use super::error::PipelineError;
use super::job::Context;
use super::transform;

/// Bounds a read leaves for the next runs' question (see `quiet`), each committed only with the
/// stream's cursor, once its delivery is confirmed: the newest never-modified record read
/// (creation time and RECORDNO), the newest AUDITHISTORY deletion seen, the newest GL balance
/// WHENMODIFIED seen.
pub const CREATED: &str = "created";
pub const DELETES: &str = "deletes";
pub const MODIFIED: &str = "modified";

/// The marker stream of `stream`'s `what` (`VENDOR#key-compare`).
pub fn name(stream: &str, what: &str) -> String {
    format!("{stream}#{what}")
}

/// When the work the marker stands for was last done (UTC), if ever.
pub async fn last(conn: &Context, marker: &str) -> Result<Option<NaiveDateTime>, PipelineError> {
    Ok(last_position(conn, marker).await?.map(|(t, _)| t))
}

/// The marker's committed position: a time and a RECORDNO.
pub async fn last_position(
    conn: &Context,
    marker: &str,
) -> Result<Option<(NaiveDateTime, i64)>, PipelineError> {
    Ok(conn
        .store
        .cursor(&conn.config.name, marker)
        .await?
        .and_then(|c| c.committed)
        .and_then(|pos| {
            transform::parse_iso_seconds(&pos.when_modified).map(|t| (t, pos.recordno))
        }))
}

/// Stages `at` as the marker's time; it counts once committed (by the caller, when what the
/// work found is staged too, or at once by [`record`]).
pub async fn stage(
    conn: &Context,
    run: RunId,
    marker: &str,
    at: NaiveDateTime,
) -> Result<(), PipelineError> {
    stage_position(conn, run, marker, (at, 0)).await
}

/// Stages a position (a time and a RECORDNO) as the marker's; see [`stage`].
pub async fn stage_position(
    conn: &Context,
    run: RunId,
    marker: &str,
    (at, recordno): (NaiveDateTime, i64),
) -> Result<(), PipelineError> {
    conn.store
        .stage_page(StagePage {
            connection: conn.config.name.clone(),
            run,
            stream: marker.to_string(),
            mode: StageMode::Replace,
            records: Vec::new(),
            deletes: Vec::new(),
            failed: Vec::new(),
            pending_cursor: Some(CursorPos {
                when_modified: transform::format_iso_seconds(&at),
                recordno,
            }),
        })
        .await?;
    Ok(())
}

/// Records `at` as the marker's time, committed at once.
pub async fn record(
    conn: &Context,
    run: RunId,
    marker: &str,
    at: NaiveDateTime,
) -> Result<(), PipelineError> {
    stage(conn, run, marker, at).await?;
    conn.store.commit_cursor(&conn.config.name, marker).await?;
    Ok(())
}

/// Commits what this run staged for the marker (nothing when it staged nothing: committing an
/// empty stage would forget the marker's time).
pub async fn confirm(conn: &Context, marker: &str) -> Result<(), PipelineError> {
    let staged = conn
        .store
        .cursor(&conn.config.name, marker)
        .await?
        .is_some_and(|c| c.pending.is_some());
    if staged {
        conn.store.commit_cursor(&conn.config.name, marker).await?;
    }
    Ok(())
}

/// Stages `position` as the marker's when it moves the committed one forward (never back).
pub async fn advance(
    conn: &Context,
    run: RunId,
    marker: &str,
    position: (NaiveDateTime, i64),
) -> Result<(), PipelineError> {
    if last_position(conn, marker)
        .await?
        .is_some_and(|seen| seen >= position)
    {
        return Ok(());
    }
    stage_position(conn, run, marker, position).await
}

/// Commits what this run staged for the markers that move with `stream`'s cursor
/// ([`CREATED`], [`DELETES`], [`MODIFIED`]), once its delivery is confirmed.
pub async fn confirm_with_cursor(conn: &Context, stream: &str) -> Result<(), PipelineError> {
    for what in [CREATED, DELETES, MODIFIED] {
        confirm(conn, &name(stream, what)).await?;
    }
    Ok(())
}
