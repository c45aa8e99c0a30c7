//! How many rows a Power BI table holds, asked with executeQueries: what decides the fate of
//! batches nobody knows landed, and what `verify` compares with the mirror.

use ml_powerbi::PowerBiClient;

use super::target::Target;
use crate::pipeline::error::PipelineError;

pub async fn count_rows(
    client: &PowerBiClient,
    target: &Target,
    table: &str,
) -> Result<u64, PipelineError> {
    let dax = format!(
        "EVALUATE ROW(\"n\", COUNTROWS('{}'))",
        table.replace('\'', "''")
    );
    let result = client
        .execute_query(&target.group_id, &target.dataset_id, &dax)
        .await?;
    let row = result.rows.first().ok_or_else(|| {
        PipelineError::Other(format!(
            "executeQueries returned no row for the row count of table {table}"
        ))
    })?;
    // COUNTROWS of an empty table is BLANK, which Power BI leaves out of the row.
    match row.get("[n]") {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            PipelineError::Other(format!(
                "executeQueries returned {v} as the row count of table {table}"
            ))
        }),
    }
}
