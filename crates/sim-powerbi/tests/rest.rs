//! The Power BI REST surface over real HTTP: auth failure signatures, groups, datasets, tables, rows,
//! executeQueries and refreshes.

mod common;

use std::time::Duration;

use common::{config, gl_dataset, header, start};
use ml_sim_powerbi::{
    AppConfig, DEFAULT_CLIENT_ID, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE, DEFAULT_WORKSPACE_ID,
    PresetDataset, PresetKind, PresetTable, Retention, SimConfig, WorkspaceConfig, WorkspaceMember,
    WorkspaceRole,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ODATA: &str = "application/json; odata.metadata=minimal; odata.streaming=true";

fn common_secret() -> &'static str {
    ml_sim_powerbi::DEFAULT_CLIENT_SECRET
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

#[tokio::test]
async fn bearer_failures_are_403_with_error_info() {
    let h = start(config()).await;
    let url = h.group("/datasets");

    let r = h.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "x-powerbi-error-info"), Some("Unknown"));
    assert!(is_uuid(header(&r, "requestid").unwrap()));
    assert_eq!(r.text().await.unwrap(), "");

    let r = h
        .http
        .get(&url)
        .header("authorization", "Bearer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "x-powerbi-error-info"), Some("InvalidToken"));

    let r = h
        .http
        .get(&url)
        .bearer_auth("made-up-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "x-powerbi-error-info"), Some("InvalidToken"));
    assert_eq!(r.text().await.unwrap(), "");

    // expire_tokens() invalidates every issued token at once; a fresh token works again.
    h.sim.expire_tokens();
    let r = h.get(&url).await;
    assert_eq!(header(&r, "x-powerbi-error-info"), Some("TokenExpired"));
    let mut h = h;
    h.token = common::get_token(
        &h.http,
        &h.sim,
        DEFAULT_TENANT_ID,
        DEFAULT_CLIENT_ID,
        common_secret(),
    )
    .await;

    // Token lifetime is 3599 s on the simulator's (manual) clock.
    assert_eq!(h.get(&url).await.status(), StatusCode::OK);
    h.sim.advance_clock(Duration::from_secs(3600));
    let r = h.get(&url).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "x-powerbi-error-info"), Some("TokenExpired"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}})
    );
}

#[tokio::test]
async fn tenant_switch_membership_and_myorg() {
    let outsider = "cccccccc-0000-0000-0000-000000000001";
    let blocked = "cccccccc-0000-0000-0000-000000000002";
    let viewer = "cccccccc-0000-0000-0000-000000000003";
    let mut cfg = config();
    cfg.tenants[0]
        .apps
        .push(AppConfig::with_secret(outsider, "s1"));
    let mut b = AppConfig::with_secret(blocked, "s2");
    b.allowed_by_tenant_switch = false;
    cfg.tenants[0].apps.push(b);
    cfg.tenants[0]
        .apps
        .push(AppConfig::with_secret(viewer, "s3"));
    cfg.workspaces[0].members.push(WorkspaceMember {
        client_id: blocked.into(),
        role: WorkspaceRole::Admin,
    });
    cfg.workspaces[0].members.push(WorkspaceMember {
        client_id: viewer.into(),
        role: WorkspaceRole::Viewer,
    });
    let h = start(cfg).await;
    let ds = h.create_dataset("D", "None").await;

    let t_out = common::get_token(&h.http, &h.sim, DEFAULT_TENANT_ID, outsider, "s1").await;
    let r = h
        .http
        .get(h.group("/datasets"))
        .bearer_auth(&t_out)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "x-powerbi-error-info"),
        Some("GroupNotAccessible")
    );
    // The outsider sees no workspaces at all.
    let r = h
        .http
        .get(h.url("/groups"))
        .bearer_auth(&t_out)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"], json!([]));

    let t_blocked = common::get_token(&h.http, &h.sim, DEFAULT_TENANT_ID, blocked, "s2").await;
    let r = h
        .http
        .get(h.group("/datasets"))
        .bearer_auth(&t_blocked)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "x-powerbi-error-info"),
        Some("ServicePrincipalIsNotAllowedByTenantAdminSwitch")
    );
    assert_eq!(r.text().await.unwrap(), "");

    let t_viewer = common::get_token(&h.http, &h.sim, DEFAULT_TENANT_ID, viewer, "s3").await;
    let r = h
        .http
        .post(h.rows_url(&ds, "GL"))
        .bearer_auth(&t_viewer)
        .json(&json!({"rows": [{"Id": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PowerBINotAuthorizedException");
    assert_eq!(
        body["error"]["pbi.error"]["code"],
        "PowerBINotAuthorizedException"
    );
    let r = h
        .http
        .post(h.group(&format!("/datasets/{ds}/executeQueries")))
        .bearer_auth(&t_viewer)
        .json(&json!({"queries": [{"query": "EVALUATE ROW(\"n\", COUNTROWS('GL'))"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PowerBIEntityNotFound");

    let r = h.get(&h.url("/datasets")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"Message": "API is not accessible for application"})
    );
}

#[tokio::test]
async fn groups_filter_top_skip() {
    let mut cfg = config();
    for (i, name) in ["Sales", "Ops", "Hidden"].iter().enumerate() {
        cfg.workspaces.push(WorkspaceConfig {
            id: format!("00000000-0000-4000-8000-00000000000{i}"),
            name: (*name).into(),
            tenant_id: DEFAULT_TENANT_ID.into(),
            members: if *name == "Hidden" {
                vec![]
            } else {
                vec![WorkspaceMember {
                    client_id: DEFAULT_CLIENT_ID.into(),
                    role: WorkspaceRole::Contributor,
                }]
            },
            datasets: vec![],
        });
    }
    let h = start(cfg).await;
    let r = h.get(&h.url("/groups")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), Some(ODATA));
    let body: Value = r.json().await.unwrap();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/myorg/$metadata#groups")
    );
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [DEFAULT_WORKSPACE, "Sales", "Ops"]);

    let r = h
        .http
        .get(h.url("/groups"))
        .query(&[("$filter", format!("name eq '{DEFAULT_WORKSPACE}'"))])
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["id"], DEFAULT_WORKSPACE_ID);
    assert_eq!(body["value"][0]["type"], "Workspace");
    assert_eq!(body["value"][0]["isReadOnly"], false);

    let r = h
        .http
        .get(h.url("/groups"))
        .query(&[("$top", "1"), ("$skip", "1")])
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["name"], "Sales");

    let r = h
        .http
        .get(h.url("/groups"))
        .query(&[("$filter", "name eq 'Hidden'")])
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"], json!([]));
}

#[tokio::test]
async fn dataset_lifecycle() {
    let h = start(config()).await;
    let r = h
        .post(
            &h.group("/datasets?defaultRetentionPolicy=basicFIFO"),
            &gl_dataset("Sage Intacct"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "content-type"), Some(ODATA));
    assert!(is_uuid(header(&r, "requestid").unwrap()));
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(is_uuid(&id));
    assert_eq!(created["name"], "Sage Intacct");
    assert_eq!(created["defaultRetentionPolicy"], "basicFIFO");
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#datasets/$entity")
    );

    // Names are not unique: a second POST creates a second dataset.
    let second = h.create_dataset("Sage Intacct", "None").await;
    assert_ne!(second, id);
    let infos = h.sim.datasets(DEFAULT_WORKSPACE).unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].id, id);
    assert_eq!(infos[0].retention, Some(Retention::BasicFifo));
    assert_eq!(infos[1].retention, Some(Retention::None));
    assert_eq!(infos[0].tables[0].0, "GL");
    assert_eq!(
        infos[0].tables[0].1[3],
        ("Posted".to_owned(), "bool".to_owned())
    );

    let list: Value = h.get(&h.group("/datasets")).await.json().await.unwrap();
    assert!(
        list["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#datasets")
    );
    let values = list["value"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0]["addRowsAPIEnabled"], true);
    assert_eq!(values[0]["isRefreshable"], false);
    assert_eq!(values[0]["configuredBy"], "ml-connector");

    let one: Value = h
        .get(&h.group(&format!("/datasets/{id}")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], id.as_str());
    assert!(one["webUrl"].as_str().unwrap().contains(&id));

    let tables: Value = h
        .get(&h.group(&format!("/datasets/{id}/tables")))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tables["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["GL", "Account"]);

    // PUT a changed schema: new column accepted afterwards.
    let new_schema = json!({"name": "Account", "columns": [{"name": "Id", "dataType": "Int64"},
        {"name": "Title", "dataType": "String"}, {"name": "Active", "dataType": "Boolean"}]});
    let r = h
        .put(
            &h.group(&format!("/datasets/{id}/tables/Account")),
            &new_schema,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, new_schema);
    let r = h
        .post(
            &h.rows_url(&id, "Account"),
            &json!({"rows": [{"Id": 1, "Active": true}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // PUT to a table that does not exist, or with a mismatched name.
    let r = h
        .put(
            &h.group(&format!("/datasets/{id}/tables/Nope")),
            &new_schema,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = h
        .put(&h.group(&format!("/datasets/{id}/tables/GL")), &new_schema)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let refreshes: Value = h
        .get(&h.group(&format!("/datasets/{id}/refreshes?$top=5")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshes["value"], json!([]));

    let r = h.delete(&h.group(&format!("/datasets/{id}"))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
    let r = h.get(&h.group(&format!("/datasets/{id}"))).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ItemNotFound");
    assert_eq!(
        body["error"]["message"],
        format!("Dataset {id} is not found.")
    );
}

#[tokio::test]
async fn create_dataset_is_validated_strictly() {
    let h = start(config()).await;
    let url = h.group("/datasets");
    let refuse = |body: Value| {
        let h = &h;
        let url = url.clone();
        async move {
            let r = h.post(&url, &body).await;
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = refuse(json!({"name": "D", "tables": [{"name": "T", "columns": [{"name": "a", "datatype": "Int64"}]}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "BadRequest");
    assert_eq!(
        b["error"]["details"][0]["message"],
        "The property 'datatype' does not exist on type 'Microsoft.PowerBI.ServiceContracts.Api.Column'. Make sure to only use property names that are defined by the type."
    );
    assert_eq!(b["error"]["details"][0]["target"], "dataset");

    let (s, b) = refuse(json!({"name": "D", "compatibilityLevel": 1550, "tables": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("'compatibilityLevel'")
    );

    let (s, _) = refuse(json!({"name": "D", "tables": [{"name": "Bad.Name", "columns": [{"name": "a", "dataType": "Int64"}]}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = refuse(json!({"name": "D", "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Currency"}]}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let tables: Vec<Value> = (0..76)
        .map(|i| json!({"name": format!("T{i}"), "columns": [{"name": "a", "dataType": "Int64"}]}))
        .collect();
    let (s, _) = refuse(json!({"name": "D", "tables": tables})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, b) = refuse(json!({"name": "D", "defaultMode": "Streaming", "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Int64"}]}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "FeatureDeprecatedError");
    assert_eq!(
        b["error"]["pbi.error"]["details"][0]["code"],
        "FeatureDeprecatedMessage"
    );

    let r = h
        .post(
            &h.group("/datasets?defaultRetentionPolicy=forever"),
            &gl_dataset("D"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = h
        .post(
            &h.group("/datasets"),
            &json!({"name": "D", "defaultMode": "PushStreaming",
            "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Int64"}]}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn push_creation_deprecated_switch() {
    let h = start(SimConfig {
        push_creation_deprecated: true,
        ..config()
    })
    .await;
    let r = h.post(&h.group("/datasets"), &gl_dataset("D")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "FeatureDeprecatedError");
}

#[tokio::test]
async fn rows_round_trip_and_delete() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    let rows = json!({"rows": [
        {"Id": 1, "Amount": 1234.5, "Rate": 0.25, "Posted": true, "When": "2024-06-30T00:00:00Z", "Memo": "Accrual"},
        {"Id": 2, "Amount": -10, "Posted": false, "When": "2024-07-01T12:30:00.123Z", "Memo": null},
        {"Id": 3, "Amount": "0.0001", "Memo": "naïve – ünicode"}
    ]});
    let r = h.post(&h.rows_url(&ds, "GL"), &rows).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(is_uuid(header(&r, "requestid").unwrap()));
    assert_eq!(r.text().await.unwrap(), "");
    let stored = h.sim.table_rows(DEFAULT_WORKSPACE, "D", "GL").unwrap();
    let expected: Vec<serde_json::Map<String, Value>> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect();
    assert_eq!(stored, expected);
    // Same rows by id, and over the admin endpoint.
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE_ID, &ds, "GL")
            .unwrap()
            .len(),
        3
    );
    let admin: Vec<Value> = h
        .http
        .get(format!(
            "{}/admin/rows/{DEFAULT_WORKSPACE}/D/GL",
            h.sim.api_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin, rows["rows"].as_array().unwrap().clone());
    assert_eq!(
        h.sim
            .stats()
            .rows_stored
            .get(&format!("{DEFAULT_WORKSPACE}/D/GL")),
        Some(&3)
    );

    // Table names are case-sensitive in the URL.
    let r = h.post(&h.rows_url(&ds, "gl"), &rows).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "ItemNotFound"
    );

    let r = h.delete(&h.rows_url(&ds, "GL")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, "D", "GL")
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn bad_row_values_are_400() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    let url = h.rows_url(&ds, "GL");
    for (row, why) in [
        (json!({"Id": "1"}), "string in Int64"),
        (json!({"Id": 1.5}), "fraction in Int64"),
        (json!({"When": "07/30/2014"}), "non-ISO DateTime"),
        (json!({"Posted": "yes"}), "string in Boolean"),
        (json!({"Memo": 5}), "number in String"),
        (json!({"Nope": 1}), "unknown column"),
        (json!({"Memo": "x".repeat(4001)}), "string over 4,000 chars"),
    ] {
        let r = h.post(&url, &json!({ "rows": [row] })).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "BadRequest", "{why}");
        assert!(
            b["error"]["details"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("Row 0: "),
            "{why}"
        );
    }
    let r = h
        .post(&url, &json!({"rows": [{"Memo": "x".repeat(4000)}]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = h
        .post(&url, &json!({"rows": [], "sequenceNumber": 1}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = h.post_raw(&url, "{\"rows\": [".into()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Nothing but the one good row was stored.
    assert_eq!(
        h.sim
            .table_rows(DEFAULT_WORKSPACE, &ds, "GL")
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn import_dataset_refuses_rows() {
    let mut cfg = config();
    cfg.workspaces[0].datasets.push(PresetDataset {
        id: "99999999-0000-4000-8000-000000000001".into(),
        name: "Desktop model".into(),
        kind: PresetKind::Import,
        tables: vec![PresetTable {
            name: "T".into(),
            columns: vec![("a".into(), "Int64".into())],
        }],
    });
    cfg.workspaces[0].datasets.push(PresetDataset {
        id: "99999999-0000-4000-8000-000000000002".into(),
        name: "Pushed".into(),
        kind: PresetKind::Push(Retention::None),
        tables: vec![PresetTable {
            name: "T".into(),
            columns: vec![("a".into(), "Int64".into())],
        }],
    });
    let h = start(cfg).await;
    let r = h
        .post(
            &h.rows_url("99999999-0000-4000-8000-000000000001", "T"),
            &json!({"rows": [{"a": 1}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b,
        json!({"error": {"code": "ItemNotFound",
            "message": "Dataset 99999999-0000-4000-8000-000000000001 is not Push API dataset."}})
    );
    let r = h
        .post(
            &h.rows_url("99999999-0000-4000-8000-000000000002", "T"),
            &json!({"rows": [{"a": 1}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let refreshes: Value = h
        .get(&h.group("/datasets/99999999-0000-4000-8000-000000000001/refreshes"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshes["value"][0]["status"], "Completed");
    let r = h
        .post(
            &h.rows_url("99999999-0000-4000-8000-00000000dead", "T"),
            &json!({"rows": []}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn execute_queries_count_topn_sum_with_bom() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    let rows = json!({"rows": [
        {"Id": 1, "Amount": 0.1, "Rate": 1.5, "When": "2024-06-30T00:00:00Z"},
        {"Id": 2, "Amount": 0.2, "Rate": 2.0},
        {"Id": 3, "Amount": "1000000.0001"}
    ]});
    assert_eq!(
        h.post(&h.rows_url(&ds, "GL"), &rows).await.status(),
        StatusCode::OK
    );

    let (s, text) = h.query(&ds, "EVALUATE ROW(\"n\", COUNTROWS('GL'))").await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.starts_with('\u{FEFF}'), "BOM expected");
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{FEFF}')).unwrap();
    assert_eq!(
        v,
        json!({"results": [{"tables": [{"rows": [{"[n]": 3}]}]}]})
    );

    let (_, text) = h
        .query(
            &ds,
            "EVALUATE ROW(\"n\", COUNTROWS(GL), \"s\", SUM('GL'[Amount]), \"i\", SUM(GL[Id]))",
        )
        .await;
    assert!(
        text.contains(r#"{"[n]":3,"[s]":1000000.3001,"[i]":6}"#),
        "{text}"
    );

    let (_, text) = h.query(&ds, "EVALUATE TOPN(2, 'GL')").await;
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{FEFF}')).unwrap();
    let got = &v["results"][0]["tables"][0]["rows"];
    assert_eq!(got.as_array().unwrap().len(), 2);
    assert_eq!(got[0]["GL[Id]"], 1);
    assert_eq!(got[0]["GL[When]"], "2024-06-30T00:00:00");
    // includeNulls: true → absent values come back as null.
    assert_eq!(got[1]["GL[Memo]"], Value::Null);
    assert!(got[1].as_object().unwrap().contains_key("GL[Memo]"));

    let (s, text) = h.query(&ds, "EVALUATE SUMMARIZECOLUMNS('GL'[Id])").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "DatasetExecuteQueriesError");
    assert_eq!(
        v["error"]["pbi.error"]["details"][0]["code"],
        "DetailsMessage"
    );

    let (s, _) = h
        .query(&ds, "EVALUATE ROW(\"n\", COUNTROWS('Missing'))")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Injected rows are visible to queries (for `verify` tests).
    let mut row = serde_json::Map::new();
    row.insert("Id".into(), json!(4));
    assert!(h.sim.inject_row(DEFAULT_WORKSPACE, "D", "GL", row));
    let (_, text) = h.query(&ds, "EVALUATE ROW(\"n\", COUNTROWS('GL'))").await;
    assert!(text.contains(r#""[n]":4"#), "{text}");
}

#[tokio::test]
async fn table_names_with_spaces_are_percent_encoded() {
    let h = start(config()).await;
    let r = h
        .post(
            &h.group("/datasets"),
            &json!({"name": "D", "tables": [{"name": "Vendor Master", "columns": [{"name": "Vendor Id", "dataType": "String"}]}]}),
        )
        .await;
    let ds = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .post(
            &h.rows_url(&ds, "Vendor%20Master"),
            &json!({"rows": [{"Vendor Id": "V1"}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        h.sim
            .table_row_count(DEFAULT_WORKSPACE, "D", "Vendor Master"),
        Some(1)
    );
    let (_, text) = h.query(&ds, "EVALUATE TOPN(1, 'Vendor Master')").await;
    assert!(
        text.contains(r#""Vendor Master[Vendor Id]":"V1""#),
        "{text}"
    );
}

#[tokio::test]
async fn blank_results_are_omitted_unless_include_nulls() {
    let h = start(config()).await;
    let ds = h.create_dataset("D", "None").await;
    // COUNTROWS of an empty table is BLANK in DAX; without includeNulls the service leaves the key out.
    let r = h
        .post(
            &h.group(&format!("/datasets/{ds}/executeQueries")),
            &json!({"queries": [{"query": "EVALUATE ROW(\"n\", COUNTROWS('GL'))"}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    let v: Value = serde_json::from_slice(&bytes[3..]).unwrap();
    assert_eq!(v, json!({"results": [{"tables": [{"rows": [{}]}]}]}));
    let (_, text) = h.query(&ds, "EVALUATE ROW(\"n\", COUNTROWS('GL'))").await;
    assert!(text.contains(r#"{"[n]":null}"#), "{text}");
}
