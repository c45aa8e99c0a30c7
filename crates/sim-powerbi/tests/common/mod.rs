//! Shared helpers for the simulator's HTTP tests: start a simulator, get a token, call the REST API.
#![allow(dead_code)] // each test binary uses a different subset

use ml_sim_powerbi::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE_ID, SimClock,
    SimConfig, Simulator,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub const SCOPE: &str = "https://analysis.windows.net/powerbi/api/.default";

pub struct Harness {
    pub sim: Simulator,
    pub http: Client,
    pub token: String,
    pub clock: SimClock,
}

/// A config with a manual clock (tests cross windows by advancing it).
pub fn config() -> SimConfig {
    SimConfig {
        clock: SimClock::manual(),
        ..SimConfig::default()
    }
}

pub async fn start(cfg: SimConfig) -> Harness {
    let clock = cfg.clock.clone();
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    let http = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let token = get_token(
        &http,
        &sim,
        DEFAULT_TENANT_ID,
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
    )
    .await;
    Harness {
        sim,
        http,
        token,
        clock,
    }
}

pub async fn get_token(
    http: &Client,
    sim: &Simulator,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> String {
    let resp = http
        .post(sim.token_url(tenant))
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "token request failed");
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1.0/myorg{path}", self.sim.api_url())
    }
    pub fn group(&self, path: &str) -> String {
        self.url(&format!("/groups/{DEFAULT_WORKSPACE_ID}{path}"))
    }
    pub async fn get(&self, url: &str) -> Response {
        self.http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
    pub async fn post(&self, url: &str, body: &Value) -> Response {
        self.http
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
    pub async fn post_raw(&self, url: &str, body: String) -> Response {
        self.http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
    pub async fn put(&self, url: &str, body: &Value) -> Response {
        self.http
            .put(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
    pub async fn delete(&self, url: &str) -> Response {
        self.http
            .delete(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a push dataset with table "GL" (Id Int64, Amount Decimal, Rate Double, Posted Boolean,
    /// When DateTime, Memo String) and returns its id.
    pub async fn create_dataset(&self, name: &str, retention: &str) -> String {
        let resp = self
            .post(
                &self.group(&format!("/datasets?defaultRetentionPolicy={retention}")),
                &gl_dataset(name),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub fn rows_url(&self, dataset: &str, table: &str) -> String {
        self.group(&format!("/datasets/{dataset}/tables/{table}/rows"))
    }

    /// POSTs `n` small rows with ids starting at `first`.
    pub async fn push(&self, dataset: &str, first: i64, n: i64) -> Response {
        let rows: Vec<Value> = (first..first + n)
            .map(|i| json!({"Id": i, "Amount": 1.5}))
            .collect();
        self.post(&self.rows_url(dataset, "GL"), &json!({ "rows": rows }))
            .await
    }

    /// Runs one DAX query; returns the raw body text and status.
    pub async fn query(&self, dataset: &str, dax: &str) -> (StatusCode, String) {
        let resp = self
            .post(
                &self.group(&format!("/datasets/{dataset}/executeQueries")),
                &json!({"queries": [{"query": dax}], "serializerSettings": {"includeNulls": true}}),
            )
            .await;
        let status = resp.status();
        // Raw bytes: reqwest's text() would silently drop the BOM this tests for.
        let bytes = resp.bytes().await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

pub fn gl_dataset(name: &str) -> Value {
    json!({
        "name": name,
        "defaultMode": "Push",
        "tables": [{
            "name": "GL",
            "columns": [
                {"name": "Id", "dataType": "Int64"},
                {"name": "Amount", "dataType": "Decimal", "formatString": "#,0.00"},
                {"name": "Rate", "dataType": "Double"},
                {"name": "Posted", "dataType": "bool"},
                {"name": "When", "dataType": "DateTime"},
                {"name": "Memo", "dataType": "string"}
            ],
            "measures": [{"name": "Total", "expression": "SUM(GL[Amount])"}]
        }, {
            "name": "Account",
            "columns": [{"name": "Id", "dataType": "Int64"}, {"name": "Title", "dataType": "String"}]
        }],
        "relationships": [{"name": "GL_Account", "fromTable": "GL", "fromColumn": "Id", "toTable": "Account",
            "toColumn": "Id", "crossFilteringBehavior": "OneDirection"}]
    })
}

pub fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}
