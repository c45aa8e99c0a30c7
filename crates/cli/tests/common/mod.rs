//! Shared set-up for the end-to-end tests: both simulators in-process, a fresh SQLite store, a connection
//! built from sealed credentials exactly as the CLI builds it, and an independent comparison of every
//! Power BI table with the Intacct simulator's source records.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use ml_connector::catalogue::StreamKind;
use ml_connector::config::{ConnectionConfig, Mode};
use ml_connector::pipeline::Connection;
use ml_sim_intacct as si;
use ml_sim_powerbi as sp;
use ml_store::crypto::MasterKey;
use rust_decimal::Decimal;

pub const DATASET: &str = "Sage Intacct";

pub struct World {
    pub intacct: Arc<si::Simulator>,
    pub powerbi: Arc<sp::Simulator>,
    pub store: Arc<dyn ml_store::Store>,
    pub key: MasterKey,
    pub dir: tempfile::TempDir,
    pub cfg: ConnectionConfig,
}

pub fn tiny_intacct() -> si::SimConfig {
    si::SimConfig {
        size: si::CompanySize::tiny(),
        ..Default::default()
    }
}

impl World {
    pub async fn start(intacct_cfg: si::SimConfig) -> World {
        Self::start_with(intacct_cfg, sp::SimConfig::default()).await
    }

    pub async fn start_with(intacct_cfg: si::SimConfig, powerbi_cfg: sp::SimConfig) -> World {
        let intacct = si::Simulator::start(intacct_cfg)
            .await
            .expect("intacct sim");
        let powerbi = sp::Simulator::start(powerbi_cfg)
            .await
            .expect("powerbi sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ml_store::open(&ml_store::StoreLocation::Sqlite(
            dir.path().join("state.sqlite"),
        ))
        .await
        .expect("store");
        let cfg = ml_connector_cli::demo::demo_connection(
            &intacct.endpoint(),
            &powerbi.authority_url(),
            &powerbi.api_url(),
            ml_connector_cli::demo::last_closed_month(&intacct.now()),
        )
        .expect("config");
        World {
            intacct: Arc::new(intacct),
            powerbi: Arc::new(powerbi),
            store,
            key: MasterKey::generate(),
            dir,
            cfg,
        }
    }

    pub async fn connection(&self) -> Connection {
        ml_connector_cli::demo::connect_demo(self.cfg.clone(), self.store.clone(), &self.key)
            .await
            .expect("connection")
    }

    pub fn table(&self, table: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.powerbi
            .table_rows(sp::DEFAULT_WORKSPACE, DATASET, table)
            .unwrap_or_default()
    }

    /// Every record-keyed table equals its source, row by row; returns the tables compared.
    pub fn assert_tables_equal_source(&self, offset: FixedOffset) -> usize {
        let mut compared = 0;
        for s in &self.cfg.streams {
            if s.kind == StreamKind::Balances {
                continue;
            }
            let source = self.intacct.records(&s.object);
            let rows = self.table(&s.table);
            assert_rows_equal(&s.table, &source, &rows, offset, s.mode);
            compared += 1;
        }
        compared
    }
}

/// Compares Power BI rows with source records, independently of the connector's transform code:
/// keys must match exactly (no row lost, none doubled), and every column's value must equal the
/// source field it came from.
pub fn assert_rows_equal(
    table: &str,
    source: &[BTreeMap<String, String>],
    rows: &[serde_json::Map<String, serde_json::Value>],
    offset: FixedOffset,
    mode: Mode,
) {
    let mut by_key: BTreeMap<i64, &serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for r in rows {
        let key = r
            .get("RECORDNO")
            .and_then(|v| v.as_i64())
            .unwrap_or_else(|| panic!("{table}: row without RECORDNO: {r:?}"));
        assert!(
            by_key.insert(key, r).is_none(),
            "{table}: RECORDNO {key} appears twice (doubled row)"
        );
    }
    let source_keys: Vec<i64> = source
        .iter()
        .map(|s| s["RECORDNO"].parse().unwrap())
        .collect();
    let table_keys: Vec<i64> = by_key.keys().copied().collect();
    let mut sorted_source = source_keys.clone();
    sorted_source.sort();
    if mode == Mode::Replace {
        assert_eq!(
            table_keys, sorted_source,
            "{table}: the set of records differs from Intacct"
        );
    } else {
        for k in &sorted_source {
            assert!(
                by_key.contains_key(k),
                "{table}: record {k} missing from the append table"
            );
        }
    }
    for src in source {
        let key: i64 = src["RECORDNO"].parse().unwrap();
        let Some(row) = by_key.get(&key) else {
            continue;
        };
        for (column, value) in row.iter() {
            let text = src.get(column).map(String::as_str).unwrap_or("");
            assert!(
                value_matches(value, text, offset),
                "{table} RECORDNO {key} column {column}: Power BI has {value}, Intacct has {text:?}"
            );
        }
    }
}

fn value_matches(value: &serde_json::Value, text: &str, offset: FixedOffset) -> bool {
    use serde_json::Value as J;
    let t = text.trim();
    match value {
        J::Null => t.is_empty(),
        J::Bool(b) => t.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        J::Number(n) => {
            let ours = Decimal::from_str(&n.to_string())
                .or_else(|_| Decimal::from_scientific(&n.to_string()));
            let theirs = Decimal::from_str(t);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        J::String(s) => {
            if s == text {
                return true;
            }
            // A DateTime column: ISO 8601 in UTC for timestamps, midnight for dates.
            let iso = s.trim_end_matches('Z');
            let Ok(sent) = NaiveDateTime::parse_from_str(iso, "%Y-%m-%dT%H:%M:%S%.f") else {
                return false;
            };
            if let Ok(ts) = NaiveDateTime::parse_from_str(t, "%m/%d/%Y %H:%M:%S") {
                let utc = offset
                    .from_local_datetime(&ts)
                    .single()
                    .map(|d| d.with_timezone(&Utc).naive_utc());
                return utc == Some(sent);
            }
            if let Ok(d) = NaiveDate::parse_from_str(t, "%m/%d/%Y") {
                return d.and_time(NaiveTime::MIN) == sent;
            }
            false
        }
        _ => false,
    }
}

/// Writes a configuration file for this world's simulators (GL balances left out: they need a period).
pub fn write_config(w: &World, path: &Path) {
    let c = &w.cfg;
    let mut text = format!(
        r#"data_dir = "state"

[[connection]]
name = "{name}"

[connection.intacct]
sender_id = "{sender}"
company_id = "{company}"
user_id = "{user}"
endpoint = "{endpoint}"
allow_loopback_http = true

[connection.powerbi]
tenant_id = "{tenant}"
client_id = "{client}"
workspace = "{workspace}"
dataset = "{dataset}"
authority_url = "{authority}"
api_url = "{api}"
allow_loopback_http = true
"#,
        name = c.name,
        sender = c.intacct.sender_id,
        company = c.intacct.company_id,
        user = c.intacct.user_id,
        endpoint = c.intacct.endpoint.as_ref().unwrap(),
        tenant = c.powerbi.tenant_id,
        client = c.powerbi.client_id,
        workspace = c.powerbi.workspace,
        dataset = c.powerbi.dataset,
        authority = c.powerbi.authority_url.as_ref().unwrap(),
        api = c.powerbi.api_url.as_ref().unwrap(),
    );
    for s in &c.streams {
        if s.kind == ml_connector::catalogue::StreamKind::Balances {
            continue;
        }
        let mode = match s.mode {
            ml_connector::config::Mode::Replace => "replace",
            ml_connector::config::Mode::Append => "append",
        };
        text.push_str(&format!(
            "\n[[connection.stream]]\nobject = \"{}\"\nmode = \"{mode}\"\nlookback = \"0s\"\n",
            s.object
        ));
    }
    std::fs::write(path, text).unwrap();
}
