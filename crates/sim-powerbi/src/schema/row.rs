//! The values of pushed rows, checked against their table's columns: types, string lengths, and
//! the ISO 8601 forms accepted for DateTime.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

use crate::state::{ColumnDef, DataType};

/// Why a pushed row was refused (rendered as 400 BadRequest with a details entry).
pub(crate) fn check_row(
    row: &Map<String, Value>,
    columns: &[ColumnDef],
    max_chars: usize,
    enforce: bool,
) -> Result<(), String> {
    for (key, value) in row {
        let Some(col) = columns.iter().find(|c| c.name == *key) else {
            return Err(format!("The column '{key}' does not exist in the table."));
        };
        if value.is_null() {
            continue;
        }
        let ok = match col.data_type {
            DataType::Int64 => value
                .as_i64()
                .is_some_and(|n| n != i64::MIN && n != i64::MAX),
            DataType::Double => value.as_f64().is_some_and(f64::is_finite),
            // Decimal as a JSON number; a numeric string is accepted too (undocumented on the service).
            DataType::Decimal => match value {
                Value::Number(_) => true,
                Value::String(s) => s.parse::<rust_decimal::Decimal>().is_ok(),
                _ => false,
            },
            DataType::Boolean => value.is_boolean(),
            DataType::DateTime => value.as_str().is_some_and(|s| parse_datetime(s).is_some()),
            DataType::String => match value.as_str() {
                Some(s) => {
                    if enforce && s.chars().count() > max_chars {
                        return Err(format!(
                            "The value of column '{key}' has {} characters; at most {max_chars} are allowed.",
                            s.chars().count()
                        ));
                    }
                    true
                }
                None => false,
            },
        };
        if !ok {
            return Err(format!(
                "The value {} of column '{key}' cannot be converted to the column's data type {:?}.",
                truncate(&value.to_string(), 60),
                col.data_type
            ));
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Parses the ISO 8601 forms the simulator accepts: a date, or a date-time with optional fraction and optional
/// `Z`/offset (an offset is converted to UTC). Returns the naive (UTC) value.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s)
        && s.as_bytes().get(10) == Some(&b'T')
    {
        return Some(d.naive_utc());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn row_values_are_type_checked() {
        let cols: Vec<ColumnDef> = [
            ("i", DataType::Int64),
            ("d", DataType::DateTime),
            ("s", DataType::String),
            ("b", DataType::Boolean),
            ("m", DataType::Decimal),
        ]
        .into_iter()
        .map(|(n, t)| ColumnDef {
            name: n.into(),
            data_type: t,
            raw: Value::Null,
        })
        .collect();
        let row = |v: Value| v.as_object().unwrap().clone();
        assert!(
            check_row(
                &row(json!({"i": 1, "d": "2024-06-30T00:00:00Z", "s": "x", "b": true, "m": 1.25})),
                &cols,
                5,
                true
            )
            .is_ok()
        );
        assert!(check_row(&row(json!({"i": null, "d": "2024-06-30"})), &cols, 5, true).is_ok());
        assert!(check_row(&row(json!({"i": "1"})), &cols, 5, true).is_err());
        assert!(check_row(&row(json!({"i": 1.5})), &cols, 5, true).is_err());
        assert!(check_row(&row(json!({"d": "07/30/2014"})), &cols, 5, true).is_err());
        assert!(check_row(&row(json!({"s": "toolong"})), &cols, 5, true).is_err());
        assert!(check_row(&row(json!({"s": "toolong"})), &cols, 5, false).is_ok());
        assert!(check_row(&row(json!({"b": 1})), &cols, 5, true).is_err());
        assert!(check_row(&row(json!({"zz": 1})), &cols, 5, true).is_err());
    }

    #[test]
    fn datetime_forms() {
        assert!(parse_datetime("2024-06-30T12:34:56.789Z").is_some());
        assert!(parse_datetime("2024-06-30T12:34:56+02:00").is_some());
        assert!(parse_datetime("2024-06-30T12:34:56").is_some());
        assert!(parse_datetime("2024-06-30").is_some());
        assert!(parse_datetime("2024-06-30 12:34:56").is_none());
        assert!(parse_datetime("2024-6-30").is_none());
        assert!(parse_datetime("30.06.2024").is_none());
    }
}
