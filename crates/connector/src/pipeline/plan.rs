//! A stream's plan: which Intacct fields to select, which Power BI columns they become, and their types.
//!
//! Built from the catalogue, the company's object definition (`lookup`), and the stream's configuration.
//! The plan is compared with the schema recorded at the last run to detect drift.

use std::collections::BTreeMap;

use ml_powerbi::schema::{Column, DataType, TableSchema};

use crate::catalogue::{self, StreamKind};
use crate::config::StreamConfig;
use crate::pipeline::transform::ColumnSpec;

/// The field list of an object as `lookup` reports it: field id → Intacct DATATYPE.
pub type FieldTypes = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct StreamPlan {
    pub object: String,
    pub table: String,
    pub kind: StreamKind,
    /// Intacct fields to select (always includes the key and WHENMODIFIED when the object has them).
    pub select: Vec<String>,
    pub columns: Vec<ColumnSpec>,
    /// The audit creation field by which never-modified records are found since the cursor
    /// (`catalogue::Entry::created_field`), when the company's definition has it; `None` reads
    /// them all each run (an object outside the catalogue, or a definition that could not be read).
    pub created_field: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error(
        "stream {object}: field {field} is not in the object's definition in this company; check the spelling, or ask the Intacct admin whether the field exists (custom fields need their integration name)"
    )]
    UnknownField { object: String, field: String },
    #[error(
        "stream {object}: {count} columns, but a Power BI table holds at most 75; list fewer fields"
    )]
    TooManyColumns { object: String, count: usize },
    #[error(
        "stream {object}: the column mapping names Power BI column {column:?}, which table {table:?} does not have (it has: {existing})"
    )]
    UnknownColumn {
        object: String,
        table: String,
        column: String,
        existing: String,
    },
}

/// Plans one stream. `lookup` is the company's definition of the object (None when it could not be read:
/// the catalogue's fields and types are used then).
pub fn plan_stream(
    stream: &StreamConfig,
    lookup: Option<&FieldTypes>,
) -> Result<StreamPlan, PlanError> {
    let entry = catalogue::entry(&stream.object);
    let mut wanted: Vec<(String, Option<DataType>)> = Vec::new();
    let all_fields = stream.fields.iter().any(|f| f == "*");
    if all_fields {
        if let Some(l) = lookup {
            wanted.extend(l.keys().map(|k| (k.clone(), None)));
        }
    } else if let Some(e) = entry {
        for (field, t) in e.fields {
            // Catalogue fields the company lacks are skipped: selecting them would fail the query.
            if lookup.is_none_or(|l| l.contains_key(*field)) {
                wanted.push((field.to_string(), Some(*t)));
            }
        }
    }
    let required_extra = stream
        .fields
        .iter()
        .filter(|f| *f != "*")
        .chain(stream.custom_fields.iter());
    for f in required_extra {
        if let Some(l) = lookup
            && !l.contains_key(f)
        {
            return Err(PlanError::UnknownField {
                object: stream.object.clone(),
                field: f.clone(),
            });
        }
        if !wanted.iter().any(|(w, _)| w == f) {
            wanted.push((f.clone(), None));
        }
    }
    if entry.is_none() && wanted.is_empty() {
        // A user-defined dimension without a field list: every field the definition has.
        if let Some(l) = lookup {
            wanted.extend(l.keys().map(|k| (k.clone(), None)));
        }
    }
    for key in ["RECORDNO", "WHENMODIFIED"] {
        let known = lookup.is_none_or(|l| l.contains_key(key));
        if stream.kind != StreamKind::Balances && known && !wanted.iter().any(|(w, _)| w == key) {
            wanted.insert(0, (key.to_string(), None));
        }
    }

    let mut columns = Vec::new();
    for (field, catalogue_type) in &wanted {
        let data_type = match (
            stream.column_types.get(field),
            lookup.and_then(|l| l.get(field)),
        ) {
            (Some(forced), _) => *forced,
            (None, Some(intacct_type)) => catalogue::column_type(intacct_type, field),
            (None, None) => catalogue_type.unwrap_or(DataType::String),
        };
        let column = if stream.column_map.is_empty() {
            field.clone()
        } else {
            match stream.column_map.get(field) {
                Some(c) => c.clone(),
                // With an explicit mapping, unmapped fields are selected (for keys and cursors) but not sent.
                None => continue,
            }
        };
        columns.push(ColumnSpec {
            field: field.clone(),
            column,
            data_type,
        });
    }
    if columns.len() > 75 {
        return Err(PlanError::TooManyColumns {
            object: stream.object.clone(),
            count: columns.len(),
        });
    }
    Ok(StreamPlan {
        object: stream.object.clone(),
        table: stream.table.clone(),
        kind: stream.kind,
        select: wanted.into_iter().map(|(f, _)| f).collect(),
        columns,
        created_field: entry
            .and_then(catalogue::Entry::created_field)
            .filter(|f| lookup.is_some_and(|l| l.contains_key(*f)))
            .map(str::to_string),
    })
}

impl StreamPlan {
    pub fn table_schema(&self) -> TableSchema {
        TableSchema {
            name: self.table.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| Column::new(c.column.clone(), c.data_type))
                .collect(),
            measures: Vec::new(),
            is_hidden: None,
            description: None,
        }
    }

    /// Columns that exist in the plan but not in `previous` (a recorded schema): schema drift.
    pub fn new_columns(&self, previous: &TableSchema) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !previous.columns.iter().any(|p| p.name == c.column))
            .map(|c| c.column.clone())
            .collect()
    }

    /// For a table someone else defined: every mapped column must exist there.
    pub fn check_against_existing(&self, existing: &TableSchema) -> Result<(), PlanError> {
        for c in &self.columns {
            if !existing.columns.iter().any(|e| e.name == c.column) {
                return Err(PlanError::UnknownColumn {
                    object: self.object.clone(),
                    table: existing.name.clone(),
                    column: c.column.clone(),
                    existing: existing
                        .columns
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeleteDetection, Mode, SchemaDrift};
    use std::time::Duration;

    fn stream(object: &str) -> StreamConfig {
        StreamConfig {
            object: object.into(),
            kind: catalogue::entry(object)
                .map(|e| e.kind)
                .unwrap_or(StreamKind::Dimension),
            table: catalogue::default_table_name(object),
            mode: Mode::Replace,
            fields: vec![],
            custom_fields: vec![],
            lookback: Duration::from_secs(0),
            schema_drift: SchemaDrift::AddColumn,
            deletes: DeleteDetection::Auto,
            key_compare_every: Duration::ZERO,
            column_map: BTreeMap::new(),
            column_types: BTreeMap::new(),
            manage_schema: true,
            periods: 12,
            periods_through: None,
            never_modified_full_every: Duration::from_secs(24 * 3600),
            open_periods: 2,
            closed_periods_every: Duration::from_secs(24 * 3600),
        }
    }

    fn lookup(fields: &[(&str, &str)]) -> FieldTypes {
        fields
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn catalogue_fields_are_intersected_with_lookup_and_typed_by_it() {
        let l = lookup(&[
            ("RECORDNO", "INTEGER"),
            ("VENDORID", "TEXT"),
            ("NAME", "TEXT"),
            ("TOTALDUE", "CURRENCY"),
            ("WHENMODIFIED", "TIMESTAMP"),
            ("VENDOR_TIER", "ENUM"),
        ]);
        let p = plan_stream(&stream("VENDOR"), Some(&l)).unwrap();
        assert_eq!(
            p.select,
            vec!["RECORDNO", "VENDORID", "NAME", "TOTALDUE", "WHENMODIFIED"]
        );
        assert_eq!(p.columns[3].data_type, DataType::Decimal);

        let mut s = stream("VENDOR");
        s.custom_fields = vec!["VENDOR_TIER".into()];
        let p = plan_stream(&s, Some(&l)).unwrap();
        assert_eq!(p.select.last().unwrap(), "VENDOR_TIER");

        s.custom_fields = vec!["NOPE".into()];
        assert!(matches!(
            plan_stream(&s, Some(&l)),
            Err(PlanError::UnknownField { .. })
        ));
    }

    #[test]
    fn a_column_mapping_sends_only_mapped_fields_and_checks_them() {
        let mut s = stream("VENDOR");
        s.column_map = [
            ("VENDORID".to_string(), "Vendor Id".to_string()),
            ("NAME".to_string(), "Vendor".to_string()),
        ]
        .into_iter()
        .collect();
        let p = plan_stream(&s, None).unwrap();
        assert!(p.select.contains(&"RECORDNO".to_string()));
        assert_eq!(
            p.columns
                .iter()
                .map(|c| c.column.as_str())
                .collect::<Vec<_>>(),
            vec!["Vendor Id", "Vendor"]
        );
        let existing = TableSchema {
            name: "Vendors".into(),
            columns: vec![Column::new("Vendor Id", DataType::String)],
            measures: vec![],
            is_hidden: None,
            description: None,
        };
        assert!(matches!(
            p.check_against_existing(&existing),
            Err(PlanError::UnknownColumn { .. })
        ));
    }
}
