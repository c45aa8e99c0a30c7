//! Turns Intacct records (field, text) into typed Power BI rows.
//!
//! Pure: no I/O, no clock. Intacct renders every value as text in the API user's formatting (reference
//! §6.2: dates `MM/DD/YYYY`, timestamps `MM/DD/YYYY HH:MM:SS` in the user's zone, booleans `true`/`false`,
//! decimals with a dot and no separators). Anything that does not parse is an error naming the record and
//! the field, so a bad value stops that record loudly instead of landing as a wrong number.

use chrono::{FixedOffset, NaiveDateTime, TimeZone, Utc};
use ml_powerbi::schema::{DataType, Value};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::str::FromStr;

/// One column of a stream's table: where its value comes from and how it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The Intacct field (`VENDORID`, `DISPLAYCONTACT.EMAIL1`).
    pub field: String,
    /// The Power BI column name.
    pub column: String,
    pub data_type: DataType,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("record {key}: field {field} = {value:?} is not a valid {expected}")]
pub struct TransformError {
    pub key: String,
    pub field: String,
    pub value: String,
    pub expected: &'static str,
}

/// How the API user's timestamps are to be read (from `readUserFormatting`).
#[derive(Debug, Clone, Copy)]
pub struct TimeContext {
    pub user_offset: FixedOffset,
}

impl Default for TimeContext {
    fn default() -> Self {
        TimeContext {
            user_offset: FixedOffset::east_opt(0).expect("zero offset"),
        }
    }
}

/// Parses the `gmtoffset` of `readUserFormatting`: hours (`-8`, `5.5`) or `±HH:MM` / `±HHMM`.
pub fn parse_gmt_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.is_empty() {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'-' => (-1, &t[1..]),
        b'+' => (1, &t[1..]),
        _ => (1, t),
    };
    let seconds = if let Some((h, m)) = rest.split_once(':') {
        h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60
    } else if rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_digit()) {
        rest[..2].parse::<i32>().ok()? * 3600 + rest[2..].parse::<i32>().ok()? * 60
    } else {
        (rest.parse::<f64>().ok()? * 3600.0).round() as i32
    };
    FixedOffset::east_opt(sign * seconds)
}

/// Intacct's record timestamps are read where the gateway's text formats live (one place knows
/// `MM/DD/YYYY HH:MM:SS`).
pub use ml_intacct::protocol::values::parse_record_time as parse_intacct_datetime;

/// `YYYY-MM-DDTHH:MM:SS`, the form the store keeps cursors and modification times in (written by
/// hand for the same reason as [`parse_intacct_datetime`]; years outside 0..=9999 take chrono's way).
pub fn format_iso_seconds(dt: &NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let y = dt.year();
    if !(0..=9999).contains(&y) {
        return dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    }
    let mut s = String::with_capacity(19);
    let y = y as u32;
    for (sep, v) in [
        (None, y / 100),
        (None, y % 100),
        (Some('-'), dt.month()),
        (Some('-'), dt.day()),
        (Some('T'), dt.hour()),
        (Some(':'), dt.minute()),
        (Some(':'), dt.second()),
    ] {
        if let Some(c) = sep {
            s.push(c);
        }
        s.push((b'0' + (v / 10) as u8) as char);
        s.push((b'0' + (v % 10) as u8) as char);
    }
    s
}

/// Reads back what [`format_iso_seconds`] wrote (cursors and modification times in the store).
pub fn parse_iso_seconds(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok()
}

/// Converts one field's text to a typed value. Empty text is NULL whatever the type.
pub fn convert(text: &str, data_type: DataType, time: &TimeContext) -> Result<Value, &'static str> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Value::Null);
    }
    match data_type {
        DataType::String => Ok(Value::String(text.to_string())),
        DataType::Int64 => t
            .parse::<i64>()
            .or_else(|_| {
                // Intacct sometimes renders INTEGER fields as decimal strings ("12.00").
                Decimal::from_str(t)
                    .ok()
                    .filter(|d| d.fract().is_zero())
                    .and_then(|d| i64::try_from(d).ok())
                    .ok_or(())
            })
            .map(Value::Int64)
            .map_err(|_| "whole number"),
        DataType::Decimal => Decimal::from_str(t)
            .map(Value::Decimal)
            .map_err(|_| "decimal number"),
        DataType::Double => t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Double)
            .ok_or("number"),
        DataType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "t" => Ok(Value::Boolean(true)),
            "false" | "f" => Ok(Value::Boolean(false)),
            _ => Err("boolean (true/false)"),
        },
        DataType::DateTime => {
            let has_time = t.contains(':');
            let local = parse_intacct_datetime(t)
                .ok_or("date (MM/DD/YYYY) or timestamp (MM/DD/YYYY HH:MM:SS)")?;
            if has_time {
                // Timestamps are the user's wall clock: send them to Power BI in UTC.
                let utc = time
                    .user_offset
                    .from_local_datetime(&local)
                    .single()
                    .map(|dt| dt.with_timezone(&Utc).naive_utc())
                    .ok_or("timestamp")?;
                Ok(Value::DateTime(utc))
            } else {
                // A date has no time zone in Intacct; midnight as it is.
                Ok(Value::DateTime(local))
            }
        }
    }
}

/// A transformed record, ready to stage.
#[derive(Debug, Clone)]
pub struct TypedRecord {
    pub key: String,
    pub when_modified: Option<NaiveDateTime>,
    pub source_hash: String,
    pub values: Vec<Value>,
}

/// Hash of the source record's selected fields: unchanged records are recognised by it.
pub fn source_hash<'a>(fields: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (name, value) in fields {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        h.update([0]);
    }
    lower_hex(&h.finalize())
}

/// Lower-case hex, as `hex::encode` writes it, without its per-character iterator.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Converts one record given as a field lookup.
pub fn transform<'a>(
    key: String,
    get: impl Fn(&str) -> Option<&'a str>,
    columns: &[ColumnSpec],
    time: &TimeContext,
) -> Result<TypedRecord, TransformError> {
    let texts: Vec<&str> = columns
        .iter()
        .map(|c| get(&c.field).unwrap_or(""))
        .collect();
    transform_texts(key, &texts, get("WHENMODIFIED"), columns, time)
}

/// Converts one record given as the text of each column (`texts[i]` for `columns[i]`, `""` when
/// absent) and its WHENMODIFIED. Same result as [`transform`]; callers that resolved the columns'
/// positions once per page use it to skip a name lookup per field.
pub fn transform_texts(
    key: String,
    texts: &[&str],
    when_modified: Option<&str>,
    columns: &[ColumnSpec],
    time: &TimeContext,
) -> Result<TypedRecord, TransformError> {
    let mut values = Vec::with_capacity(columns.len());
    for (c, text) in columns.iter().zip(texts) {
        let v = convert(text, c.data_type, time).map_err(|expected| TransformError {
            key: key.clone(),
            field: c.field.clone(),
            value: text.chars().take(80).collect(),
            expected,
        })?;
        values.push(v);
    }
    let when_modified = when_modified.and_then(parse_intacct_datetime);
    let source_hash = source_hash(
        columns
            .iter()
            .zip(texts)
            .map(|(c, text)| (c.field.as_str(), *text)),
    );
    Ok(TypedRecord {
        key,
        when_modified,
        source_hash,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};

    fn col(field: &str, t: DataType) -> ColumnSpec {
        ColumnSpec {
            field: field.into(),
            column: field.into(),
            data_type: t,
        }
    }

    #[test]
    fn values_are_typed_exactly() {
        let tc = TimeContext::default();
        assert_eq!(
            convert("1234.5678", DataType::Decimal, &tc),
            Ok(Value::Decimal(Decimal::from_str("1234.5678").unwrap()))
        );
        assert_eq!(convert("12.00", DataType::Int64, &tc), Ok(Value::Int64(12)));
        assert_eq!(convert("", DataType::Int64, &tc), Ok(Value::Null));
        assert_eq!(
            convert("true", DataType::Boolean, &tc),
            Ok(Value::Boolean(true))
        );
        assert!(convert("12,000.00", DataType::Decimal, &tc).is_err());
        assert!(convert("NaN", DataType::Double, &tc).is_err());
        assert!(convert("31/12/2024", DataType::DateTime, &tc).is_err());
    }

    #[test]
    fn timestamps_move_to_utc_and_dates_stay_midnight() {
        let tc = TimeContext {
            user_offset: FixedOffset::west_opt(6 * 3600).unwrap(),
        };
        let ts = convert("07/24/2017 15:19:46", DataType::DateTime, &tc).unwrap();
        assert_eq!(
            ts,
            Value::DateTime(
                NaiveDateTime::parse_from_str("2017-07-24 21:19:46", "%Y-%m-%d %H:%M:%S").unwrap()
            )
        );
        let d = convert("07/24/2017", DataType::DateTime, &tc).unwrap();
        assert_eq!(
            d,
            Value::DateTime(
                NaiveDate::from_ymd_opt(2017, 7, 24)
                    .unwrap()
                    .and_time(NaiveTime::MIN)
            )
        );
    }

    #[test]
    fn gmt_offsets_in_every_form() {
        assert_eq!(parse_gmt_offset("-8"), FixedOffset::west_opt(8 * 3600));
        assert_eq!(
            parse_gmt_offset("+05:30"),
            FixedOffset::east_opt(5 * 3600 + 1800)
        );
        assert_eq!(
            parse_gmt_offset("5.5"),
            FixedOffset::east_opt(5 * 3600 + 1800)
        );
        assert_eq!(parse_gmt_offset("-0700"), FixedOffset::west_opt(7 * 3600));
        assert_eq!(parse_gmt_offset(""), FixedOffset::east_opt(0));
        assert_eq!(parse_gmt_offset("PST"), None);
    }

    #[test]
    fn a_bad_value_names_record_and_field() {
        let cols = [
            col("RECORDNO", DataType::Int64),
            col("TOTALDUE", DataType::Decimal),
        ];
        let rec = [("RECORDNO", "7"), ("TOTALDUE", "abc")];
        let get = |f: &str| rec.iter().find(|(k, _)| *k == f).map(|(_, v)| *v);
        let err = transform("7".into(), get, &cols, &TimeContext::default()).unwrap_err();
        assert_eq!(err.field, "TOTALDUE");
        assert!(err.to_string().contains("record 7"));
    }

    #[test]
    fn hand_parsed_and_formatted_times_match_chrono() {
        use ml_intacct::protocol::values::parse_fixed_time as parse_fixed_datetime;
        for text in [
            "07/24/2017 15:19:46",
            "12/31/1999 23:59:59",
            "02/29/2024",
            "01/01/0001 00:00:00",
        ] {
            let fast = parse_fixed_datetime(text.as_bytes());
            let slow = NaiveDateTime::parse_from_str(text, "%m/%d/%Y %H:%M:%S")
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(text, "%m/%d/%Y")
                        .ok()
                        .map(|d| d.and_time(NaiveTime::MIN))
                });
            assert_eq!(fast, slow, "{text}");
            let dt = fast.unwrap();
            assert_eq!(
                format_iso_seconds(&dt),
                dt.format("%Y-%m-%dT%H:%M:%S").to_string()
            );
        }
        // Not the exact form: the general parser decides (and still rejects nonsense).
        for text in [
            "02/30/2024",
            "7/4/2017",
            "24/07/2017 15:19:46",
            "07/24/2017T15:19:46",
        ] {
            assert_eq!(parse_fixed_datetime(text.as_bytes()), None, "{text}");
        }
        assert_eq!(parse_intacct_datetime("02/30/2024"), None);
        assert_eq!(
            parse_intacct_datetime(" 7/4/2017 "),
            NaiveDate::from_ymd_opt(2017, 7, 4).map(|d| d.and_time(NaiveTime::MIN))
        );
    }

    #[test]
    fn positional_and_named_transforms_agree() {
        let cols = [
            col("RECORDNO", DataType::Int64),
            col("NAME", DataType::String),
            col("WHENMODIFIED", DataType::DateTime),
        ];
        let rec = [
            ("RECORDNO", "7"),
            ("NAME", "Acme"),
            ("WHENMODIFIED", "07/24/2017 15:19:46"),
        ];
        let get = |f: &str| rec.iter().find(|(k, _)| *k == f).map(|(_, v)| *v);
        let tc = TimeContext::default();
        let a = transform("7".into(), get, &cols, &tc).unwrap();
        let b = transform_texts(
            "7".into(),
            &["7", "Acme", "07/24/2017 15:19:46"],
            Some("07/24/2017 15:19:46"),
            &cols,
            &tc,
        )
        .unwrap();
        assert_eq!(a.values, b.values);
        assert_eq!(a.source_hash, b.source_hash);
        assert_eq!(a.when_modified, b.when_modified);
        assert_eq!(
            a.source_hash,
            hex::encode(Sha256::digest(
                b"RECORDNO\x007\x00NAME\x00Acme\x00WHENMODIFIED\x0007/24/2017 15:19:46\x00"
            ))
        );
    }

    #[test]
    fn the_hash_changes_with_any_selected_field() {
        let a = source_hash([("A", "1"), ("B", "2")].into_iter());
        let b = source_hash([("A", "1"), ("B", "3")].into_iter());
        let c = source_hash([("A", "12"), ("B", "")].into_iter());
        let d = source_hash([("A", "1"), ("B", "2")].into_iter());
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, d);
    }
}
