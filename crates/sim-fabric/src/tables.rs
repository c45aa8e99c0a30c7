//! A mirrored table as the replicator holds it and tests read it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// No `_metadata.json` yet.
    #[default]
    Waiting,
    Running,
    /// Replication of the table stopped (a type change, a bad file); the error says why.
    Failed,
}

/// A mirrored table as the replicator holds it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TableState {
    pub status: TableStatus,
    pub error: Option<String>,
    pub key_columns: Vec<String>,
    /// Column name and its Parquet type, in first-seen order (the marker excluded).
    pub columns: Vec<(String, String)>,
    /// Rows by key (the key columns' values joined by U+001F).
    pub rows: BTreeMap<String, BTreeMap<String, Value>>,
    /// The sequence number of the next file to process.
    pub next_file: u64,
    pub processed_files: Vec<String>,
    /// Set when a later file exists but `next_file` does not: replication waits on the gap.
    pub blocked: Option<String>,
    pub rows_replicated: u64,
    pub duplicate_inserts: u64,
    pub updates_of_missing: u64,
}

impl TableState {
    /// The rows, each as a JSON object, in key order.
    pub fn row_values(&self) -> Vec<BTreeMap<String, Value>> {
        self.rows.values().cloned().collect()
    }
}
