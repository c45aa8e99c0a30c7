//! Plain data types exchanged with the store. No I/O here.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::SealedSecret;

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite database file (created with its directory when absent).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:pw@host/db`).
    Postgres(String),
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            StoreLocation::Postgres(u) => write!(f, "Postgres({})", crate::error::redact_url(u)),
        }
    }
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
id_type!(
    /// Store-internal id of a connection.
    ConnectionId
);
id_type!(
    /// Id of a run; increases with time.
    RunId
);

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$var),)+
                    other => Err(format!("unknown {} '{}'", stringify!($name), other)),
                }
            }
        }
    };
}

str_enum!(
    /// State of a run. `Running` until [`crate::Store::finish_run`]; `Skipped`: a scheduled time the
    /// service did not run, recorded with its reason ([`crate::Store::record_skipped_run`]).
    RunStatus { Running = "running", Succeeded = "succeeded", Partial = "partial", Failed = "failed", Interrupted = "interrupted", Skipped = "skipped" }
);
str_enum!(
    /// Result of one stream within a run.
    StreamStatus { Ok = "ok", Failed = "failed", Skipped = "skipped", Postponed = "postponed" }
);
str_enum!(
    /// How a stream's Power BI table is fed.
    StageMode { Append = "append", Replace = "replace" }
);
str_enum!(
    /// What Power BI did with a batch.
    DeliveryOutcome { Accepted = "accepted", Ambiguous = "ambiguous", Failed = "failed" }
);
str_enum!(
    /// What an audit entry records.
    AuditAction {
        Inserted = "inserted", Updated = "updated", Deleted = "deleted", Unchanged = "unchanged",
        Failed = "failed", Pushed = "pushed", Ambiguous = "ambiguous", PushFailed = "push_failed",
    }
);

/// A stored credential: the sealed secret plus non-secret fields (ids, user names) in clear.
#[derive(Clone, Debug, PartialEq)]
pub struct Credential {
    pub connection: String,
    /// "intacct" | "powerbi"
    pub kind: String,
    pub sealed: SealedSecret,
    pub public_fields: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// Counters and error of one stream in one run (upserted per run + stream).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult {
    pub status: Option<StreamStatus>,
    pub extracted: u64,
    pub staged: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub pushed: u64,
    /// Full remote error text (Intacct description + correction, Power BI message); never a secret.
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub connection: String,
    /// schedule | manual | demo | resume
    pub trigger: String,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub summary: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRun {
    pub stream: String,
    pub result: StreamResult,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunRecord,
    pub streams: Vec<StreamRun>,
}

/// A position in Intacct's `(WHENMODIFIED, RECORDNO)` order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPos {
    /// ISO 8601 timestamp as the pipeline formats it.
    pub when_modified: String,
    pub recordno: i64,
}

/// `committed` is where the next run starts; `pending` is staged but not yet confirmed loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub committed: Option<CursorPos>,
    pub pending: Option<CursorPos>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedRecord {
    /// Record key (RECORDNO or the object's key) as text.
    pub key: String,
    pub when_modified: Option<String>,
    /// Hex SHA-256 of the source record; equal hashes mean "unchanged".
    pub source_hash: String,
    /// The exact row JSON that goes to Power BI.
    pub row_json: String,
}

/// A record that could not be transformed; audited as `failed`, never pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedRecord {
    pub key: String,
    pub when_modified: Option<String>,
    pub source_hash: Option<String>,
    pub error: String,
}

/// One page of one stream, staged atomically by [`crate::Store::stage_page`].
#[derive(Clone, Debug)]
pub struct StagePage {
    pub connection: String,
    pub run: RunId,
    pub stream: String,
    pub mode: StageMode,
    pub records: Vec<StagedRecord>,
    /// Keys deleted at the source.
    pub deletes: Vec<String>,
    pub failed: Vec<FailedRecord>,
    /// Becomes the stream's pending cursor in the same transaction.
    pub pending_cursor: Option<CursorPos>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSummary {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub failed: u64,
}

/// A row waiting to be appended to a Power BI table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub key: String,
    pub row_json: String,
    /// Sequence number of the staging audit entry that produced it.
    pub audit_seq: i64,
    /// Set when a batch holding it had an unknown fate; check before re-sending.
    pub ambiguous: bool,
    /// Batch the row was last sent in (set for ambiguous rows).
    pub batch_id: Option<String>,
}

/// The fate of one Power BI batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub run: RunId,
    pub batch_id: String,
    pub request_id: Option<String>,
    pub outcome: DeliveryOutcome,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRow {
    pub key: String,
    pub row_json: String,
}

/// A page of the mirror's rows as a few texts: what a rebuild sends, read without a row object
/// (and a hand-over between threads) for each of its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorRows {
    /// Where the next page starts: its `after` (the back end's position, not a record key).
    pub cursor: String,
    count: usize,
    /// The rows' JSON, one a line: compact JSON never holds a raw line break.
    texts: Vec<String>,
}

impl MirrorRows {
    /// `count` rows joined by `\n`, the next page starting after `cursor`; refused if the text
    /// does not split into `count` rows (a row holding a raw line break would be cut in two and
    /// sent as two broken rows).
    pub fn new(cursor: String, count: usize, joined: String) -> Result<Self, String> {
        let lines = if joined.is_empty() {
            0
        } else {
            joined.split('\n').count()
        };
        if lines != count {
            return Err(format!(
                "{count} mirror rows split into {lines} lines: a stored row holds a raw line break"
            ));
        }
        Ok(MirrorRows {
            cursor,
            count,
            texts: vec![joined],
        })
    }

    /// Adds the part of the same page read after this one: the page now ends where it ends.
    pub fn append(&mut self, other: MirrorRows) {
        self.cursor = other.cursor;
        self.count += other.count;
        self.texts.extend(other.texts);
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The rows' JSON, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = &str> {
        self.texts
            .iter()
            .filter(|t| !t.is_empty())
            .flat_map(|t| t.split('\n'))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The Power BI table differs from the mirror and must be rebuilt (replace mode).
    pub dirty: bool,
    pub last_loaded_run: Option<RunId>,
    /// Rows believed to be in the Power BI table.
    pub table_rows: u64,
    /// Bumped by every staged page that changed the stream's mirror (insert, update, delete): a
    /// rebuild started at one version and resumed at the same one reads the same mirror.
    pub mirror_version: u64,
    /// How far a rebuild of the table got, while it is dirty (None: no rebuild in progress, or
    /// the table was changed since in a way that makes its rows unknown).
    pub rebuild: Option<RebuildProgress>,
}

/// A rebuild's progress (`Store::save_rebuild_progress`): what it may resume from without emptying
/// the table again, when the mirror is still at `mirror_version`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildProgress {
    /// The stream's `mirror_version` when the rebuild read the mirror's first page.
    pub mirror_version: u64,
    /// The mirror page cursor (`MirrorRows::cursor`) up to which every row is in the table; None:
    /// none yet (the rebuild starts from the first page).
    pub cursor: Option<String>,
    /// The rows in the table: those up to `cursor` and those of the pages in `done`.
    pub rows: u64,
    /// Pages beyond `cursor` already in the table, each named by the cursor it was read after
    /// (batches complete out of order).
    pub done: Vec<String>,
    /// The rows of a page of this rebuild: a resumed rebuild reads the same pages.
    pub page_rows: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetState {
    pub group_id: String,
    pub dataset_id: String,
    pub schema_json: String,
    pub schema_hash: String,
}

/// A `dataset migrate` under way: the connection's dataset is being replaced by a new one (a push
/// dataset cannot gain tables). Recorded before the new dataset is created and kept until every
/// report is rebound, so a migration that stopped halfway continues with the same new dataset
/// instead of creating another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetMigration {
    pub group_id: String,
    /// The dataset being replaced; never deleted by the connector.
    pub from_dataset_id: String,
    /// The new dataset, once created (None: not created yet).
    pub to_dataset_id: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// One POST to a Power BI dataset, as its rate budgets count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushPost {
    /// When the answer came.
    pub at: DateTime<Utc>,
    /// Rows the POST added (0 when refused).
    pub rows: u64,
}

/// A time-limited claim on a connection's runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub connection: String,
    pub worker_id: String,
    /// Proof of ownership for renew/release.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A row replayed from the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayRow {
    /// For pushed rows, the seq of the `pushed` entry in its connection's chain (page with
    /// `after_seq`); 0 for as-of rows (page by key).
    pub id: i64,
    pub key: String,
    pub row_json: String,
}

/// One entry of the hash-chained audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Global id (search paging).
    pub id: i64,
    pub connection: String,
    /// Position in the connection's chain: 1, 2, 3, ... without gaps.
    pub seq: i64,
    pub run: Option<RunId>,
    pub stream: Option<String>,
    pub record_key: Option<String>,
    pub when_modified: Option<String>,
    pub source_hash: Option<String>,
    pub action: AuditAction,
    /// The exact row staged (inserted/updated); for `pushed`, the row comes from `ref_seq`.
    pub row_json: Option<String>,
    /// For delivery entries: the seq of the staging entry whose row was sent.
    pub ref_seq: Option<i64>,
    pub batch_id: Option<String>,
    pub request_id: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    /// Small JSON with extra facts (e.g. `{"rows":2000}` for a reload batch).
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Hex of the previous entry's hash (all zeros for the first entry).
    pub prev_hash: String,
    pub hash: String,
}

/// Filter for [`crate::Store::audit_search`]; `None` fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub connection: Option<String>,
    pub run: Option<RunId>,
    pub stream: Option<String>,
    pub record_key: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub action: Option<AuditAction>,
    /// Default 1000.
    pub limit: Option<u32>,
    /// Entries with id greater than this (paging).
    pub after_id: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub entries_checked: u64,
    pub ok: bool,
    /// `(seq, reason)` of the first entry that breaks the chain.
    pub first_bad: Option<(i64, String)>,
    /// Seq of the pruning anchor the check started from, if any.
    pub anchor_seq: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub deleted: u64,
    /// Seq of the last pruned entry, now the anchor (unchanged when nothing was pruned).
    pub anchor_seq: Option<i64>,
}

/// Totals over every run in the store, what the console's `/metrics` reports: counters that only
/// grow (until `audit prune` or a restore), read in two grouped queries instead of run by run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTotals {
    /// Runs by connection and status.
    pub runs: Vec<RunCount>,
    /// Per connection and stream: sums over the stream's results in every run.
    pub streams: Vec<StreamTotals>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCount {
    pub connection: String,
    pub status: RunStatus,
    pub runs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTotals {
    pub connection: String,
    pub stream: String,
    pub extracted: u64,
    pub pushed: u64,
    /// Runs in which the stream failed.
    pub failed_runs: u64,
    /// When the stream last finished `ok` in a run.
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// Fixed-width UTC text form used for every timestamp column: sorts as text in both back ends.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>, crate::StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| crate::StoreError::Corrupt(format!("timestamp '{s}': {e}")))
}

#[cfg(test)]
mod tests {
    use super::MirrorRows;

    #[test]
    fn a_page_of_mirror_rows_splits_into_its_rows_or_is_refused() {
        let page = MirrorRows::new("9".into(), 2, "{\"A\":1}\n{\"A\":\"x\\ny\"}".into()).unwrap();
        assert_eq!(
            page.rows().collect::<Vec<_>>(),
            ["{\"A\":1}", "{\"A\":\"x\\ny\"}"]
        );
        let raw_break = MirrorRows::new("9".into(), 2, "{\"A\":1}\n{\"A\":\"x\ny\"}".into());
        assert!(raw_break.unwrap_err().contains("raw line break"));
        let mut two = page.clone();
        two.append(MirrorRows::new("10".into(), 1, "{\"A\":2}".into()).unwrap());
        assert_eq!(
            (two.len(), two.cursor.as_str()),
            (3, "10"),
            "the page ends where its last part ends"
        );
        assert_eq!(two.rows().count(), 3);
        let empty = MirrorRows::new(String::new(), 0, String::new()).unwrap();
        assert_eq!(empty.rows().count(), 0);
        assert!(empty.is_empty());
    }
}
