//! What a Power BI REST refusal is and means: its kind, how to handle it, and what to tell the user.

use std::fmt;
use std::time::Duration;

/// How a failed API call should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429 or 5xx: the service refused before processing; send again after `retry_after` / backoff.
    Retryable,
    /// 403 TokenExpired / InvalidToken: refresh the token once and send again.
    Token,
    /// Needs a person to change something; retrying cannot help.
    Permanent,
}

/// What a Power BI error means for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiErrorKind {
    Throttled,
    ServerError,
    TokenRejected,
    TenantSwitchOff,
    GroupNotAccessible,
    NotAuthorized,
    ApiNotAccessibleForApplication,
    NotPushDataset,
    ItemNotFound,
    EntityNotFound,
    FeatureDeprecated,
    BadRequest,
    QueryFailed,
    ClaimsChallenge,
    Other,
}

/// A non-2xx answer from the Power BI REST API, with everything needed for a support case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// What we were doing, e.g. "POST rows to table 'Vendors'".
    pub operation: String,
    pub status: u16,
    pub kind: ApiErrorKind,
    /// `error.code`, `error["pbi.error"].code`, or `X-PowerBI-Error-Info`, whichever was found first.
    pub code: Option<String>,
    pub message: Option<String>,
    /// `error.details[*].message` (and `pbi.error.details[*].detail.value`).
    pub details: Vec<String>,
    /// `X-PowerBI-Error-Info`, often the only diagnostic on 401/403.
    pub error_info: Option<String>,
    /// `RequestId` response header: quote it to Microsoft support.
    pub request_id: Option<String>,
    /// `Retry-After` (delta-seconds or HTTP-date), on 429/503.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            ApiErrorKind::Throttled | ApiErrorKind::ServerError => ErrorClass::Retryable,
            ApiErrorKind::TokenRejected => ErrorClass::Token,
            _ => ErrorClass::Permanent,
        }
    }

    /// What the user should do about it.
    pub fn advice(&self) -> &'static str {
        match self.kind {
            ApiErrorKind::Throttled => {
                "Power BI is throttling this dataset; the connector waits for Retry-After and tries again"
            }
            ApiErrorKind::ServerError => {
                "a Power BI service error; the connector retries, and if it persists check the Power BI service status"
            }
            ApiErrorKind::TokenRejected => {
                "the access token was rejected; the connector fetches a new one and retries once"
            }
            ApiErrorKind::TenantSwitchOff => {
                "ask the Fabric administrator to enable 'Service principals can use Fabric APIs' (Admin portal → Tenant \
                 settings → Developer settings) for a security group that contains this app registration"
            }
            ApiErrorKind::GroupNotAccessible => {
                "add the service principal (or its security group) to the workspace as Member or Contributor \
                 (Workspace → Manage access)"
            }
            ApiErrorKind::NotAuthorized => {
                "the service principal is not authorised: check that the tenant setting 'Service principals can use \
                 Fabric APIs' includes its security group and that it is a Member or Contributor of the workspace"
            }
            ApiErrorKind::ApiNotAccessibleForApplication => {
                "this endpoint is not available to service principals; the connector must use the workspace \
                 (/groups/{id}) form — configure a workspace, not 'My workspace'"
            }
            ApiErrorKind::NotPushDataset => {
                "the dataset is not a push dataset (e.g. published from Power BI Desktop); configure a different \
                 dataset name so the connector creates its own push dataset"
            }
            ApiErrorKind::ItemNotFound | ApiErrorKind::EntityNotFound => {
                "the workspace, dataset or table does not exist or is not visible to the service principal; check \
                 the names, the workspace role (Contributor or above), and re-run discovery"
            }
            ApiErrorKind::FeatureDeprecated => {
                "Power BI refuses to create this kind of dataset in this tenant (push/streaming datasets are being \
                 retired); reuse an existing push dataset or contact the Power BI administrator"
            }
            ApiErrorKind::BadRequest => {
                "Power BI refused the request as malformed; the details above name the offending property or value"
            }
            ApiErrorKind::QueryFailed => {
                "the DAX query failed; check the query text and that 'Dataset Execute Queries REST API' is enabled"
            }
            ApiErrorKind::ClaimsChallenge => {
                "a Conditional Access policy demands extra claims; exclude the service principal from that policy"
            }
            ApiErrorKind::Other => {
                "unexpected Power BI response; quote the RequestId to Microsoft support if it persists"
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: HTTP {}", self.operation, self.status)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if !self.details.is_empty() {
            write!(f, " (details: {})", self.details.join("; "))?;
        }
        if let Some(i) = &self.error_info
            && Some(i) != self.code.as_ref()
        {
            write!(f, " [X-PowerBI-Error-Info: {i}]")?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " [RequestId {r}]")?;
        }
        write!(f, ". {}", self.advice())
    }
}

impl std::error::Error for ApiError {}
