//! The push-dataset model (datasets, tables, columns, measures, relationships) and its validation against the
//! service's shape limits, so a schema the service would refuse is caught with a message before it is sent.
//!
//! The serde shapes match the swagger definitions `CreateDatasetRequest`, `Table`, `Column`, `Measure` and
//! `Relationship` (property names are case-sensitive on the service: `dataType`, never `datatype`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Service limits on the shape of a push dataset (reference §5.1).
pub const MAX_TABLES: usize = 75;
/// Maximum columns per table.
pub const MAX_COLUMNS: usize = 75;
/// Maximum relationships per dataset.
pub const MAX_RELATIONSHIPS: usize = 75;
/// Maximum table/relationship name length (swagger pattern `{1,100}`), counted in UTF-16 units.
pub const MAX_TABLE_NAME_LEN: usize = 100;

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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A table with one column of each type, shared with the encoder's tests.
    pub(in crate::schema) fn table() -> TableSchema {
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
}
