//! The endpoint calls on `/groups/{groupId}/...`: workspaces, datasets, tables, rows, DAX queries, refreshes.

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::body;
use super::http::{PowerBiClient, Resend};
use super::types::{
    Dashboard, Dataset, Group, QueryResult, Refresh, Report, RequestInfo, Retention, TableInfo,
    Tile,
};
use crate::error::PowerBiError;
use crate::schema::{DatasetSchema, TableSchema, validate_dataset, validate_table};

#[derive(Deserialize)]
struct ODataList<T> {
    value: Vec<T>,
}

impl PowerBiClient {
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
        Ok(a.info())
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
        Ok(a.info())
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

    /// The reports of a workspace (`Reports_GetReportsInGroup`), each with the dataset it is bound to.
    pub async fn list_reports(&self, group: &str) -> Result<Vec<Report>, PowerBiError> {
        let op = format!("list reports of workspace {group}");
        let url = self.group_url(group, &["reports"]);
        Ok(self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json::<ODataList<Report>>(&op)?
            .value)
    }

    /// Binds a report to another dataset (`Reports_RebindReportInGroup`; needs Write on the report
    /// and Build on the dataset). Rebinding to the same dataset twice changes nothing, so a 5xx is
    /// safely sent again.
    pub async fn rebind_report(
        &self,
        group: &str,
        report: &str,
        dataset: &str,
    ) -> Result<RequestInfo, PowerBiError> {
        let op = format!("rebind report {report} to dataset {dataset}");
        let url = self.group_url(group, &["reports", report, "Rebind"]);
        let body = serde_json::json!({ "datasetId": dataset }).to_string();
        let a = self
            .execute(
                &op,
                Method::POST,
                url,
                Some(body.into()),
                Resend::Idempotent,
            )
            .await?;
        Ok(a.info())
    }

    /// The dashboards of a workspace (`Dashboards_GetDashboardsInGroup`).
    pub async fn list_dashboards(&self, group: &str) -> Result<Vec<Dashboard>, PowerBiError> {
        let op = format!("list dashboards of workspace {group}");
        let url = self.group_url(group, &["dashboards"]);
        Ok(self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json::<ODataList<Dashboard>>(&op)?
            .value)
    }

    /// The tiles of a dashboard (`Dashboards_GetTilesInGroup`), each naming the dataset it shows.
    pub async fn list_tiles(
        &self,
        group: &str,
        dashboard: &str,
    ) -> Result<Vec<Tile>, PowerBiError> {
        let op = format!("list tiles of dashboard {dashboard}");
        let url = self.group_url(group, &["dashboards", dashboard, "tiles"]);
        Ok(self
            .execute(&op, Method::GET, url, None, Resend::Idempotent)
            .await?
            .json::<ODataList<Tile>>(&op)?
            .value)
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
    use crate::settings::{ClientCredential, Cloud, PowerBiSettings};

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
}
