//! What Fabric's open mirroring does with a landing zone, per table folder:
//!
//! - reads `keyColumns` from `_metadata.json` (a folder without it waits; keys cannot change);
//! - processes data files named with a 20-digit sequence number strictly in order, from 1: a
//!   missing number stops the table there (`blocked`), and later files wait;
//! - ignores every name starting with `_` (uploads in progress, `_scratchPad`, processed-file folders);
//! - refuses a column whose type differs from the table's: the table goes to `Failed` with the
//!   error, and nothing more of it is replicated until the folder is re-created;
//! - merges each file's rows by key, honouring `__rowMarker__` (the last column): 0 insert,
//!   1 update, 2 delete, 4 upsert.
//!
//! A file is read whole before any of its rows is applied, so a refused file changes nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use parquet::basic::{ConvertedType, LogicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Value, json};

use crate::state::{Shared, lock};
use crate::tables::{TableState, TableStatus};

const MARKER: &str = "__rowMarker__";

fn is_data_file(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".parquet")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

impl Shared {
    pub(crate) fn replicate(&self) {
        let _one_at_a_time = lock(&self.replicating);
        let lz = self.landing_zone_dir();
        let Ok(entries) = std::fs::read_dir(&lz) else {
            return;
        };
        let mut folders = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || !e.path().is_dir() {
                continue;
            }
            if let Some(schema) = name.strip_suffix(".schema") {
                for t in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    let tn = t.file_name().to_string_lossy().into_owned();
                    if !tn.starts_with('_') && t.path().is_dir() {
                        folders.push((format!("{schema}.{tn}"), t.path()));
                    }
                }
            } else {
                folders.push((name, e.path()));
            }
        }
        for (name, dir) in folders {
            let mut t = lock(&self.tables).get(&name).cloned().unwrap_or_default();
            replicate_table(&mut t, &dir);
            lock(&self.tables).insert(name, t);
        }
    }
}

fn replicate_table(t: &mut TableState, dir: &Path) {
    if t.status == TableStatus::Failed {
        return;
    }
    let meta = match std::fs::read(dir.join("_metadata.json")) {
        Ok(m) => m,
        Err(_) => return,
    };
    let keys: Vec<String> = match serde_json::from_slice::<Value>(&meta) {
        Ok(v) => v["keyColumns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => return fail(t, format!("_metadata.json is not valid JSON: {e}")),
    };
    if keys.is_empty() {
        return fail(
            t,
            "_metadata.json has no keyColumns: rows cannot be updated or deleted".into(),
        );
    }
    if t.status == TableStatus::Waiting {
        t.key_columns = keys;
        t.status = TableStatus::Running;
        t.next_file = 1;
    } else if t.key_columns != keys {
        return fail(
            t,
            format!(
                "keyColumns changed from {:?} to {keys:?}: keyColumns cannot change once set; re-create the table",
                t.key_columns
            ),
        );
    }
    let later: Vec<u64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| is_data_file(&e.file_name().to_string_lossy()))
        .collect();
    loop {
        let name = format!("{:020}.parquet", t.next_file);
        let path = dir.join(&name);
        if !path.is_file() {
            t.blocked = later
                .iter()
                .any(|n| *n > t.next_file)
                .then(|| format!("{name} is missing: later files wait until it arrives"));
            return;
        }
        match apply_file(t, &path) {
            Ok(()) => {
                t.processed_files.push(name);
                t.next_file += 1;
            }
            Err(e) => return fail(t, format!("{name}: {e}")),
        }
    }
}

fn fail(t: &mut TableState, error: String) {
    t.status = TableStatus::Failed;
    t.error = Some(error);
}

/// The column's type as the replicator compares it: physical type plus logical annotation.
fn column_type(c: &parquet::schema::types::ColumnDescriptor) -> String {
    let physical = format!("{}", c.physical_type());
    let logical = match c.logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => format!(
            "/TIMESTAMP({:?},{})",
            t.unit,
            if t.is_adjusted_to_u_t_c {
                "UTC"
            } else {
                "local"
            }
        ),
        Some(LogicalType::String) => "/STRING".into(),
        Some(LogicalType::Decimal(d)) => format!("/DECIMAL({},{})", d.precision, d.scale),
        Some(other) => format!("/{other:?}"),
        None => match c.converted_type() {
            ConvertedType::NONE => String::new(),
            ConvertedType::UTF8 => "/STRING".into(),
            other => format!("/{other}"),
        },
    };
    format!("{physical}{logical}")
}

fn field_value(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => json!(b),
        Field::Byte(v) => json!(v),
        Field::Short(v) => json!(v),
        Field::Int(v) => json!(v),
        Field::Long(v) => json!(v),
        Field::UByte(v) => json!(v),
        Field::UShort(v) => json!(v),
        Field::UInt(v) => json!(v),
        Field::ULong(v) => json!(v),
        Field::Float(v) => json!(v),
        Field::Double(v) => json!(v),
        Field::Str(s) => json!(s),
        Field::TimestampMicros(us) => chrono::DateTime::from_timestamp_micros(*us)
            .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .unwrap_or(Value::Null),
        Field::TimestampMillis(ms) => chrono::DateTime::from_timestamp_millis(*ms)
            .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
            .unwrap_or(Value::Null),
        other => json!(other.to_string()),
    }
}

fn apply_file(t: &mut TableState, path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let cols: Vec<(String, String)> = schema
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), column_type(c)))
        .collect();
    match cols.last() {
        Some((n, _)) if n == MARKER => {}
        _ => return Err(format!("the last column must be {MARKER}")),
    }
    let data_cols = &cols[..cols.len() - 1];
    for k in &t.key_columns {
        if !data_cols.iter().any(|(n, _)| n == k) {
            return Err(format!("key column {k} is missing"));
        }
    }
    for (name, ty) in data_cols {
        if let Some((_, known)) = t.columns.iter().find(|(n, _)| n == name)
            && known != ty
        {
            return Err(format!(
                "column {name} changed type from {known} to {ty}: replication of this table stopped; delete the table folder and create it again to change a column's type"
            ));
        }
    }
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
        let row = row.map_err(|e| e.to_string())?;
        let mut obj = BTreeMap::new();
        let mut marker = None;
        for (name, field) in row.get_column_iter() {
            if name == MARKER {
                marker = match field {
                    Field::Int(m) => Some(*m as i64),
                    Field::Long(m) => Some(*m),
                    _ => None,
                };
            } else {
                obj.insert(name.clone(), field_value(field));
            }
        }
        let marker = marker.ok_or_else(|| format!("a row's {MARKER} is not an integer"))?;
        if ![0, 1, 2, 4].contains(&marker) {
            return Err(format!("{MARKER} {marker} is not 0, 1, 2 or 4"));
        }
        let key: Vec<String> = t
            .key_columns
            .iter()
            .map(|k| match obj.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        rows.push((key.join("\u{1f}"), marker, obj));
    }
    for (name, ty) in data_cols {
        if !t.columns.iter().any(|(n, _)| n == name) {
            t.columns.push((name.clone(), ty.clone()));
        }
    }
    for (key, marker, obj) in rows {
        match marker {
            2 => {
                t.rows.remove(&key);
            }
            _ => {
                let existed = t.rows.insert(key, obj).is_some();
                if marker == 0 && existed {
                    t.duplicate_inserts += 1;
                }
                if marker == 1 && !existed {
                    t.updates_of_missing += 1;
                }
            }
        }
        t.rows_replicated += 1;
    }
    Ok(())
}
