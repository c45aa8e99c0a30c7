//! Reports of a workspace: list them (`Reports_GetReportsInGroup`) and bind one to another dataset
//! (`Reports_RebindReportInGroup`). Shapes follow the swagger (`Reports`, `RebindReportRequest`) and
//! the Rebind page of the REST reference: Write on the report and Build on the target dataset are
//! required, paginated reports are not supported, success is 200 with no body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::access::{Need, enter, finish, workspace};
use super::datasets::context;
use super::respond::{Answer, bad_request, invalid_json, odata, pbi_error, report_not_found};
use crate::faults::Operation;
use crate::state::{Report, Shared, lock};

fn report_json(shared: &Shared, group: &str, r: &Report) -> Value {
    let portal = &shared.cfg.cloud.portal_host;
    json!({
        "id": r.id,
        "reportType": if r.paginated { "PaginatedReport" } else { "PowerBIReport" },
        "name": r.name,
        "webUrl": format!("{portal}/groups/{group}/reports/{}", r.id),
        "embedUrl": format!("{portal}/reportEmbed?reportId={}&groupId={group}", r.id),
        "isOwnedByMe": false,
        "datasetId": r.dataset_id,
        "users": [],
        "subscriptions": [],
    })
}

pub(super) async fn get_reports(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetReports).await?;
    let mut world = lock(&shared.world);
    let ws = workspace(&mut world, &who, &group, Need::Read)?;
    let value: Vec<Value> = ws
        .reports
        .iter()
        .map(|r| report_json(&shared, &ws.id, r))
        .collect();
    let body = json!({"@odata.context": context(&shared, &ws.id, "reports"), "value": value});
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}

pub(super) async fn rebind_report(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, report)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::RebindReport).await?;
    let json: Result<Value, _> = serde_json::from_slice(&body);
    let mut world = lock(&shared.world);
    // Write permission on the report: a Viewer is refused as for any other write.
    let ws = workspace(&mut world, &who, &group, Need::Write)?;
    let Some(pos) = ws
        .reports
        .iter()
        .position(|r| r.id.eq_ignore_ascii_case(&report))
    else {
        return Err(report_not_found(&report));
    };
    let json = json.map_err(|e| invalid_json(&e, "requestParameters"))?;
    let Some(target) = json.get("datasetId").and_then(Value::as_str) else {
        return Err(bad_request(
            "The datasetId property is required.",
            "requestParameters",
        ));
    };
    if ws.reports[pos].paginated {
        return Err(bad_request(
            "Rebind is not supported for paginated reports.",
            "requestParameters",
        ));
    }
    // Build permission on the target dataset: one the caller cannot see (here: not in this
    // workspace) is answered as a missing entity, as executeQueries does for a Viewer.
    let Some(target_id) = ws
        .datasets
        .iter()
        .find(|d| d.id.eq_ignore_ascii_case(target))
        .map(|d| d.id.clone())
    else {
        return Err(pbi_error(
            StatusCode::NOT_FOUND,
            "PowerBIEntityNotFound",
            json!([]),
        ));
    };
    ws.reports[pos].dataset_id = target_id;
    drop(world);
    Ok(finish(reset_after, StatusCode::OK.into_response()))
}
