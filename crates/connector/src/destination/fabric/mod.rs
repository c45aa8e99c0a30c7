//! Fabric open mirroring: each stream's changes become Parquet change files in a mirrored
//! database's OneLake landing zone, which Fabric merges by key into Delta tables
//! (docs/fabric-open-mirroring.md).
//!
//! What to deliver comes from the audit trail: every `inserted`, `updated` or `deleted` entry of
//! the stream after the last one a published file covers. A key's latest entry decides its row:
//! its staged row as an upsert (marker 4), or the key alone as a delete (marker 2), so a changed
//! record costs one row. Unchanged records have no entries, so they cost nothing.
//!
//! Publishing a file, crash-safe (the destination's state is one JSON text in the store,
//! `destination_state`):
//!
//! 1. the file's number and the audit range it covers are recorded as `pending` *before* anything
//!    is sent;
//! 2. `_metadata.json` is written once per table (uploaded under another `_` name, renamed with
//!    `If-None-Match: *`);
//! 3. the file is uploaded as `_<number>.parquet` (ignored by Fabric), its size checked in a
//!    listing, and renamed to `<number>.parquet` with `If-None-Match: *`, so a number is never
//!    published twice;
//! 4. `next_file` and the covered range move and `pending` is cleared, in one write.
//!
//! `settle` decides a pending file from a listing: the final name present and the `_` name gone
//! means it was published (a rename is atomic); otherwise it is rebuilt from the same audit range
//! (the same rows) and published under the same number. So a crash at any point leaves no gap and
//! never publishes a number twice.

mod rows;

use std::any::Any;
use std::collections::HashMap;

use async_trait::async_trait;
use ml_onelake::{ChangeFile, OneLakeClient, OneLakeError, RowMarker};
use ml_store::{AuditAction, AuditFilter};
use serde::{Deserialize, Serialize};

use super::Destination;
use crate::pipeline::error::PipelineError;
use crate::pipeline::events::RunEvent;
use crate::pipeline::job::{Context, Job};
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::report::StreamReport;
use rows::Layout;

/// The destination's name in the store's `destination_state`.
const STATE_NAME: &str = "fabric_mirroring";
/// Changed keys gathered before a file is cut (one file per stream per run below this).
const FILE_ROWS: usize = 100_000;
/// Audit entries read a query.
const PAGE: u32 = 1000;

/// A stream's delivery state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TableState {
    /// The number the next file gets.
    next_file: u64,
    /// Every change in audit entries with id ≤ this is in a published file.
    confirmed_id: i64,
    /// `_metadata.json` is in place.
    metadata: bool,
    /// Columns and their types as published; a type may never change (Fabric stops the table).
    columns: Vec<(String, String)>,
    /// A file whose publication may or may not have happened.
    pending: Option<Pending>,
}

impl Default for TableState {
    fn default() -> Self {
        TableState {
            next_file: 1,
            confirmed_id: 0,
            metadata: false,
            columns: Vec::new(),
            pending: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    file: u64,
    /// The audit range (after_id, through_id] the file holds.
    after_id: i64,
    through_id: i64,
    rows: u64,
}

/// Fabric open mirroring as a [`Destination`].
pub struct FabricMirroring {
    client: OneLakeClient,
}

impl FabricMirroring {
    pub fn new(client: OneLakeClient) -> Self {
        FabricMirroring { client }
    }
}

fn onelake(e: OneLakeError) -> PipelineError {
    PipelineError::Other(e.to_string())
}

fn data_name(table: &str, n: u64) -> String {
    format!("{table}/{n:020}.parquet")
}

fn upload_name(table: &str, n: u64) -> String {
    format!("{table}/_{n:020}.parquet")
}

impl FabricMirroring {
    async fn load(&self, job: &Job<'_>) -> Result<TableState, PipelineError> {
        let raw = job
            .conn
            .store
            .destination_state(job.conn.name(), STATE_NAME, &job.stream.object)
            .await?;
        match raw {
            None => Ok(TableState::default()),
            Some(t) => serde_json::from_str(&t).map_err(|e| {
                PipelineError::Other(format!(
                    "the Fabric state of {} is unreadable: {e}",
                    job.stream.object
                ))
            }),
        }
    }

    async fn save(&self, job: &Job<'_>, st: &TableState) -> Result<(), PipelineError> {
        let text = serde_json::to_string(st).map_err(|e| PipelineError::Other(e.to_string()))?;
        job.conn
            .store
            .save_destination_state(job.conn.name(), STATE_NAME, &job.stream.object, &text)
            .await?;
        Ok(())
    }

    /// The changes of audit entries (after, through] (through: None = to the end, cut at
    /// [`FILE_ROWS`] keys), as a change file, and the last entry id it covers.
    async fn collect(
        &self,
        job: &Job<'_>,
        layout: &Layout,
        after: i64,
        through: Option<i64>,
    ) -> Result<(ChangeFile, i64), PipelineError> {
        let mut latest: HashMap<String, Option<String>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut last = after;
        loop {
            let page = job
                .conn
                .store
                .audit_search(&AuditFilter {
                    connection: Some(job.conn.name().to_string()),
                    stream: Some(job.stream.object.clone()),
                    after_id: Some(last),
                    limit: Some(PAGE),
                    ..AuditFilter::default()
                })
                .await?;
            let full = page.len() == PAGE as usize;
            let mut past_end = false;
            for e in page {
                if through.is_some_and(|t| e.id > t) {
                    past_end = true;
                    break;
                }
                last = e.id;
                let row = match e.action {
                    AuditAction::Inserted | AuditAction::Updated => e.row_json,
                    AuditAction::Deleted => None,
                    _ => continue,
                };
                let Some(key) = e.record_key else { continue };
                if latest.insert(key.clone(), row).is_none() {
                    order.push(key);
                }
            }
            if past_end || !full || (through.is_none() && order.len() >= FILE_ROWS) {
                break;
            }
        }
        let mut file = ChangeFile::new(layout.columns());
        for key in order {
            let row = latest.remove(&key).flatten();
            let (values, marker) = match row {
                Some(json) => (layout.values(&key, &json)?, RowMarker::Upsert),
                None => (layout.key_only(&key)?, RowMarker::Delete),
            };
            file.push(values, marker).map_err(onelake)?;
        }
        Ok((file, last))
    }

    async fn ensure_metadata(
        &self,
        table: &str,
        layout: &Layout,
        st: &mut TableState,
    ) -> Result<(), PipelineError> {
        if st.metadata {
            return Ok(());
        }
        let body = serde_json::json!({ "keyColumns": [layout.key_column()] }).to_string();
        let upload = format!("{table}/_metadata.json.upload");
        let target = format!("{table}/_metadata.json");
        self.client
            .upload(&upload, body.as_bytes())
            .await
            .map_err(onelake)?;
        match self.client.rename(&upload, &target, true).await {
            Ok(()) => {}
            // Written before (keyColumns cannot change, and ours never does): drop our copy.
            Err(e) if e.code() == Some("PathAlreadyExists") => {
                let _ = self.client.delete(&upload, false).await;
            }
            Err(e) => return Err(onelake(e)),
        }
        st.metadata = true;
        Ok(())
    }

    /// Uploads, checks and renames file `p.file`; Ok once `<number>.parquet` holds it.
    async fn publish(&self, table: &str, p: &Pending, bytes: &[u8]) -> Result<(), PipelineError> {
        let upload = upload_name(table, p.file);
        let target = data_name(table, p.file);
        self.client.upload(&upload, bytes).await.map_err(onelake)?;
        let listed = self
            .client
            .list(table, false)
            .await
            .map_err(onelake)?
            .unwrap_or_default();
        let size = listed
            .iter()
            .find(|e| e.name == upload)
            .map(|e| e.content_length);
        if size != Some(bytes.len() as u64) {
            return Err(PipelineError::Other(format!(
                "{upload}: OneLake holds {size:?} bytes after the upload, {} were sent; nothing was published, the next run uploads it again",
                bytes.len()
            )));
        }
        match self.client.rename(&upload, &target, true).await {
            Ok(()) => Ok(()),
            Err(e) => match self.published(table, p.file).await? {
                Some(true) => Ok(()),
                _ => Err(onelake(e)),
            },
        }
    }

    /// Whether file `n` is published (`Some(true)`), not (`Some(false)`), from a listing.
    async fn published(&self, table: &str, n: u64) -> Result<Option<bool>, PipelineError> {
        let listed = self
            .client
            .list(table, false)
            .await
            .map_err(onelake)?
            .unwrap_or_default();
        let has = |name: &str| listed.iter().any(|e| e.name == name);
        Ok(Some(
            has(&data_name(table, n)) && !has(&upload_name(table, n)),
        ))
    }

    /// Finishes a file an earlier run left pending (guarantee 3): published → recorded; otherwise
    /// rebuilt from the same audit range and published under the same number.
    async fn settle_pending(
        &self,
        job: &Job<'_>,
        layout: &Layout,
        st: &mut TableState,
    ) -> Result<(), PipelineError> {
        let Some(p) = st.pending.clone() else {
            return Ok(());
        };
        let table = &job.stream.table;
        if self.published(table, p.file).await? != Some(true) {
            let (file, _) = self
                .collect(job, layout, p.after_id, Some(p.through_id))
                .await?;
            let bytes = file.finish().map_err(onelake)?;
            self.ensure_metadata(table, layout, st).await?;
            self.publish(table, &p, &bytes).await?;
        }
        st.next_file = p.file + 1;
        st.confirmed_id = p.through_id;
        st.pending = None;
        self.save(job, st).await
    }

    /// A column whose type differs from the published one would stop the table in Fabric: refused here, with the fix.
    fn check_columns(
        &self,
        job: &Job<'_>,
        layout: &Layout,
        st: &mut TableState,
    ) -> Result<(), PipelineError> {
        for (name, ty) in layout.type_names() {
            match st.columns.iter().find(|(n, _)| *n == name) {
                Some((_, known)) if *known != ty => {
                    return Err(PipelineError::Other(format!(
                        "stream {}: column {name} would change type from {known} to {ty} in Fabric table {}; open mirroring stops replicating a table whose column changes type. Fix: keep the type (column_types), or re-create the table: delete the folder LandingZone/{} in OneLake, wait for Fabric to drop the table, then run `ml-connector sync --full --stream {}` after removing the stream's Fabric state",
                        job.stream.object, job.stream.table, job.stream.table, job.stream.object
                    )));
                }
                Some(_) => {}
                None => st.columns.push((name, ty)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Destination for FabricMirroring {
    fn describe(&self) -> &'static str {
        "Fabric open mirroring"
    }

    /// Checks that the landing zone answers and the app may use it; table folders are created
    /// with their first file (a folder without data is reported to fail in Fabric).
    async fn prepare(&self, _ctx: &Context, _plans: &[&StreamPlan]) -> Result<(), PipelineError> {
        self.client.list("", false).await.map_err(onelake)?.ok_or_else(|| {
            PipelineError::Other(
                "the landing zone does not exist: check landing_zone_url against the mirrored database's home page in Fabric".into(),
            )
        })?;
        Ok(())
    }

    async fn settle(&self, job: &Job<'_>, _report: &mut StreamReport) -> Result<(), PipelineError> {
        let layout = Layout::new(job.plan)?;
        let mut st = self.load(job).await?;
        self.settle_pending(job, &layout, &mut st).await
    }

    async fn deliver(&self, job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError> {
        let layout = Layout::new(job.plan)?;
        let mut st = self.load(job).await?;
        self.settle_pending(job, &layout, &mut st).await?;
        self.check_columns(job, &layout, &mut st)?;
        let table = job.stream.table.clone();
        loop {
            job.check_cancel()?;
            let (file, through) = self.collect(job, &layout, st.confirmed_id, None).await?;
            if file.is_empty() {
                if through > st.confirmed_id {
                    st.confirmed_id = through;
                    self.save(job, &st).await?;
                }
                break;
            }
            let rows = file.len() as u64;
            let bytes = file.finish().map_err(onelake)?;
            let p = Pending {
                file: st.next_file,
                after_id: st.confirmed_id,
                through_id: through,
                rows,
            };
            st.pending = Some(p.clone());
            self.save(job, &st).await?;
            self.ensure_metadata(&table, &layout, &mut st).await?;
            self.publish(&table, &p, &bytes).await?;
            st.next_file = p.file + 1;
            st.confirmed_id = through;
            st.pending = None;
            self.save(job, &st).await?;
            report.pushed += rows;
            // The progress bars and `sync`'s summary count rows from these, as for Power BI.
            job.events.emit(RunEvent::Pushed {
                stream: job.stream.object.clone(),
                rows: report.pushed,
            });
            tracing::info!(stream = %job.stream.object, table = %table, file = p.file, rows, bytes = bytes.len(), "published a change file");
        }
        report.table_rows = job
            .conn
            .store
            .mirror_count(job.conn.name(), &job.stream.object)
            .await?;
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
