//! Strict validation of push-dataset definitions (`CreateDatasetRequest`, `Table`) and of pushed row values.
//!
//! Like the service (an OData deserializer), property names are case-sensitive and an unknown property is an
//! error naming the service-side type; the first problem found is reported. Name rules are the swagger's
//! regular expressions, hand-coded as character predicates (no regex crate needed for two character classes).
//!
//! - `json`: reading a body as the service's deserializer does (exact property names, node kinds)
//! - `definition`: `CreateDatasetRequest`, `Table`, columns, measures and relationships
//! - `row`: the values of pushed rows against their table's columns

mod definition;
mod json;
mod row;

pub(crate) use definition::{validate_dataset, validate_table};
pub(crate) use json::SchemaError;
pub(crate) use row::{check_row, parse_datetime};
