//! What a OneLake call can fail with: ADLS Gen2's own error code and message kept.

#[derive(Debug, thiserror::Error)]
pub enum OneLakeError {
    #[error("OneLake configuration: {0}")]
    Config(String),
    /// Entra refused or could not issue the storage token.
    #[error(transparent)]
    Token(Box<ml_powerbi::PowerBiError>),
    /// 401/403: the token or the service principal's workspace role.
    #[error(
        "OneLake refused access ({status} {code}: {message}); add the app to the workspace as Contributor (or Member/Admin) and check the tenant setting that lets service principals use Fabric APIs"
    )]
    Denied {
        status: u16,
        code: String,
        message: String,
    },
    #[error("OneLake {status} {code}: {message} (request id {request_id})")]
    Remote {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// The request may or may not have reached OneLake.
    #[error("OneLake could not be reached: {0}")]
    Transport(String),
    #[error("change file: {0}")]
    Parquet(String),
}

impl OneLakeError {
    /// The ADLS error code, when OneLake answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            OneLakeError::Remote { code, .. } | OneLakeError::Denied { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            OneLakeError::Remote { status, .. } | OneLakeError::Denied { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// A person must act (credentials, role): retrying cannot help.
    pub fn is_refusal(&self) -> bool {
        match self {
            OneLakeError::Denied { .. } => true,
            OneLakeError::Token(e) => e.is_refusal(),
            _ => false,
        }
    }
}

impl From<ml_powerbi::PowerBiError> for OneLakeError {
    fn from(e: ml_powerbi::PowerBiError) -> Self {
        OneLakeError::Token(Box::new(e))
    }
}
