//! Progress bars for interactive syncs: one line per stream with extracted, staged and pushed counts, and
//! the reason when the run waits for a Power BI budget. Off when stderr is not a terminal (logs say it).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use ml_connector::pipeline::{Events, RunEvent};

pub struct Bars {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new(wanted: bool) -> Self {
        let on = wanted && std::io::stderr().is_terminal();
        Bars {
            inner: on.then(|| {
                Arc::new(Inner {
                    multi: MultiProgress::new(),
                    bars: Mutex::new(HashMap::new()),
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
            } => self.bar(stream).set_message(format!(
                "waiting {} for {reason}",
                humantime::format_duration(std::time::Duration::from_secs(wait.as_secs().max(1)))
            )),
            RunEvent::StreamFinished {
                stream,
                ok,
                message,
            } => {
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
