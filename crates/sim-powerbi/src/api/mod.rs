//! The Power BI REST surface under `/v1.0/myorg`: authentication of bearer tokens, workspace access, and the
//! group-scoped dataset operations. Rows live in [`rows`], executeQueries in [`query`].
//!
//! Order of checks on every call (as the service behaves for service principals): bearer token (403), tenant
//! admin switch (401), workspace membership (401 `GroupNotAccessible`), role (401 `PowerBINotAuthorizedException`),
//! then the item (404 `ItemNotFound`), then the body (400).

// Handlers' early exits are ready-made `Response`s; boxing them would buy nothing on these cold paths.
#![allow(clippy::result_large_err)]

mod query;
mod rows;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde_json::{Value, json};

use crate::config::{Retention, WorkspaceRole};
use crate::faults::{FaultKind, Operation};
use crate::limits::Pacing;
use crate::schema::{self, SchemaError};
use crate::server::{abort_connection, request_id};
use crate::state::{Dataset, DatasetKind, Shared, Table, Workspace, lock};

pub(crate) const ODATA_JSON: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let g = "/v1.0/myorg/groups/{group}";
    Router::new()
        .route("/v1.0/myorg/groups", get(get_groups))
        .route(
            &format!("{g}/datasets"),
            get(get_datasets).post(post_dataset),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}"),
            get(get_dataset).delete(delete_dataset),
        )
        .route(&format!("{g}/datasets/{{dataset}}/tables"), get(get_tables))
        .route(
            &format!("{g}/datasets/{{dataset}}/tables/{{table}}"),
            put(put_table),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/tables/{{table}}/rows"),
            post(rows::post_rows).delete(rows::delete_rows),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/executeQueries"),
            post(query::execute_queries),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/refreshes"),
            get(get_refreshes),
        )
        .route("/v1.0/myorg/datasets", any(my_org))
        .route("/v1.0/myorg/datasets/{*rest}", any(my_org))
        .route("/v1.0/myorg/reports", any(my_org))
        .route("/v1.0/myorg/dashboards", any(my_org))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/// A JSON answer with the service's content type.
pub(crate) fn odata(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    r
}

/// `{"error":{"code","message"}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    odata(
        status,
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
}

/// 400 `{"error":{"code":"BadRequest","message":"Bad Request","details":[{"message","target"}]}}`.
pub(crate) fn bad_request(message: &str, target: &str) -> Response {
    odata(
        StatusCode::BAD_REQUEST,
        json!({"error": {"code": "BadRequest", "message": "Bad Request",
            "details": [{"message": message, "target": target}]}})
        .to_string(),
    )
}

/// The `pbi.error` document (no `message`), e.g. PowerBINotAuthorizedException.
pub(crate) fn pbi_error(status: StatusCode, code: &str, details: Value) -> Response {
    odata(
        status,
        json!({"error": {"code": code, "pbi.error": {"code": code, "parameters": {}, "details": details,
            "exceptionCulprit": 1}}})
        .to_string(),
    )
}

/// Empty body with the reason only in `X-PowerBI-Error-Info`.
pub(crate) fn error_info(status: StatusCode, info: &'static str) -> Response {
    let mut r = status.into_response();
    r.headers_mut()
        .insert("X-PowerBI-Error-Info", HeaderValue::from_static(info));
    r
}

/// 429 with `Retry-After`.
pub(crate) fn too_many(shared: &Shared, reason: &str, retry_after: u64, message: &str) -> Response {
    shared.count_429(reason);
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

pub(crate) const REQUESTS_EXCEEDED: &str = "You have exceeded the amount of requests allowed in the current time frame and further requests will fail.";

/// What a handler should do after asking the fault plan.
pub(crate) enum Pre {
    Go { reset_after: bool },
    Answer(Response),
}

/// Applies the pre-processing part of an injected fault (the request body has already been read).
pub(crate) async fn pre_fault(shared: &Shared, fault: Option<FaultKind>) -> Pre {
    match fault {
        None => Pre::Go { reset_after: false },
        Some(FaultKind::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Pre::Answer(if status == StatusCode::INTERNAL_SERVER_ERROR {
                error(
                    status,
                    "InternalServerError",
                    "An internal error occurred; retry the request later.",
                )
            } else {
                // 502/503/504 come from the front end with no Power BI body.
                status.into_response()
            })
        }
        Some(FaultKind::Throttle { retry_after_secs }) => Pre::Answer(too_many(
            shared,
            "injected",
            retry_after_secs,
            REQUESTS_EXCEEDED,
        )),
        Some(FaultKind::ResetBeforeApply) => Pre::Answer(abort_connection()),
        Some(FaultKind::ResetAfterApply) => Pre::Go { reset_after: true },
        Some(FaultKind::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Pre::Go { reset_after: false }
        }
    }
}

pub(crate) fn finish(reset_after: bool, resp: Response) -> Response {
    if reset_after && resp.status().is_success() {
        abort_connection()
    } else {
        resp
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication and access

/// The calling service principal.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
}

/// Bearer token → principal, or the service's 403/401 answer.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(error_info(StatusCode::FORBIDDEN, "Unknown"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(error_info(StatusCode::FORBIDDEN, "InvalidToken"));
    };
    let issued = lock(&shared.tokens).get(token).cloned();
    let Some(issued) = issued else {
        return Err(error_info(StatusCode::FORBIDDEN, "InvalidToken"));
    };
    if issued.expires <= shared.clock.now() {
        let mut r = error(
            StatusCode::FORBIDDEN,
            "TokenExpired",
            "Access token has expired, resubmit with a new access token",
        );
        r.headers_mut().insert(
            "X-PowerBI-Error-Info",
            HeaderValue::from_static("TokenExpired"),
        );
        return Err(r);
    }
    let allowed = shared
        .cfg
        .tenants
        .iter()
        .find(|t| t.id == issued.tenant_id)
        .and_then(|t| t.apps.iter().find(|a| a.client_id == issued.client_id))
        .is_some_and(|a| a.allowed_by_tenant_switch);
    if !allowed {
        return Err(error_info(
            StatusCode::UNAUTHORIZED,
            "ServicePrincipalIsNotAllowedByTenantAdminSwitch",
        ));
    }
    Ok(Principal {
        tenant_id: issued.tenant_id,
        client_id: issued.client_id,
    })
}

/// 401 `PowerBINotAuthorizedException` (a Viewer trying to write).
pub(crate) fn not_authorized() -> Response {
    pbi_error(
        StatusCode::UNAUTHORIZED,
        "PowerBINotAuthorizedException",
        json!([]),
    )
}

/// The workspace if the principal may use it (`write`: Contributor or above).
pub(crate) fn access<'w>(
    workspace: Option<&'w mut Workspace>,
    who: &Principal,
    write: bool,
) -> Result<&'w mut Workspace, Response> {
    let ws = workspace
        .filter(|w| w.tenant_id == who.tenant_id)
        .ok_or_else(|| error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible"))?;
    let role = ws
        .role_of(&who.client_id)
        .ok_or_else(|| error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible"))?;
    if write && !role.can_write() {
        return Err(not_authorized());
    }
    Ok(ws)
}

pub(crate) fn dataset_not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Dataset {id} is not found."),
    )
}

/// Rows and tables exist only on push datasets; Power BI answers 404 for a Desktop-published one.
pub(crate) fn not_push_dataset(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Dataset {id} is not Push API dataset."),
    )
}

pub(crate) fn table_not_found(table: &str, dataset: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        &format!("Table {table} is not found in dataset {dataset}."),
    )
}

/// Everything a group-scoped handler starts with: fault, auth, workspace.
macro_rules! enter {
    ($shared:expr, $headers:expr, $op:expr) => {{
        let fault = $shared.begin($op);
        let reset_after = match pre_fault(&$shared, fault).await {
            Pre::Answer(r) => return r,
            Pre::Go { reset_after } => reset_after,
        };
        let who = match authenticate(&$shared, &$headers) {
            Ok(w) => w,
            Err(r) => return r,
        };
        (who, reset_after)
    }};
}
pub(crate) use enter;

// ---------------------------------------------------------------------------------------------------------------
// Rendering

fn context(shared: &Shared, group: &str, what: &str) -> String {
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

// ---------------------------------------------------------------------------------------------------------------
// Handlers

#[derive(serde::Deserialize)]
struct GroupsQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skip")]
    skip: Option<String>,
}

/// The OData `$filter` forms the simulator understands on groups.
fn group_matches(filter: &str, name: &str, id: &str) -> Option<bool> {
    let f = filter.trim();
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    if let Some((field, value)) = f.split_once(" eq ") {
        let value = quoted(value)?;
        return match field.trim() {
            "name" => Some(name == value),
            "id" => Some(id.eq_ignore_ascii_case(&value)),
            _ => None,
        };
    }
    let lower = f.to_ascii_lowercase();
    for (func, test) in [
        (
            "contains(name,",
            (|n: &str, v: &str| n.to_lowercase().contains(&v.to_lowercase()))
                as fn(&str, &str) -> bool,
        ),
        ("startswith(name,", |n: &str, v: &str| {
            n.to_lowercase().starts_with(&v.to_lowercase())
        }),
    ] {
        if let Some(rest) = lower.strip_prefix(func) {
            // Use the original text for the value (case preserved), located by length.
            let original = &f[f.len() - rest.len()..];
            let value = quoted(original.strip_suffix(')')?)?;
            return Some(test(name, &value));
        }
    }
    None
}

async fn get_groups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<GroupsQuery>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::GetGroups);
    let parse = |v: &Option<String>, name: &str| -> Result<Option<usize>, Response> {
        match v {
            None => Ok(None),
            Some(s) => s.trim().parse::<usize>().map(Some).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    &format!("The value '{s}' of {name} is not a non-negative integer."),
                )
            }),
        }
    };
    let top = match parse(&q.top, "$top") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let skip = match parse(&q.skip, "$skip") {
        Ok(v) => v.unwrap_or(0),
        Err(r) => return r,
    };
    let world = lock(&shared.world);
    let mut value = Vec::new();
    for ws in &world.workspaces {
        if ws.tenant_id != who.tenant_id || ws.role_of(&who.client_id).is_none() {
            continue;
        }
        if let Some(f) = &q.filter {
            match group_matches(f, &ws.name, &ws.id) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequest",
                        &format!("The $filter expression '{f}' is not supported."),
                    );
                }
            }
        }
        value.push(json!({
            "id": ws.id, "isReadOnly": ws.role_of(&who.client_id) == Some(WorkspaceRole::Viewer),
            "isOnDedicatedCapacity": false, "type": "Workspace", "name": ws.name,
        }));
    }
    drop(world);
    let count = value.len();
    let value: Vec<Value> = value
        .into_iter()
        .skip(skip)
        .take(top.unwrap_or(usize::MAX))
        .collect();
    let body = json!({
        "@odata.context": format!("{}/v1.0/myorg/$metadata#groups", shared.cfg.cloud.api_host),
        "@odata.count": count,
        "value": value,
    });
    finish(reset_after, odata(StatusCode::OK, body.to_string()))
}

async fn get_datasets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::GetDatasets);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, false) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let value: Vec<Value> = ws
        .datasets
        .iter()
        .map(|d| dataset_json(&shared, &ws.id, d))
        .collect();
    let body = json!({"@odata.context": context(&shared, &ws.id, "datasets"), "value": value});
    drop(world);
    finish(reset_after, odata(StatusCode::OK, body.to_string()))
}

async fn get_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset)): Path<(String, String)>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::GetDataset);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, false) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let Some(d) = ws.dataset(&dataset) else {
        return dataset_not_found(&dataset);
    };
    let mut m = dataset_json(&shared, &ws.id, d);
    m["@odata.context"] = Value::String(context(&shared, &ws.id, "datasets/$entity"));
    drop(world);
    finish(reset_after, odata(StatusCode::OK, m.to_string()))
}

#[derive(serde::Deserialize)]
struct CreateQuery {
    #[serde(rename = "defaultRetentionPolicy")]
    retention: Option<String>,
}

async fn post_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
    Query(q): Query<CreateQuery>,
    body: Bytes,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::PostDataset);
    {
        let mut world = lock(&shared.world);
        if let Err(r) = access(world.workspace_mut(&group), &who, true) {
            return r;
        }
    }
    let retention = match q
        .retention
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => Retention::None,
        Some("basicfifo") => Retention::BasicFifo,
        Some(_) => {
            return bad_request(
                &format!(
                    "The value '{}' is not valid for defaultRetentionPolicy; use None or basicFIFO.",
                    q.retention.unwrap_or_default()
                ),
                "defaultRetentionPolicy",
            );
        }
    };
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                &format!("The request body is not valid JSON: {e}."),
                "dataset",
            );
        }
    };
    let valid = match schema::validate_dataset(
        &json,
        &shared.cfg.limits,
        shared.cfg.push_creation_deprecated,
    ) {
        Ok(v) => v,
        Err(e) => return schema_error(e),
    };
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
        return error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible");
    };
    ws.datasets.push(dataset);
    drop(world);
    finish(reset_after, odata(StatusCode::CREATED, body.to_string()))
}

pub(crate) fn schema_error(e: SchemaError) -> Response {
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

async fn delete_dataset(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset)): Path<(String, String)>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::DeleteDataset);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, true) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let before = ws.datasets.len();
    ws.datasets.retain(|d| !d.id.eq_ignore_ascii_case(&dataset));
    if ws.datasets.len() == before {
        return dataset_not_found(&dataset);
    }
    drop(world);
    finish(reset_after, StatusCode::OK.into_response())
}

async fn get_tables(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset)): Path<(String, String)>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::GetTables);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, false) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let ws_id = ws.id.clone();
    let Some(d) = ws.dataset(&dataset) else {
        return dataset_not_found(&dataset);
    };
    if !matches!(d.kind, DatasetKind::Push { .. }) {
        return not_push_dataset(&d.id);
    }
    let value: Vec<Value> = d.tables.iter().map(|t| t.raw.clone()).collect();
    let body = json!({"@odata.context": context(&shared, &ws_id, &format!("datasets('{}')/tables", d.id)), "value": value});
    drop(world);
    finish(reset_after, odata(StatusCode::OK, body.to_string()))
}

async fn put_table(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset, table)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::PutTable);
    let json: Result<Value, _> = serde_json::from_slice(&body);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, true) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let Some(d) = ws.dataset_mut(&dataset) else {
        return dataset_not_found(&dataset);
    };
    if !matches!(d.kind, DatasetKind::Push { .. }) {
        return not_push_dataset(&d.id);
    }
    let ds_id = d.id.clone();
    let Some(t) = d.table_mut(&table) else {
        return table_not_found(&table, &ds_id);
    };
    let json = match json {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                &format!("The request body is not valid JSON: {e}."),
                "table",
            );
        }
    };
    let valid = match schema::validate_table(&json, &shared.cfg.limits, "table") {
        Ok(v) => v,
        Err(e) => return schema_error(e),
    };
    if valid.name != t.name {
        return bad_request(
            &format!(
                "The table name '{}' in the body does not match the table '{}' in the URL.",
                valid.name, t.name
            ),
            "table",
        );
    }
    // Existing rows are kept (the service's behaviour on a column change is undocumented; the connector
    // deletes and reloads after a schema change anyway).
    t.columns = valid.columns;
    t.raw = valid.raw;
    // The reference saw `{"name": ...}`; the swagger declares a full `Table` (name and columns required). The
    // stored definition satisfies both readings.
    let body = t.raw.clone();
    drop(world);
    finish(reset_after, odata(StatusCode::OK, body.to_string()))
}

#[derive(serde::Deserialize)]
struct RefreshQuery {
    #[serde(rename = "$top")]
    top: Option<usize>,
}

async fn get_refreshes(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset)): Path<(String, String)>,
    Query(q): Query<RefreshQuery>,
) -> Response {
    let (who, reset_after) = enter!(shared, headers, Operation::GetRefreshes);
    let mut world = lock(&shared.world);
    let ws = match access(world.workspace_mut(&group), &who, false) {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    let ws_id = ws.id.clone();
    let Some(d) = ws.dataset(&dataset) else {
        return dataset_not_found(&dataset);
    };
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
    finish(reset_after, odata(StatusCode::OK, body.to_string()))
}

/// `/v1.0/myorg/...` without a group: "My workspace", which service principals cannot use.
async fn my_org(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let (_who, _reset_after) = enter!(shared, headers, Operation::MyOrg);
    odata(
        StatusCode::FORBIDDEN,
        json!({"Message": "API is not accessible for application"}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::group_matches;

    #[test]
    fn group_filters() {
        assert_eq!(
            group_matches("name eq 'Finance'", "Finance", "x"),
            Some(true)
        );
        assert_eq!(
            group_matches("name eq 'finance'", "Finance", "x"),
            Some(false)
        );
        assert_eq!(
            group_matches("name eq 'O''Brien'", "O'Brien", "x"),
            Some(true)
        );
        assert_eq!(group_matches("id eq 'ABC'", "n", "abc"), Some(true));
        assert_eq!(
            group_matches("contains(name,'fin')", "Finance", "x"),
            Some(true)
        );
        assert_eq!(
            group_matches("startswith(name,'Fo')", "Finance", "x"),
            Some(false)
        );
        assert_eq!(group_matches("type eq 'Workspace'", "Finance", "x"), None);
        assert_eq!(group_matches("name eq Finance", "Finance", "x"), None);
    }
}
