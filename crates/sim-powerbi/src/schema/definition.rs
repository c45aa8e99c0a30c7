//! Push-dataset definitions: a `CreateDatasetRequest` with its tables, columns, measures and
//! relationships, or one `Table` (PUT). Name rules are the swagger's regular expressions, hand-coded as
//! character predicates (no regex crate needed for two character classes).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::json::{
    SchemaError, as_object, bad, check_props, opt_array, opt_bool, opt_string, req_string,
};
use crate::config::SimLimits;
use crate::state::{ColumnDef, DataType};

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
}
