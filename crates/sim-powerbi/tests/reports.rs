//! Reports, their Rebind, dashboards and tiles, and PUT of a table the dataset lacks, over HTTP; the
//! success bodies are held against Microsoft's swagger in `swagger.rs`.

mod common;

use common::{config, header, start};
use ml_sim_powerbi::{
    AppConfig, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE, WorkspaceMember, WorkspaceRole,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn reports_are_listed_with_their_dataset_and_rebound() {
    let viewer = "cccccccc-0000-0000-0000-000000000003";
    let mut cfg = config();
    cfg.tenants[0]
        .apps
        .push(AppConfig::with_secret(viewer, "s3"));
    cfg.workspaces[0].members.push(WorkspaceMember {
        client_id: viewer.into(),
        role: WorkspaceRole::Viewer,
    });
    let h = start(cfg).await;
    let old = h.create_dataset("Old", "None").await;
    let new = h.create_dataset("New", "None").await;
    let report = h
        .sim
        .add_report(DEFAULT_WORKSPACE, "Payables", &old)
        .unwrap();
    let paginated = h
        .sim
        .add_paginated_report(DEFAULT_WORKSPACE, "Statement", &old)
        .unwrap();

    let list: Value = h.get(&h.group("/reports")).await.json().await.unwrap();
    assert!(
        list["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#reports")
    );
    let first = &list["value"][0];
    assert_eq!(first["id"], report.as_str());
    assert_eq!(first["name"], "Payables");
    assert_eq!(first["datasetId"], old.as_str());
    assert_eq!(first["reportType"], "PowerBIReport");
    assert!(first["webUrl"].as_str().unwrap().ends_with(&report));
    assert_eq!(list["value"][1]["reportType"], "PaginatedReport");

    let rebind = |r: &str| h.group(&format!("/reports/{r}/Rebind"));
    // 200 with no body; the report now reads from the new dataset.
    let r = h.post(&rebind(&report), &json!({"datasetId": new})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap().is_empty());
    let bound = h.sim.reports(DEFAULT_WORKSPACE).unwrap();
    assert_eq!(bound[0].dataset_id, new);

    // An unknown report, an unknown dataset, a body without datasetId, a paginated report.
    let r = h
        .post(
            &rebind("00000000-0000-4000-8000-000000000000"),
            &json!({"datasetId": new}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ItemNotFound");
    let r = h
        .post(
            &rebind(&report),
            &json!({"datasetId": "00000000-0000-4000-8000-000000000001"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PowerBIEntityNotFound");
    assert_eq!(body["error"]["pbi.error"]["code"], "PowerBIEntityNotFound");
    let r = h.post(&rebind(&report), &json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = h
        .post(&rebind(&paginated), &json!({"datasetId": new}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.sim.reports(DEFAULT_WORKSPACE).unwrap()[1].dataset_id, old);

    // A Viewer may list but not rebind (Write on the report is required).
    let t = common::get_token(&h.http, &h.sim, DEFAULT_TENANT_ID, viewer, "s3").await;
    let r = h
        .http
        .post(rebind(&report))
        .bearer_auth(&t)
        .json(&json!({"datasetId": old}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PowerBINotAuthorizedException");
    assert_eq!(h.sim.reports(DEFAULT_WORKSPACE).unwrap()[0].dataset_id, new);
}

#[tokio::test]
async fn dashboards_list_their_tiles_with_the_dataset_each_shows() {
    let h = start(config()).await;
    let ds = h.create_dataset("Old", "None").await;
    let report = h
        .sim
        .add_report(DEFAULT_WORKSPACE, "Payables", &ds)
        .unwrap();
    let dash = h.sim.add_dashboard(DEFAULT_WORKSPACE, "Finance").unwrap();
    let tile = h
        .sim
        .add_tile(DEFAULT_WORKSPACE, &dash, "Open bills", &ds, Some(&report))
        .unwrap();

    let list: Value = h.get(&h.group("/dashboards")).await.json().await.unwrap();
    assert_eq!(list["value"][0]["id"], dash.as_str());
    assert_eq!(list["value"][0]["displayName"], "Finance");
    let tiles: Value = h
        .get(&h.group(&format!("/dashboards/{dash}/tiles")))
        .await
        .json()
        .await
        .unwrap();
    let t = &tiles["value"][0];
    assert_eq!(t["id"], tile.as_str());
    assert_eq!(t["title"], "Open bills");
    assert_eq!(t["datasetId"], ds.as_str());
    assert_eq!(t["reportId"], report.as_str());
    let r = h
        .get(&h.group("/dashboards/00000000-0000-4000-8000-000000000000/tiles"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// PUT replaces a table's definition but does not add a table: the 404 body users reported.
#[tokio::test]
async fn put_of_a_table_the_dataset_lacks_is_item_not_found() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    let r = h
        .put(
            &h.group(&format!("/datasets/{ds}/tables/Cr")),
            &json!({"name": "Cr", "columns": [{"name": "Id", "dataType": "Int64"}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(header(&r, "requestid").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ItemNotFound");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Table '<pi>Cr</pi>' not found in dataset '") && message.contains(&ds),
        "{message}"
    );
    let tables: Vec<String> = h.sim.datasets(DEFAULT_WORKSPACE).unwrap()[0]
        .tables
        .iter()
        .map(|t| t.0.clone())
        .collect();
    assert_eq!(tables, ["GL", "Account"]);
}
