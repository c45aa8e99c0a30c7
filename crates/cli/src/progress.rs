//! Progress bars for interactive syncs: one line per stream with extracted, staged and pushed counts, and
//! the reason when the run waits for a Power BI budget, on the bars of the tables that wait (the
//! budget is the dataset's, so the event names the dataset). Off when stderr is not a terminal (logs say it).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use ml_connector::config::ConnectionConfig;
use ml_connector::pipeline::{Events, RunEvent};

pub struct Bars {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    tables: Mutex<Tables>,
}

/// Which tables a budget wait holds up. Power BI's budgets are per dataset, so the wait names the
/// dataset (its id); the tables waiting are those of the streams started and not yet finished.
#[derive(Debug)]
struct Tables {
    /// Stream (Intacct object) → table, from the configuration.
    table_of: HashMap<String, String>,
    /// The connection's dataset name, for a wait while no stream is under way.
    dataset: String,
    /// Streams started and not finished, in start order.
    active: Vec<String>,
}

impl Tables {
    fn new(config: &ConnectionConfig) -> Self {
        Tables {
            table_of: config
                .streams
                .iter()
                .map(|s| (s.object.clone(), s.table.clone()))
                .collect(),
            dataset: config.powerbi.dataset.clone(),
            active: Vec::new(),
        }
    }

    fn started(&mut self, stream: &str) {
        if !self.active.iter().any(|s| s == stream) {
            self.active.push(stream.to_string());
        }
    }

    fn finished(&mut self, stream: &str) {
        self.active.retain(|s| s != stream);
    }

    /// The bars (stream keys) a wait on `on` shows on, each with the name the user knows it by:
    /// the table of a stream, or the dataset's name when no stream is under way.
    fn waiting(&self, on: &str) -> Vec<(String, String)> {
        if let Some(table) = self.table_of.get(on) {
            return vec![(on.to_string(), table.clone())];
        }
        if self.active.is_empty() {
            return vec![(self.dataset.clone(), format!("dataset {}", self.dataset))];
        }
        self.active
            .iter()
            .map(|s| {
                let table = self.table_of.get(s).cloned().unwrap_or_else(|| s.clone());
                (s.clone(), table)
            })
            .collect()
    }
}

impl Bars {
    pub fn new(wanted: bool, config: &ConnectionConfig) -> Self {
        let on = wanted && std::io::stderr().is_terminal();
        Bars {
            inner: on.then(|| {
                Arc::new(Inner {
                    multi: MultiProgress::new(),
                    bars: Mutex::new(HashMap::new()),
                    tables: Mutex::new(Tables::new(config)),
                })
            }),
        }
    }

    pub fn events(&self) -> Events {
        match &self.inner {
            None => Events::default(),
            Some(inner) => {
                let inner = inner.clone();
                Events::new(move |e| inner.show(e))
            }
        }
    }

    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            for bar in inner.bars.lock().expect("bars lock").values() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }
}

impl Inner {
    fn bar(&self, stream: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("bars lock");
        bars.entry(stream.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<18} {msg}").expect("template"),
                );
                bar.set_prefix(stream.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn show(&self, e: &RunEvent) {
        match e {
            RunEvent::StreamStarted { stream, table } => {
                self.tables.lock().expect("tables lock").started(stream);
                self.bar(stream).set_message(format!("→ {table}"))
            }
            RunEvent::Extracted { stream, records } => {
                self.bar(stream).set_message(format!("extracted {records}"))
            }
            RunEvent::Staged {
                stream,
                inserted,
                updated,
                unchanged,
                deleted,
            } => self.bar(stream).set_message(format!(
                "staged +{inserted} ~{updated} ={unchanged} -{deleted}"
            )),
            RunEvent::Pushed { stream, rows } => {
                self.bar(stream).set_message(format!("pushed {rows} rows"))
            }
            RunEvent::Waiting {
                stream,
                reason,
                wait,
            } => {
                let wait = humantime::format_duration(std::time::Duration::from_secs(
                    wait.as_secs().max(1),
                ));
                let targets = self.tables.lock().expect("tables lock").waiting(stream);
                for (key, name) in targets {
                    self.bar(&key)
                        .set_message(format!("{name}: waiting {wait} for {reason}"));
                }
            }
            RunEvent::StreamFinished {
                stream,
                ok,
                message,
            } => {
                self.tables.lock().expect("tables lock").finished(stream);
                let bar = self.bar(stream);
                if *ok {
                    bar.finish_with_message("done");
                } else {
                    bar.finish_with_message(format!(
                        "FAILED: {}",
                        message.as_deref().unwrap_or("")
                    ));
                }
            }
            RunEvent::RunStarted { .. } | RunEvent::RunFinished { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tables;

    fn tables() -> Tables {
        Tables {
            table_of: [("VENDOR", "Vendors"), ("CUSTOMER", "Customers")]
                .into_iter()
                .map(|(o, t)| (o.to_string(), t.to_string()))
                .collect(),
            dataset: "Sage Intacct".into(),
            active: Vec::new(),
        }
    }

    #[test]
    fn a_budget_wait_names_the_tables_under_way_not_the_dataset_id() {
        let mut t = tables();
        let guid = "5f0c1c9e-3d2b-4b8e-9a51-0d6f3f1e2a77";
        assert_eq!(
            t.waiting(guid),
            vec![(
                "Sage Intacct".to_string(),
                "dataset Sage Intacct".to_string()
            )],
            "no stream under way: the dataset's name"
        );
        t.started("VENDOR");
        t.started("CUSTOMER");
        t.finished("VENDOR");
        assert_eq!(
            t.waiting(guid),
            vec![("CUSTOMER".to_string(), "Customers".to_string())]
        );
        assert_eq!(
            t.waiting("VENDOR"),
            vec![("VENDOR".to_string(), "Vendors".to_string())],
            "a wait named by its stream stays on that stream"
        );
    }
}
