//! What a run tells its caller and the store: per-stream counts and errors, and the run's outcome.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Partial,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    pub object: String,
    pub table: String,
    pub extracted: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub pushed: u64,
    pub table_rows: u64,
    /// Records that could not be transformed (each message names the record and field).
    pub failed: Vec<String>,
    pub error: Option<String>,
    /// The destination postponed this stream's delivery and left it as it was (why, and until when).
    pub postponed: Option<String>,
    /// When the postponed delivery can be done, when the destination knows.
    pub postponed_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The error is a remote system refusing our credentials or permissions.
    pub refused: bool,
    pub elapsed: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run: i64,
    pub status: RunStatus,
    pub streams: Vec<StreamReport>,
    /// A failure before any stream could start (credentials, workspace, dataset).
    pub setup_error: Option<String>,
    /// A remote system refused our credentials or permissions (the setup error or a stream's).
    pub refused: bool,
}

pub(super) fn store_status(s: &RunStatus) -> ml_store::RunStatus {
    match s {
        RunStatus::Succeeded => ml_store::RunStatus::Succeeded,
        RunStatus::Partial => ml_store::RunStatus::Partial,
        RunStatus::Failed => ml_store::RunStatus::Failed,
        RunStatus::Interrupted => ml_store::RunStatus::Interrupted,
    }
}

pub(super) fn stream_result(r: &StreamReport) -> ml_store::StreamResult {
    ml_store::StreamResult {
        status: Some(if r.error.is_some() {
            ml_store::StreamStatus::Failed
        } else if r.postponed.is_some() {
            ml_store::StreamStatus::Postponed
        } else {
            ml_store::StreamStatus::Ok
        }),
        extracted: r.extracted,
        staged: r.inserted + r.updated + r.unchanged + r.deleted,
        inserted: r.inserted,
        updated: r.updated,
        deleted: r.deleted,
        unchanged: r.unchanged,
        pushed: r.pushed,
        error: r.error.clone().or_else(|| r.postponed.clone()),
    }
}
