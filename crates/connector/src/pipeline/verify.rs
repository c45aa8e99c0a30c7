//! `ml-connector verify`: does each Power BI table hold what the local state says it should?
//!
//! Row counts for every table; for replace tables also the sum of every numeric column, computed exactly
//! from the mirror and by DAX in Power BI. A difference means someone changed the table outside the
//! connector (or a bug): the fix is `sync --full --stream S`, which rebuilds it.

use std::fmt;

use ml_powerbi::schema::{DataType, DatasetSchema};
use rust_decimal::Decimal;
use std::str::FromStr;

use super::{Connection, PipelineError};
use crate::config::Mode;
use crate::destination::powerbi::count::count_rows;
use crate::destination::powerbi::{PushDataset, Target};

#[derive(Debug, Clone)]
pub struct ColumnSum {
    pub column: String,
    pub powerbi: f64,
    pub expected: Decimal,
}

impl ColumnSum {
    pub fn matches(&self) -> bool {
        let expected: f64 = self.expected.to_string().parse().unwrap_or(f64::NAN);
        (self.powerbi - expected).abs() <= 0.005 + expected.abs() * 1e-12
    }
}

#[derive(Debug, Clone)]
pub struct TableCheck {
    pub table: String,
    pub powerbi_rows: u64,
    pub expected_rows: u64,
    pub sums: Vec<ColumnSum>,
    pub error: Option<String>,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.error.is_none()
            && self.powerbi_rows == self.expected_rows
            && self.sums.iter().all(ColumnSum::matches)
    }
}

impl fmt::Display for TableCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.error {
            return write!(f, "{:<14} ERROR {e}", self.table);
        }
        let verdict = if self.matches() { "ok" } else { "DIFFERENT" };
        write!(
            f,
            "{:<14} {verdict:<9} rows: Power BI {} / expected {}",
            self.table, self.powerbi_rows, self.expected_rows
        )?;
        for s in self.sums.iter().filter(|s| !s.matches()) {
            write!(
                f,
                "; SUM({}) Power BI {} / expected {}",
                s.column, s.powerbi, s.expected
            )?;
        }
        if !self.sums.is_empty() && self.sums.iter().all(ColumnSum::matches) {
            write!(f, "; {} column sums equal", self.sums.len())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub tables: Vec<TableCheck>,
}

impl VerifyReport {
    pub fn all_match(&self) -> bool {
        self.tables.iter().all(TableCheck::matches)
    }
}

pub async fn verify(conn: &Connection) -> Result<VerifyReport, PipelineError> {
    let name = conn.config.name.as_str();
    let push = PushDataset::of(conn.destination.as_ref(), name, "verify")?;
    let state = conn.store.dataset(name).await?.ok_or_else(|| {
        PipelineError::Other(format!(
            "connection {name} has not synced yet: run `ml-connector sync` first"
        ))
    })?;
    let target = Target {
        group_id: state.group_id.clone(),
        dataset_id: state.dataset_id.clone(),
        recreated: false,
    };
    let schema: DatasetSchema = serde_json::from_str(&state.schema_json).map_err(|e| {
        PipelineError::Other(format!("the recorded dataset schema is unreadable: {e}"))
    })?;
    let mut report = VerifyReport::default();
    for stream in &conn.config.streams {
        let Some(table) = schema.tables.iter().find(|t| t.name == stream.table) else {
            // Every configured table is checked: one the dataset was never given is a difference.
            report.tables.push(TableCheck {
                table: stream.table.clone(),
                powerbi_rows: 0,
                expected_rows: 0,
                sums: Vec::new(),
                error: Some(format!(
                    "not in the dataset yet: run `ml-connector sync --stream {}` to create and fill it",
                    stream.object
                )),
            });
            continue;
        };
        let mut check = TableCheck {
            table: table.name.clone(),
            powerbi_rows: 0,
            expected_rows: 0,
            sums: Vec::new(),
            error: None,
        };
        match count_rows(&push.client, &target, &table.name).await {
            Ok(n) => check.powerbi_rows = n,
            Err(e) => {
                check.error = Some(e.to_string());
                report.tables.push(check);
                continue;
            }
        }
        let st = conn.store.stream_state(name, &stream.object).await?;
        check.expected_rows = st.table_rows;
        if stream.mode == Mode::Replace && !st.dirty {
            let numeric: Vec<&str> = table
                .columns
                .iter()
                .filter(|c| {
                    matches!(
                        c.data_type,
                        DataType::Int64 | DataType::Decimal | DataType::Double
                    )
                })
                .map(|c| c.name.as_str())
                .collect();
            let text: Vec<&str> = table
                .columns
                .iter()
                .filter(|c| c.data_type == DataType::String)
                .map(|c| c.name.as_str())
                .collect();
            let (expected, lengths) = mirror_sums(conn, &stream.object, &numeric, &text).await?;
            // Text columns: the total length of their values, all in one query. Counts and
            // numeric sums cannot see a renamed vendor; this does (unless the new name has
            // exactly the old one's length).
            if !text.is_empty() {
                let t = table.name.replace('\'', "''");
                let cols: Vec<String> = text
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        format!(
                            "\"l{i}\", SUMX('{t}', LEN('{t}'[{}]))",
                            c.replace(']', "]]")
                        )
                    })
                    .collect();
                let dax = format!("EVALUATE ROW({})", cols.join(", "));
                let r = push
                    .client
                    .execute_query(&target.group_id, &target.dataset_id, &dax)
                    .await?;
                let row = r.rows.first();
                for (i, (column, expected)) in text.iter().zip(lengths).enumerate() {
                    let powerbi = row
                        .and_then(|row| row.get(&format!("[l{i}]")))
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0);
                    check.sums.push(ColumnSum {
                        column: format!("LEN({column})"),
                        powerbi,
                        expected: Decimal::from(expected),
                    });
                }
            }
            for (column, expected) in numeric.iter().zip(expected) {
                let dax = format!(
                    "EVALUATE ROW(\"s\", SUM('{}'[{}]))",
                    table.name.replace('\'', "''"),
                    column.replace(']', "]]")
                );
                let r = push
                    .client
                    .execute_query(&target.group_id, &target.dataset_id, &dax)
                    .await?;
                let powerbi = r
                    .rows
                    .first()
                    .and_then(|row| row.get("[s]"))
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0);
                check.sums.push(ColumnSum {
                    column: column.to_string(),
                    powerbi,
                    expected,
                });
            }
        }
        report.tables.push(check);
    }
    Ok(report)
}

/// Exact sums of numeric columns, and total lengths of text columns (in UTF-16 units, as DAX's
/// LEN counts), over the mirror's rows, paged so memory stays flat.
async fn mirror_sums(
    conn: &Connection,
    stream: &str,
    columns: &[&str],
    text: &[&str],
) -> Result<(Vec<Decimal>, Vec<u64>), PipelineError> {
    let mut sums = vec![Decimal::ZERO; columns.len()];
    let mut lengths = vec![0u64; text.len()];
    let mut after: Option<String> = None;
    loop {
        let page = conn
            .store
            .mirror_page(&conn.config.name, stream, after.as_deref(), 10_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for row in &page {
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.row_json)
                .map_err(|e| {
                    PipelineError::Other(format!("mirror row {} is not JSON: {e}", row.key))
                })?;
            for (i, c) in columns.iter().enumerate() {
                if let Some(n) = v.get(*c).filter(|n| n.is_number()) {
                    sums[i] += Decimal::from_str(&n.to_string())
                        .or_else(|_| Decimal::from_scientific(&n.to_string()))
                        .unwrap_or(Decimal::ZERO);
                }
            }
            for (i, c) in text.iter().enumerate() {
                if let Some(t) = v.get(*c).and_then(|t| t.as_str()) {
                    lengths[i] += t.encode_utf16().count() as u64;
                }
            }
        }
    }
    Ok((sums, lengths))
}
