//! Dashboards of a workspace and their tiles (`Dashboards_GetDashboardsInGroup`,
//! `Dashboards_GetTilesInGroup`), in the swagger's shapes (`Dashboards`, `Tiles`). The API has no
//! call that points a tile at another dataset: a tile is re-pinned by a person.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::access::{Need, enter, finish, workspace};
use super::datasets::context;
use super::respond::{Answer, error, odata};
use crate::faults::Operation;
use crate::state::{Shared, lock};

pub(super) async fn get_dashboards(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(group): Path<String>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetDashboards).await?;
    let portal = &shared.cfg.cloud.portal_host;
    let mut world = lock(&shared.world);
    let ws = workspace(&mut world, &who, &group, Need::Read)?;
    let value: Vec<Value> = ws
        .dashboards
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "displayName": d.name,
                "isReadOnly": false,
                "webUrl": format!("{portal}/groups/{}/dashboards/{}", ws.id, d.id),
                "embedUrl": format!("{portal}/dashboardEmbed?dashboardId={}&groupId={}", d.id, ws.id),
                "users": [],
                "subscriptions": [],
            })
        })
        .collect();
    let body = json!({"@odata.context": context(&shared, &ws.id, "dashboards"), "value": value});
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}

pub(super) async fn get_tiles(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dashboard)): Path<(String, String)>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetTiles).await?;
    let portal = &shared.cfg.cloud.portal_host;
    let mut world = lock(&shared.world);
    let ws = workspace(&mut world, &who, &group, Need::Read)?;
    let Some(d) = ws
        .dashboards
        .iter()
        .find(|d| d.id.eq_ignore_ascii_case(&dashboard))
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "ItemNotFound",
            &format!("Dashboard {dashboard} is not found."),
        ));
    };
    let value: Vec<Value> = d
        .tiles
        .iter()
        .map(|t| {
            let mut v = json!({
                "id": t.id,
                "title": t.title,
                "embedUrl": format!("{portal}/embed?dashboardId={}&tileId={}&groupId={}", d.id, t.id, ws.id),
                "rowSpan": 0,
                "colSpan": 0,
                "datasetId": t.dataset_id,
            });
            if let Some(r) = &t.report_id {
                v["reportId"] = Value::String(r.clone());
            }
            v
        })
        .collect();
    let body = json!({
        "@odata.context": context(&shared, &ws.id, &format!("dashboards('{}')/tiles", d.id)),
        "value": value,
    });
    drop(world);
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}
