//! The DAX subset executeQueries understands: enough for a connector to verify what it pushed.
//!
//! ```text
//! query   := EVALUATE table
//! table   := ROW("name", scalar [, "name", scalar]...) | { scalar } | TOPN(n, tref [, colref [, ASC|DESC]]...) | tref
//! scalar  := COUNTROWS(tref) | SUM|MIN|MAX|COUNT|DISTINCTCOUNT(colref) | number
//! tref    := 'Quoted name' | Name          colref := tref[Column]
//! ```
//! Function names and table names are case-insensitive, as in DAX. Blank results (COUNTROWS of an empty table,
//! SUM of no values) are omitted from the row unless `includeNulls` is set, like the service. No DAX crate exists
//! for Rust, hence the small hand-written parser.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::schema::parse_datetime;
use crate::state::{DataType, Dataset, Table};

/// A DAX failure, rendered as the service's 400 DatasetExecuteQueriesError.
#[derive(Debug, PartialEq)]
pub(crate) struct DaxError(pub(crate) String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Column(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, DaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, what: &str| DaxError(format!("Query (1, {}) {what}", pos + 1));
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => out.push((Tok::LParen, start)),
            ')' => out.push((Tok::RParen, start)),
            '{' => out.push((Tok::LBrace, start)),
            '}' => out.push((Tok::RBrace, start)),
            ',' => out.push((Tok::Comma, start)),
            '\'' | '"' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(err(
                                start,
                                "The syntax is incorrect: unterminated name or string.",
                            ));
                        }
                        Some(&ch) if ch == close => {
                            // A doubled closing character is an escaped one.
                            if chars.get(i + 1) == Some(&close) {
                                s.push(close);
                                i += 2;
                            } else {
                                break;
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((
                    match c {
                        '\'' => Tok::Quoted(s),
                        '"' => Tok::Str(s),
                        _ => Tok::Column(s),
                    },
                    start,
                ));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut s = String::from(c);
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d.is_ascii_digit() || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Num(s), start));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars.get(i) {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Ident(s), start));
                continue;
            }
            other => {
                return Err(err(
                    start,
                    &format!("The syntax for '{other}' is incorrect."),
                ));
            }
        }
        i += 1;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Agg {
    Sum,
    Min,
    Max,
    Count,
    DistinctCount,
}

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    CountRows(String),
    Agg(Agg, String, String),
    Number(String),
}

#[derive(Debug, Clone, PartialEq)]
enum TableExpr {
    Row(Vec<(String, Scalar)>),
    Scan(String),
    TopN {
        n: usize,
        table: String,
        order: Vec<(String, String, bool)>,
    },
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn err(&self, what: &str) -> DaxError {
        let col = self.toks.get(self.pos).map_or(0, |(_, p)| *p) + 1;
        DaxError(format!("Query (1, {col}) {what}"))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }
    fn expect(&mut self, want: &Tok) -> Result<(), DaxError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("The syntax is incorrect: expected {want:?}.")))
        }
    }
    fn keyword(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(s)) => Some(s.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn query(&mut self) -> Result<TableExpr, DaxError> {
        if self.keyword().as_deref() != Some("EVALUATE") {
            return Err(self.err("The syntax is incorrect: a query starts with EVALUATE."));
        }
        self.pos += 1;
        let t = self.table()?;
        if self.pos < self.toks.len() {
            return Err(self.err("The syntax is incorrect: unexpected text after the query."));
        }
        Ok(t)
    }

    fn table_ref(&mut self) -> Result<String, DaxError> {
        match self.next() {
            Some(Tok::Quoted(s)) | Some(Tok::Ident(s)) => Ok(s),
            _ => {
                self.pos -= 1;
                Err(self.err("The syntax is incorrect: a table name was expected."))
            }
        }
    }

    fn col_ref(&mut self) -> Result<(String, String), DaxError> {
        let table = self.table_ref()?;
        match self.next() {
            Some(Tok::Column(c)) => Ok((table, c)),
            _ => {
                self.pos -= 1;
                Err(self.err(
                    "The syntax is incorrect: a column reference 'Table'[Column] was expected.",
                ))
            }
        }
    }

    fn table(&mut self) -> Result<TableExpr, DaxError> {
        if self.peek() == Some(&Tok::LBrace) {
            self.pos += 1;
            let s = self.scalar()?;
            self.expect(&Tok::RBrace)?;
            return Ok(TableExpr::Row(vec![("Value".to_owned(), s)]));
        }
        let kw = self.keyword();
        let is_call = matches!(self.toks.get(self.pos + 1), Some((Tok::LParen, _)));
        match kw.as_deref() {
            Some("ROW") if is_call => {
                self.pos += 2;
                let mut cols = Vec::new();
                loop {
                    let name = match self.next() {
                        Some(Tok::Str(s)) => s,
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("ROW expects a column name string."));
                        }
                    };
                    self.expect(&Tok::Comma)?;
                    cols.push((name, self.scalar()?));
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("The syntax is incorrect: expected ',' or ')'."));
                        }
                    }
                }
                Ok(TableExpr::Row(cols))
            }
            Some("TOPN") if is_call => {
                self.pos += 2;
                let n = match self.next() {
                    Some(Tok::Num(n)) => n
                        .parse::<usize>()
                        .map_err(|_| self.err("TOPN expects a whole number."))?,
                    _ => {
                        self.pos -= 1;
                        return Err(self.err("TOPN expects a number of rows."));
                    }
                };
                self.expect(&Tok::Comma)?;
                let table = self.table_ref()?;
                let mut order = Vec::new();
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    let (t, c) = self.col_ref()?;
                    // DAX's TOPN orders descending unless told otherwise.
                    let mut asc = false;
                    if self.peek() == Some(&Tok::Comma)
                        && let Some((Tok::Ident(k), _)) = self.toks.get(self.pos + 1)
                        && matches!(k.to_ascii_uppercase().as_str(), "ASC" | "DESC")
                    {
                        asc = k.eq_ignore_ascii_case("ASC");
                        self.pos += 2;
                    }
                    order.push((t, c, asc));
                }
                self.expect(&Tok::RParen)?;
                Ok(TableExpr::TopN { n, table, order })
            }
            _ if is_call => Err(self.err(&format!(
                "The function '{}' is not supported by the simulator.",
                kw.unwrap_or_default()
            ))),
            _ => Ok(TableExpr::Scan(self.table_ref()?)),
        }
    }

    fn scalar(&mut self) -> Result<Scalar, DaxError> {
        if let Some(Tok::Num(n)) = self.peek() {
            let d =
                Decimal::from_str(n).map_err(|_| self.err(&format!("'{n}' is not a number.")))?;
            self.pos += 1;
            return Ok(Scalar::Number(d.normalize().to_string()));
        }
        let kw = self
            .keyword()
            .ok_or_else(|| self.err("An expression was expected."))?;
        self.pos += 1;
        self.expect(&Tok::LParen)?;
        let s = match kw.as_str() {
            "COUNTROWS" => Scalar::CountRows(self.table_ref()?),
            "SUM" | "MIN" | "MAX" | "COUNT" | "DISTINCTCOUNT" => {
                let agg = match kw.as_str() {
                    "SUM" => Agg::Sum,
                    "MIN" => Agg::Min,
                    "MAX" => Agg::Max,
                    "COUNT" => Agg::Count,
                    _ => Agg::DistinctCount,
                };
                let (t, c) = self.col_ref()?;
                Scalar::Agg(agg, t, c)
            }
            other => {
                self.pos -= 2;
                return Err(self.err(&format!(
                    "The function '{other}' is not supported by the simulator."
                )));
            }
        };
        self.expect(&Tok::RParen)?;
        Ok(s)
    }
}

/// One result row: (key, JSON text of the value, or None for blank).
type OutRow = Vec<(String, Option<String>)>;

/// Runs `query` against `dataset`; returns the `rows` array's JSON text and, when truncated, an error message.
pub(crate) fn execute(
    query: &str,
    dataset: &Dataset,
    include_nulls: bool,
    max_rows: usize,
) -> Result<(String, Option<String>), DaxError> {
    let toks = lex(query)?;
    let expr = Parser { toks, pos: 0 }.query()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Pacing;
    use crate::state::{ColumnDef, DatasetKind};
    use std::collections::VecDeque;
    use std::sync::Arc;

    fn dataset(rows: &[&str]) -> Dataset {
        let col = |n: &str, t| ColumnDef {
            name: n.into(),
            data_type: t,
            raw: Value::Null,
        };
        Dataset {
            id: "d".into(),
            name: "D".into(),
            kind: DatasetKind::Import,
            created: chrono::Utc::now(),
            configured_by: String::new(),
            tables: vec![Table {
                name: "GL Entry".into(),
                columns: Arc::new(vec![
                    col("Id", DataType::Int64),
                    col("Amount", DataType::Decimal),
                    col("Rate", DataType::Double),
                    col("When", DataType::DateTime),
                ]),
                raw: Value::Null,
                rows: rows
                    .iter()
                    .map(|r| (*r).into())
                    .collect::<VecDeque<Box<str>>>(),
            }],
            pacing: Pacing::default(),
        }
    }

    #[test]
    fn countrows_sum_and_blank() {
        let ds = dataset(&[
            r#"{"Id":1,"Amount":0.1,"Rate":0.5,"When":"2024-06-30T00:00:00Z"}"#,
            r#"{"Id":2,"Amount":0.2,"Rate":0.25}"#,
            r#"{"Id":3,"Amount":"-10.0001"}"#,
        ]);
        let (rows, _) = execute(r#"EVALUATE ROW("n", COUNTROWS('GL Entry'), "s", SUM('GL Entry'[Amount]), "i", sum('gl entry'[Id]), "r", SUM('GL Entry'[Rate]))"#, &ds, false, 100_000)
        .unwrap();
        assert_eq!(rows, r#"[{"[n]":3,"[s]":-9.7001,"[i]":6,"[r]":0.75}]"#);
        let empty = dataset(&[]);
        let (rows, _) = execute(
            "EVALUATE ROW(\"n\", COUNTROWS('GL Entry'))",
            &empty,
            false,
            100_000,
        )
        .unwrap();
        assert_eq!(rows, "[{}]");
        let (rows, _) = execute(
            "EVALUATE ROW(\"n\", COUNTROWS('GL Entry'))",
            &empty,
            true,
            100_000,
        )
        .unwrap();
        assert_eq!(rows, r#"[{"[n]":null}]"#);
    }

    #[test]
    fn topn_scan_and_errors() {
        let ds = dataset(&[
            r#"{"Id":1,"When":"2024-06-30T00:00:00Z"}"#,
            r#"{"Id":5}"#,
            r#"{"Id":3}"#,
        ]);
        let (rows, _) = execute("EVALUATE TOPN(2, 'GL Entry')", &ds, false, 100_000).unwrap();
        assert_eq!(
            rows,
            r#"[{"GL Entry[Id]":1,"GL Entry[When]":"2024-06-30T00:00:00"},{"GL Entry[Id]":5}]"#
        );
        let (rows, _) = execute(
            "EVALUATE TOPN(2, 'GL Entry', 'GL Entry'[Id], ASC)",
            &ds,
            false,
            100_000,
        )
        .unwrap();
        assert_eq!(
            rows,
            r#"[{"GL Entry[Id]":1,"GL Entry[When]":"2024-06-30T00:00:00"},{"GL Entry[Id]":3}]"#
        );
        let (rows, _) = execute(
            "EVALUATE TOPN(1, 'GL Entry', 'GL Entry'[Id])",
            &ds,
            false,
            100_000,
        )
        .unwrap();
        assert_eq!(rows, r#"[{"GL Entry[Id]":5}]"#);
        let (rows, _) = execute("EVALUATE ROW(\"one\", 1.50)", &ds, false, 100_000).unwrap();
        assert_eq!(rows, r#"[{"[one]":1.5}]"#);
        assert!(execute("EVALUATE ROW(\"bad\", 1.2.3)", &ds, false, 100_000).is_err());
        let (rows, _) = execute("EVALUATE {MAX('GL Entry'[Id])}", &ds, false, 100_000).unwrap();
        assert_eq!(rows, r#"[{"[Value]":5}]"#);
        assert!(execute("EVALUATE 'Nope'", &ds, false, 100_000).is_err());
        assert!(
            execute(
                "EVALUATE SUMMARIZECOLUMNS('GL Entry'[Id])",
                &ds,
                false,
                100_000
            )
            .is_err()
        );
        assert!(execute("SELECT * FROM x", &ds, false, 100_000).is_err());
        assert!(
            execute(
                "EVALUATE ROW(\"n\", COUNTROWS('GL Entry')",
                &ds,
                false,
                100_000
            )
            .is_err()
        );
    }

    #[test]
    fn aggregates_are_exact_beyond_f64_precision() {
        let ds = dataset(&[
            r#"{"Id":1,"Amount":12345678901234.5678,"When":"2024-01-02T00:00:00Z"}"#,
            r#"{"Id":1,"Amount":"12345678901234.5678","When":"2023-12-31T00:00:00Z"}"#,
            r#"{"Id":7,"Amount":null}"#,
        ]);
        let (rows, _) = execute("EVALUATE ROW(\"s\", SUM('GL Entry'[Amount]), \"c\", COUNT('GL Entry'[Amount]), \"d\", DISTINCTCOUNT('GL Entry'[Id]), \"lo\", MIN('GL Entry'[When]), \"hi\", MAX('GL Entry'[Id]))", &ds, false, 100_000)
        .unwrap();
        assert_eq!(
            rows,
            r#"[{"[s]":24691357802469.1356,"[c]":2,"[d]":2,"[lo]":"2023-12-31T00:00:00","[hi]":7}]"#
        );
    }

    #[test]
    fn big_results_are_truncated_with_an_error() {
        let ds = dataset(&[r#"{"Id":1}"#, r#"{"Id":2}"#, r#"{"Id":3}"#]);
        let (rows, err) = execute("EVALUATE 'GL Entry'", &ds, false, 2).unwrap();
        assert_eq!(rows, r#"[{"GL Entry[Id]":1},{"GL Entry[Id]":2}]"#);
        assert_eq!(err.as_deref(), Some("More than 2 rows in a query result"));
        let (_, err) = execute("EVALUATE 'GL Entry'", &ds, false, 3).unwrap();
        assert_eq!(err, None);
    }

    #[test]
    fn unquoted_table_names() {
        let mut ds = dataset(&[r#"{"Id":1}"#]);
        ds.tables[0].name = "GLEntry".into();
        let (rows, _) = execute(
            "evaluate row(\"n\", countrows(GLEntry))",
            &ds,
            false,
            100_000,
        )
        .unwrap();
        assert_eq!(rows, r#"[{"[n]":1}]"#);
        let (rows, _) =
            execute("EVALUATE ROW(\"s\", SUM(GLEntry[Id]))", &ds, false, 100_000).unwrap();
        assert_eq!(rows, r#"[{"[s]":1}]"#);
    }
}
