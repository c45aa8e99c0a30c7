//! Unauthenticated admin endpoints for people running `ml-connector sim powerbi --port N` (loopback only):
//! `GET /admin/rows/{workspace}/{dataset}/{table}` (names or ids; rows as a JSON array),
//! `POST /admin/faults` (a [`FaultPlan`] as JSON), `GET /stats` (the [`crate::Stats`] snapshot).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::faults::FaultPlan;
use crate::state::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/rows/{workspace}/{dataset}/{table}", get(rows))
        .route("/admin/faults", post(faults))
        .route("/stats", get(stats))
        .with_state(shared)
}

async fn rows(
    State(shared): State<Arc<Shared>>,
    Path((ws, ds, table)): Path<(String, String, String)>,
) -> Response {
    match shared.table_rows(&ws, &ds, &table) {
        Some(rows) => Json(rows).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no table '{table}' in dataset '{ds}' of workspace '{ws}' (names or ids)"),
        )
            .into_response(),
    }
}

async fn faults(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            shared.set_faults(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("not a fault plan ({e}); expected e.g. {{\"rules\":[{{\"operation\":\"post_rows\",\"trigger\":{{\"type\":\"nth\",\"requests\":[3]}},\"fault\":{{\"type\":\"reset_after_apply\"}}}}]}}"),
        )
            .into_response(),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats()).into_response()
}
