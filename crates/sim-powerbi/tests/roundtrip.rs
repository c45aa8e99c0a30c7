//! Property: whatever valid rows a client POSTs come back exactly (order, escapes, unicode, nulls), and
//! executeQueries' COUNTROWS and SUM over a Decimal column agree exactly with the client's own arithmetic.

mod common;

use std::str::FromStr;

use common::{config, start};
use ml_sim_powerbi::DEFAULT_WORKSPACE;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
struct Row {
    id: i64,
    amount: Option<Decimal>,
    memo: Option<String>,
    posted: bool,
}

fn row() -> impl Strategy<Value = Row> {
    (
        (i64::MIN + 1)..i64::MAX,
        proptest::option::of((-10_000_000_000_000i64..10_000_000_000_000i64, 0u32..=4)),
        proptest::option::of("\\PC{0,40}"),
        any::<bool>(),
    )
        .prop_map(|(id, amount, memo, posted)| Row {
            id,
            amount: amount.map(|(m, scale)| Decimal::new(m, scale)),
            memo,
            posted,
        })
}

/// The row as a client would encode it: Decimal as a JSON number written from its exact text.
fn encode(r: &Row) -> String {
    let amount = r
        .amount
        .map_or_else(|| "null".to_owned(), |d| d.to_string());
    let memo = serde_json::to_string(&r.memo).unwrap();
    format!(
        r#"{{"Id":{},"Amount":{amount},"Memo":{memo},"Posted":{}}}"#,
        r.id, r.posted
    )
}

#[test]
fn pushed_rows_read_back_exactly_and_sum_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(start(config()));
    let ds = rt.block_on(h.create_dataset("D", "None"));
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(row(), 0..40), |rows| {
            rt.block_on(async {
                assert_eq!(
                    h.delete(&h.rows_url(&ds, "GL")).await.status(),
                    StatusCode::OK
                );
                let body = format!(
                    r#"{{"rows":[{}]}}"#,
                    rows.iter().map(encode).collect::<Vec<_>>().join(",")
                );
                let r = h.post_raw(&h.rows_url(&ds, "GL"), body).await;
                prop_assert_eq!(r.status(), StatusCode::OK);
                let stored = h.sim.table_rows(DEFAULT_WORKSPACE, &ds, "GL").unwrap();
                let expected: Vec<Map<String, Value>> = rows
                    .iter()
                    .map(|r| serde_json::from_str(&encode(r)).unwrap())
                    .collect();
                prop_assert_eq!(&stored, &expected);

                let (status, text) = h
                    .query(
                        &ds,
                        "EVALUATE ROW(\"n\", COUNTROWS('GL'), \"s\", SUM('GL'[Amount]))",
                    )
                    .await;
                prop_assert_eq!(status, StatusCode::OK);
                // Parse the number text exactly (serde_json would go through f64).
                let text = text.trim_start_matches('\u{FEFF}');
                let n = if rows.is_empty() {
                    "null".to_owned()
                } else {
                    rows.len().to_string()
                };
                prop_assert!(text.contains(&format!(r#""[n]":{n}"#)), "{}", text);
                let amounts: Vec<Decimal> = rows.iter().filter_map(|r| r.amount).collect();
                let s = text
                    .split(r#""[s]":"#)
                    .nth(1)
                    .and_then(|t| t.split('}').next())
                    .unwrap();
                if amounts.is_empty() {
                    prop_assert_eq!(s, "null");
                } else {
                    let sum: Decimal = amounts.iter().sum();
                    prop_assert_eq!(Decimal::from_str(s).unwrap(), sum);
                }
                Ok(())
            })
        })
        .unwrap();
}
