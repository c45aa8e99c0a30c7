//! Errors: Power BI REST failures (every body shape of reference §6.1 plus the diagnostic headers), Entra token
//! failures (AADSTS codes), transport failures, and configuration mistakes.
//!
//! Classification is pure ([`ApiError::from_parts`], [`TokenError::from_parts`]) so it is tested table-driven
//! without a network. Messages say what went wrong and what to do; they never carry a token or a secret.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;

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
    /// Builds the error from a response's status, headers and body (pure; tolerant of every documented shape).
    pub fn from_parts(operation: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let error_info = header("x-powerbi-error-info");
        let request_id = header("requestid");
        let retry_after =
            header("retry-after").and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()));
        let www_auth = header("www-authenticate");

        let mut parsed = parse_body(strip_bom(body));
        if parsed.code.is_none() && parsed.message.is_none() {
            // Microsoft's C# handler falls back to X-PowerBI-Error-Details as the error body.
            if let Some(d) = header("x-powerbi-error-details") {
                parsed = parse_body(d.as_bytes());
                if parsed.code.is_none() && parsed.message.is_none() {
                    parsed.message = Some(d);
                }
            }
        }
        let code = parsed.code.clone().or_else(|| error_info.clone());
        let any = |needle: &str| {
            [
                code.as_deref(),
                error_info.as_deref(),
                parsed.message.as_deref(),
            ]
            .into_iter()
            .flatten()
            .chain(parsed.details.iter().map(String::as_str))
            .any(|s| {
                s.to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase())
            })
        };
        let kind = if status == 429 || any("Request Throttled") {
            ApiErrorKind::Throttled
        } else if any("TokenExpired") || any("InvalidToken") {
            ApiErrorKind::TokenRejected
        } else if any("ServicePrincipalIsNotAllowedByTenantAdminSwitch") {
            ApiErrorKind::TenantSwitchOff
        } else if any("GroupNotAccessible") {
            ApiErrorKind::GroupNotAccessible
        } else if any("not accessible for application") {
            ApiErrorKind::ApiNotAccessibleForApplication
        } else if any("FeatureDeprecated") {
            ApiErrorKind::FeatureDeprecated
        } else if any("is not Push API dataset") {
            ApiErrorKind::NotPushDataset
        } else if any("PowerBINotAuthorizedException") {
            ApiErrorKind::NotAuthorized
        } else if any("PowerBIEntityNotFound") {
            ApiErrorKind::EntityNotFound
        } else if any("ItemNotFound") {
            ApiErrorKind::ItemNotFound
        } else if any("DatasetExecuteQueriesError") || any("DAX query failure") {
            ApiErrorKind::QueryFailed
        } else if www_auth
            .as_deref()
            .is_some_and(|w| w.contains("insufficient_claims"))
        {
            ApiErrorKind::ClaimsChallenge
        } else if status >= 500 {
            ApiErrorKind::ServerError
        } else if status == 400 || any("BadRequest") {
            ApiErrorKind::BadRequest
        } else if status == 404 {
            ApiErrorKind::ItemNotFound
        } else if status == 401 || status == 403 {
            ApiErrorKind::NotAuthorized
        } else {
            ApiErrorKind::Other
        };
        ApiError {
            operation: operation.to_string(),
            status,
            kind,
            code,
            message: parsed.message,
            details: parsed.details,
            error_info,
            request_id,
            retry_after,
        }
    }

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

#[derive(Default)]
struct ParsedBody {
    code: Option<String>,
    message: Option<String>,
    details: Vec<String>,
}

fn parse_body(body: &[u8]) -> ParsedBody {
    let mut out = ParsedBody::default();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_string();
        if !text.is_empty() {
            out.message = Some(text.chars().take(500).collect());
        }
        return out;
    };
    let s = |v: &serde_json::Value| v.as_str().map(String::from);
    if let Some(err) = v.get("error") {
        if let Some(text) = err.as_str() {
            out.code = Some(text.to_string());
        }
        out.code = out.code.or_else(|| err.get("code").and_then(s));
        out.message = err.get("message").and_then(s);
        if let Some(details) = err.get("details").and_then(|d| d.as_array()) {
            out.details.extend(details.iter().filter_map(|d| {
                let m = d.get("message").and_then(s)?;
                Some(match d.get("target").and_then(s) {
                    Some(t) if !t.is_empty() => format!("{m} (target: {t})"),
                    _ => m,
                })
            }));
        }
        if let Some(pbi) = err.get("pbi.error") {
            out.code = out.code.or_else(|| pbi.get("code").and_then(s));
            if let Some(details) = pbi.get("details").and_then(|d| d.as_array()) {
                out.details.extend(details.iter().filter_map(|d| {
                    let value = d.pointer("/detail/value").and_then(s)?;
                    Some(match d.get("code").and_then(s) {
                        Some(c) => format!("{c}: {value}"),
                        None => value,
                    })
                }));
            }
        }
    }
    if out.message.is_none() {
        out.message = v.get("Message").or_else(|| v.get("message")).and_then(s);
    }
    out
}

/// Removes a leading UTF-8 byte-order mark (executeQueries answers start with one).
pub fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// Parses `Retry-After` as delta-seconds or an HTTP-date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
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

/// Why Entra refused to issue a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// AADSTS7000215.
    InvalidSecret,
    /// AADSTS7000222.
    ExpiredSecret,
    /// AADSTS7000218.
    MissingCredential,
    /// AADSTS700016.
    UnknownApplication,
    /// AADSTS90002.
    TenantNotFound,
    /// AADSTS90038.
    WrongCloud,
    /// AADSTS70011 / 700022.
    InvalidScope,
    /// AADSTS500011.
    ResourceNotInTenant,
    /// AADSTS700027.
    CertificateRejected,
    /// AADSTS50196 or `temporarily_unavailable` / 5xx / 429: try again later.
    Unavailable,
    /// The local certificate or private key could not be used.
    LocalCredential,
    /// The token endpoint could not be reached.
    Transport,
    /// 200 OK without a usable token.
    BadResponse,
    Other,
}

/// An Entra ID token failure, with the AADSTS code, trace and correlation ids for support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    pub kind: TokenErrorKind,
    pub status: Option<u16>,
    /// OAuth `error` (e.g. `invalid_client`).
    pub error: Option<String>,
    pub codes: Vec<u32>,
    /// First line of `error_description` (Entra's own text; it never contains the secret).
    pub description: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl TokenError {
    pub(crate) fn local(kind: TokenErrorKind, description: impl Into<String>) -> Self {
        TokenError {
            kind,
            status: None,
            error: None,
            codes: Vec::new(),
            description: Some(description.into()),
            trace_id: None,
            correlation_id: None,
        }
    }

    /// Classifies a token-endpoint error response (pure).
    pub fn from_parts(status: u16, body: &[u8]) -> TokenError {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let mut codes: Vec<u32> = v
            .get("error_codes")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect()
            })
            .unwrap_or_default();
        let description =
            s("error_description").map(|d| d.lines().next().unwrap_or_default().trim().to_string());
        if codes.is_empty()
            && let Some(code) = description
                .as_deref()
                .and_then(|d| d.strip_prefix("AADSTS"))
        {
            // Some proxies keep only the description; its prefix carries the same code.
            let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
            codes.extend(digits.parse::<u32>().ok());
        }
        let error = s("error");
        let kind = codes
            .iter()
            .find_map(|c| match c {
                7000215 => Some(TokenErrorKind::InvalidSecret),
                7000222 => Some(TokenErrorKind::ExpiredSecret),
                7000218 => Some(TokenErrorKind::MissingCredential),
                700016 => Some(TokenErrorKind::UnknownApplication),
                90002 => Some(TokenErrorKind::TenantNotFound),
                90038 => Some(TokenErrorKind::WrongCloud),
                70011 | 700022 => Some(TokenErrorKind::InvalidScope),
                500011 => Some(TokenErrorKind::ResourceNotInTenant),
                700027 => Some(TokenErrorKind::CertificateRejected),
                50196 => Some(TokenErrorKind::Unavailable),
                _ => None,
            })
            .unwrap_or(
                if status >= 500
                    || status == 429
                    || error.as_deref() == Some("temporarily_unavailable")
                {
                    TokenErrorKind::Unavailable
                } else {
                    TokenErrorKind::Other
                },
            );
        TokenError {
            kind,
            status: Some(status),
            error,
            codes,
            description,
            trace_id: s("trace_id"),
            correlation_id: s("correlation_id"),
        }
    }

    pub fn advice(&self) -> &'static str {
        match self.kind {
            TokenErrorKind::InvalidSecret => {
                "the client secret is wrong: paste the secret's VALUE (shown once when it was created), not its \
                 Secret ID, with `credentials set powerbi`"
            }
            TokenErrorKind::ExpiredSecret => {
                "the client secret has expired: create a new secret under the app registration's 'Certificates & \
                 secrets' and store it with `credentials set powerbi`"
            }
            TokenErrorKind::MissingCredential => {
                "no client secret or certificate was sent: store one with `credentials set powerbi`"
            }
            TokenErrorKind::UnknownApplication => {
                "no application with this client_id exists in the tenant: check client_id (the app's 'Application \
                 (client) ID') and that tenant_id is the tenant where the app is registered"
            }
            TokenErrorKind::TenantNotFound => {
                "the tenant was not found: check tenant_id (GUID or verified domain), and the `cloud` setting — a \
                 government or China tenant does not exist on the public login host"
            }
            TokenErrorKind::WrongCloud => {
                "the tenant belongs to another national cloud: set `cloud` (usgov, usgovhigh, usgovdod, china) to match it"
            }
            TokenErrorKind::InvalidScope => {
                "the token scope was refused: the scope is derived from `cloud`; check that `cloud` matches the tenant \
                 and that no authority_url override points at the wrong service"
            }
            TokenErrorKind::ResourceNotInTenant => {
                "Power BI is not provisioned in this tenant: sign in to Power BI once with a tenant account, or check \
                 the `cloud` setting"
            }
            TokenErrorKind::CertificateRejected => {
                "Entra rejected the certificate signature: upload this certificate's public part to the app \
                 registration ('Certificates & secrets') and check the private key matches it"
            }
            TokenErrorKind::Unavailable => {
                "Entra ID is temporarily unavailable or throttling; the connector retries later"
            }
            TokenErrorKind::LocalCredential => {
                "the configured certificate or private key cannot be used: store a PEM certificate and its RSA private key"
            }
            TokenErrorKind::Transport => {
                "the token endpoint could not be reached: check the network, proxy and the `cloud`/authority_url setting"
            }
            TokenErrorKind::BadResponse => {
                "the token endpoint answered without a usable token: check authority_url points at Entra ID"
            }
            TokenErrorKind::Other => {
                "Entra ID refused the token request; see the AADSTS code at https://login.microsoftonline.com/error"
            }
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("getting a Power BI access token failed")?;
        if let Some(s) = self.status {
            write!(f, ": HTTP {s}")?;
        }
        if let Some(e) = &self.error {
            write!(f, " {e}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        } else if let Some(c) = self.codes.first() {
            write!(f, ": AADSTS{c}")?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, " [trace {t}")?;
            if let Some(c) = &self.correlation_id {
                write!(f, ", correlation {c}")?;
            }
            f.write_str("]")?;
        }
        write!(f, ". {}", self.advice())
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// One row per documented error shape (reference §2.2 and §6): status, headers, body → kind, class, code,
    /// and a fragment the message must contain.
    #[test]
    fn every_documented_error_shape_is_classified() {
        use ApiErrorKind as K;
        use ErrorClass as C;
        #[allow(clippy::type_complexity)]
        let cases: &[(u16, &[(&str, &str)], &str, K, C, Option<&str>, &str)] = &[
            (
                403,
                &[],
                "",
                K::NotAuthorized,
                C::Permanent,
                None,
                "HTTP 403",
            ),
            (
                403,
                &[("X-PowerBI-Error-Info", "InvalidToken")],
                "",
                K::TokenRejected,
                C::Token,
                Some("InvalidToken"),
                "fetches a new one",
            ),
            (
                403,
                &[("X-PowerBI-Error-Info", "TokenExpired")],
                "",
                K::TokenRejected,
                C::Token,
                Some("TokenExpired"),
                "retries once",
            ),
            (
                403,
                &[],
                r#"{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}"#,
                K::TokenRejected,
                C::Token,
                Some("TokenExpired"),
                "Access token has expired",
            ),
            (
                401,
                &[(
                    "X-PowerBI-Error-Info",
                    "ServicePrincipalIsNotAllowedByTenantAdminSwitch",
                )],
                "",
                K::TenantSwitchOff,
                C::Permanent,
                Some("ServicePrincipalIsNotAllowedByTenantAdminSwitch"),
                "'Service principals can use Fabric APIs'",
            ),
            (
                401,
                &[
                    ("X-PowerBI-Error-Info", "GroupNotAccessible"),
                    ("RequestId", "rid-1"),
                ],
                "",
                K::GroupNotAccessible,
                C::Permanent,
                Some("GroupNotAccessible"),
                "as Member or Contributor",
            ),
            (
                401,
                &[],
                r#"{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException","parameters":{},"details":[],"exceptionCulprit":1}}}"#,
                K::NotAuthorized,
                C::Permanent,
                Some("PowerBINotAuthorizedException"),
                "not authorised",
            ),
            (
                403,
                &[],
                r#"{"Message":"API is not accessible for application"}"#,
                K::ApiNotAccessibleForApplication,
                C::Permanent,
                None,
                "API is not accessible for application",
            ),
            (
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer error="insufficient_claims", claims="e30=""#,
                )],
                "",
                K::ClaimsChallenge,
                C::Permanent,
                None,
                "Conditional Access",
            ),
            (
                404,
                &[],
                r#"{"error":{"code":"ItemNotFound","message":"Dataset cfafbeb1 is not found."}}"#,
                K::ItemNotFound,
                C::Permanent,
                Some("ItemNotFound"),
                "is not found",
            ),
            (
                404,
                &[],
                r#"{"error":{"code":"PowerBIEntityNotFound","pbi.error":{"code":"PowerBIEntityNotFound","parameters":{},"details":[]}}}"#,
                K::EntityNotFound,
                C::Permanent,
                Some("PowerBIEntityNotFound"),
                "re-run discovery",
            ),
            (
                404,
                &[],
                r#"{"error":{"code":"ItemNotFound","message":"Dataset abc is not Push API dataset."}}"#,
                K::NotPushDataset,
                C::Permanent,
                Some("ItemNotFound"),
                "not a push dataset",
            ),
            (
                400,
                &[],
                r#"{"error":{"code":"BadRequest","message":"Bad Request","details":[{"message":"The property 'compatibilityLevel' does not exist on type 'Dataset'.","target":"dataset"}]}}"#,
                K::BadRequest,
                C::Permanent,
                Some("BadRequest"),
                "compatibilityLevel' does not exist on type 'Dataset'. (target: dataset)",
            ),
            (
                400,
                &[],
                r#"{"error":{"code":"FeatureDeprecatedError","pbi.error":{"code":"FeatureDeprecatedError","details":[{"code":"FeatureDeprecatedMessage","detail":{"type":0,"value":"Creation of streaming dataset is deprecated."}}]}}}"#,
                K::FeatureDeprecated,
                C::Permanent,
                Some("FeatureDeprecatedError"),
                "Creation of streaming dataset is deprecated",
            ),
            (
                400,
                &[],
                r#"{"error":{"code":"DatasetExecuteQueriesError","message":"DAX query failure"}}"#,
                K::QueryFailed,
                C::Permanent,
                Some("DatasetExecuteQueriesError"),
                "DAX query failed",
            ),
            (
                429,
                &[("Retry-After", "17")],
                r#"{"error":{"code":"TooManyRequests","message":"Maximum number of rows exceeded in time window. Please retry later"}}"#,
                K::Throttled,
                C::Retryable,
                Some("TooManyRequests"),
                "waits for Retry-After",
            ),
            (
                429,
                &[("Retry-After", "5")],
                "",
                K::Throttled,
                C::Retryable,
                None,
                "HTTP 429",
            ),
            (500, &[], "oops", K::ServerError, C::Retryable, None, "oops"),
            (503, &[], "", K::ServerError, C::Retryable, None, "HTTP 503"),
            (
                400,
                &[(
                    "X-PowerBI-Error-Details",
                    r#"{"error":{"code":"InvalidRequest","message":"from header"}}"#,
                )],
                "",
                K::BadRequest,
                C::Permanent,
                Some("InvalidRequest"),
                "from header",
            ),
            (
                401,
                &[("X-PowerBI-Error-Info", "GroupNotAccessible")],
                "\u{feff}",
                K::GroupNotAccessible,
                C::Permanent,
                Some("GroupNotAccessible"),
                "Manage access",
            ),
        ];
        for (i, (status, hdrs, body, kind, class, code, fragment)) in cases.iter().enumerate() {
            let e = ApiError::from_parts(
                "POST rows to table 'T'",
                *status,
                &headers(hdrs),
                body.as_bytes(),
            );
            assert_eq!(e.kind, *kind, "case {i}: {e}");
            assert_eq!(e.class(), *class, "case {i}");
            assert_eq!(e.code.as_deref(), *code, "case {i}");
            let text = e.to_string();
            assert!(
                text.contains(fragment),
                "case {i}: {text:?} lacks {fragment:?}"
            );
            assert!(
                text.starts_with("POST rows to table 'T' failed: HTTP"),
                "case {i}: {text}"
            );
        }
    }

    #[test]
    fn request_id_and_retry_after_are_kept() {
        let e = ApiError::from_parts(
            "op",
            429,
            &headers(&[("RequestId", "1234-abcd"), ("Retry-After", "17")]),
            b"",
        );
        assert_eq!(e.request_id.as_deref(), Some("1234-abcd"));
        assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
        assert!(e.to_string().contains("RequestId 1234-abcd"));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn aadsts_codes_map_to_actionable_errors() {
        use TokenErrorKind as K;
        let cases: &[(u32, &str, K, &str)] = &[
            (
                7000215,
                "invalid_client",
                K::InvalidSecret,
                "not its Secret ID",
            ),
            (7000222, "invalid_client", K::ExpiredSecret, "has expired"),
            (
                7000218,
                "invalid_request",
                K::MissingCredential,
                "no client secret or certificate",
            ),
            (
                700016,
                "unauthorized_client",
                K::UnknownApplication,
                "client_id",
            ),
            (90002, "invalid_request", K::TenantNotFound, "tenant_id"),
            (90038, "invalid_request", K::WrongCloud, "national cloud"),
            (70011, "invalid_scope", K::InvalidScope, "scope"),
            (
                500011,
                "invalid_resource",
                K::ResourceNotInTenant,
                "not provisioned",
            ),
            (
                700027,
                "invalid_client",
                K::CertificateRejected,
                "certificate",
            ),
            (
                50196,
                "temporarily_unavailable",
                K::Unavailable,
                "retries later",
            ),
            (12345, "invalid_request", K::Other, "AADSTS code"),
        ];
        for (code, err, kind, fragment) in cases {
            let body = serde_json::json!({
                "error": err,
                "error_description": format!("AADSTS{code}: Something.\r\nTrace ID: t\r\nCorrelation ID: c"),
                "error_codes": [code], "trace_id": "trace-1", "correlation_id": "corr-1",
            });
            let e = TokenError::from_parts(400, body.to_string().as_bytes());
            assert_eq!(e.kind, *kind, "{code}");
            let text = e.to_string();
            assert!(text.contains(fragment), "{code}: {text}");
            assert!(
                text.contains(&format!("AADSTS{code}: Something.")),
                "{text}"
            );
            assert!(
                text.contains("trace-1") && text.contains("corr-1"),
                "{text}"
            );
            assert!(
                !text.contains("Trace ID: t\r"),
                "only the first description line: {text}"
            );
        }
        // Code only in the description; and a 5xx without a body.
        let e = TokenError::from_parts(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#);
        assert_eq!(e.kind, K::InvalidSecret);
        assert_eq!(TokenError::from_parts(503, b"").kind, K::Unavailable);
    }
}
