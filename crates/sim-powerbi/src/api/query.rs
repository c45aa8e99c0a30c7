//! POST executeQueries: one DAX query (see `crate::dax`), answered with a leading UTF-8 BOM like the service,
//! limited to `queries_per_minute` per principal (429), DAX failures as 400 DatasetExecuteQueriesError.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::access::{Need, dataset, enter, finish};
use super::respond::{
    Answer, REQUESTS_EXCEEDED, bad_request, invalid_json, odata, pbi_error, too_many,
};
use crate::dax;
use crate::faults::Operation;
use crate::limits::retry_after_secs;
use crate::state::{Shared, lock};

/// The byte order mark the service puts in front of executeQueries JSON.
const BOM: &str = "\u{FEFF}";

fn dax_error(message: &str) -> Response {
    pbi_error(
        StatusCode::BAD_REQUEST,
        "DatasetExecuteQueriesError",
        json!([
            {"code": "DetailsMessage", "detail": {"type": 1, "value": message}},
            {"code": "AnalysisServicesErrorCode", "detail": {"type": 1, "value": "3238002695"}},
        ]),
    )
}

pub(super) async fn execute_queries(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset_id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::ExecuteQueries).await?;
    let limits = &shared.cfg.limits;
    if limits.enforce {
        let now = shared.clock.now();
        let mut windows = lock(&shared.query_windows);
        let w = windows.entry(who.client_id.clone()).or_default();
        w.expire(now, limits.minute);
        if let Some(wait) = w.wait_for(now, limits.minute, 1, limits.queries_per_minute as u64) {
            drop(windows);
            return Err(too_many(
                &shared,
                "queries_per_minute",
                retry_after_secs(wait),
                REQUESTS_EXCEEDED,
            ));
        }
        w.push(now, 1);
    }
    let request: Value = serde_json::from_slice(&body).map_err(|e| invalid_json(&e, "request"))?;
    let Some(queries) = request.get("queries").and_then(Value::as_array) else {
        return Err(bad_request(
            "The required property 'queries' is missing.",
            "request",
        ));
    };
    if queries.len() != 1 {
        return Err(bad_request(
            &format!(
                "The request contains {} queries; exactly one query is supported.",
                queries.len()
            ),
            "queries",
        ));
    }
    let Some(dax_text) = queries[0].get("query").and_then(Value::as_str) else {
        return Err(bad_request(
            "The required property 'query' of the query is missing.",
            "queries",
        ));
    };
    let include_nulls = request
        .pointer("/serializerSettings/includeNulls")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut world = lock(&shared.world);
    // A Viewer lacks Build permission: the service answers as if the dataset did not exist.
    let (_, d) = dataset(&mut world, &who, &group, &dataset_id, Need::Build)?;
    let result = dax::execute(dax_text, d, include_nulls, limits.query_max_rows);
    drop(world);
    let (rows, truncated) = match result {
        Ok(r) => r,
        Err(e) => return Err(dax_error(&e.0)),
    };
    let table_error = truncated
        .map(|m| {
            format!(
                ",\"error\":{}",
                json!({"code": "MaxRowsExceeded", "message": m})
            )
        })
        .unwrap_or_default();
    let text = format!("{BOM}{{\"results\":[{{\"tables\":[{{\"rows\":{rows}{table_error}}}]}}]}}");
    Ok(finish(reset_after, odata(StatusCode::OK, text)))
}
