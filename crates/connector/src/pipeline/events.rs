//! What a run tells the outside while it works: progress for the CLI's bars, and the reason when it waits.
//!
//! Every event is also a structured log line (written here, once), so JSON logs and progress bars say the
//! same thing. Events never carry row contents or secrets.

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    RunStarted {
        connection: String,
        run: i64,
    },
    StreamStarted {
        stream: String,
        table: String,
    },
    Extracted {
        stream: String,
        records: u64,
    },
    /// How many records the stream's read returns in all (Intacct's `totalcount`), once known:
    /// what `Extracted` counts up to, for a percentage and the time left.
    Total {
        stream: String,
        records: u64,
    },
    Staged {
        stream: String,
        inserted: u64,
        updated: u64,
        unchanged: u64,
        deleted: u64,
    },
    Pushed {
        stream: String,
        rows: u64,
    },
    Waiting {
        stream: String,
        reason: String,
        wait: Duration,
    },
    StreamFinished {
        stream: String,
        ok: bool,
        message: Option<String>,
    },
    RunFinished {
        run: i64,
        status: String,
    },
}

type Sink = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// Receives run events; cheap to clone.
#[derive(Clone, Default)]
pub struct Events {
    sink: Option<Sink>,
}

impl Events {
    pub fn new(sink: impl Fn(&RunEvent) + Send + Sync + 'static) -> Self {
        Events {
            sink: Some(Arc::new(sink)),
        }
    }

    pub fn emit(&self, event: RunEvent) {
        log(&event);
        if let Some(sink) = &self.sink {
            sink(&event);
        }
    }
}

fn log(event: &RunEvent) {
    match event {
        RunEvent::RunStarted { connection, run } => {
            tracing::info!(event = "run_started", connection, run)
        }
        RunEvent::StreamStarted { stream, table } => {
            tracing::info!(event = "stream_started", stream, table)
        }
        RunEvent::Extracted { stream, records } => {
            tracing::debug!(event = "extracted", stream, records)
        }
        RunEvent::Total { stream, records } => {
            tracing::debug!(event = "total", stream, records)
        }
        RunEvent::Staged {
            stream,
            inserted,
            updated,
            unchanged,
            deleted,
        } => tracing::debug!(
            event = "staged",
            stream,
            inserted,
            updated,
            unchanged,
            deleted
        ),
        RunEvent::Pushed { stream, rows } => tracing::debug!(event = "pushed", stream, rows),
        RunEvent::Waiting {
            stream,
            reason,
            wait,
        } => {
            tracing::info!(
                event = "waiting",
                stream,
                reason,
                wait_s = wait.as_secs_f64()
            )
        }
        RunEvent::StreamFinished {
            stream,
            ok,
            message,
        } => {
            if *ok {
                tracing::info!(event = "stream_finished", stream, ok)
            } else {
                tracing::warn!(
                    event = "stream_finished",
                    stream,
                    ok,
                    error = message.as_deref().unwrap_or("")
                )
            }
        }
        RunEvent::RunFinished { run, status } => {
            tracing::info!(event = "run_finished", run, status)
        }
    }
}
