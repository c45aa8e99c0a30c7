//! Admin HTTP endpoints so `ml-connector sim intacct --port N` users can drive a running simulator:
//!
//! - `GET /stats` → [`crate::Stats`] as JSON
//! - `GET /admin/records/{object}` → every record as a JSON array of objects
//! - `POST /admin/records/{object}` (JSON object of fields) → `{"recordno": N}`
//! - `PUT /admin/records/{object}/{recordno}` (JSON object of fields) → 204, or 404
//! - `DELETE /admin/records/{object}/{recordno}` → 204 (writes an AUDITHISTORY delete event), or 404
//! - `POST /admin/faults` (a [`crate::FaultPlan`] as JSON) → 204, e.g.
//!   `{"seed": 1, "rules": [{"trigger": {"when": "on_request", "n": 3}, "fault": {"kind": "http503_html"}},
//!   {"trigger": {"when": "probability", "p": 0.05}, "fault": {"kind": "slow", "millis": 2000}}]}`
//! - `POST /admin/clock/advance` (`{"seconds": N}`) → `{"now": "MM/DD/YYYY HH:MM:SS"}`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::data::object_def;
use crate::faults::FaultPlan;
use crate::state::{State, Stats};

pub async fn stats(AxState(state): AxState<Arc<State>>) -> Json<Stats> {
    Json(state.stats())
}

fn unknown_object(object: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": format!("unknown object {object}; use one of the simulated objects such as VENDOR or APBILL") })),
    )
        .into_response()
}

async fn list(AxState(state): AxState<Arc<State>>, Path(object): Path<String>) -> Response {
    if object_def(&object).is_none() {
        return unknown_object(&object);
    }
    Json(state.records(&object)).into_response()
}

async fn insert(
    AxState(state): AxState<Arc<State>>,
    Path(object): Path<String>,
    Json(fields): Json<BTreeMap<String, String>>,
) -> Response {
    if object_def(&object).is_none() {
        return unknown_object(&object);
    }
    let recordno = state.insert(&object, fields, false);
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "recordno": recordno })),
    )
        .into_response()
}

async fn update(
    AxState(state): AxState<Arc<State>>,
    Path((object, recordno)): Path<(String, u64)>,
    Json(fields): Json<BTreeMap<String, String>>,
) -> Response {
    if object_def(&object).is_none() {
        return unknown_object(&object);
    }
    if state.update(&object, recordno, fields) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn delete(
    AxState(state): AxState<Arc<State>>,
    Path((object, recordno)): Path<(String, u64)>,
) -> Response {
    if object_def(&object).is_none() {
        return unknown_object(&object);
    }
    if state.delete(&object, recordno) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn faults(AxState(state): AxState<Arc<State>>, Json(plan): Json<FaultPlan>) -> StatusCode {
    state.set_faults(plan);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance(
    AxState(state): AxState<Arc<State>>,
    Json(a): Json<Advance>,
) -> Json<serde_json::Value> {
    state.clock.advance(Duration::from_secs(a.seconds));
    Json(serde_json::json!({ "now": state.clock.now_ts() }))
}

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/admin/records/{object}", get(list).post(insert))
        .route(
            "/admin/records/{object}/{recordno}",
            put(update).delete(delete),
        )
        .route("/admin/faults", post(faults))
        .route("/admin/clock/advance", post(advance))
}
