//! Strict validation of push-dataset definitions (`CreateDatasetRequest`, `Table`) and of pushed row values.
//!
//! Like the service (an OData deserializer), property names are case-sensitive and an unknown property is an
//! error naming the service-side type; the first problem found is reported. Name rules are the swagger's
//! regular expressions, hand-coded as character predicates (no regex crate needed for two character classes).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

use crate::config::SimLimits;
use crate::state::{ColumnDef, DataType};

const TYPE_PREFIX: &str = "Microsoft.PowerBI.ServiceContracts.Api.";

/// A validation failure: rendered as 400 `{"error":{"code":"BadRequest","message":"Bad Request","details":[{message,target}]}}`
/// or, for `Streaming`, as the FeatureDeprecatedError `pbi.error` document.
#[derive(Debug, PartialEq)]
pub(crate) enum SchemaError {
    BadRequest {
        message: String,
        target: &'static str,
    },
    StreamingDeprecated,
    PushDeprecated,
}

fn bad(message: impl Into<String>, target: &'static str) -> SchemaError {
    SchemaError::BadRequest {
        message: message.into(),
        target,
    }
}

/// A validated table.
#[derive(Debug)]
pub(crate) struct ValidTable {
    pub(crate) name: String,
    pub(crate) columns: Arc<Vec<ColumnDef>>,
    /// The table as sent, without `rows`.
    pub(crate) raw: Value,
}

/// A validated `CreateDatasetRequest`.
#[derive(Debug)]
pub(crate) struct ValidDataset {
    pub(crate) name: String,
    pub(crate) push_streaming: bool,
    pub(crate) tables: Vec<ValidTable>,
}

/// Characters the swagger allows in table and relationship names:
/// `[\x09\x0A\x0D\x20\x23\x2D\x30-\x39\x40-\x5A\x5E-\x5F\x61-\x7A\x7E-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]{1,100}`.
pub(crate) fn table_name_char_ok(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | ' ' | '#' | '-' | '0'..='9' | '@'..='Z' | '^' | '_' | 'a'..='z'
        | '~'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Characters the swagger allows in column and measure names: `[\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`.
fn column_name_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn table_name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (1..=100).contains(&n) && name.chars().all(table_name_char_ok)
}

fn check_props(
    obj: &Map<String, Value>,
    allowed: &[&str],
    type_name: &str,
    target: &'static str,
) -> Result<(), SchemaError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(bad(
                format!(
                    "The property '{key}' does not exist on type '{TYPE_PREFIX}{type_name}'. Make sure to only use \
                     property names that are defined by the type."
                ),
                target,
            ));
        }
    }
    Ok(())
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_object<'a>(
    v: &'a Value,
    type_name: &str,
    target: &'static str,
) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object().ok_or_else(|| {
        bad(
            format!(
                "An unexpected '{}' node was found when reading a value of type '{TYPE_PREFIX}{type_name}'. A \
                 'StartObject' node was expected.",
                node_kind(v)
            ),
            target,
        )
    })
}

fn node_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "StartArray",
        Value::Object(_) => "StartObject",
        _ => "PrimitiveValue",
    }
}

fn opt_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    target: &'static str,
) -> Result<Option<&'a str>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            format!(
                "Cannot convert the literal '{}' to the expected type 'Edm.String' (property '{key}').",
                literal(other)
            ),
            target,
        )),
    }
}

fn req_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    owner: &str,
    target: &'static str,
) -> Result<&'a str, SchemaError> {
    opt_string(obj, key, target)?.ok_or_else(|| {
        bad(
            format!("The required property '{key}' of {owner} is missing."),
            target,
        )
    })
}

fn opt_bool(obj: &Map<String, Value>, key: &str, target: &'static str) -> Result<(), SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(bad(
            format!(
                "Cannot convert the literal '{}' to the expected type 'Edm.Boolean' (property '{key}').",
                literal(other)
            ),
            target,
        )),
    }
}

fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    target: &'static str,
) -> Result<Option<&'a Vec<Value>>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(bad(
            format!(
                "An unexpected '{}' node was found for property '{key}'. A 'StartArray' node was expected.",
                node_kind(other)
            ),
            target,
        )),
    }
}

/// Validates a `CreateDatasetRequest` body.
pub(crate) fn validate_dataset(
    body: &Value,
    limits: &SimLimits,
    push_deprecated: bool,
) -> Result<ValidDataset, SchemaError> {
    const T: &str = "dataset";
    let obj = as_object(body, "Dataset", T)?;
    check_props(
        obj,
        &[
            "name",
            "tables",
            "relationships",
            "datasources",
            "defaultMode",
        ],
        "Dataset",
        T,
    )?;
    let name = req_string(obj, "name", "the dataset", T)?;
    if name.trim().is_empty() {
        return Err(bad("The dataset name must not be empty.", T));
    }
    // The service parses enums case-insensitively (.NET); the swagger lists the canonical spelling.
    let push_streaming = match opt_string(obj, "defaultMode", T)?
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("push") => false,
        Some("pushstreaming") => true,
        Some("streaming") => return Err(SchemaError::StreamingDeprecated),
        Some(other) => {
            return Err(bad(
                format!(
                    "The dataset mode '{other}' is not supported by this API; use Push or PushStreaming."
                ),
                T,
            ));
        }
    };
    if push_deprecated {
        return Err(SchemaError::PushDeprecated);
    }
    let tables_json = opt_array(obj, "tables", T)?.ok_or_else(|| {
        bad(
            "The required property 'tables' of the dataset is missing.",
            T,
        )
    })?;
    if tables_json.is_empty() {
        return Err(bad("A push dataset needs at least one table.", T));
    }
    if tables_json.len() > limits.max_tables {
        return Err(bad(
            format!(
                "The dataset has {} tables; a push dataset can have at most {}.",
                tables_json.len(),
                limits.max_tables
            ),
            T,
        ));
    }
    let mut tables = Vec::new();
    let mut seen = HashSet::new();
    for t in tables_json {
        let table = validate_table(t, limits, T)?;
        if !seen.insert(table.name.to_lowercase()) {
            return Err(bad(
                format!("The table name '{}' is used more than once.", table.name),
                T,
            ));
        }
        tables.push(table);
    }
    if let Some(rels) = opt_array(obj, "relationships", T)? {
        if rels.len() > limits.max_relationships {
            return Err(bad(
                format!(
                    "The dataset has {} relationships; a push dataset can have at most {}.",
                    rels.len(),
                    limits.max_relationships
                ),
                T,
            ));
        }
        let mut names = HashSet::new();
        for r in rels {
            validate_relationship(r, &tables, &mut names)?;
        }
    }
    Ok(ValidDataset {
        name: name.to_owned(),
        push_streaming,
        tables,
    })
}

fn validate_relationship(
    r: &Value,
    tables: &[ValidTable],
    names: &mut HashSet<String>,
) -> Result<(), SchemaError> {
    const T: &str = "dataset";
    let obj = as_object(r, "Relationship", T)?;
    check_props(
        obj,
        &[
            "name",
            "crossFilteringBehavior",
            "fromTable",
            "fromColumn",
            "toTable",
            "toColumn",
        ],
        "Relationship",
        T,
    )?;
    let name = req_string(obj, "name", "a relationship", T)?;
    if !table_name_ok(name) {
        return Err(bad(
            format!("The relationship name '{name}' contains characters that are not allowed."),
            T,
        ));
    }
    if !names.insert(name.to_lowercase()) {
        return Err(bad(
            format!("The relationship name '{name}' is used more than once."),
            T,
        ));
    }
    for (tk, ck) in [("fromTable", "fromColumn"), ("toTable", "toColumn")] {
        let tname = req_string(obj, tk, "a relationship", T)?;
        let cname = req_string(obj, ck, "a relationship", T)?;
        let table = tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(tname))
            .ok_or_else(|| {
                bad(
                    format!(
                        "Relationship '{name}' refers to table '{tname}', which does not exist."
                    ),
                    T,
                )
            })?;
        if !table
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(cname))
        {
            return Err(bad(
                format!(
                    "Relationship '{name}' refers to column '{cname}', which does not exist in table '{tname}'."
                ),
                T,
            ));
        }
    }
    if let Some(b) = opt_string(obj, "crossFilteringBehavior", T)?
        && !["onedirection", "bothdirections", "automatic"]
            .contains(&b.to_ascii_lowercase().as_str())
    {
        return Err(bad(
            format!("The value '{b}' is not valid for crossFilteringBehavior."),
            T,
        ));
    }
    Ok(())
}

/// Validates one `Table` object (inside a create request, target "dataset", or a PUT body, target "table").
pub(crate) fn validate_table(
    t: &Value,
    limits: &SimLimits,
    target: &'static str,
) -> Result<ValidTable, SchemaError> {
    let obj = as_object(t, "Table", target)?;
    check_props(
        obj,
        &[
            "name",
            "columns",
            "rows",
            "measures",
            "isHidden",
            "description",
            "source",
        ],
        "Table",
        target,
    )?;
    let name = req_string(obj, "name", "a table", target)?;
    if !table_name_ok(name) {
        return Err(bad(
            format!(
                "The table name '{name}' is not valid: 1 to 100 characters, letters, digits, spaces, '#', '-', '@', \
                 '^', '_', '~' and non-ASCII characters only."
            ),
            target,
        ));
    }
    opt_bool(obj, "isHidden", target)?;
    opt_string(obj, "description", target)?;
    let cols_json = opt_array(obj, "columns", target)?.ok_or_else(|| {
        bad(
            format!("The required property 'columns' of table '{name}' is missing."),
            target,
        )
    })?;
    if cols_json.is_empty() {
        return Err(bad(
            format!("Table '{name}' needs at least one column."),
            target,
        ));
    }
    if cols_json.len() > limits.max_columns {
        return Err(bad(
            format!(
                "Table '{name}' has {} columns; a push dataset table can have at most {}.",
                cols_json.len(),
                limits.max_columns
            ),
            target,
        ));
    }
    let mut columns = Vec::new();
    let mut seen = HashSet::new();
    for c in cols_json {
        let obj = as_object(c, "Column", target)?;
        check_props(
            obj,
            &[
                "name",
                "dataType",
                "formatString",
                "sortByColumn",
                "dataCategory",
                "isHidden",
                "summarizeBy",
            ],
            "Column",
            target,
        )?;
        let cname = req_string(obj, "name", "a column", target)?;
        if cname.is_empty() || !cname.chars().all(column_name_char_ok) {
            return Err(bad(
                format!("The column name '{cname}' in table '{name}' is not valid."),
                target,
            ));
        }
        if !seen.insert(cname.to_lowercase()) {
            return Err(bad(
                format!("The column name '{cname}' is used more than once in table '{name}'."),
                target,
            ));
        }
        let dt = req_string(obj, "dataType", "a column", target)?;
        let data_type = DataType::parse(dt).ok_or_else(|| {
            bad(
                format!(
                    "The data type '{dt}' of column '{cname}' is not supported; use Int64, Double, Decimal, Boolean, \
                     DateTime or String."
                ),
                target,
            )
        })?;
        for key in ["formatString", "sortByColumn", "dataCategory"] {
            opt_string(obj, key, target)?;
        }
        opt_bool(obj, "isHidden", target)?;
        if let Some(s) = opt_string(obj, "summarizeBy", target)?
            && ![
                "default",
                "none",
                "sum",
                "min",
                "max",
                "count",
                "average",
                "distinctcount",
            ]
            .contains(&s.to_ascii_lowercase().as_str())
        {
            return Err(bad(
                format!("The summarizeBy value '{s}' of column '{cname}' is not valid."),
                target,
            ));
        }
        columns.push(ColumnDef {
            name: cname.to_owned(),
            data_type,
            raw: c.clone(),
        });
    }
    for c in &columns {
        if let Some(sort) = c.raw.get("sortByColumn").and_then(Value::as_str)
            && !columns.iter().any(|o| o.name.eq_ignore_ascii_case(sort))
        {
            return Err(bad(
                format!(
                    "Column '{}' sorts by '{sort}', which is not a column of table '{name}'.",
                    c.name
                ),
                target,
            ));
        }
    }
    if let Some(measures) = opt_array(obj, "measures", target)? {
        for m in measures {
            let mobj = as_object(m, "Measure", target)?;
            check_props(
                mobj,
                &[
                    "name",
                    "expression",
                    "formatString",
                    "description",
                    "isHidden",
                ],
                "Measure",
                target,
            )?;
            let mname = req_string(mobj, "name", "a measure", target)?;
            req_string(mobj, "expression", "a measure", target)?;
            opt_string(mobj, "formatString", target)?;
            opt_string(mobj, "description", target)?;
            opt_bool(mobj, "isHidden", target)?;
            if mname.is_empty()
                || !mname.chars().all(column_name_char_ok)
                || !seen.insert(mname.to_lowercase())
            {
                return Err(bad(
                    format!(
                        "The measure name '{mname}' in table '{name}' is not valid or not unique."
                    ),
                    target,
                ));
            }
        }
    }
    opt_array(obj, "rows", target)?;
    let mut raw = obj.clone();
    raw.remove("rows");
    Ok(ValidTable {
        name: name.to_owned(),
        columns: Arc::new(columns),
        raw: Value::Object(raw),
    })
}

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

    fn limits() -> SimLimits {
        SimLimits::default()
    }

    #[test]
    fn table_name_rule_matches_swagger() {
        for ok in ["GLEntry", "Vendors 2", "a#b-c@d^e_f~g", "Überweisung", "x"] {
            assert!(table_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "a.b",
            "a/b",
            "a$b",
            "a(b)",
            "a'b",
            "a[b]",
            "a,b",
            "a:b",
            "a|b",
            &"x".repeat(101),
        ] {
            assert!(!table_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_and_miscased_properties_are_refused() {
        let body = json!({"name": "D", "tables": [{"name": "T", "columns": [{"name": "a", "datatype": "Int64"}]}]});
        let err = validate_dataset(&body, &limits(), false).unwrap_err();
        assert_eq!(
            err,
            bad(
                "The property 'datatype' does not exist on type 'Microsoft.PowerBI.ServiceContracts.Api.Column'. \
                 Make sure to only use property names that are defined by the type.",
                "dataset"
            )
        );
        let body = json!({"name": "D", "compatibilityLevel": 1500, "tables": []});
        assert!(matches!(
            validate_dataset(&body, &limits(), false),
            Err(SchemaError::BadRequest { message, .. }) if message.contains("'compatibilityLevel'")
                && message.contains("Api.Dataset'")
        ));
    }

    #[test]
    fn data_types_are_case_insensitive_with_aliases() {
        let body = json!({"name": "D", "defaultMode": "Push", "tables": [{"name": "T", "columns": [
            {"name": "a", "dataType": "int64"}, {"name": "b", "dataType": "bool"},
            {"name": "c", "dataType": "Datetime"}, {"name": "d", "dataType": "string"},
            {"name": "e", "dataType": "Decimal"}, {"name": "f", "dataType": "Double"}]}]});
        let ds = validate_dataset(&body, &limits(), false).unwrap();
        let types: Vec<DataType> = ds.tables[0].columns.iter().map(|c| c.data_type).collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Boolean,
                DataType::DateTime,
                DataType::String,
                DataType::Decimal,
                DataType::Double
            ]
        );
        let body = json!({"name": "D", "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Money"}]}]});
        assert!(validate_dataset(&body, &limits(), false).is_err());
    }

    #[test]
    fn streaming_mode_is_deprecated_and_limits_apply() {
        let body = json!({"name": "D", "defaultMode": "Streaming", "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Int64"}]}]});
        assert_eq!(
            validate_dataset(&body, &limits(), false).unwrap_err(),
            SchemaError::StreamingDeprecated
        );
        let cols: Vec<Value> = (0..76)
            .map(|i| json!({"name": format!("c{i}"), "dataType": "Int64"}))
            .collect();
        let body = json!({"name": "D", "tables": [{"name": "T", "columns": cols}]});
        assert!(validate_dataset(&body, &limits(), false).is_err());
        let rel = json!({"name": "D", "tables": [{"name": "T", "columns": [{"name": "a", "dataType": "Int64"}]}],
            "relationships": [{"name": "r", "fromTable": "T", "fromColumn": "a", "toTable": "U", "toColumn": "a"}]});
        assert!(validate_dataset(&rel, &limits(), false).is_err());
    }

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
