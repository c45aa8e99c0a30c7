//! Errors: Power BI REST failures (every body shape of reference §6.1 plus the diagnostic headers), Entra token
//! failures (AADSTS codes), transport failures, and configuration mistakes.
//!
//! Classification is pure ([`ApiError::from_parts`], [`TokenError::from_parts`]) so it is tested table-driven
//! without a network. Messages say what went wrong and what to do; they never carry a token or a secret.
//!
//! This file holds the error every call returns and the failures that have no response to read; [`ApiError`]
//! (what a refusal means) and the reading of a response into one are apart, as are Entra's token errors.

mod api;
mod classify;
mod entra;

pub use api::{ApiError, ApiErrorKind, ErrorClass};
pub use classify::{parse_retry_after, strip_bom};
pub use entra::{TokenError, TokenErrorKind};

use crate::schema::SchemaError;

/// Everything the Power BI client can fail with.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PowerBiError {
    #[error("Power BI settings are invalid: {0}")]
    Config(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Api(#[from] Box<ApiError>),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{operation}: the response could not be read ({detail}); RequestId {request_id:?}")]
    Decode {
        operation: String,
        detail: String,
        request_id: Option<String>,
    },
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(
        "no workspace '{name}' is visible to the service principal: check the name, and add the service principal \
         (or its security group) to the workspace as Member or Contributor — service principals only see workspaces \
         they belong to"
    )]
    WorkspaceNotFound { name: String },
    #[error("{count} workspaces are named '{name}': configure the workspace by its id instead")]
    WorkspaceAmbiguous { name: String, count: usize },
    #[error("{operation}: the query failed: {code}: {message}")]
    Query {
        operation: String,
        code: String,
        message: String,
    },
}

impl From<ApiError> for PowerBiError {
    fn from(e: ApiError) -> Self {
        PowerBiError::Api(Box::new(e))
    }
}

impl PowerBiError {
    /// The Power BI API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            PowerBiError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Power BI or Entra refused our credentials or permissions: a person must fix something
    /// (exit code 4).
    pub fn is_refusal(&self) -> bool {
        match self {
            PowerBiError::Token(t) => t.is_refusal(),
            PowerBiError::Api(e) => matches!(
                e.kind,
                ApiErrorKind::TenantSwitchOff
                    | ApiErrorKind::GroupNotAccessible
                    | ApiErrorKind::NotAuthorized
                    | ApiErrorKind::ApiNotAccessibleForApplication
            ),
            PowerBiError::WorkspaceNotFound { .. } => true,
            _ => false,
        }
    }

    /// True when the same request may be sent again later with a good chance of success.
    pub fn is_retryable(&self) -> bool {
        match self {
            PowerBiError::Api(e) => e.class() == ErrorClass::Retryable,
            PowerBiError::Transport(t) => !t.maybe_sent,
            PowerBiError::Token(t) => t.kind == TokenErrorKind::Unavailable,
            _ => false,
        }
    }
}

/// A request that got no HTTP status back.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation}: {detail}{}", if self.maybe_sent {
    "; the request may have reached Power BI, so its outcome is unknown"
} else {
    "; the request did not reach Power BI (check the network, proxy and api_url)"
})]
pub struct TransportError {
    pub operation: String,
    pub detail: String,
    /// False only when the connection was never established (the body certainly was not delivered).
    pub maybe_sent: bool,
    /// The status, when one arrived but the body could not be read.
    pub status: Option<u16>,
}

impl TransportError {
    pub(crate) fn from_reqwest(operation: &str, e: &reqwest::Error) -> Self {
        // The message chain of a reqwest error can include the URL; ours never carries secrets in URLs.
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        TransportError {
            operation: operation.to_string(),
            detail,
            maybe_sent: !e.is_connect(),
            status: e.status().map(|s| s.as_u16()),
        }
    }
}
