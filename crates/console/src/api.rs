//! The JSON API: the same data the pages show, for scripts and for the pages' own tests. Every
//! route is listed once in [`routes`] (the router is built from that list), and the OpenAPI
//! document served at `/api/openapi.json` names exactly these (a test holds them together).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};

use ml_connector::config::Mode;
use ml_connector::destination::preview::{BudgetUse, TablePreview};
use ml_connector::pipeline::preview::{DryRun, StreamRead};
use ml_connector::status::{self, ConnectionStatus};
use ml_store::{AuditEntry, AuditFilter, RunId, RunRecord, RunStatus};

use crate::Shared;
use crate::actions::{self, StartError};

/// The OpenAPI document, hand-written beside the code (`assets/openapi.json`).
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

/// Every API route as `(method, path)`, in axum's path syntax (`{id}`, as OpenAPI writes it too).
pub const API_ROUTES: &[(&str, &str)] = &[
    ("get", "/api/connections"),
    ("get", "/api/connections/{name}"),
    ("post", "/api/connections/{name}/run"),
    ("get", "/api/connections/{name}/preview"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{id}"),
    ("get", "/api/audit"),
    ("get", "/api/openapi.json"),
];

pub(crate) fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    let handlers: Vec<MethodRouter<Shared>> = vec![
        get(connections),
        get(connection),
        post(run_connection),
        get(preview),
        get(runs),
        get(run),
        get(audit),
        get(openapi),
    ];
    API_ROUTES
        .iter()
        .zip(handlers)
        .map(|((m, p), h)| (*m, *p, h))
        .collect()
}

pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<ml_store::StoreError> for ApiError {
    fn from(e: ml_store::StoreError) -> Self {
        tracing::warn!(error = %e, "console: the store failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        let code = match e {
            StartError::Unknown(_) => StatusCode::NOT_FOUND,
            StartError::Busy(..) => StatusCode::CONFLICT,
            StartError::NoRunner => StatusCode::SERVICE_UNAVAILABLE,
            StartError::App(_) | StartError::Store(_) | StartError::Pipeline(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(code, e.to_string())
    }
}

impl ApiError {
    pub(crate) fn not_found(what: String) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, what)
    }

    pub(crate) fn parts(self) -> (StatusCode, String) {
        (self.0, self.1)
    }
}

/// Every configured connection's status, in the configuration's order.
pub(crate) async fn all_statuses(c: &Shared) -> Result<Vec<ConnectionStatus>, ApiError> {
    let now = c.clock.now();
    let mut out = Vec::with_capacity(c.connections.len());
    for cfg in &c.connections {
        out.push(status::connection_status(c.store.as_ref(), cfg, now).await?);
    }
    Ok(out)
}

pub(crate) async fn one_status(c: &Shared, name: &str) -> Result<ConnectionStatus, ApiError> {
    let cfg = c.connection(name).ok_or_else(|| {
        ApiError::not_found(format!("no connection named {name:?} is configured"))
    })?;
    Ok(status::connection_status(c.store.as_ref(), cfg, c.clock.now()).await?)
}

async fn connections(State(c): State<Shared>) -> Result<Json<Vec<ConnectionStatus>>, ApiError> {
    Ok(Json(all_statuses(&c).await?))
}

async fn connection(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<ConnectionStatus>, ApiError> {
    Ok(Json(one_status(&c, &name).await?))
}

async fn run_connection(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    actions::start_run(&c, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "started": true, "connection": name })),
    )
        .into_response())
}

/// The library's dry run of a connection (`sync --dry-run`) as the console shows it: the same
/// figures, flattened per stream.
#[derive(Serialize)]
pub(crate) struct Preview {
    pub connection: String,
    /// Where the rows would go ("dataset \"Sage Intacct\""); `None`: the destination cannot say.
    pub target: Option<String>,
    /// The destination's hourly budget as the last hour left it.
    pub budget: Option<PreviewBudget>,
    /// The rows the run would push at most, over every table.
    pub rows_to_push: u64,
    pub streams: Vec<PreviewStream>,
}

#[derive(Serialize)]
pub(crate) struct PreviewBudget {
    pub rows_used: u64,
    pub rows_left: u64,
    pub posts_used: u64,
    pub rows_per_hour: u64,
}

#[derive(Serialize)]
pub(crate) struct PreviewStream {
    pub object: String,
    pub table: String,
    pub mode: &'static str,
    /// Where the read starts (Intacct's WHENMODIFIED, the cursor less the lookback); `None`: it
    /// reads everything.
    pub since: Option<String>,
    pub changed: Option<u64>,
    pub never_modified: Option<u64>,
    pub to_read: Option<u64>,
    /// Why the read was not counted.
    pub note: Option<String>,
    /// `None`: the destination cannot say what it would push.
    pub push: Option<PreviewPush>,
}

#[derive(Serialize)]
pub(crate) struct PreviewPush {
    /// Rows the delivery would push (at most).
    pub rows: u64,
    /// `rebuild` (a replace table re-sends all its rows), `append`, or `unchanged` (no push).
    pub how: &'static str,
    pub why: String,
    pub rebuild_rows: Option<u64>,
    /// Marked for a rebuild.
    pub dirty: bool,
    pub outbox: Option<u64>,
    /// "fits", "-" (nothing to push), or when the push would be postponed to and why.
    pub budget: String,
    pub postponed: bool,
}

impl Preview {
    fn of(dry: DryRun) -> Preview {
        let delivery = dry.delivery.as_ref();
        let streams: Vec<PreviewStream> = dry
            .streams
            .iter()
            .map(|read| {
                let table =
                    delivery.and_then(|d| d.tables.iter().find(|t| t.object == read.stream.object));
                PreviewStream::of(read, table)
            })
            .collect();
        Preview {
            connection: dry.connection,
            target: delivery.map(|d| d.target.clone()),
            budget: delivery
                .and_then(|d| d.budget.as_ref())
                .map(|b: &BudgetUse| PreviewBudget {
                    rows_used: b.rows_used,
                    rows_left: b.rows_left,
                    posts_used: b.posts_used,
                    rows_per_hour: b.rows_per_hour,
                }),
            rows_to_push: streams
                .iter()
                .filter_map(|s| s.push.as_ref())
                .map(|p| p.rows)
                .sum(),
            streams,
        }
    }
}

impl PreviewStream {
    fn of(read: &StreamRead, table: Option<&TablePreview>) -> PreviewStream {
        let s = &read.stream;
        PreviewStream {
            object: s.object.clone(),
            table: s.table.clone(),
            mode: match s.mode {
                Mode::Replace => "replace",
                Mode::Append => "append",
            },
            since: read
                .since
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            changed: read.changed,
            never_modified: read.never_modified,
            to_read: read.to_read(),
            note: read.note.clone(),
            push: table.map(|t| PreviewPush {
                rows: t.rows,
                how: match (t.rows, s.mode) {
                    (0, _) => "unchanged",
                    (_, Mode::Replace) => "rebuild",
                    (_, Mode::Append) => "append",
                },
                why: t.why.clone(),
                rebuild_rows: t.rebuild_rows,
                dirty: t.dirty,
                outbox: t.outbox,
                budget: t.budget.clone(),
                postponed: t.postponed,
            }),
        }
    }
}

/// What the next run of the connection would read and push; changes nothing.
pub(crate) async fn preview_of(c: &Shared, name: &str) -> Result<Preview, ApiError> {
    Ok(Preview::of(actions::preview(c, name).await?))
}

async fn preview(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Preview>, ApiError> {
    Ok(Json(preview_of(&c, &name).await?))
}

#[derive(Deserialize, Default)]
pub(crate) struct RunsQuery {
    pub status: Option<String>,
    pub connection: Option<String>,
    pub limit: Option<u32>,
}

/// The latest runs, newest first, optionally of one status and one connection.
pub(crate) async fn list_runs(c: &Shared, q: &RunsQuery) -> Result<Vec<RunRecord>, ApiError> {
    let status: Option<RunStatus> = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e: String| ApiError(StatusCode::BAD_REQUEST, e))?,
        ),
    };
    let connection = q.connection.as_deref().filter(|s| !s.is_empty());
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // The store lists the latest runs; a status is picked out of all of them here, as `runs list`
    // does.
    let fetch = if status.is_some() { u32::MAX } else { limit };
    let mut runs = match connection {
        Some(name) => status::recent_runs(c.store.as_ref(), name, fetch).await?,
        None => c.store.list_runs(None, fetch).await?,
    };
    if let Some(s) = status {
        runs.retain(|r| r.status == s);
    }
    runs.truncate(limit as usize);
    Ok(runs)
}

async fn runs(
    State(c): State<Shared>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    Ok(Json(list_runs(&c, &q).await?))
}

async fn run(State(c): State<Shared>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    match c.store.get_run(RunId(id)).await? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(ApiError::not_found(format!("no run {id}"))),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    pub connection: Option<String>,
    pub key: Option<String>,
    /// The object (VENDOR) or its table (Vendors).
    pub stream: Option<String>,
    pub run: Option<i64>,
    pub limit: Option<u32>,
}

/// Audit entries, oldest first, as `audit search` finds them.
pub(crate) async fn search_audit(c: &Shared, q: &AuditQuery) -> Result<Vec<AuditEntry>, ApiError> {
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let stream = nonempty(&q.stream).map(|s| {
        c.connections
            .iter()
            .flat_map(|cfg| &cfg.streams)
            .find(|st| st.table == s)
            .map(|st| st.object.clone())
            .unwrap_or(s)
    });
    let filter = AuditFilter {
        connection: nonempty(&q.connection),
        record_key: nonempty(&q.key),
        stream,
        run: q.run.map(RunId),
        limit: Some(q.limit.unwrap_or(200).clamp(1, 1000)),
        ..Default::default()
    };
    Ok(c.store.audit_search(&filter).await?)
}

async fn audit(
    State(c): State<Shared>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(search_audit(&c, &q).await?))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_openapi_document_names_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = routes()
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, served);
    }
}
