//! For `ml-connector sim fabric` users: `GET /stats`, `POST /admin/faults` (a JSON `FaultPlan`),
//! `POST /admin/replicate` (one replication pass now), `GET /admin/tables` (each table's status)
//! and `GET /admin/tables/{table}` (its state and rows).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::faults::FaultPlan;
use crate::state::{Shared, lock};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/stats", get(stats))
        .route("/admin/faults", post(faults))
        .route("/admin/replicate", post(replicate))
        .route("/admin/tables", get(tables))
        .route("/admin/tables/{table}", get(table))
        .with_state(shared)
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    Json(s.stats()).into_response()
}

async fn faults(State(s): State<Arc<Shared>>, Json(plan): Json<FaultPlan>) -> Response {
    s.set_faults(plan);
    StatusCode::NO_CONTENT.into_response()
}

async fn replicate(State(s): State<Arc<Shared>>) -> Response {
    let s2 = s.clone();
    let _ = tokio::task::spawn_blocking(move || s2.replicate()).await;
    tables(State(s)).await
}

async fn tables(State(s): State<Arc<Shared>>) -> Response {
    let t = lock(&s.tables);
    let list: Vec<_> = t
        .iter()
        .map(|(name, t)| json!({"table": name, "status": t.status, "error": t.error, "rows": t.rows.len(), "next_file": t.next_file, "blocked": t.blocked}))
        .collect();
    Json(json!({ "tables": list })).into_response()
}

async fn table(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match s.table(&name) {
        Some(t) => Json(t).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
