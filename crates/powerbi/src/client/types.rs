//! What the service answers with (workspaces, datasets, tables, refreshes, query results) and the retention choice
//! a dataset is created with.

use std::time::Duration;

use serde::Deserialize;

use crate::error::PowerBiError;

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

/// A report of a workspace (swagger `Report`: `id` required; the rest a subset that depends on the
/// caller's permissions).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The dataset the report is bound to (absent for some paginated reports).
    #[serde(default)]
    pub dataset_id: Option<String>,
    /// `PowerBIReport` or `PaginatedReport` (Rebind does not support paginated reports).
    #[serde(default)]
    pub report_type: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
}

/// A dashboard of a workspace (swagger `Dashboard`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub web_url: Option<String>,
}

/// A tile of a dashboard (swagger `Tile`): pinned from a report or a dataset, which it names.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tile {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub report_id: Option<String>,
    #[serde(default)]
    pub dataset_id: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
