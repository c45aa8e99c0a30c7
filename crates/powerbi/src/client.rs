//! REST client for the workspace (`/groups/{groupId}/...`) form of the push-dataset API (service principals
//! cannot use "My workspace").
//!
//! Every call goes through [`PowerBiClient::execute`]: bearer token, one token refresh + resend on 403
//! TokenExpired/InvalidToken (the service refused the request, so resending cannot double anything), and error
//! parsing. Reads and idempotent writes also retry 429/5xx a few times; `POST rows` does not (the pusher paces and
//! retries it under the dataset's budgets), nor does dataset creation (a resend could create a second dataset).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ApiError, ErrorClass, PowerBiError, TransportError, strip_bom};
use crate::schema::{DatasetSchema, TableSchema, validate_dataset, validate_table};
use crate::settings::PowerBiSettings;
use crate::token::{AccessToken, TokenSource};

/// Attempts for reads and idempotent writes when the service answers 429/5xx.
const IDEMPOTENT_ATTEMPTS: u32 = 3;
/// Longest Retry-After the client honours by itself before giving up on a non-push call.
const MAX_CLIENT_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A workspace.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_read_only: bool,
}

/// A dataset as listed or created.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// True for push datasets, the only kind that accepts POST rows.
    #[serde(default, rename = "addRowsAPIEnabled", alias = "AddRowsAPIEnabled")]
    pub add_rows_api_enabled: Option<bool>,
    #[serde(default, alias = "IsRefreshable")]
    pub is_refreshable: Option<bool>,
    #[serde(default)]
    pub default_retention_policy: Option<String>,
    #[serde(default)]
    pub configured_by: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default, alias = "CreatedDate")]
    pub created_date: Option<String>,
}

/// A table as listed (the service usually returns names only).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    pub name: String,
    #[serde(default)]
    pub columns: Vec<ColumnInfo>,
}

/// A column as listed; the type is kept as the service spelled it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub name: String,
    #[serde(default)]
    pub data_type: String,
}

/// A refresh-history entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    #[serde(default)]
    pub refresh_type: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub service_exception_json: Option<String>,
}

/// Retention policy, fixed when the dataset is created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Retention {
    /// Keep all rows (up to 5,000,000 per table). The only safe choice for ledger data.
    #[default]
    None,
    /// Keep the newest ~200,000 rows per table; older rows are dropped silently.
    BasicFifo,
}

impl Retention {
    pub fn as_query_value(self) -> &'static str {
        match self {
            Retention::None => "None",
            Retention::BasicFifo => "basicFIFO",
        }
    }
}

impl std::str::FromStr for Retention {
    type Err = PowerBiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Retention::None),
            "basicfifo" => Ok(Retention::BasicFifo),
            other => Err(PowerBiError::Config(format!(
                "unknown retention '{other}': use none or basicFIFO"
            ))),
        }
    }
}

/// Facts about a successful call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    pub status: u16,
    pub request_id: Option<String>,
    pub duration: Duration,
}

/// First result table of an executeQueries call.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub request_id: Option<String>,
}

/// Request body of `executeQueries` (swagger `DatasetExecuteQueriesRequest`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecuteQueriesRequest<'a> {
    pub queries: [QueryText<'a>; 1],
    pub serializer_settings: SerializerSettings,
}

#[derive(Serialize)]
pub(crate) struct QueryText<'a> {
    pub query: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SerializerSettings {
    pub include_nulls: bool,
}

/// Request body of dataset creation (swagger `CreateDatasetRequest`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateDatasetRequest<'a> {
    pub name: &'a str,
    pub default_mode: &'static str,
    pub tables: &'a [TableSchema],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub relationships: &'a [crate::schema::Relationship],
}

impl<'a> CreateDatasetRequest<'a> {
    pub(crate) fn new(schema: &'a DatasetSchema) -> Self {
        Self {
            name: &schema.name,
            default_mode: "Push",
            tables: &schema.tables,
            relationships: &schema.relationships,
        }
    }
}

#[derive(Deserialize)]
struct ODataList<T> {
    value: Vec<T>,
}

/// A response with a status in 2xx.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub duration: Duration,
}

impl Answer {
    fn request_id(&self) -> Option<String> {
        self.headers
            .get("requestid")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, operation: &str) -> Result<T, PowerBiError> {
        serde_json::from_slice(strip_bom(&self.body)).map_err(|e| PowerBiError::Decode {
            operation: operation.to_string(),
            detail: e.to_string(),
            request_id: self.request_id(),
        })
    }
}

/// How [`PowerBiClient::execute`] may repeat a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Refresh the token once on TokenExpired/InvalidToken; nothing else.
    TokenOnly,
    /// Also retry 429/5xx (reads and idempotent writes).
    Idempotent,
    /// Never resend (the pusher handles tokens and retries itself).
    Never,
}

struct ClientInner {
    http: reqwest::Client,
    api_base: Url,
    tokens: TokenSource,
}

/// Power BI REST client for one tenant and service principal. Cheap to clone; clones share one token cache.
#[derive(Clone)]
pub struct PowerBiClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for PowerBiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerBiClient")
            .field("api_base", &self.inner.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl PowerBiClient {
    /// Validates the settings (https, loopback-only http when allowed, identity fields) and builds the client.
    pub fn new(s: PowerBiSettings) -> Result<Self, PowerBiError> {
        s.validate()?;
        let http = reqwest::Client::builder()
            .timeout(s.request_timeout)
            .connect_timeout(s.request_timeout.min(Duration::from_secs(30)))
            // A redirect could carry the bearer token or the secret to another host; none is expected here.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PowerBiError::Config(format!("building the HTTP client failed: {e}")))?;
        let tokens = TokenSource::new(
            http.clone(),
            s.token_url()?,
            s.client_id.clone(),
            s.cloud.scope(),
            &s.credential,
        )?;
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                api_base: s.api_base()?,
                tokens,
            }),
        })
    }

    /// The shared token source (to pre-flight credentials, or for diagnostics).
    pub fn tokens(&self) -> &TokenSource {
        &self.inner.tokens
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.inner.api_base.clone();
        {
            // `push` percent-encodes each segment (spaces, '#', '/', non-ASCII in table names).
            let mut p = u
                .path_segments_mut()
                .expect("api_base is a hierarchical URL");
            p.pop_if_empty();
            for s in segments {
                p.push(s);
            }
        }
        u
    }

    fn group_url(&self, group: &str, rest: &[&str]) -> Url {
        let mut segs = vec!["groups", group];
        segs.extend_from_slice(rest);
        self.url(&segs)
    }

    /// Sends one request; see the module docs for what is resent.
    pub(crate) async fn execute(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        resend: Resend,
    ) -> Result<Answer, PowerBiError> {
        let mut token_refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.inner.tokens.token().await?;
            match self
                .send_once(operation, method.clone(), url.clone(), body.clone(), &token)
                .await
            {
                Ok(a) => return Ok(a),
                Err(PowerBiError::Api(e)) => {
                    match e.class() {
                        ErrorClass::Token if resend != Resend::Never && !token_refreshed => {
                            token_refreshed = true;
                            self.inner.tokens.invalidate(&token).await;
                            tracing::info!(
                                operation,
                                "Power BI rejected the access token; fetched a new one"
                            );
                            continue;
                        }
                        ErrorClass::Retryable
                            if resend == Resend::Idempotent && attempt < IDEMPOTENT_ATTEMPTS =>
                        {
                            let wait = e
                                .retry_after
                                .unwrap_or(Duration::from_millis(500 << attempt));
                            if wait <= MAX_CLIENT_RETRY_WAIT {
                                tracing::warn!(
                                    operation,
                                    status = e.status,
                                    ?wait,
                                    "retrying after a transient Power BI error"
                                );
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                        }
                        _ => {}
                    }
                    return Err(PowerBiError::Api(e));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One HTTP exchange with a given token.
    pub(crate) async fn send_once(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        token: &AccessToken,
    ) -> Result<Answer, PowerBiError> {
        let started = tokio::time::Instant::now();
        let mut req = self
            .inner
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, token.bearer());
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(operation, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let mut t = TransportError::from_reqwest(operation, &e);
                t.maybe_sent = true;
                t.status = Some(status.as_u16());
                return Err(t.into());
            }
        };
        let duration = started.elapsed();
        if status.is_success() {
            Ok(Answer {
                status,
                headers,
                body,
                duration,
            })
        } else {
            Err(ApiError::from_parts(operation, status.as_u16(), &headers, &body).into())
        }
    }

    /// Finds a workspace by name (exact, via `$filter`) or accepts its GUID.
    pub async fn find_workspace(&self, name_or_id: &str) -> Result<Group, PowerBiError> {
        let wanted = name_or_id.trim();
        if uuid::Uuid::try_parse(wanted).is_ok() {
            let op = format!("list workspaces to find id {wanted}");
            let mut url = self.url(&["groups"]);
            url.query_pairs_mut().append_pair("$top", "5000");
            let groups: ODataList<Group> = self
                .execute(&op, Method::GET, url, None, Resend::Idempotent)
                .await?
                .json(&op)?;
            if let Some(g) = groups
                .value
                .into_iter()
                .find(|g| g.id.eq_ignore_ascii_case(wanted))
            {
                return Ok(g);
            }
            // Not listed: probe it, which surfaces GroupNotAccessible and friends with their real reasons.
            self.list_datasets(wanted).await?;
            return Ok(Group {
                id: wanted.to_string(),
                name: wanted.to_string(),
                is_read_only: false,
            });
        }
        let op = format!("find workspace '{wanted}'");
        let mut url = self.url(&["groups"]);
        url.query_pairs_mut()
            .append_pair("$filter", &format!("name eq '{}'", odata_quote(wanted)));
        let groups: ODataList<Group> = self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json(&op)?;
        let exact: Vec<Group> = groups
            .value
            .iter()
            .filter(|g| g.name == wanted)
            .cloned()
            .collect();
        let candidates = if exact.is_empty() {
            groups.value
        } else {
            exact
        };
        match candidates.len() {
            0 => Err(PowerBiError::WorkspaceNotFound {
                name: wanted.to_string(),
            }),
            1 => Ok(candidates.into_iter().next().expect("one")),
            n => Err(PowerBiError::WorkspaceAmbiguous {
                name: wanted.to_string(),
                count: n,
            }),
        }
    }

    pub async fn list_datasets(&self, group: &str) -> Result<Vec<Dataset>, PowerBiError> {
        let op = format!("list datasets of workspace {group}");
        let a = self
            .execute(
                &op,
                Method::GET,
                self.group_url(group, &["datasets"]),
                None,
                Resend::Idempotent,
            )
            .await?;
        Ok(a.json::<ODataList<Dataset>>(&op)?.value)
    }

    /// Creates a push dataset (`defaultMode: Push`) after validating the schema. Not retried on 5xx: a resend could
    /// create a second dataset with the same name.
    pub async fn create_push_dataset(
        &self,
        group: &str,
        schema: &DatasetSchema,
        retention: Retention,
    ) -> Result<Dataset, PowerBiError> {
        validate_dataset(schema)?;
        let op = format!("create push dataset '{}'", schema.name);
        let mut url = self.group_url(group, &["datasets"]);
        url.query_pairs_mut()
            .append_pair("defaultRetentionPolicy", retention.as_query_value());
        let body = body::create_dataset(schema);
        self.execute(&op, Method::POST, url, Some(body.into()), Resend::TokenOnly)
            .await?
            .json(&op)
    }

    pub async fn list_tables(
        &self,
        group: &str,
        dataset: &str,
    ) -> Result<Vec<TableInfo>, PowerBiError> {
        let op = format!("list tables of dataset {dataset}");
        let url = self.group_url(group, &["datasets", dataset, "tables"]);
        Ok(self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json::<ODataList<TableInfo>>(&op)?
            .value)
    }

    /// Replaces one table's schema and measures.
    pub async fn put_table(
        &self,
        group: &str,
        dataset: &str,
        table: &TableSchema,
    ) -> Result<(), PowerBiError> {
        validate_table(table)?;
        let op = format!("update the schema of table '{}'", table.name);
        let url = self.group_url(group, &["datasets", dataset, "tables", &table.name]);
        let body = body::table(table);
        self.execute(&op, Method::PUT, url, Some(body.into()), Resend::Idempotent)
            .await?;
        Ok(())
    }

    /// Appends rows: `body` is a complete `{"rows":[...]}` document (see [`crate::Batcher`]). Refreshes the token
    /// once on TokenExpired but never retries 429/5xx: use [`crate::Pusher`] for paced, retried pushes.
    pub async fn post_rows(
        &self,
        group: &str,
        dataset: &str,
        table: &str,
        body: Bytes,
    ) -> Result<RequestInfo, PowerBiError> {
        let op = format!("POST rows to table '{table}'");
        let a = self
            .execute(
                &op,
                Method::POST,
                self.rows_url(group, dataset, table),
                Some(body),
                Resend::TokenOnly,
            )
            .await?;
        Ok(RequestInfo {
            status: a.status.as_u16(),
            request_id: a.request_id(),
            duration: a.duration,
        })
    }

    pub(crate) fn rows_url(&self, group: &str, dataset: &str, table: &str) -> Url {
        self.group_url(group, &["datasets", dataset, "tables", table, "rows"])
    }

    /// Deletes every row of a table (the API has no filter).
    pub async fn delete_rows(
        &self,
        group: &str,
        dataset: &str,
        table: &str,
    ) -> Result<RequestInfo, PowerBiError> {
        let op = format!("delete all rows of table '{table}'");
        let a = self
            .execute(
                &op,
                Method::DELETE,
                self.rows_url(group, dataset, table),
                None,
                Resend::Idempotent,
            )
            .await?;
        Ok(RequestInfo {
            status: a.status.as_u16(),
            request_id: a.request_id(),
            duration: a.duration,
        })
    }

    /// Runs one DAX query and returns the first result table's rows (nulls included).
    pub async fn execute_query(
        &self,
        group: &str,
        dataset: &str,
        dax: &str,
    ) -> Result<QueryResult, PowerBiError> {
        let op = "executeQueries".to_string();
        let url = self.group_url(group, &["datasets", dataset, "executeQueries"]);
        let body = body::execute_queries(dax);
        let a = self
            .execute(
                &op,
                Method::POST,
                url,
                Some(body.into()),
                Resend::Idempotent,
            )
            .await?;
        let v: serde_json::Value = a.json(&op)?;
        parse_query_response(&op, &v, a.request_id())
    }

    /// Refresh history (of little use on push datasets, which are not refreshable; kept for diagnostics).
    pub async fn refresh_history(
        &self,
        group: &str,
        dataset: &str,
        top: u32,
    ) -> Result<Vec<Refresh>, PowerBiError> {
        let op = format!("refresh history of dataset {dataset}");
        let mut url = self.group_url(group, &["datasets", dataset, "refreshes"]);
        url.query_pairs_mut().append_pair("$top", &top.to_string());
        Ok(self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json::<ODataList<Refresh>>(&op)?
            .value)
    }
}

/// Request bodies exactly as the client sends them; public so tests can hold them against Microsoft's swagger.
pub mod body {
    use super::*;

    /// `CreateDatasetRequest` with `defaultMode: Push`.
    pub fn create_dataset(schema: &DatasetSchema) -> Vec<u8> {
        serde_json::to_vec(&CreateDatasetRequest::new(schema)).expect("schema serialises")
    }

    /// `Table` for PUT table.
    pub fn table(table: &TableSchema) -> Vec<u8> {
        serde_json::to_vec(table).expect("table serialises")
    }

    /// `DatasetExecuteQueriesRequest` with one query and nulls included.
    pub fn execute_queries(dax: &str) -> Vec<u8> {
        let req = ExecuteQueriesRequest {
            queries: [QueryText { query: dax }],
            serializer_settings: SerializerSettings {
                include_nulls: true,
            },
        };
        serde_json::to_vec(&req).expect("serialises")
    }
}

/// Quotes a string literal for OData `$filter` (a single quote is doubled).
pub fn odata_quote(s: &str) -> String {
    s.replace('\'', "''")
}

fn parse_query_response(
    op: &str,
    v: &serde_json::Value,
    request_id: Option<String>,
) -> Result<QueryResult, PowerBiError> {
    let err = |e: &serde_json::Value| PowerBiError::Query {
        operation: op.to_string(),
        code: e
            .get("code")
            .and_then(|c| c.as_str())
            .unwrap_or("error")
            .to_string(),
        message: e
            .get("message")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string(),
    };
    if let Some(e) = v.get("error") {
        return Err(err(e));
    }
    let result = v
        .pointer("/results/0")
        .ok_or_else(|| PowerBiError::Decode {
            operation: op.to_string(),
            detail: "no results[0] in the response".into(),
            request_id: request_id.clone(),
        })?;
    if let Some(e) = result.get("error") {
        return Err(err(e));
    }
    let table = result.pointer("/tables/0").cloned().unwrap_or_default();
    if let Some(e) = table.get("error") {
        // A row-limit error arrives with HTTP 200 and truncated rows: refuse rather than return partial data.
        return Err(err(e));
    }
    let rows = table
        .get("rows")
        .and_then(|r| r.as_array())
        .map(|rows| rows.iter().filter_map(|r| r.as_object().cloned()).collect())
        .unwrap_or_default();
    Ok(QueryResult { rows, request_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ClientCredential, Cloud};

    fn client() -> PowerBiClient {
        PowerBiClient::new(PowerBiSettings::new(
            Cloud::Public,
            "t",
            "c",
            ClientCredential::Secret("s".into()),
        ))
        .unwrap()
    }

    #[test]
    fn table_names_are_percent_encoded_as_one_segment() {
        let c = client();
        let u = c.rows_url("g", "d", "GL Entry/#?é");
        assert_eq!(
            u.as_str(),
            "https://api.powerbi.com/v1.0/myorg/groups/g/datasets/d/tables/GL%20Entry%2F%23%3F%C3%A9/rows"
        );
    }

    #[test]
    fn odata_quotes_are_doubled_and_query_encoded() {
        assert_eq!(odata_quote("O'Brien's"), "O''Brien''s");
        let c = client();
        let mut url = c.url(&["groups"]);
        url.query_pairs_mut()
            .append_pair("$filter", &format!("name eq '{}'", odata_quote("A&B 'x'")));
        assert_eq!(
            url.query(),
            Some("%24filter=name+eq+%27A%26B+%27%27x%27%27%27")
        );
    }

    #[test]
    fn query_responses_and_their_errors_parse() {
        let ok = serde_json::json!({"results":[{"tables":[{"rows":[{"[n]":3},{"[n]":null}]}]}]});
        let r = parse_query_response("q", &ok, Some("rid".into())).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0]["[n]"], 3);
        let truncated = serde_json::json!({"results":[{"tables":[{"rows":[],"error":{"code":"x","message":"More than 100000 rows in a query result"}}]}]});
        assert!(
            parse_query_response("q", &truncated, None)
                .unwrap_err()
                .to_string()
                .contains("More than 100000 rows")
        );
        let top =
            serde_json::json!({"error":{"code":"DatasetExecuteQueriesError","message":"bad"}});
        assert!(matches!(
            parse_query_response("q", &top, None),
            Err(PowerBiError::Query { .. })
        ));
    }

    #[test]
    fn dataset_accepts_capitalised_swagger_names() {
        let d: Dataset = serde_json::from_str(
            r#"{"id":"1","name":"n","AddRowsAPIEnabled":true,"IsRefreshable":false}"#,
        )
        .unwrap();
        assert_eq!(d.add_rows_api_enabled, Some(true));
        let d: Dataset = serde_json::from_str(
            r#"{"id":"1","name":"n","addRowsAPIEnabled":true,"IsRefreshable":false}"#,
        )
        .unwrap();
        assert_eq!(
            (d.add_rows_api_enabled, d.is_refreshable),
            (Some(true), Some(false))
        );
        let r: Retention = "basicFIFO".parse().unwrap();
        assert_eq!(r.as_query_value(), "basicFIFO");
    }
}
