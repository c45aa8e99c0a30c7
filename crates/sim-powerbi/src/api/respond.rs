//! The service's answers that more than one handler gives: the OData JSON envelope, the three error
//! document shapes (`error`, `pbi.error`, `X-PowerBI-Error-Info` only), 429 with Retry-After, and the
//! 404s of missing items.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::schema::SchemaError;
use crate::state::Shared;

/// A handler's answer: `Err` carries the early exits (refusals), so preambles can use `?`.
pub(super) type Answer = Result<Response, Response>;

pub(super) const ODATA_JSON: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true";

/// A JSON answer with the service's content type.
pub(super) fn odata(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    r
}

/// `{"error":{"code","message"}}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    odata(
        status,
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
}

/// 400 `{"error":{"code":"BadRequest","message":"Bad Request","details":[{"message","target"}]}}`.
pub(super) fn bad_request(message: &str, target: &str) -> Response {
    odata(
        StatusCode::BAD_REQUEST,
        json!({"error": {"code": "BadRequest", "message": "Bad Request",
            "details": [{"message": message, "target": target}]}})
        .to_string(),
    )
}

/// The `pbi.error` document (no `message`), e.g. PowerBINotAuthorizedException.
pub(super) fn pbi_error(status: StatusCode, code: &str, details: Value) -> Response {
    odata(
        status,
        json!({"error": {"code": code, "pbi.error": {"code": code, "parameters": {}, "details": details,
            "exceptionCulprit": 1}}})
        .to_string(),
    )
}

/// Empty body with the reason only in `X-PowerBI-Error-Info`.
pub(super) fn error_info(status: StatusCode, info: &'static str) -> Response {
    let mut r = status.into_response();
    r.headers_mut()
        .insert("X-PowerBI-Error-Info", HeaderValue::from_static(info));
    r
}

/// 429 with `Retry-After`.
pub(super) fn too_many(shared: &Shared, reason: &str, retry_after: u64, message: &str) -> Response {
    shared.count_429(reason);
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

pub(super) const REQUESTS_EXCEEDED: &str = "You have exceeded the amount of requests allowed in the current time frame and further requests will fail.";

/// 401 `PowerBINotAuthorizedException` (a Viewer trying to write).
pub(super) fn not_authorized() -> Response {
    pbi_error(
        StatusCode::UNAUTHORIZED,
        "PowerBINotAuthorizedException",
        json!([]),
    )
}

pub(super) fn dataset_not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Dataset {id} is not found."),
    )
}

/// Rows and tables exist only on push datasets; Power BI answers 404 for a Desktop-published one.
pub(super) fn not_push_dataset(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Dataset {id} is not Push API dataset."),
    )
}

pub(super) fn table_not_found(table: &str, dataset: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Table {table} is not found in dataset {dataset}."),
    )
}

/// PUT of a table the dataset lacks: Power BI does not create it. The message is the one users
/// reported for exactly this call (gbrueckl/PowerBI.API.Client #21): the table name wrapped in
/// `<pi>` (Power BI's marker for personal information in its logs) and the dataset named by its
/// model server and id.
pub(super) fn put_table_not_found(table: &str, dataset: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Table '<pi>{table}</pi>' not found in dataset 'sobe_wowvirtualserver|{dataset}'"),
    )
}

pub(super) fn report_not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Report {id} is not found."),
    )
}

/// 400 for a body that is not JSON at all; `target` names what the body should have been.
pub(super) fn invalid_json(e: &serde_json::Error, target: &str) -> Response {
    bad_request(&format!("The request body is not valid JSON: {e}."), target)
}

pub(super) fn schema_error(e: SchemaError) -> Response {
    match e {
        SchemaError::BadRequest { message, target } => bad_request(&message, target),
        SchemaError::StreamingDeprecated | SchemaError::PushDeprecated => {
            let what = if e == SchemaError::StreamingDeprecated {
                "streaming"
            } else {
                "push"
            };
            pbi_error(
                StatusCode::BAD_REQUEST,
                "FeatureDeprecatedError",
                json!([{"code": "FeatureDeprecatedMessage", "detail": {"type": 0, "value":
                    format!("Creation of {what} dataset is deprecated. Please use a semantic model with import or \
                             DirectQuery storage, or Real-Time Intelligence in Microsoft Fabric.")}}]),
            )
        }
    }
}
