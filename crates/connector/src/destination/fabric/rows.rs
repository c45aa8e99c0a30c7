//! A stream's rows as change-file columns: the plan's columns typed for Parquet, and the key
//! column `_metadata.json` names.
//!
//! The key is the record's key as staged: RECORDNO (its column when the plan selects it, else an
//! added `RECORDNO` column), or for GL balances, whose key has six parts, one added `RecordKey`
//! string column (Microsoft advises keys of fewer than five columns). Decimal columns are written
//! as Double (see `ml_onelake::changefile`).

use ml_onelake::{ColumnKind, Value};
use ml_powerbi::schema::DataType;
use serde_json::Value as Json;

use crate::catalogue::StreamKind;
use crate::pipeline::error::PipelineError;
use crate::pipeline::plan::StreamPlan;

pub(super) struct Layout {
    /// (column, kind, where the value comes from: the row JSON's column, or the record key).
    columns: Vec<(String, ColumnKind, bool)>,
    key: usize,
}

fn kind(t: DataType) -> ColumnKind {
    match t {
        DataType::Int64 => ColumnKind::Int64,
        DataType::Double | DataType::Decimal => ColumnKind::Double,
        DataType::Boolean => ColumnKind::Boolean,
        DataType::DateTime => ColumnKind::Timestamp,
        DataType::String => ColumnKind::String,
    }
}

fn type_name(k: ColumnKind) -> &'static str {
    match k {
        ColumnKind::Int64 => "Int64",
        ColumnKind::Double => "Double",
        ColumnKind::Boolean => "Boolean",
        ColumnKind::String => "String",
        ColumnKind::Timestamp => "DateTime",
    }
}

impl Layout {
    pub(super) fn new(plan: &StreamPlan) -> Result<Self, PipelineError> {
        let mut columns: Vec<(String, ColumnKind, bool)> = plan
            .columns
            .iter()
            .map(|c| (c.column.clone(), kind(c.data_type), false))
            .collect();
        let key = match plan.kind {
            StreamKind::Balances => None,
            _ => plan.columns.iter().position(|c| c.field == "RECORDNO"),
        };
        let key = match key {
            Some(i) => {
                columns[i].2 = true;
                i
            }
            None => {
                let name = if plan.kind == StreamKind::Balances {
                    "RecordKey"
                } else {
                    "RECORDNO"
                };
                if columns.iter().any(|(n, _, _)| n == name) {
                    return Err(PipelineError::Other(format!(
                        "stream {}: a column is named {name}, which the Fabric destination needs for the record key",
                        plan.object
                    )));
                }
                columns.push((name.to_string(), ColumnKind::String, true));
                columns.len() - 1
            }
        };
        Ok(Layout { columns, key })
    }

    pub(super) fn columns(&self) -> Vec<(String, ColumnKind)> {
        self.columns
            .iter()
            .map(|(n, k, _)| (n.clone(), *k))
            .collect()
    }

    pub(super) fn type_names(&self) -> Vec<(String, String)> {
        self.columns
            .iter()
            .map(|(n, k, _)| (n.clone(), type_name(*k).to_string()))
            .collect()
    }

    pub(super) fn key_column(&self) -> &str {
        &self.columns[self.key].0
    }

    /// A staged row's values.
    pub(super) fn values(&self, key: &str, row_json: &str) -> Result<Vec<Value>, PipelineError> {
        let row: serde_json::Map<String, Json> = serde_json::from_str(row_json).map_err(|e| {
            PipelineError::Other(format!("record {key}: its staged row is not JSON: {e}"))
        })?;
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind, is_key))| {
                if *is_key && (i != self.key || !row.contains_key(name)) {
                    return convert(key, name, *kind, &Json::String(key.to_string()));
                }
                convert(key, name, *kind, row.get(name).unwrap_or(&Json::Null))
            })
            .collect()
    }

    /// A delete row: the key, every other column null.
    pub(super) fn key_only(&self, key: &str) -> Result<Vec<Value>, PipelineError> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind, _))| {
                if i == self.key {
                    convert(key, name, *kind, &Json::String(key.to_string()))
                } else {
                    Ok(Value::Null)
                }
            })
            .collect()
    }
}

fn convert(key: &str, column: &str, kind: ColumnKind, v: &Json) -> Result<Value, PipelineError> {
    let bad = || {
        PipelineError::Other(format!(
            "record {key}: column {column} = {v} is not a valid {kind:?} for the Fabric change file"
        ))
    };
    if v.is_null() || v.as_str() == Some("") {
        return Ok(Value::Null);
    }
    Ok(match kind {
        ColumnKind::Int64 => Value::Int64(match v {
            Json::Number(n) => n.as_i64().ok_or_else(bad)?,
            Json::String(s) => s.trim().parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }),
        ColumnKind::Double => Value::Double(match v {
            Json::Number(n) => n.as_f64().ok_or_else(bad)?,
            Json::String(s) => s.trim().parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }),
        ColumnKind::Boolean => Value::Boolean(match v {
            Json::Bool(b) => *b,
            Json::String(s) if s.eq_ignore_ascii_case("true") => true,
            Json::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(bad()),
        }),
        ColumnKind::String => Value::String(match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }),
        ColumnKind::Timestamp => {
            let s = v.as_str().ok_or_else(bad)?;
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .map(|n| n.and_utc())
                })
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| bad())?;
            Value::Timestamp(t.timestamp_micros())
        }
    })
}
