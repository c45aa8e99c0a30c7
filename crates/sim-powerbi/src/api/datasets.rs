//! Datasets of a workspace: list, get, create (schema-checked push datasets), delete, and the
//! refresh history.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::access::{Need, dataset, enter, finish, workspace};
use super::respond::{
    Answer, bad_request, dataset_not_found, error_info, invalid_json, odata, schema_error,
};
use crate::config::Retention;
use crate::faults::Operation;
use crate::limits::Pacing;
use crate::schema;
use crate::state::{Dataset, DatasetKind, Shared, Table, lock};

pub(super) fn context(shared: &Shared, group: &str, what: &str) -> String {
    format!(
        "{}/v1.0/myorg/groups/{group}/$metadata#{what}",
        shared.cfg.cloud.api_host
    )
}

fn dataset_json(shared: &Shared, group: &str, d: &Dataset) -> Value {
    let portal = &shared.cfg.cloud.portal_host;
    let push = matches!(d.kind, DatasetKind::Push { .. });
    json!({
        "id": d.id,
        "name": d.name,
        "webUrl": format!("{portal}/groups/{group}/datasets/{}", d.id),
        "addRowsAPIEnabled": push,
        "configuredBy": d.configured_by,
        "isRefreshable": !push,
        "isEffectiveIdentityRequired": false,
        "isEffectiveIdentityRolesRequired": false,
        "isOnPremGatewayRequired": false,
        "targetStorageMode": "Abf",
        "createdDate": d.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "createReportEmbedURL": format!("{portal}/reportEmbed?datasetId={}&groupId={group}", d.id),
        "qnaEmbedURL": format!("{portal}/qnaEmbed?datasetId={}&groupId={group}", d.id),
        "upstreamDatasets": [],
        "users": [],
        "queryScaleOutSettings": {"autoSyncReadOnlyReplicas": true, "maxReadOnlyReplicas": 0},
    })
}

pub(super) async fn get_datasets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetDatasets).await?;
    let mut world = lock(&shared.world);
    let ws = workspace(&mut world, &who, &group, Need::Read)?;
    let value: Vec<Value> = ws
        .datasets
        .iter()
        .map(|d| dataset_json(&shared, &ws.id, d))
        .collect();
    let body = json!({"@odata.context": context(&shared, &ws.id, "datasets"), "value": value});
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}

pub(super) async fn get_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset_id)): Path<(String, String)>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetDataset).await?;
    let mut world = lock(&shared.world);
    let (ws_id, d) = dataset(&mut world, &who, &group, &dataset_id, Need::Read)?;
    let mut m = dataset_json(&shared, &ws_id, d);
    m["@odata.context"] = Value::String(context(&shared, &ws_id, "datasets/$entity"));
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, m.to_string())))
}

#[derive(serde::Deserialize)]
pub(super) struct CreateQuery {
    #[serde(rename = "defaultRetentionPolicy")]
    retention: Option<String>,
}

pub(super) async fn post_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
    Query(q): Query<CreateQuery>,
    body: Bytes,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::PostDataset).await?;
    workspace(&mut lock(&shared.world), &who, &group, Need::Write)?;
    let retention = match q
        .retention
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => Retention::None,
        Some("basicfifo") => Retention::BasicFifo,
        Some(_) => {
            return Err(bad_request(
                &format!(
                    "The value '{}' is not valid for defaultRetentionPolicy; use None or basicFIFO.",
                    q.retention.unwrap_or_default()
                ),
                "defaultRetentionPolicy",
            ));
        }
    };
    let json: Value = serde_json::from_slice(&body).map_err(|e| invalid_json(&e, "dataset"))?;
    let valid = schema::validate_dataset(
        &json,
        &shared.cfg.limits,
        shared.cfg.push_creation_deprecated,
    )
    .map_err(schema_error)?;
    let configured_by = shared
        .cfg
        .tenants
        .iter()
        .flat_map(|t| t.apps.iter())
        .find(|a| a.client_id == who.client_id)
        .map_or_else(|| who.client_id.clone(), |a| a.display_name.clone());
    let dataset = Dataset {
        id: uuid::Uuid::new_v4().to_string(),
        name: valid.name,
        kind: DatasetKind::Push {
            retention,
            push_streaming: valid.push_streaming,
        },
        created: shared.clock.wall(),
        configured_by,
        tables: valid
            .tables
            .into_iter()
            .map(|t| Table {
                name: t.name,
                columns: t.columns,
                raw: t.raw,
                rows: Default::default(),
            })
            .collect(),
        pacing: Pacing::default(),
    };
    let body = json!({
        "@odata.context": format!("{}/v1.0/myorg/groups/{group}/$metadata#datasets/$entity", shared.cfg.cloud.api_host),
        "id": dataset.id,
        "name": dataset.name,
        "defaultRetentionPolicy": retention.wire(),
    });
    let mut world = lock(&shared.world);
    let Some(ws) = world.workspace_mut(&group) else {
        return Err(error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible"));
    };
    ws.datasets.push(dataset);
    drop(world);
    Ok(finish(
        reset_after,
        odata(StatusCode::CREATED, body.to_string()),
    ))
}

pub(super) async fn delete_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset_id)): Path<(String, String)>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::DeleteDataset).await?;
    let mut world = lock(&shared.world);
    let ws = workspace(&mut world, &who, &group, Need::Write)?;
    let before = ws.datasets.len();
    ws.datasets
        .retain(|d| !d.id.eq_ignore_ascii_case(&dataset_id));
    if ws.datasets.len() == before {
        return Err(dataset_not_found(&dataset_id));
    }
    drop(world);
    Ok(finish(reset_after, StatusCode::OK.into_response()))
}

#[derive(serde::Deserialize)]
pub(super) struct RefreshQuery {
    #[serde(rename = "$top")]
    top: Option<usize>,
}

pub(super) async fn get_refreshes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset_id)): Path<(String, String)>,
    Query(q): Query<RefreshQuery>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetRefreshes).await?;
    let mut world = lock(&shared.world);
    let (ws_id, d) = dataset(&mut world, &who, &group, &dataset_id, Need::Read)?;
    // Push datasets are never refreshed: empty history. An import dataset shows one completed API refresh.
    let value: Vec<Value> = match d.kind {
        DatasetKind::Push { .. } => Vec::new(),
        DatasetKind::Import => {
            let start = d
                .created
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let end = (d.created + chrono::Duration::seconds(42))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            vec![json!({
                "requestId": uuid::Uuid::new_v4().to_string(), "id": 1, "refreshType": "ViaApi",
                "startTime": start, "endTime": end, "status": "Completed",
                "refreshAttempts": [{"attemptId": 1, "startTime": start, "endTime": end, "type": "Data"}],
            })]
        }
    };
    let value: Vec<Value> = value.into_iter().take(q.top.unwrap_or(60)).collect();
    let body = json!({"@odata.context": context(&shared, &ws_id, &format!("datasets('{}')/refreshes", d.id)), "value": value});
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}
