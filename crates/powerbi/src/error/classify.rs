//! Reading a non-2xx Power BI response (status, headers, body in any documented shape) into an [`ApiError`]:
//! pure, so every shape is tested table-driven without a network.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::api::{ApiError, ApiErrorKind};

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
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::api::ErrorClass;
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
}
