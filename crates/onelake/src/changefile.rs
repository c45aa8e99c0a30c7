//! A change file: one Parquet file of typed columns with `__rowMarker__` last, as open mirroring
//! reads it (docs/fabric-open-mirroring.md).
//!
//! Types: `Int64` → INT64; `Double` → DOUBLE; `Boolean` → BOOLEAN; `String` → BYTE_ARRAY (STRING);
//! `Timestamp` → INT64 TIMESTAMP(MICROS, UTC). Every data column is OPTIONAL (a delete row carries
//! the key alone); the marker is a REQUIRED INT32. Decimals are written as DOUBLE by the caller:
//! Fabric's documented type list has no Decimal and whether it accepts Parquet DECIMAL is
//! unconfirmed, while Intacct's amounts (2 to 10 decimal places, well under 15 significant digits)
//! round-trip through a double exactly enough to print back the same digits.
//!
//! Written with the `parquet` crate's column writers (no arrow), one row group, Snappy.

use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::error::OneLakeError;

/// The last column of every change file.
pub const ROW_MARKER: &str = "__rowMarker__";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    Int64,
    Double,
    Boolean,
    String,
    /// UTC, microseconds.
    Timestamp,
}

/// What a row does to the mirrored table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowMarker {
    Insert = 0,
    Update = 1,
    Delete = 2,
    Upsert = 4,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int64(i64),
    Double(f64),
    Boolean(bool),
    String(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

/// Rows of a change file being built, column by column.
pub struct ChangeFile {
    columns: Vec<(String, ColumnKind)>,
    values: Vec<Vec<Value>>,
    markers: Vec<i32>,
}

impl ChangeFile {
    pub fn new(columns: Vec<(String, ColumnKind)>) -> Self {
        let n = columns.len();
        ChangeFile {
            columns,
            values: vec![Vec::new(); n],
            markers: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.markers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }

    /// Adds a row: one value per column, in column order.
    pub fn push(&mut self, row: Vec<Value>, marker: RowMarker) -> Result<(), OneLakeError> {
        if row.len() != self.columns.len() {
            return Err(OneLakeError::Parquet(format!(
                "a row of {} values for {} columns",
                row.len(),
                self.columns.len()
            )));
        }
        for ((v, (name, kind)), col) in row.into_iter().zip(&self.columns).zip(&mut self.values) {
            let fits = matches!(
                (&v, kind),
                (Value::Null, _)
                    | (Value::Int64(_), ColumnKind::Int64)
                    | (Value::Double(_), ColumnKind::Double)
                    | (Value::Boolean(_), ColumnKind::Boolean)
                    | (Value::String(_), ColumnKind::String)
                    | (Value::Timestamp(_), ColumnKind::Timestamp)
            );
            if !fits {
                return Err(OneLakeError::Parquet(format!(
                    "column {name} ({kind:?}) given {v:?}"
                )));
            }
            col.push(v);
        }
        self.markers.push(marker as i32);
        Ok(())
    }

    fn schema(&self) -> Result<Type, OneLakeError> {
        let p = |e: parquet::errors::ParquetError| OneLakeError::Parquet(e.to_string());
        let mut fields = Vec::with_capacity(self.columns.len() + 1);
        for (name, kind) in &self.columns {
            let (physical, logical) = match kind {
                ColumnKind::Int64 => (Physical::INT64, None),
                ColumnKind::Double => (Physical::DOUBLE, None),
                ColumnKind::Boolean => (Physical::BOOLEAN, None),
                ColumnKind::String => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                ColumnKind::Timestamp => (
                    Physical::INT64,
                    Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
                ),
            };
            fields.push(Arc::new(
                Type::primitive_type_builder(name, physical)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(logical)
                    .build()
                    .map_err(p)?,
            ));
        }
        fields.push(Arc::new(
            Type::primitive_type_builder(ROW_MARKER, Physical::INT32)
                .with_repetition(Repetition::REQUIRED)
                .build()
                .map_err(p)?,
        ));
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .map_err(p)
    }

    /// The file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, OneLakeError> {
        let p = |e: parquet::errors::ParquetError| OneLakeError::Parquet(e.to_string());
        let schema = Arc::new(self.schema()?);
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_created_by("ml-connector".into())
                .build(),
        );
        let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(p)?;
        let mut rg = writer.next_row_group().map_err(p)?;
        let mut data = self.values.into_iter();
        while let Some(mut col) = rg.next_column().map_err(p)? {
            match data.next() {
                Some(values) => {
                    let defs: Vec<i16> = values
                        .iter()
                        .map(|v| i16::from(*v != Value::Null))
                        .collect();
                    let w = &mut col;
                    let mut present = values.into_iter().filter(|v| *v != Value::Null).peekable();
                    match present.peek() {
                        None => {
                            // All null: any typed writer takes no values; the descriptor decides the type.
                            write_nulls(w, &defs).map_err(p)?;
                        }
                        Some(Value::Int64(_)) | Some(Value::Timestamp(_)) => {
                            let v: Vec<i64> = present
                                .map(|v| match v {
                                    Value::Int64(x) | Value::Timestamp(x) => x,
                                    _ => 0,
                                })
                                .collect();
                            w.typed::<Int64Type>()
                                .write_batch(&v, Some(&defs), None)
                                .map_err(p)?;
                        }
                        Some(Value::Double(_)) => {
                            let v: Vec<f64> = present
                                .map(|v| if let Value::Double(x) = v { x } else { 0.0 })
                                .collect();
                            w.typed::<DoubleType>()
                                .write_batch(&v, Some(&defs), None)
                                .map_err(p)?;
                        }
                        Some(Value::Boolean(_)) => {
                            let v: Vec<bool> =
                                present.map(|v| matches!(v, Value::Boolean(true))).collect();
                            w.typed::<BoolType>()
                                .write_batch(&v, Some(&defs), None)
                                .map_err(p)?;
                        }
                        Some(Value::String(_)) => {
                            let v: Vec<ByteArray> = present
                                .map(|v| {
                                    if let Value::String(s) = v {
                                        ByteArray::from(s.into_bytes())
                                    } else {
                                        ByteArray::from(Vec::new())
                                    }
                                })
                                .collect();
                            w.typed::<ByteArrayType>()
                                .write_batch(&v, Some(&defs), None)
                                .map_err(p)?;
                        }
                        Some(Value::Null) => unreachable!("nulls are filtered out"),
                    }
                }
                None => {
                    col.typed::<Int32Type>()
                        .write_batch(&self.markers, None, None)
                        .map_err(p)?;
                }
            }
            col.close().map_err(p)?;
        }
        rg.close().map_err(p)?;
        writer.into_inner().map_err(p)
    }
}

fn write_nulls(
    w: &mut parquet::file::writer::SerializedColumnWriter<'_>,
    defs: &[i16],
) -> Result<(), parquet::errors::ParquetError> {
    use parquet::column::writer::ColumnWriter;
    match w.untyped() {
        ColumnWriter::BoolColumnWriter(c) => c.write_batch(&[], Some(defs), None).map(drop),
        ColumnWriter::Int32ColumnWriter(c) => c.write_batch(&[], Some(defs), None).map(drop),
        ColumnWriter::Int64ColumnWriter(c) => c.write_batch(&[], Some(defs), None).map(drop),
        ColumnWriter::DoubleColumnWriter(c) => c.write_batch(&[], Some(defs), None).map(drop),
        ColumnWriter::ByteArrayColumnWriter(c) => c.write_batch(&[], Some(defs), None).map(drop),
        _ => Err(parquet::errors::ParquetError::General(
            "unexpected column type".into(),
        )),
    }
}
