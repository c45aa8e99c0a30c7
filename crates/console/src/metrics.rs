//! `/metrics` (Prometheus text exposition), `/healthz` and `/readyz`.
//!
//! The counters are read from the store ([`ml_store::Store::run_totals`]), not counted in this
//! process, so `ml-connector console` beside a cron'd `sync` reports the same numbers as the
//! console of `ml-connector run`, and a restart loses nothing.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use ml_store::RunTotals;

use crate::Shared;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the store answers and no connection's last `ready_failed_runs` runs all failed; 503
/// with the reasons otherwise.
pub async fn readyz(State(c): State<Shared>) -> Response {
    let mut reasons = Vec::new();
    if let Err(e) = c.store.list_connections().await {
        reasons.push(format!("the store does not answer: {e}"));
    } else {
        for cfg in &c.connections {
            match ml_connector::status::recent_runs(
                c.store.as_ref(),
                &cfg.name,
                c.ready_failed_runs.saturating_add(5),
            )
            .await
            {
                Ok(runs) => {
                    let streak = ml_connector::status::failing_streak(&runs);
                    if streak >= c.ready_failed_runs {
                        reasons.push(format!(
                            "connection {}: its last {streak} runs failed",
                            cfg.name
                        ));
                    }
                }
                Err(e) => reasons.push(format!("the store does not answer: {e}")),
            }
        }
    }
    let ready = reasons.is_empty();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        axum::Json(serde_json::json!({ "ready": ready, "reasons": reasons })),
    )
        .into_response()
}

pub async fn metrics(State(c): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(want) = &c.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !sent.is_some_and(|t| want.matches(t)) {
            return crate::guard::unauthorized("/metrics needs the metrics bearer token");
        }
    }
    let totals = match c.store.run_totals().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer\n",
            )
                .into_response();
        }
    };
    let tables: Vec<(String, String, String)> = c
        .connections
        .iter()
        .flat_map(|cfg| {
            cfg.streams
                .iter()
                .map(|s| (cfg.name.clone(), s.object.clone(), s.table.clone()))
        })
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&totals, &tables, c.clock.now()),
    )
        .into_response()
}

/// Escapes a label value as the exposition format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Reads one figure of a stream's totals.
type StreamFigure = fn(&ml_store::StreamTotals) -> u64;

/// The exposition text (pure): `tables` are the configured (connection, object, table).
pub fn render(
    totals: &RunTotals,
    tables: &[(String, String, String)],
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "ml_connector_runs_total",
        "counter",
        "Runs recorded in the store, by connection and outcome.",
    );
    for r in &totals.runs {
        let _ = writeln!(
            out,
            "ml_connector_runs_total{{connection=\"{}\",outcome=\"{}\"}} {}",
            label(&r.connection),
            r.status.as_str(),
            r.runs
        );
    }
    let per_stream: [(&str, &str, StreamFigure); 3] = [
        (
            "ml_connector_rows_read_total",
            "Records read from Intacct, by connection and stream (object), over every run.",
            |s| s.extracted,
        ),
        (
            "ml_connector_rows_pushed_total",
            "Rows Power BI accepted, by connection and stream (object), over every run.",
            |s| s.pushed,
        ),
        (
            "ml_connector_stream_failures_total",
            "Runs in which the stream failed, by connection and stream (object).",
            |s| s.failed_runs,
        ),
    ];
    for (name, help, value) in per_stream {
        family(&mut out, name, "counter", help);
        for s in &totals.streams {
            let _ = writeln!(
                out,
                "{name}{{connection=\"{}\",stream=\"{}\"}} {}",
                label(&s.connection),
                label(&s.stream),
                value(s)
            );
        }
    }
    family(
        &mut out,
        "ml_connector_table_last_success_age_seconds",
        "gauge",
        "Seconds since the table's stream last finished ok in a run (absent: never).",
    );
    for (conn, object, table) in tables {
        let last = totals
            .streams
            .iter()
            .find(|s| &s.connection == conn && &s.stream == object)
            .and_then(|s| s.last_ok_at);
        if let Some(t) = last {
            let age = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "ml_connector_table_last_success_age_seconds{{connection=\"{}\",stream=\"{}\",table=\"{}\"}} {age}",
                label(conn),
                label(object),
                label(table)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_store::{RunCount, RunStatus, StreamTotals};

    #[test]
    fn the_text_follows_the_exposition_format() {
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        let totals = RunTotals {
            runs: vec![RunCount {
                connection: "ac\"me".into(),
                status: RunStatus::Succeeded,
                runs: 2,
            }],
            streams: vec![StreamTotals {
                connection: "ac\"me".into(),
                stream: "VENDOR".into(),
                extracted: 10,
                pushed: 9,
                failed_runs: 1,
                last_ok_at: Some("2026-12-06T09:59:30Z".parse().unwrap()),
            }],
        };
        let tables = vec![
            (
                "ac\"me".to_string(),
                "VENDOR".to_string(),
                "Vendors".to_string(),
            ),
            (
                "ac\"me".to_string(),
                "APBILL".to_string(),
                "APBills".to_string(),
            ),
        ];
        let text = render(&totals, &tables, now);
        assert!(text.contains(
            "ml_connector_runs_total{connection=\"ac\\\"me\",outcome=\"succeeded\"} 2\n"
        ));
        assert!(text.contains(
            "ml_connector_rows_pushed_total{connection=\"ac\\\"me\",stream=\"VENDOR\"} 9\n"
        ));
        assert!(text.contains("ml_connector_table_last_success_age_seconds{connection=\"ac\\\"me\",stream=\"VENDOR\",table=\"Vendors\"} 30\n"));
        assert!(!text.contains("APBills"), "never loaded: no sample");
    }
}
