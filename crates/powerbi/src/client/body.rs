//! Request bodies exactly as the client sends them; public so tests can hold them against Microsoft's swagger.

use serde::Serialize;

use crate::schema::{DatasetSchema, Relationship, TableSchema};

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

/// Request body of `executeQueries` (swagger `DatasetExecuteQueriesRequest`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteQueriesRequest<'a> {
    pub queries: [QueryText<'a>; 1],
    pub serializer_settings: SerializerSettings,
}

#[derive(Serialize)]
struct QueryText<'a> {
    pub query: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SerializerSettings {
    pub include_nulls: bool,
}

/// Request body of dataset creation (swagger `CreateDatasetRequest`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateDatasetRequest<'a> {
    pub name: &'a str,
    pub default_mode: &'static str,
    pub tables: &'a [TableSchema],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub relationships: &'a [Relationship],
}

impl<'a> CreateDatasetRequest<'a> {
    fn new(schema: &'a DatasetSchema) -> Self {
        Self {
            name: &schema.name,
            default_mode: "Push",
            tables: &schema.tables,
            relationships: &schema.relationships,
        }
    }
}
