//! The DAX subset executeQueries understands: enough for a connector to verify what it pushed.
//!
//! ```text
//! query   := EVALUATE table
//! table   := ROW("name", scalar [, "name", scalar]...) | { scalar } | TOPN(n, tref [, colref [, ASC|DESC]]...) | tref
//! scalar  := COUNTROWS(tref) | SUM|MIN|MAX|COUNT|DISTINCTCOUNT(colref) | SUMX(tref, LEN(colref)) | number
//! tref    := 'Quoted name' | Name          colref := tref[Column]
//! ```
//! Function names and table names are case-insensitive, as in DAX. Blank results (COUNTROWS of an empty table,
//! SUM of no values) are omitted from the row unless `includeNulls` is set, like the service. No DAX crate exists
//! for Rust, hence the small hand-written parser.
//!
//! - `parse`: the lexer and the recursive-descent parser into a small expression tree
//! - `eval`: evaluation over the stored rows (exact decimal aggregates, TOPN ordering, the row cap)

mod eval;
mod parse;

pub(crate) use eval::execute;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Pacing;
    use crate::state::Dataset;
    use crate::state::{ColumnDef, DataType, DatasetKind, Table};
    use serde_json::Value;
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
                    col("Memo", DataType::String),
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
    fn sumx_of_len_totals_a_text_column_in_utf16_units() {
        let ds = dataset(&[
            r#"{"Id":1,"Memo":"abc"}"#,
            r#"{"Id":2,"Memo":"Zürich 😀"}"#,
            r#"{"Id":3}"#,
        ]);
        let (rows, _) = execute(
            "EVALUATE ROW(\"l\", SUMX('GL Entry', LEN('GL Entry'[Memo])))",
            &ds,
            false,
            100_000,
        )
        .unwrap();
        // "abc" 3 + "Zürich 😀" 9 (the emoji is two UTF-16 units) + blank 0.
        assert_eq!(rows, r#"[{"[l]":12}]"#);
        let err = execute(
            "EVALUATE ROW(\"l\", SUMX('GL Entry', LEN('GL Entry'[Amount])))",
            &ds,
            false,
            100_000,
        )
        .unwrap_err();
        assert!(err.0.contains("text columns"), "{}", err.0);
        let (rows, _) = execute(
            "EVALUATE ROW(\"l\", SUMX('GL Entry', LEN('GL Entry'[Memo])))",
            &dataset(&[]),
            false,
            100_000,
        )
        .unwrap();
        assert_eq!(rows, "[{}]");
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
