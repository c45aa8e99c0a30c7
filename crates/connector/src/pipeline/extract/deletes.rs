//! Finding deletes: AUDITHISTORY since the cursor when the API user may read it, else a comparison
//! of every key in Intacct with the mirror (at most once per `key_compare_every`).

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDateTime;
use futures::StreamExt;
use ml_intacct::DeletedRecord;
use ml_store::CursorPos;

use crate::catalogue;
use crate::config::{DeleteDetection, StreamConfig};
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;
use crate::pipeline::marker;
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::transform;

pub fn parse_cursor(pos: &CursorPos) -> Option<(NaiveDateTime, i64)> {
    transform::parse_iso_seconds(&pos.when_modified).map(|t| (t, pos.recordno))
}

/// Keys in the mirror that a full pull did not see: deleted in Intacct.
pub(super) async fn keys_missing_from(
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

/// The keys an incremental pull found deleted.
#[derive(Debug, Default)]
pub(super) struct FoundDeletes {
    pub keys: Vec<String>,
    /// When every key was compared: the marker stream whose pending cursor (the comparison's time)
    /// is to be committed once `keys` are staged, not before (a comparison recorded but not
    /// applied would let the next run skip what it found).
    pub compared: Option<String>,
}

/// Deletes since the cursor: AUDITHISTORY when allowed, else a comparison of all keys.
///
/// AUDITHISTORY names a deleted record by its `OBJECTKEY`: `RECORDNO--REC` for objects keyed by
/// RECORDNO, but the unique name field for master data (a vendor's VENDORID, a customer's
/// CUSTOMERID; see `catalogue::Entry::audit_key_field`). A business ID is turned into the mirror's
/// key through the mirror; one that cannot be is never dropped: the stream compares every key in
/// this run instead.
pub(super) async fn incremental_deletes(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    plan: &StreamPlan,
    since: Option<NaiveDateTime>,
) -> Result<FoundDeletes, PipelineError> {
    let use_audit = matches!(
        stream.deletes,
        DeleteDetection::Auto | DeleteDetection::AuditHistory
    );
    if stream.deletes == DeleteDetection::None {
        return Ok(FoundDeletes::default());
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
                if let Some(newest) = deleted.iter().filter_map(|d| d.access_time).max() {
                    stage_newest_delete(conn, run, stream, newest).await?;
                }
                let found = resolve(conn, stream, plan, deleted).await?;
                if !found.compare_keys {
                    return Ok(FoundDeletes {
                        keys: found.keys,
                        compared: None,
                    });
                }
                let mut compared = compare_keys(conn, run, stream, true).await?;
                let mut keys: BTreeSet<String> = found.keys.into_iter().collect();
                keys.extend(compared.keys);
                compared.keys = keys.into_iter().collect();
                return Ok(compared);
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
    compare_keys(conn, run, stream, false).await
}

/// The mirror keys AUDITHISTORY's delete events name, and whether some event could not be
/// resolved (so every key must be compared).
#[derive(Debug, Default)]
struct Resolved {
    keys: Vec<String>,
    compare_keys: bool,
}

/// Turns delete events into mirror keys: a `RECORDNO--REC` key is the RECORDNO; a business ID is
/// looked up in the mirror by the object's name field (its Power BI column in this stream's plan),
/// and a RECORDNO found so is deleted only if Intacct no longer has it (a business ID can be given
/// to a new record once the old one is deleted). An event that resolves to nothing asks for a key
/// comparison, unless one ran after the event (it saw the record gone): the record may be one the
/// mirror has under a name it no longer shows, or one already deleted by an earlier run.
async fn resolve(
    conn: &Context,
    stream: &StreamConfig,
    plan: &StreamPlan,
    deleted: Vec<DeletedRecord>,
) -> Result<Resolved, PipelineError> {
    let mut out = Resolved::default();
    let mut by_name: Vec<DeletedRecord> = Vec::new();
    for d in deleted {
        match d.recordno {
            Some(n) => out.keys.push(n.to_string()),
            None => by_name.push(d),
        }
    }
    if by_name.is_empty() {
        return Ok(out);
    }
    let name = conn.config.name.as_str();
    let column = catalogue::entry(&stream.object)
        .and_then(catalogue::Entry::audit_key_field)
        .and_then(|field| plan.columns.iter().find(|c| c.field == field))
        .map(|c| c.column.as_str());
    let mut found: Vec<(String, String)> = Vec::new();
    if let Some(column) = column {
        let values: Vec<String> = by_name
            .iter()
            .map(|d| d.object_key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        found = conn
            .store
            .mirror_keys_by_column(name, &stream.object, column, &values)
            .await?;
    }
    // Still in Intacct: the business ID names a record created after the deleted one.
    let candidates: Vec<i64> = found
        .iter()
        .filter_map(|(_, key)| key.parse().ok())
        .collect();
    let live: HashSet<i64> = if candidates.is_empty() {
        HashSet::new()
    } else {
        conn.intacct
            .present_keys(&stream.object, &candidates)
            .await?
            .into_iter()
            .collect()
    };
    let mut resolved: HashSet<&str> = HashSet::new();
    for (value, key) in &found {
        match key.parse::<i64>() {
            Ok(n) if live.contains(&n) => {
                tracing::debug!(
                    object = %stream.object,
                    object_key = %value,
                    key = %key,
                    "a deleted record's name is now another record's, which Intacct still has: kept"
                );
            }
            Ok(_) => {
                out.keys.push(key.clone());
                resolved.insert(value.as_str());
            }
            Err(_) => {}
        }
    }
    let compared_at = marker::last(conn, &key_compare_marker(stream)).await?;
    for d in by_name
        .iter()
        .filter(|d| !resolved.contains(d.object_key.as_str()))
    {
        let covered = matches!((d.access_time, compared_at), (Some(t), Some(c)) if t < c);
        if covered {
            tracing::debug!(
                object = %stream.object,
                object_key = %d.object_key,
                "a delete event the mirror has no record for, older than the last key comparison: nothing to do"
            );
            continue;
        }
        tracing::warn!(
            object = %stream.object,
            object_key = %d.object_key,
            "AUDITHISTORY names a deleted record by a key the mirror cannot resolve to a RECORDNO; \
             comparing every key of the object in this run instead"
        );
        out.compare_keys = true;
    }
    Ok(out)
}

/// The marker stream whose cursor holds the newest AUDITHISTORY delete event a confirmed read saw.
fn deletes_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, marker::DELETES)
}

/// The newest AUDITHISTORY delete event (its ACCESSTIME, GMT) a confirmed read saw, if any.
pub async fn newest_delete_seen(
    conn: &Context,
    stream: &StreamConfig,
) -> Result<Option<NaiveDateTime>, PipelineError> {
    marker::last(conn, &deletes_marker(stream)).await
}

/// Stages `newest` as the newest delete event seen (committed with the cursor).
pub(super) async fn stage_newest_delete(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    newest: NaiveDateTime,
) -> Result<(), PipelineError> {
    marker::advance(conn, run, &deletes_marker(stream), (newest, 0)).await
}

/// Before a full read compares every key: the newest deletion AUDITHISTORY holds for the object,
/// kept as the newest delete event seen (the comparison that follows reflects it and every one
/// before), so the next runs' question asks only after it. Nothing when the API user may not read
/// AUDITHISTORY or deletes are not looked for there.
pub(super) async fn note_newest_deletion(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
) -> Result<(), PipelineError> {
    if !matches!(
        stream.deletes,
        DeleteDetection::Auto | DeleteDetection::AuditHistory
    ) {
        return Ok(());
    }
    match conn.intacct.newest_deletion(&stream.object).await {
        Ok(Some(t)) => stage_newest_delete(conn, run, stream, t).await,
        Ok(None) => Ok(()),
        Err(e) => {
            tracing::debug!(object = %stream.object, error = %e, "newest deletion not read");
            Ok(())
        }
    }
}

/// The marker stream whose cursor holds the time of the last comparison of every key.
fn key_compare_marker(stream: &StreamConfig) -> String {
    marker::name(&stream.object, "key-compare")
}

/// Keys in the mirror that Intacct no longer has, found by reading every key. Unless `forced`, done
/// at most once per `key_compare_every`.
async fn compare_keys(
    conn: &Context,
    run: ml_store::RunId,
    stream: &StreamConfig,
    forced: bool,
) -> Result<FoundDeletes, PipelineError> {
    // Comparing every key costs ⌈records/2000⌉ requests: done at most once per `key_compare_every`. The
    // time of the last comparison is kept as the cursor of a marker stream, so it survives restarts.
    let compare_marker = key_compare_marker(stream);
    let now = conn.clock.now().naive_utc();
    if !forced
        && !stream.key_compare_every.is_zero()
        && let Some(last) = marker::last(conn, &compare_marker).await?
        && now < last + chrono::Duration::from_std(stream.key_compare_every).unwrap_or_default()
    {
        return Ok(FoundDeletes::default());
    }
    let mut present = HashSet::new();
    let mut keys = Box::pin(conn.intacct.all_keys(&stream.object));
    while let Some(page) = keys.next().await {
        present.extend(page?.into_iter().map(|k| k.to_string()));
    }
    let missing = keys_missing_from(conn, stream, |k| present.contains(k)).await?;
    marker::stage(conn, run, &compare_marker, now).await?;
    Ok(FoundDeletes {
        keys: missing,
        compared: Some(compare_marker),
    })
}
