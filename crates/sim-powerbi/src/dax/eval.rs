//! Evaluation of a parsed DAX query over a dataset's stored rows: table scans, TOPN, and aggregates
//! computed exactly (decimals) while reading only the member they need from each row.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::parse::{Agg, DaxError, Scalar, TableExpr, parse};
use crate::schema::parse_datetime;
use crate::state::{DataType, Dataset, Table};

/// One result row: (key, JSON text of the value, or None for blank).
type OutRow = Vec<(String, Option<String>)>;

/// Runs `query` against `dataset`; returns the `rows` array's JSON text and, when truncated, an error message.
pub(crate) fn execute(
    query: &str,
    dataset: &Dataset,
    include_nulls: bool,
    max_rows: usize,
) -> Result<(String, Option<String>), DaxError> {
    let expr = parse(query)?;
    let table = |name: &str| {
        dataset
            .table_ci(name)
            .ok_or_else(|| DaxError(format!("Cannot find table '{name}'.")))
    };
    let mut truncated = None;
    let rows: Vec<OutRow> = match expr {
        TableExpr::Row(cols) => {
            let mut row = Vec::new();
            for (name, s) in cols {
                let v = match s {
                    Scalar::Number(n) => Some(n),
                    Scalar::CountRows(t) => {
                        let n = table(&t)?.rows.len();
                        (n > 0).then(|| n.to_string())
                    }
                    Scalar::Agg(agg, t, c) => aggregate(table(&t)?, &c, agg)?,
                    Scalar::SumLen(t, c) => sum_len(table(&t)?, &c)?,
                };
                row.push((format!("[{name}]"), v));
            }
            vec![row]
        }
        TableExpr::Scan(t) => {
            let t = table(&t)?;
            // The service answers 200 with the first rows and an error when a result is too big.
            let mut rows = scan(t, t.rows.len().min(max_rows.saturating_add(1)));
            if rows.len() > max_rows {
                rows.truncate(max_rows);
                truncated = Some(format!("More than {max_rows} rows in a query result"));
            }
            rows
        }
        TableExpr::TopN {
            n,
            table: tn,
            order,
        } => {
            let t = table(&tn)?;
            if order.is_empty() {
                scan(t, n.min(max_rows))
            } else {
                top_n_ordered(t, n.min(max_rows), &order)?
            }
        }
    };
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        let mut first = true;
        for (k, v) in row {
            let text = match v {
                Some(t) => t.as_str(),
                None if include_nulls => "null",
                None => continue,
            };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&Value::String(k.clone()).to_string());
            out.push(':');
            out.push_str(text);
        }
        out.push('}');
    }
    out.push(']');
    Ok((out, truncated))
}

fn parse_row(raw: &str) -> Map<String, Value> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// One member of a stored row, without building the others: aggregates scan every row of big tables, and
/// skipping the other members (serde's `IgnoredAny`) makes that several times faster than a full parse.
fn member<'r>(raw: &'r str, name: &str) -> Option<&'r RawValue> {
    use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, Visitor};
    use std::fmt;

    struct Find<'n>(&'n str);
    struct KeyIs<'n>(&'n str);

    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<'de> Visitor<'de> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E: Error>(self, v: &str) -> Result<bool, E> {
            Ok(v == self.0)
        }
    }
    impl<'de> DeserializeSeed<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn deserialize<D: Deserializer<'de>>(
            self,
            d: D,
        ) -> Result<Option<&'de RawValue>, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a row object")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Option<&'de RawValue>, A::Error> {
            let mut found = None;
            while let Some(hit) = map.next_key_seed(KeyIs(self.0))? {
                if hit {
                    // Last one wins, as in a full parse into a map.
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    Find(name).deserialize(&mut de).ok().flatten()
}

/// A column value as DAX returns it: DateTime without zone, everything else as stored.
fn render(v: &Value, ty: DataType) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if ty == DataType::DateTime => parse_datetime(s)
            .map(|d| Value::String(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string()).to_string()),
        Value::String(s) if ty == DataType::Decimal => {
            Decimal::from_str(s).ok().map(|d| d.normalize().to_string())
        }
        other => Some(other.to_string()),
    }
}

fn scan(t: &Table, n: usize) -> Vec<OutRow> {
    t.rows
        .iter()
        .take(n)
        .map(|raw| out_row(t, &parse_row(raw)))
        .collect()
}

fn out_row(t: &Table, row: &Map<String, Value>) -> OutRow {
    t.columns
        .iter()
        .map(|c| {
            (
                format!("{}[{}]", t.name, c.name),
                row.get(&c.name).and_then(|v| render(v, c.data_type)),
            )
        })
        .collect()
}

fn column<'a>(
    t: &'a Table,
    table_name: &str,
    col: &str,
) -> Result<&'a crate::state::ColumnDef, DaxError> {
    if !t.name.eq_ignore_ascii_case(table_name) {
        return Err(DaxError(format!("Cannot find table '{table_name}'.")));
    }
    t.columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(col))
        .ok_or_else(|| DaxError(format!("Column '{col}' in table '{}' cannot be found or may not be used in this expression.", t.name)))
}

/// A comparable view of a value: numbers as Decimal (exact for what JSON text a client sends), else text.
#[derive(PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Debug)]
enum Key {
    Num(Decimal),
    Text(String),
}

fn key(v: &Value, ty: DataType) -> Option<Key> {
    match v {
        Value::Null => None,
        Value::Number(n) => {
            // f64 Display is the shortest text that round-trips, so "0.1" comes back as 0.1, not 0.1000000000000000055…
            let d = n.as_i64().map(Decimal::from).or_else(|| {
                n.as_f64()
                    .and_then(|f| Decimal::from_str(&f.to_string()).ok())
            })?;
            Some(Key::Num(d))
        }
        Value::String(s) if ty == DataType::Decimal => Decimal::from_str(s).ok().map(Key::Num),
        Value::String(s) if ty == DataType::DateTime => {
            parse_datetime(s).map(|d| Key::Text(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        }
        Value::Bool(b) => Some(Key::Num(Decimal::from(u8::from(*b)))),
        Value::String(s) => Some(Key::Text(s.clone())),
        _ => None,
    }
}

/// The exact decimal of a JSON number's text, or of a numeric JSON string (accepted for Decimal columns).
fn decimal_text(text: &str) -> Option<Decimal> {
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).ok()?;
        return Decimal::from_str(&s).ok();
    }
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// [`key`] computed from a member's JSON text.
fn key_text(text: &str, ty: DataType) -> Option<Key> {
    match text.as_bytes().first()? {
        b'-' | b'0'..=b'9' => decimal_text(text).map(Key::Num),
        b't' => Some(Key::Num(Decimal::ONE)),
        b'f' => Some(Key::Num(Decimal::ZERO)),
        _ => key(&serde_json::from_str(text).ok()?, ty),
    }
}

/// `SUMX(t, LEN(t[col]))`: DAX's LEN counts a text's characters as .NET does (UTF-16 code
/// units) and is 0 for a blank; SUMX over an empty table is blank.
fn sum_len(t: &Table, col: &str) -> Result<Option<String>, DaxError> {
    let c = column(t, &t.name, col)?;
    if c.data_type != DataType::String {
        return Err(DaxError(format!(
            "The simulator's LEN takes text columns; '{}' is {:?}.",
            c.name, c.data_type
        )));
    }
    if t.rows.is_empty() {
        return Ok(None);
    }
    let name = c.name.clone();
    let mut total: u64 = 0;
    for raw in &t.rows {
        if let Some(text) =
            member(raw, &name).and_then(|v| serde_json::from_str::<String>(v.get()).ok())
        {
            total += text.encode_utf16().count() as u64;
        }
    }
    Ok(Some(total.to_string()))
}

fn aggregate(t: &Table, col: &str, agg: Agg) -> Result<Option<String>, DaxError> {
    let c = column(t, &t.name, col)?;
    let ty = c.data_type;
    if agg == Agg::Sum && !matches!(ty, DataType::Int64 | DataType::Double | DataType::Decimal) {
        return Err(DaxError(format!(
            "The function SUM cannot work with values of type {ty:?}."
        )));
    }
    let name = c.name.clone();
    let mut count = 0u64;
    let mut int_sum: i128 = 0;
    let mut dec_sum = Decimal::ZERO;
    let mut f_sum = 0f64;
    let mut best: Option<(Key, &str)> = None;
    let mut distinct = HashSet::new();
    for raw in &t.rows {
        // Work on the member's JSON text: exact for decimals (no detour through f64) and cheap.
        let Some(text) = member(raw, &name)
            .map(RawValue::get)
            .filter(|t| *t != "null")
        else {
            continue;
        };
        count += 1;
        match agg {
            Agg::Sum => match ty {
                DataType::Int64 => int_sum += i128::from(text.parse::<i64>().unwrap_or(0)),
                DataType::Double => f_sum += text.parse::<f64>().unwrap_or(0.0),
                _ => {
                    if let Some(d) = decimal_text(text) {
                        dec_sum = dec_sum
                            .checked_add(d)
                            .ok_or_else(|| DaxError("Arithmetic overflow in SUM.".into()))?;
                    }
                }
            },
            Agg::Min | Agg::Max => {
                if let Some(k) = key_text(text, ty) {
                    let better = match &best {
                        None => true,
                        Some((b, _)) => {
                            let o = k.cmp(b);
                            (agg == Agg::Min && o == Ordering::Less)
                                || (agg == Agg::Max && o == Ordering::Greater)
                        }
                    };
                    if better {
                        best = Some((k, text));
                    }
                }
            }
            Agg::DistinctCount => {
                distinct.insert(key_text(text, ty));
            }
            Agg::Count => {}
        }
    }
    Ok(match agg {
        Agg::Count => (count > 0).then(|| count.to_string()),
        Agg::DistinctCount => (!distinct.is_empty()).then(|| distinct.len().to_string()),
        Agg::Min | Agg::Max => best
            .and_then(|(_, text)| serde_json::from_str::<Value>(text).ok())
            .and_then(|v| render(&v, ty)),
        Agg::Sum if count == 0 => None,
        Agg::Sum => Some(match ty {
            DataType::Int64 => int_sum.to_string(),
            DataType::Double => serde_json::Number::from_f64(f_sum)
                .map_or_else(|| "null".to_owned(), |n| n.to_string()),
            _ => dec_sum.normalize().to_string(),
        }),
    })
}

fn top_n_ordered(
    t: &Table,
    n: usize,
    order: &[(String, String, bool)],
) -> Result<Vec<OutRow>, DaxError> {
    let mut keys = Vec::new();
    for (tn, cn, asc) in order {
        let c = column(t, tn, cn)?;
        keys.push((c.name.clone(), c.data_type, *asc));
    }
    let mut rows: Vec<Map<String, Value>> = t.rows.iter().map(|r| parse_row(r)).collect();
    rows.sort_by(|a, b| {
        for (name, ty, asc) in &keys {
            let ka = a.get(name).and_then(|v| key(v, *ty));
            let kb = b.get(name).and_then(|v| key(v, *ty));
            let o = ka.cmp(&kb);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(rows.iter().take(n).map(|r| out_row(t, r)).collect())
}
