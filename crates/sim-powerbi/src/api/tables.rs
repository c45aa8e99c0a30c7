//! Tables of a push dataset: list them as defined, and replace one table's definition (PUT).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::access::{Need, enter, finish, push_dataset};
use super::datasets::context;
use super::respond::{Answer, bad_request, invalid_json, odata, put_table_not_found, schema_error};
use crate::faults::Operation;
use crate::schema;
use crate::state::{Shared, lock};

pub(super) async fn get_tables(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset)): Path<(String, String)>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetTables).await?;
    let mut world = lock(&shared.world);
    let (ws_id, d) = push_dataset(&mut world, &who, &group, &dataset, Need::Read)?;
    let value: Vec<Value> = d.tables.iter().map(|t| t.raw.clone()).collect();
    let body = json!({"@odata.context": context(&shared, &ws_id, &format!("datasets('{}')/tables", d.id)), "value": value});
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}

pub(super) async fn put_table(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset, table)): Path<(String, String, String)>,
    body: Bytes,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::PutTable).await?;
    let json: Result<Value, _> = serde_json::from_slice(&body);
    let mut world = lock(&shared.world);
    let (_, d) = push_dataset(&mut world, &who, &group, &dataset, Need::Write)?;
    let ds_id = d.id.clone();
    // PUT replaces a table's definition; it does not add a table to the dataset (see the crate docs).
    let t = d
        .table_mut(&table)
        .ok_or_else(|| put_table_not_found(&table, &ds_id))?;
    // The item is resolved before the body is judged: a missing table is 404 whatever was sent.
    let json = json.map_err(|e| invalid_json(&e, "table"))?;
    let valid = schema::validate_table(&json, &shared.cfg.limits, "table").map_err(schema_error)?;
    if valid.name != t.name {
        return Err(bad_request(
            &format!(
                "The table name '{}' in the body does not match the table '{}' in the URL.",
                valid.name, t.name
            ),
            "table",
        ));
    }
    // Existing rows are kept (the service's behaviour on a column change is undocumented; the connector
    // deletes and reloads after a schema change anyway).
    t.columns = valid.columns;
    t.raw = valid.raw;
    // The reference saw `{"name": ...}`; the swagger declares a full `Table` (name and columns required). The
    // stored definition satisfies both readings.
    let body = t.raw.clone();
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}
