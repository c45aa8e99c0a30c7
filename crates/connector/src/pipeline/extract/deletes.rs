//! Finding deletes: AUDITHISTORY since the cursor when the API user may read it, else a comparison
//! of every key in Intacct with the mirror (at most once per `key_compare_every`).

use std::collections::HashSet;

use chrono::NaiveDateTime;
use futures::StreamExt;
use ml_store::{CursorPos, StageMode, StagePage};

use crate::config::{DeleteDetection, StreamConfig};
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;
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

/// Deletes since the cursor: AUDITHISTORY when allowed, else a comparison of all keys.
pub(super) async fn incremental_deletes(
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
