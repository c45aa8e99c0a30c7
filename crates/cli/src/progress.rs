//! Progress bars for interactive syncs: one line per stream with extracted, staged and pushed counts, and
//! the reason when the run waits for a Power BI budget, on the bars of the tables that wait (the
//! budget is the dataset's, so the event names the dataset). Off when stderr is not a terminal (logs say it).
//!
//! Where Intacct's `totalcount` gives a stream's total ([`RunEvent::Total`]), its bar fills and says
//! the percentage and the time left. Log lines go through [`LogWriter`], which writes each whole line
//! above the bars (the bars are cleared, the line written, the bars drawn again), so the two never
//! interleave.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use ml_connector::config::ConnectionConfig;
use ml_connector::pipeline::{Events, RunEvent};

/// The bars on screen, if any: log lines are written above them. One sync at a time shows bars.
static ON_SCREEN: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// The tracing writer of the binary: each event is gathered whole, then written to stderr in one
/// go, above the progress bars when they are on screen.
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log event, written when the formatter is done with it (dropped).
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // A clone of the handle, so the lock is not held while the bars redraw.
        let bars = ON_SCREEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A log line that cannot be written (stderr closed) has nowhere else to go.
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }
}

/// "extracted 1,200 of 5,000 (24 %, 32 s left)": the time left from the rate so far, once there is one.
pub fn extracted_message(done: u64, total: u64, elapsed: Duration) -> String {
    let total = total.max(done);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let left = if done == 0 || done >= total {
        String::new()
    } else {
        let secs = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
        format!(
            ", {} left",
            humantime::format_duration(Duration::from_secs(secs.ceil() as u64))
        )
    };
    format!(
        "extracted {} of {} ({percent} %{left})",
        thousands(done),
        thousands(total)
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub struct Bars {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    tables: Mutex<Tables>,
    /// Per stream: when it started and its total, once Intacct said it.
    totals: Mutex<HashMap<String, (Instant, Option<u64>)>>,
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
        let inner = on.then(|| {
            Arc::new(Inner {
                multi: MultiProgress::new(),
                bars: Mutex::new(HashMap::new()),
                tables: Mutex::new(Tables::new(config)),
                totals: Mutex::new(HashMap::new()),
            })
        });
        if let Some(inner) = &inner {
            *ON_SCREEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(inner.multi.clone());
        }
        Bars { inner }
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

impl Drop for Bars {
    fn drop(&mut self) {
        if self.inner.is_some() {
            // Later log lines (and the report) go straight to stderr.
            *ON_SCREEN.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
                self.totals
                    .lock()
                    .expect("totals lock")
                    .insert(stream.clone(), (Instant::now(), None));
                self.bar(stream).set_message(format!("→ {table}"))
            }
            RunEvent::Total { stream, records } => {
                self.totals
                    .lock()
                    .expect("totals lock")
                    .entry(stream.clone())
                    .or_insert((Instant::now(), None))
                    .1 = Some(*records);
                let bar = self.bar(stream);
                bar.set_length(*records);
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<18} [{bar:24}] {msg}")
                        .expect("template")
                        .progress_chars("=> "),
                );
            }
            RunEvent::Extracted { stream, records } => {
                let known = self
                    .totals
                    .lock()
                    .expect("totals lock")
                    .get(stream)
                    .copied();
                let bar = self.bar(stream);
                match known {
                    Some((started, Some(total))) => {
                        bar.set_position((*records).min(total));
                        bar.set_message(extracted_message(*records, total, started.elapsed()));
                    }
                    _ => bar.set_message(format!("extracted {}", thousands(*records))),
                }
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
    use super::{Tables, extracted_message};
    use std::time::Duration;

    #[test]
    fn a_known_total_gives_the_percentage_and_the_time_left() {
        assert_eq!(
            extracted_message(1_200, 5_000, Duration::from_secs(10)),
            "extracted 1,200 of 5,000 (24 %, 32s left)"
        );
        assert_eq!(
            extracted_message(0, 2_000_000, Duration::from_secs(3)),
            "extracted 0 of 2,000,000 (0 %)",
            "no rate yet: no time left said"
        );
        assert_eq!(
            extracted_message(5_010, 5_000, Duration::from_secs(60)),
            "extracted 5,010 of 5,010 (100 %)",
            "records created during the read: never more than 100 %"
        );
        assert_eq!(
            extracted_message(0, 0, Duration::ZERO),
            "extracted 0 of 0 (100 %)"
        );
    }

    /// Log lines written while bars are on screen are whole lines, each written once.
    #[test]
    fn a_log_line_is_written_whole_through_the_bars() {
        use std::io::Write;
        let multi =
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        *super::ON_SCREEN.lock().unwrap() = Some(multi.clone());
        let mut line = super::LogLine(Vec::new());
        line.write_all(b"{\"message\":").unwrap();
        line.write_all(b"\"half\"}\n").unwrap();
        assert_eq!(line.0, b"{\"message\":\"half\"}\n");
        drop(line);
        *super::ON_SCREEN.lock().unwrap() = None;
    }

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
