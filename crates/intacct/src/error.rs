//! [`IntacctError`]: every failure, classified, with a message that says what to do.
//!
//! Classification follows the reference's error tables (§3.6) and retry advice (§8.4): codes
//! first, then the texts the SDKs and taps match on, because several errors share a code
//! (XL03000006 is a wrong password, an expired session or an unauthorized sender).

use std::fmt;

use crate::protocol::{DecodeError, ErrorDetail};

/// Where in the exchange the failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorLevel {
    /// Our own settings or a request we refused to send.
    Config,
    /// No usable HTTP answer: connect error, timeout, a body that is not a gateway document.
    Transport,
    /// An HTTP status error without an XML envelope (5xx, 524, HTML pages).
    Http,
    /// `control/status` failure: nothing was executed.
    Control,
    /// `operation/authentication` failure: no function ran.
    Authentication,
    /// A `<result>` failed (or was aborted).
    Function,
}

/// What went wrong, as far as the connector needs to tell cases apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Config,
    /// The configured or returned endpoint is not an https `*.intacct.com` URL.
    EndpointRefused,
    Connect,
    Timeout,
    /// 5xx, 524, Cloudflare/HTML pages, truncated or non-XML bodies.
    Unavailable,
    /// A body that parsed as something unexpected (not retried).
    BadResponse,
    RateLimited,
    SenderNotAuthorized,
    SignInIncorrect,
    InvalidSession,
    DemoExpired,
    XmlGatewayNotSubscribed,
    SchemaError,
    PermissionDenied,
    /// AUDITHISTORY is not readable by the user: fall back to comparing keys.
    AuditHistoryDenied,
    ObjectNotFound,
    InvalidFields,
    TemporarilyUnavailable,
    TransactionAborted,
    Other,
}

/// A failure of an Intacct call. Never carries a password or session id.
#[derive(Clone, Debug, thiserror::Error)]
pub struct IntacctError {
    pub kind: ErrorKind,
    pub level: ErrorLevel,
    /// Every `<error>` the gateway sent, in order (the first is usually the cause).
    pub errors: Vec<ErrorDetail>,
    pub http_status: Option<u16>,
    pub retryable: bool,
    /// The function that failed (`query`, `getAPISession`, ...), when known.
    pub function: Option<String>,
    /// Our own description of the failure when the gateway sent none.
    pub context: Option<String>,
}

impl IntacctError {
    pub(crate) fn new(kind: ErrorKind, level: ErrorLevel, context: impl Into<String>) -> Self {
        let retryable = matches!(
            kind,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Unavailable
                | ErrorKind::RateLimited
                | ErrorKind::TemporarilyUnavailable
        );
        Self {
            kind,
            level,
            errors: Vec::new(),
            http_status: None,
            retryable,
            function: None,
            context: Some(context.into()),
        }
    }

    pub(crate) fn config(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, ErrorLevel::Config, context)
    }

    /// Classifies gateway errors found at `level`.
    pub fn from_gateway(
        level: ErrorLevel,
        errors: Vec<ErrorDetail>,
        http_status: Option<u16>,
    ) -> Self {
        let (kind, retryable) = classify(level, &errors, http_status);
        Self {
            kind,
            level,
            errors,
            http_status,
            retryable,
            function: None,
            context: None,
        }
    }

    /// A body that is not a usable envelope. HTML, truncated and non-XML bodies are what a CDN
    /// or a dying gateway sends, so they are retryable; a DOCTYPE or a foreign root is not.
    pub fn from_decode(e: &DecodeError, http_status: Option<u16>) -> Self {
        let (kind, level) = match e {
            DecodeError::Empty
            | DecodeError::NotXml { .. }
            | DecodeError::Html { .. }
            | DecodeError::Truncated => (
                ErrorKind::Unavailable,
                if http_status.is_some_and(|s| s >= 400) {
                    ErrorLevel::Http
                } else {
                    ErrorLevel::Transport
                },
            ),
            _ => (ErrorKind::BadResponse, ErrorLevel::Transport),
        };
        let mut err = Self::new(kind, level, e.to_string());
        err.http_status = http_status;
        if http_status == Some(429) {
            err.kind = ErrorKind::RateLimited;
            err.retryable = true;
        }
        err
    }

    pub(crate) fn with_function(mut self, f: &str) -> Self {
        self.function = Some(f.to_owned());
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::PermissionDenied | ErrorKind::AuditHistoryDenied
        )
    }
    /// Intacct refused the sign-in itself (the sender's or the user's credentials): trying again
    /// with the same credentials only counts towards the user's lockout.
    pub fn is_refused_sign_in(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::SenderNotAuthorized | ErrorKind::SignInIncorrect
        )
    }
    /// Refused credentials or permissions: what a person must fix (exit code 4).
    pub fn is_refusal(&self) -> bool {
        self.is_refused_sign_in() || self.kind == ErrorKind::PermissionDenied
    }
    pub fn is_invalid_session(&self) -> bool {
        self.kind == ErrorKind::InvalidSession
    }
    pub fn is_audit_history_denied(&self) -> bool {
        self.kind == ErrorKind::AuditHistoryDenied
    }
    fn first(&self) -> Option<&ErrorDetail> {
        self.errors.first()
    }
    pub fn errorno(&self) -> Option<&str> {
        self.first().map(|e| e.errorno.as_str())
    }
    pub fn description(&self) -> Option<&str> {
        self.first().map(|e| e.description.as_str())
    }
    pub fn description2(&self) -> Option<&str> {
        self.first().map(|e| e.description2.as_str())
    }
    pub fn correction(&self) -> Option<&str> {
        self.first().map(|e| e.correction.as_str())
    }
    pub fn support_id(&self) -> Option<&str> {
        self.errors.iter().find_map(|e| e.support_id.as_deref())
    }

    /// What the user should do about it.
    pub fn advice(&self) -> &'static str {
        match self.kind {
            ErrorKind::Config => "Fix the Intacct settings of this connection.",
            ErrorKind::EndpointRefused => {
                "Use the https://*.intacct.com gateway URL (loopback http only with allow_loopback_http, for the simulator)."
            }
            ErrorKind::Connect => {
                "Check network access to the Intacct gateway (proxy, firewall, DNS); calls are retried with backoff before they fail."
            }
            ErrorKind::Timeout => {
                "Intacct did not answer in time (calls are retried before they fail); if it persists, select fewer fields, use smaller pages or raise request_timeout."
            }
            ErrorKind::Unavailable => {
                "Intacct or its CDN is having trouble (calls are retried with backoff before they fail); if it persists, check status.sage.com and try later."
            }
            ErrorKind::BadResponse => {
                "The gateway sent a document we cannot use; report it with the Support ID if one is shown."
            }
            ErrorKind::RateLimited => {
                "Intacct is throttling this company (too many concurrent requests); calls back off and retry. Lower max_concurrent_requests or ask Sage for a higher performance tier."
            }
            ErrorKind::SenderNotAuthorized => {
                "Check the Web Services sender ID and sender password (store corrected ones with `ml-connector credentials set intacct`), and ask the company administrator to authorise this sender ID under Company > Setup > Company > Security > Web Services authorizations."
            }
            ErrorKind::SignInIncorrect => {
                "Check the company ID, user ID and user password (and the sender ID/password); store corrected values with `ml-connector credentials set intacct`."
            }
            ErrorKind::InvalidSession => {
                "The Intacct session expired; the client logs in again once. If it keeps happening, check the user's session timeout."
            }
            ErrorKind::DemoExpired => {
                "This Intacct company is an expired demo company; use a live company."
            }
            ErrorKind::XmlGatewayNotSubscribed => {
                "The company must subscribe to the XML Gateway (Company > Subscriptions > Web Services)."
            }
            ErrorKind::SchemaError => {
                "The request was rejected by the gateway's schema; this is a connector bug, report it with the Support ID."
            }
            ErrorKind::PermissionDenied => {
                "Grant the web services user's role Read/List permission for this object (Company > Roles), then retry."
            }
            ErrorKind::AuditHistoryDenied => {
                "Grant the user View permission on audit trails/custom reports to detect deletions from audit history; until then deletions are found by comparing keys."
            }
            ErrorKind::ObjectNotFound => {
                "The object does not exist in this company (or the module is not subscribed); remove the stream or fix its object name."
            }
            ErrorKind::InvalidFields => {
                "A selected field does not exist or cannot be queried; refresh the field list (lookup) and remove it."
            }
            ErrorKind::TemporarilyUnavailable => {
                "Intacct is temporarily off-line (calls are retried with backoff before they fail); the next run tries again."
            }
            ErrorKind::TransactionAborted => {
                "Another function of the same transaction failed; see its error."
            }
            ErrorKind::Other => {
                "See the Intacct message; contact Sage support with the Support ID if it is unclear."
            }
        }
    }
}

impl fmt::Display for IntacctError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            ErrorLevel::Config => "configuration",
            ErrorLevel::Transport => "transport",
            ErrorLevel::Http => "HTTP",
            ErrorLevel::Control => "control",
            ErrorLevel::Authentication => "authentication",
            ErrorLevel::Function => "function",
        };
        write!(f, "Intacct {level} error")?;
        if let Some(func) = &self.function {
            write!(f, " in {func}")?;
        }
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s})")?;
        }
        // Each error as "[errno] its texts", without a dangling space when it has no text, and the
        // whole without the period Intacct ends its texts with: ours follows before the advice.
        let mut parts: Vec<String> = Vec::new();
        for e in &self.errors {
            let message = e.message();
            let part = match (e.errorno.is_empty(), message.is_empty()) {
                (true, true) => continue,
                (true, false) => message,
                (false, true) => format!("[{}]", e.errorno),
                (false, false) => format!("[{}] {message}", e.errorno),
            };
            parts.push(part);
        }
        if let Some(c) = &self.context {
            parts.push(c.clone());
        }
        let mut body = parts
            .iter()
            .map(|p| p.trim_end_matches(['.', ' ']))
            .collect::<Vec<_>>()
            .join("; ");
        if let Some(id) = self.support_id() {
            body.push_str(&format!(" (Support ID {id})"));
        }
        if !body.is_empty() {
            write!(f, ": {body}")?;
        }
        write!(f, ". {}", self.advice())
    }
}

fn classify(level: ErrorLevel, errors: &[ErrorDetail], http: Option<u16>) -> (ErrorKind, bool) {
    let codes: Vec<String> = errors
        .iter()
        .map(|e| e.errorno.to_ascii_uppercase())
        .collect();
    let text: String = errors
        .iter()
        .map(ErrorDetail::haystack)
        .collect::<Vec<_>>()
        .join(" ");
    let has = |c: &str| codes.iter().any(|x| x == c);
    let says = |t: &str| text.contains(t);
    if http == Some(429) || has("GW-0010") || says("rate limit") {
        return (ErrorKind::RateLimited, true);
    }
    if says("temporarily off-line") || says("temporarily offline") || says("try again later") {
        return (ErrorKind::TemporarilyUnavailable, true);
    }
    if has("XMLGW_JPP0002") || has("GW-0011") || says("invalidrequest") {
        return (ErrorKind::SignInIncorrect, false);
    }
    if has("PL04000055") || says("demo company and has expired") {
        return (ErrorKind::DemoExpired, false);
    }
    if says("not authorized for xml transactions") {
        return (ErrorKind::XmlGatewayNotSubscribed, false);
    }
    if says("invalid web services authorization")
        || says("not authorized to make web services requests")
    {
        return (ErrorKind::SenderNotAuthorized, false);
    }
    if says("invalid session") {
        return (ErrorKind::InvalidSession, false);
    }
    if says("audit history") && (says("permission") || has("PL04000005")) {
        return (ErrorKind::AuditHistoryDenied, false);
    }
    if has("PL04000005") || says("do not have permission") {
        return (ErrorKind::PermissionDenied, false);
    }
    if has("XL03000003") {
        return (ErrorKind::SchemaError, false);
    }
    if has("XL03000009") && errors.len() == 1 {
        return (ErrorKind::TransactionAborted, false);
    }
    if says("invalid fields list") {
        return (ErrorKind::InvalidFields, false);
    }
    if says("object definition") && says("not found") {
        return (ErrorKind::ObjectNotFound, false);
    }
    // A wrong sender password: a control failure, XL03000006 "Incorrect Intacct XML Partner ID or
    // password." (the simulator's choice where the reference has no captured text).
    if says("partner id or password")
        || (has("XL03000006") && level == ErrorLevel::Control && says("sender"))
    {
        return (ErrorKind::SenderNotAuthorized, false);
    }
    if has("XL03000006") && level == ErrorLevel::Authentication {
        return (ErrorKind::SignInIncorrect, false);
    }
    if says("sign-in information is incorrect") {
        return (ErrorKind::SignInIncorrect, false);
    }
    if says("there was an error processing the request") {
        // Seen on AUDITHISTORY (§9); reads are idempotent, so a bounded retry is safe.
        return (ErrorKind::Other, true);
    }
    if http.is_some_and(|s| s >= 500) {
        return (ErrorKind::Unavailable, true);
    }
    (ErrorKind::Other, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(errorno: &str, description: &str, description2: &str) -> ErrorDetail {
        ErrorDetail {
            errorno: errorno.into(),
            description: description.into(),
            description2: description2.into(),
            ..Default::default()
        }
    }

    #[test]
    fn messages_have_no_dangling_space_or_doubled_period() {
        let e = IntacctError::from_gateway(
            ErrorLevel::Function,
            vec![detail("Invalid fields list x", "", "")],
            None,
        );
        let text = e.to_string();
        assert!(text.contains("[Invalid fields list x]. "), "{text}");
        assert!(!text.contains("] ."), "{text}");
        let e = IntacctError::from_gateway(
            ErrorLevel::Control,
            vec![detail(
                "PL04000055",
                "This company is a demo company and has expired.",
                "",
            )],
            None,
        );
        let text = e.to_string();
        assert!(text.contains("has expired. This Intacct company"), "{text}");
        assert!(!text.contains(".."), "{text}");
    }

    #[test]
    fn a_wrong_sender_password_says_to_check_the_sender_not_to_call_sage() {
        let e = IntacctError::from_gateway(
            ErrorLevel::Control,
            vec![detail(
                "XL03000006",
                "",
                "Incorrect Intacct XML Partner ID or password.",
            )],
            None,
        );
        assert_eq!(e.kind, ErrorKind::SenderNotAuthorized);
        assert!(e.is_refused_sign_in());
        let text = e.to_string();
        assert!(text.contains("sender ID and sender password"), "{text}");
        assert!(!text.contains("Sage support"), "{text}");
    }
}
