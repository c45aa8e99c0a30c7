//! What can stop a stream or a run: the remote systems' typed errors, the store's, and our own.

use super::plan;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Intacct(Box<ml_intacct::IntacctError>),
    #[error(transparent)]
    PowerBi(Box<ml_powerbi::PowerBiError>),
    #[error(transparent)]
    Store(#[from] ml_store::StoreError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Transform(#[from] crate::pipeline::transform::TransformError),
    /// `--stream` named no configured stream: a usage error, found before the run starts.
    #[error("{0}")]
    UnknownStream(String),
    #[error("interrupted: the run stopped after its current batch; the next run resumes from here")]
    Interrupted,
    /// The destination chose not to start now (a rebuild the hour's budget cannot finish, Power BI
    /// not answering before a rebuild) and left the destination as it was: the stream is pending,
    /// not failed, and the run is `partial`.
    #[error("{message}")]
    Postponed {
        message: String,
        /// When it can be done, when known.
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Another run of the connection holds its lease (this worker or another): nothing was done.
    #[error("{0}")]
    LeaseHeld(String),
    #[error("{0}")]
    Other(String),
}

impl From<ml_intacct::IntacctError> for PipelineError {
    fn from(e: ml_intacct::IntacctError) -> Self {
        PipelineError::Intacct(Box::new(e))
    }
}

impl From<ml_powerbi::PowerBiError> for PipelineError {
    fn from(e: ml_powerbi::PowerBiError) -> Self {
        PipelineError::PowerBi(Box::new(e))
    }
}

impl PipelineError {
    /// Intacct, Entra or Power BI refused our credentials or permissions: a person must act, and
    /// trying again with the same ones cannot help.
    pub fn is_refusal(&self) -> bool {
        match self {
            PipelineError::Intacct(e) => e.is_refusal(),
            PipelineError::PowerBi(e) => e.is_refusal(),
            _ => false,
        }
    }
}
