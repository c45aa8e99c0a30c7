//! Push-dataset schema model, validation, and the row encoder.
//!
//! The serde shapes match the swagger definitions `CreateDatasetRequest`, `Table`, `Column`, `Measure` and
//! `Relationship` (property names are case-sensitive on the service: `dataType`, never `datatype`).
//!
//! Rows are encoded straight into JSON text (no `serde_json::Value` in between) because the encoder sits on the
//! hot path of every push: a typical 12-column row costs well under 2 µs in release builds.
//!
//! # Value formats (reference §4)
//! * `DateTime` values are written `YYYY-MM-DDTHH:MM:SSZ`. The model holds zone-less wall-clock times (Intacct
//!   renders company-local times); we label them `Z` so the service stores exactly the wall-clock value the finance
//!   team sees in Intacct, with no shift. Sub-second parts are dropped: push datasets cannot equality-filter on
//!   milliseconds, and Intacct has none. Years outside 1900–9999 are refused (Power BI's date range).
//! * `Decimal` values are written from the decimal's own digits, never through `f64`; more than 4 decimal places
//!   is refused (Power BI's fixed decimal has scale 4 and would silently round).
//! * `Double` values must be finite and not `f64::MAX`/`f64::MIN`; `Int64` refuses `i64::MIN`/`i64::MAX`.
//! * Strings longer than 4,000 characters are cut to 4,000 UTF-16 code units (the conservative reading of the
//!   service's "characters") and the column is listed in [`EncodedRow::truncated`] for the audit trail.
//! * `Null` values are omitted from the row object, as Microsoft's own .NET SDK does.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDateTime, Timelike};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Service limits on the shape of a push dataset (reference §5.1).
pub const MAX_TABLES: usize = 75;
/// Maximum columns per table.
pub const MAX_COLUMNS: usize = 75;
/// Maximum relationships per dataset.
pub const MAX_RELATIONSHIPS: usize = 75;
/// Maximum table/relationship name length (swagger pattern `{1,100}`), counted in UTF-16 units.
pub const MAX_TABLE_NAME_LEN: usize = 100;
/// Maximum characters per string value in POST rows.
pub const MAX_STRING_CHARS: usize = 4_000;

/// A push dataset definition (`CreateDatasetRequest` without `defaultMode`, which the client adds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSchema {
    pub name: String,
    pub tables: Vec<TableSchema>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<Relationship>,
}

/// One table (`Table` in the swagger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measures: Vec<Measure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hidden: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl TableSchema {
    /// A table with the given columns and no measures.
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            name: name.into(),
            columns,
            measures: Vec::new(),
            is_hidden: None,
            description: None,
        }
    }
}

/// One column (`Column` in the swagger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub name: String,
    pub data_type: DataType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hidden: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarize_by: Option<String>,
}

impl Column {
    /// A column with only a name and a type.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self {
            name: name.into(),
            data_type,
            format_string: None,
            sort_by_column: None,
            data_category: None,
            is_hidden: None,
            summarize_by: None,
        }
    }
}

/// The six column types a push dataset accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Int64,
    Double,
    Decimal,
    Boolean,
    DateTime,
    String,
}

impl DataType {
    /// The spelling we send (the swagger leaves `dataType` a free string; these are Microsoft's documented names).
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Int64 => "Int64",
            DataType::Double => "Double",
            DataType::Decimal => "Decimal",
            DataType::Boolean => "Boolean",
            DataType::DateTime => "DateTime",
            DataType::String => "String",
        }
    }

    /// Parses the spellings the service and its examples use (case-insensitive; `bool` for Boolean).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "int64" => DataType::Int64,
            "double" => DataType::Double,
            "decimal" => DataType::Decimal,
            "boolean" | "bool" => DataType::Boolean,
            "datetime" => DataType::DateTime,
            "string" => DataType::String,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DataType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DataType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown Power BI data type '{s}'")))
    }
}

/// A DAX measure (`Measure` in the swagger).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measure {
    pub name: String,
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_hidden: Option<bool>,
}

/// Cross-filter direction of a relationship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CrossFilteringBehavior {
    OneDirection,
    BothDirections,
    Automatic,
}

/// A relationship between two tables; push datasets only accept them at creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    pub name: String,
    pub from_table: String,
    pub from_column: String,
    pub to_table: String,
    pub to_column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_filtering_behavior: Option<CrossFilteringBehavior>,
}

/// A schema the service would refuse; each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the dataset name is empty: give the dataset a name")]
    EmptyDatasetName,
    #[error("the dataset has no tables: a push dataset needs at least one table")]
    NoTables,
    #[error("the dataset has {count} {what}; Power BI allows at most {max}: split the dataset")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error(
        "{what} name '{name}' is not accepted by Power BI: {problem}. Table and relationship names may use letters, \
         digits, spaces and # - @ ^ _ ~ (and non-ASCII letters), 1 to 100 characters; rename it"
    )]
    BadTableName {
        what: &'static str,
        name: String,
        problem: String,
    },
    #[error(
        "{what} name '{name}' in table '{table}' is empty or contains control characters: rename it"
    )]
    BadColumnName {
        what: &'static str,
        table: String,
        name: String,
    },
    #[error("table '{table}' has no columns: a push table needs at least one column")]
    NoColumns { table: String },
    #[error(
        "table '{table}' has {count} columns; Power BI allows at most {MAX_COLUMNS}: drop some fields"
    )]
    TooManyColumns { table: String, count: usize },
    #[error(
        "table '{table}' defines '{name}' twice (names are compared case-insensitively, as Power BI does): rename one"
    )]
    DuplicateName { table: String, name: String },
    #[error("table name '{name}' is used twice (case-insensitively): rename one")]
    DuplicateTable { name: String },
    #[error(
        "relationship '{relationship}' refers to {what} '{name}', which the dataset does not define"
    )]
    DanglingRelationship {
        relationship: String,
        what: &'static str,
        name: String,
    },
}

/// Checks the swagger's table-name rule by hand (no regex crate for one character class).
///
/// Allowed: TAB, LF, CR, space, `#`, `-`, digits, `@`, `A-Z`, `^`, `_`, `a-z`, and everything from `~` upwards
/// (which covers all non-ASCII scalar values; surrogates cannot occur in a Rust `str`). Length 1–100, counted in
/// UTF-16 code units, the stricter of the two ways a regex engine may count.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let len: usize = name.chars().map(char::len_utf16).sum();
    if len == 0 {
        return Err("it is empty".into());
    }
    if len > MAX_TABLE_NAME_LEN {
        return Err(format!(
            "it is {len} characters long (at most {MAX_TABLE_NAME_LEN})"
        ));
    }
    for c in name.chars() {
        let ok = matches!(c, '\t' | '\n' | '\r' | ' ' | '#' | '-' | '0'..='9' | '@'..='Z' | '^' | '_' | 'a'..='z')
            || (c >= '~' && c != '\u{FFFE}' && c != '\u{FFFF}');
        if !ok {
            return Err(format!("the character {c:?} is not allowed"));
        }
    }
    Ok(())
}

/// Column and measure names: non-empty, no control characters other than TAB/LF/CR (swagger pattern).
pub fn check_column_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().all(|c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
}

/// Validates one table: name rule, 1–75 columns, valid and unique column/measure names.
pub fn validate_table(table: &TableSchema) -> Result<(), SchemaError> {
    check_table_name(&table.name).map_err(|problem| SchemaError::BadTableName {
        what: "table",
        name: table.name.clone(),
        problem,
    })?;
    if table.columns.is_empty() {
        return Err(SchemaError::NoColumns {
            table: table.name.clone(),
        });
    }
    if table.columns.len() > MAX_COLUMNS {
        return Err(SchemaError::TooManyColumns {
            table: table.name.clone(),
            count: table.columns.len(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    let names = table
        .columns
        .iter()
        .map(|c| ("column", &c.name))
        .chain(table.measures.iter().map(|m| ("measure", &m.name)));
    for (what, name) in names {
        if !check_column_name(name) {
            return Err(SchemaError::BadColumnName {
                what,
                table: table.name.clone(),
                name: name.clone(),
            });
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(SchemaError::DuplicateName {
                table: table.name.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// Validates a whole dataset before it is sent.
pub fn validate_dataset(ds: &DatasetSchema) -> Result<(), SchemaError> {
    if ds.name.trim().is_empty() {
        return Err(SchemaError::EmptyDatasetName);
    }
    if ds.tables.is_empty() {
        return Err(SchemaError::NoTables);
    }
    if ds.tables.len() > MAX_TABLES {
        return Err(SchemaError::TooMany {
            what: "tables",
            count: ds.tables.len(),
            max: MAX_TABLES,
        });
    }
    if ds.relationships.len() > MAX_RELATIONSHIPS {
        return Err(SchemaError::TooMany {
            what: "relationships",
            count: ds.relationships.len(),
            max: MAX_RELATIONSHIPS,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for t in &ds.tables {
        validate_table(t)?;
        if !seen.insert(t.name.to_lowercase()) {
            return Err(SchemaError::DuplicateTable {
                name: t.name.clone(),
            });
        }
    }
    for r in &ds.relationships {
        check_table_name(&r.name).map_err(|problem| SchemaError::BadTableName {
            what: "relationship",
            name: r.name.clone(),
            problem,
        })?;
        for (table, column) in [(&r.from_table, &r.from_column), (&r.to_table, &r.to_column)] {
            let Some(t) = ds.tables.iter().find(|t| &t.name == table) else {
                return Err(SchemaError::DanglingRelationship {
                    relationship: r.name.clone(),
                    what: "table",
                    name: table.clone(),
                });
            };
            if !t.columns.iter().any(|c| &c.name == column) {
                return Err(SchemaError::DanglingRelationship {
                    relationship: r.name.clone(),
                    what: "column",
                    name: format!("{table}[{column}]"),
                });
            }
        }
    }
    Ok(())
}

/// One cell value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int64(i64),
    Double(f64),
    Decimal(Decimal),
    Boolean(bool),
    DateTime(NaiveDateTime),
    String(String),
}

/// A value the service would refuse or silently corrupt.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "table '{table}' has {columns} columns but the row has {values} values: the mapping is out of step"
    )]
    Arity {
        table: String,
        columns: usize,
        values: usize,
    },
    #[error("column '{column}' is {expected} but the value is {found}: fix the field mapping")]
    TypeMismatch {
        column: String,
        expected: DataType,
        found: &'static str,
    },
    #[error(
        "column '{column}': {value} is not a finite number Power BI can store; send it as null or fix the source"
    )]
    NotFinite { column: String, value: f64 },
    #[error("column '{column}': {value} is Int64 min/max, which Power BI does not allow")]
    Int64Extreme { column: String, value: i64 },
    #[error(
        "column '{column}': {value} has more than 4 decimal places, which Power BI's Decimal would round; \
         map the field as Double or round it at the source"
    )]
    DecimalScale { column: String, value: Decimal },
    #[error(
        "column '{column}': {value} is outside Power BI's date range 1900-9999; map the field to null or fix it"
    )]
    DateOutOfRange {
        column: String,
        value: NaiveDateTime,
    },
}

/// One row as JSON object text, plus the columns whose strings were cut to 4,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedRow {
    pub json: String,
    pub truncated: Vec<String>,
}

/// Encodes rows of one table; column keys are escaped once, not per row.
#[derive(Clone, Debug)]
pub struct RowEncoder {
    table: String,
    columns: Vec<(String, DataType, String)>, // (name, type, `"name":` prefix)
}

impl RowEncoder {
    pub fn new(table: &TableSchema) -> Self {
        let columns = table
            .columns
            .iter()
            .map(|c| {
                let mut key = String::with_capacity(c.name.len() + 3);
                write_json_string(&mut key, &c.name);
                key.push(':');
                (c.name.clone(), c.data_type, key)
            })
            .collect();
        Self {
            table: table.name.clone(),
            columns,
        }
    }

    /// Encodes one row; `values` are in column order.
    pub fn encode(&self, values: &[Value]) -> Result<EncodedRow, ValueError> {
        let mut json = String::with_capacity(16 + values.len() * 24);
        let mut truncated = Vec::new();
        self.encode_into(values, &mut json, &mut truncated)?;
        Ok(EncodedRow { json, truncated })
    }

    /// Appends one row object to `out`; on error `out` may hold a partial row (callers discard it).
    pub fn encode_into(
        &self,
        values: &[Value],
        out: &mut String,
        truncated: &mut Vec<String>,
    ) -> Result<(), ValueError> {
        if values.len() != self.columns.len() {
            return Err(ValueError::Arity {
                table: self.table.clone(),
                columns: self.columns.len(),
                values: values.len(),
            });
        }
        out.push('{');
        let mut first = true;
        for ((name, ty, key), v) in self.columns.iter().zip(values) {
            if matches!(v, Value::Null) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(key);
            let mismatch = |found| ValueError::TypeMismatch {
                column: name.clone(),
                expected: *ty,
                found,
            };
            match (ty, v) {
                (DataType::Int64 | DataType::Double | DataType::Decimal, Value::Int64(i)) => {
                    if *i == i64::MIN || *i == i64::MAX {
                        return Err(ValueError::Int64Extreme {
                            column: name.clone(),
                            value: *i,
                        });
                    }
                    let _ = write!(out, "{i}");
                }
                (DataType::Double, Value::Double(f)) => {
                    if !f.is_finite() || *f == f64::MAX || *f == f64::MIN {
                        return Err(ValueError::NotFinite {
                            column: name.clone(),
                            value: *f,
                        });
                    }
                    // Debug prints the shortest round-trip form and switches to exponent notation for very large or
                    // small magnitudes; both are valid JSON numbers.
                    let _ = write!(out, "{f:?}");
                }
                (DataType::Decimal, Value::Decimal(d)) => {
                    if d.normalize().scale() > 4 {
                        return Err(ValueError::DecimalScale {
                            column: name.clone(),
                            value: *d,
                        });
                    }
                    // rust_decimal's Display never uses exponent notation, so its digits are a valid JSON number.
                    let _ = write!(out, "{d}");
                }
                (DataType::Boolean, Value::Boolean(b)) => {
                    out.push_str(if *b { "true" } else { "false" })
                }
                (DataType::DateTime, Value::DateTime(dt)) => {
                    if !(1900..=9999).contains(&dt.year()) {
                        return Err(ValueError::DateOutOfRange {
                            column: name.clone(),
                            value: *dt,
                        });
                    }
                    write_datetime(out, dt);
                }
                (DataType::String, Value::String(s)) => {
                    let (cut, was_cut) = truncate_utf16(s, MAX_STRING_CHARS);
                    if was_cut {
                        truncated.push(name.clone());
                    }
                    write_json_string(out, cut);
                }
                (_, v) => return Err(mismatch(v.kind())),
            }
        }
        out.push('}');
        Ok(())
    }
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "an Int64",
            Value::Double(_) => "a Double",
            Value::Decimal(_) => "a Decimal",
            Value::Boolean(_) => "a Boolean",
            Value::DateTime(_) => "a DateTime",
            Value::String(_) => "a String",
        }
    }
}

/// Encodes one row of `table` (convenience over [`RowEncoder`], which is faster for many rows).
pub fn encode_row(table: &TableSchema, values: &[Value]) -> Result<EncodedRow, ValueError> {
    RowEncoder::new(table).encode(values)
}

fn write_datetime(out: &mut String, dt: &NaiveDateTime) {
    fn two(out: &mut String, v: u32) {
        out.push((b'0' + (v / 10) as u8) as char);
        out.push((b'0' + (v % 10) as u8) as char);
    }
    out.push('"');
    let y = dt.year() as u32; // 1900..=9999, checked by the caller
    two(out, y / 100);
    two(out, y % 100);
    out.push('-');
    two(out, dt.month());
    out.push('-');
    two(out, dt.day());
    out.push('T');
    two(out, dt.hour());
    out.push(':');
    two(out, dt.minute());
    out.push(':');
    two(out, dt.second());
    out.push_str("Z\"");
}

/// Cuts `s` to at most `max` UTF-16 code units without splitting a character.
pub fn truncate_utf16(s: &str, max: usize) -> (&str, bool) {
    // Every UTF-8 byte sequence is at least as long as its UTF-16 encoding, so short byte strings need no scan.
    if s.len() <= max {
        return (s, false);
    }
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return (&s[..i], true);
        }
    }
    (s, false)
}

/// Writes `s` as a JSON string literal (RFC 8259 escaping; non-ASCII passed through as UTF-8).
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::str::FromStr;

    fn table() -> TableSchema {
        TableSchema::new(
            "GLEntry",
            vec![
                Column::new("RecordNo", DataType::Int64),
                Column::new("Amount", DataType::Decimal),
                Column::new("Rate", DataType::Double),
                Column::new("Posted", DataType::Boolean),
                Column::new("EntryDate", DataType::DateTime),
                Column::new("Memo", DataType::String),
            ],
        )
    }

    fn dt(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn serialises_with_swagger_property_names() {
        let mut t = table();
        t.measures.push(Measure {
            name: "Total".into(),
            expression: "SUM(GLEntry[Amount])".into(),
            format_string: Some("#,0.00".into()),
            description: None,
            is_hidden: None,
        });
        let ds = DatasetSchema {
            name: "SageIntacct".into(),
            tables: vec![
                t,
                TableSchema::new("Account", vec![Column::new("AccountNo", DataType::String)]),
            ],
            relationships: vec![Relationship {
                name: "GL_Account".into(),
                from_table: "GLEntry".into(),
                from_column: "Memo".into(),
                to_table: "Account".into(),
                to_column: "AccountNo".into(),
                cross_filtering_behavior: Some(CrossFilteringBehavior::OneDirection),
            }],
        };
        let v = serde_json::to_value(&ds).unwrap();
        assert_eq!(
            v["tables"][0]["columns"][0],
            serde_json::json!({"name":"RecordNo","dataType":"Int64"})
        );
        assert_eq!(v["tables"][0]["measures"][0]["formatString"], "#,0.00");
        assert_eq!(v["relationships"][0]["fromTable"], "GLEntry");
        assert_eq!(
            v["relationships"][0]["crossFilteringBehavior"],
            "OneDirection"
        );
        assert!(v["tables"][1].get("measures").is_none());
        let back: DatasetSchema = serde_json::from_value(v).unwrap();
        assert_eq!(back, ds);
        validate_dataset(&ds).unwrap();
    }

    #[test]
    fn data_type_accepts_service_spellings() {
        for (s, t) in [
            ("int64", DataType::Int64),
            ("bool", DataType::Boolean),
            ("Datetime", DataType::DateTime),
        ] {
            assert_eq!(
                serde_json::from_value::<DataType>(serde_json::json!(s)).unwrap(),
                t
            );
        }
        assert!(serde_json::from_value::<DataType>(serde_json::json!("Money")).is_err());
    }

    #[test]
    fn table_name_rule_matches_swagger_character_class() {
        for ok in [
            "Vendors",
            "GL Entry",
            "a#b-c@d^e_f~g",
            "Dépenses",
            "日本",
            "x\ty",
            "😀",
        ] {
            check_table_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "", "a.b", "a/b", "a!", "a\"", "$x", "5%", "a&b", "it's", "(x)", "a*b", "a+b", "a,b",
            "a:b", "a;b", "a<b", "a=b", "a>b", "a?b", "[x]", "a\\b", "a`b", "{x}", "a|b",
            "a\u{1}b",
        ] {
            assert!(check_table_name(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_table_name(&"x".repeat(100)).is_ok());
        assert!(check_table_name(&"x".repeat(101)).is_err());
        // 50 astral characters are 100 UTF-16 units; 51 are too many.
        assert!(check_table_name(&"😀".repeat(50)).is_ok());
        assert!(check_table_name(&"😀".repeat(51)).is_err());
    }

    #[test]
    fn validation_catches_each_shape_problem() {
        let mut t = table();
        t.columns.push(Column::new("memo", DataType::String));
        assert_eq!(
            validate_table(&t),
            Err(SchemaError::DuplicateName {
                table: "GLEntry".into(),
                name: "memo".into()
            })
        );
        let t = TableSchema::new(
            "T",
            (0..76)
                .map(|i| Column::new(format!("c{i}"), DataType::Int64))
                .collect(),
        );
        assert!(matches!(
            validate_table(&t),
            Err(SchemaError::TooManyColumns { count: 76, .. })
        ));
        let t = TableSchema::new("T", vec![]);
        assert!(matches!(
            validate_table(&t),
            Err(SchemaError::NoColumns { .. })
        ));
        let t = TableSchema::new("T", vec![Column::new(" ", DataType::Int64)]);
        assert!(matches!(
            validate_table(&t),
            Err(SchemaError::BadColumnName { .. })
        ));
        let t = TableSchema::new("Bad.Name", vec![Column::new("a", DataType::Int64)]);
        let e = validate_table(&t).unwrap_err();
        assert!(e.to_string().contains("'.'"), "{e}");

        let one = |n: &str| TableSchema::new(n, vec![Column::new("a", DataType::Int64)]);
        let ds = DatasetSchema {
            name: "D".into(),
            tables: (0..76).map(|i| one(&format!("t{i}"))).collect(),
            relationships: vec![],
        };
        assert!(matches!(
            validate_dataset(&ds),
            Err(SchemaError::TooMany { what: "tables", .. })
        ));
        let ds = DatasetSchema {
            name: "D".into(),
            tables: vec![one("A"), one("a")],
            relationships: vec![],
        };
        assert!(matches!(
            validate_dataset(&ds),
            Err(SchemaError::DuplicateTable { .. })
        ));
        let ds = DatasetSchema {
            name: "".into(),
            tables: vec![one("A")],
            relationships: vec![],
        };
        assert_eq!(validate_dataset(&ds), Err(SchemaError::EmptyDatasetName));
        let rel = |n: &str, to: &str| Relationship {
            name: n.into(),
            from_table: "A".into(),
            from_column: "a".into(),
            to_table: to.into(),
            to_column: "a".into(),
            cross_filtering_behavior: None,
        };
        let ds = DatasetSchema {
            name: "D".into(),
            tables: vec![one("A"), one("B")],
            relationships: vec![rel("r", "C")],
        };
        assert!(matches!(
            validate_dataset(&ds),
            Err(SchemaError::DanglingRelationship { what: "table", .. })
        ));
        let ds = DatasetSchema {
            name: "D".into(),
            tables: vec![one("A"), one("B")],
            relationships: (0..76).map(|i| rel(&format!("r{i}"), "B")).collect(),
        };
        assert!(matches!(
            validate_dataset(&ds),
            Err(SchemaError::TooMany {
                what: "relationships",
                ..
            })
        ));
    }

    #[test]
    fn encodes_each_type_exactly() {
        let row = encode_row(
            &table(),
            &[
                Value::Int64(-42),
                Value::Decimal(Decimal::from_str("1234567890123456.7891").unwrap()),
                Value::Double(0.1),
                Value::Boolean(true),
                Value::DateTime(dt(2024, 6, 30, 7, 5, 9)),
                Value::String("say \"hi\"\n\\ é\u{1}".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            row.json,
            r#"{"RecordNo":-42,"Amount":1234567890123456.7891,"Rate":0.1,"Posted":true,"EntryDate":"2024-06-30T07:05:09Z","Memo":"say \"hi\"\n\\ é\u0001"}"#
        );
        // The JSON is valid and round-trips the decimal digits exactly.
        let v: serde_json::Value = serde_json::from_str(&row.json).unwrap();
        assert_eq!(v["Memo"], "say \"hi\"\n\\ é\u{1}");
        assert!(row.truncated.is_empty());
    }

    #[test]
    fn nulls_are_omitted_and_ints_fit_numeric_columns() {
        let row = encode_row(
            &table(),
            &[
                Value::Null,
                Value::Int64(5),
                Value::Int64(7),
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        )
        .unwrap();
        assert_eq!(row.json, r#"{"Amount":5,"Rate":7}"#);
        let all_null = encode_row(
            &table(),
            &[
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        );
        assert_eq!(all_null.unwrap().json, "{}");
    }

    #[test]
    fn refuses_values_the_service_would_corrupt() {
        let t = table();
        let row = |i: usize, v: Value| {
            let mut vals = vec![Value::Null; 6];
            vals[i] = v;
            encode_row(&t, &vals)
        };
        assert!(matches!(
            row(0, Value::Int64(i64::MAX)),
            Err(ValueError::Int64Extreme { .. })
        ));
        assert!(matches!(
            row(0, Value::Int64(i64::MIN)),
            Err(ValueError::Int64Extreme { .. })
        ));
        for f in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
        ] {
            assert!(
                matches!(row(2, Value::Double(f)), Err(ValueError::NotFinite { .. })),
                "{f}"
            );
        }
        assert!(matches!(
            row(1, Value::Decimal(Decimal::from_str("0.00001").unwrap())),
            Err(ValueError::DecimalScale { .. })
        ));
        // Trailing zeros beyond scale 4 are fine: the value is exact at scale 4.
        assert_eq!(
            row(1, Value::Decimal(Decimal::from_str("1.500000").unwrap()))
                .unwrap()
                .json,
            r#"{"Amount":1.500000}"#
        );
        assert!(matches!(
            row(4, Value::DateTime(dt(1899, 12, 31, 0, 0, 0))),
            Err(ValueError::DateOutOfRange { .. })
        ));
        let e = row(3, Value::String("yes".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column 'Posted' is Boolean but the value is a String: fix the field mapping"
        );
        assert!(matches!(
            encode_row(&t, &[Value::Null]),
            Err(ValueError::Arity {
                columns: 6,
                values: 1,
                ..
            })
        ));
    }

    #[test]
    fn long_strings_are_cut_at_4000_utf16_units_and_reported() {
        let t = TableSchema::new(
            "T",
            vec![
                Column::new("s", DataType::String),
                Column::new("k", DataType::String),
            ],
        );
        // 3,999 ASCII + one astral char (2 units) = 4,001 units: the astral char must go whole.
        let s = format!("{}😀tail", "a".repeat(3_999));
        let row = encode_row(&t, &[Value::String(s), Value::String("short".into())]).unwrap();
        assert_eq!(row.truncated, vec!["s".to_string()]);
        let v: serde_json::Value = serde_json::from_str(&row.json).unwrap();
        assert_eq!(v["s"].as_str().unwrap(), "a".repeat(3_999));
        // Exactly 4,000 units of multi-byte text is kept whole.
        let s = "é".repeat(4_000);
        let row = encode_row(&t, &[Value::String(s.clone()), Value::Null]).unwrap();
        assert!(row.truncated.is_empty());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&row.json).unwrap()["s"],
            s.as_str()
        );
    }

    #[test]
    fn datetime_drops_subseconds_and_pads() {
        let d = NaiveDate::from_ymd_opt(1900, 1, 2)
            .unwrap()
            .and_hms_milli_opt(3, 4, 5, 999)
            .unwrap();
        let t = TableSchema::new("T", vec![Column::new("d", DataType::DateTime)]);
        assert_eq!(
            encode_row(&t, &[Value::DateTime(d)]).unwrap().json,
            r#"{"d":"1900-01-02T03:04:05Z"}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips_through_the_encoder(s in "\\PC{0,50}|[\\x00-\\x1f\"\\\\]{0,10}") {
            let mut out = String::new();
            write_json_string(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }

        #[test]
        fn any_double_round_trips(f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assume!(f != f64::MAX && f != f64::MIN);
            let t = TableSchema::new("T", vec![Column::new("x", DataType::Double)]);
            let row = encode_row(&t, &[Value::Double(f)]).unwrap();
            let v: serde_json::Value = serde_json::from_str(&row.json).unwrap();
            proptest::prop_assert_eq!(v["x"].as_f64().unwrap(), f);
        }
    }
}
