//! What one run's work is made of: the connection's sources ([`Context`]), the run's options, and
//! one stream's [`Job`], which every extract, stage and delivery step takes.
//!
//! A [`Job`] holds no destination: destinations take it as their argument, so the pipeline can hold
//! a destination without the two modules importing each other.

use std::sync::Arc;

use ml_clock::SharedClock;
use ml_intacct::IntacctClient;
use ml_store::{RunId, Store};

use super::events::Events;
use super::plan::StreamPlan;
use super::transform::TimeContext;
use crate::config::{ConnectionConfig, StreamConfig};

/// A connection's configuration and everything it reads from or records into, whichever
/// destination its rows go to.
#[derive(Clone)]
pub struct Context {
    pub config: ConnectionConfig,
    pub store: Arc<dyn Store>,
    pub intacct: IntacctClient,
    /// The one time source (lookback, key-compare intervals, pacing history, pruning).
    pub clock: SharedClock,
    /// Prune audit entries older than this after each run.
    pub audit_retention: Option<std::time::Duration>,
}

impl Context {
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// One stream's work within a run: what every extract, stage and delivery step needs.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub conn: &'a Context,
    pub run: RunId,
    pub stream: &'a StreamConfig,
    pub plan: &'a StreamPlan,
    pub time: &'a TimeContext,
    pub opts: &'a RunOptions,
    pub events: &'a Events,
    /// Whether the destination is prepared; staging waits for it (see [`Ready`]).
    pub ready: &'a Ready,
}

/// The destination's preparation, which runs while the streams' first pages are read.
///
/// Staging waits for it: a staged row is encoded by the stream's plan, and a plan the destination
/// refused (a column mapping onto a column its table lacks) must not reach the mirror, where the
/// next run would take its rows for current.
#[derive(Clone, Debug)]
pub struct Ready(tokio::sync::watch::Receiver<Option<bool>>);

impl Ready {
    /// Ready now: nothing to wait for.
    pub fn now() -> Self {
        Ready(tokio::sync::watch::channel(Some(true)).1)
    }

    /// Ready when `rx` says so: `Some(true)` prepared, `Some(false)` failed.
    pub fn when(rx: tokio::sync::watch::Receiver<Option<bool>>) -> Self {
        Ready(rx)
    }

    /// Waits until the destination is prepared; an error when preparing it failed.
    pub async fn wait(&self) -> Result<(), super::PipelineError> {
        let mut rx = self.0.clone();
        let prepared = rx
            .wait_for(Option::is_some)
            .await
            .map(|v| *v == Some(true))
            .unwrap_or(false);
        if prepared {
            Ok(())
        } else {
            Err(super::PipelineError::Other(
                "the destination could not be prepared".into(),
            ))
        }
    }

    /// Preparing the destination failed.
    pub fn failed(&self) -> bool {
        *self.0.borrow() == Some(false)
    }
}

impl Job<'_> {
    /// Fails with [`super::PipelineError::Interrupted`] once the run was asked to stop.
    pub fn check_cancel(&self) -> Result<(), super::PipelineError> {
        if self.opts.cancel.is_cancelled() {
            return Err(super::PipelineError::Interrupted);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Why the run happens: `manual`, `schedule`, `catch-up`, `demo`.
    pub trigger: String,
    /// Only these streams (object or table names); all when empty.
    pub streams: Vec<String>,
    /// Ignore cursors, compare keys for deletes, reload every table.
    pub full: bool,
    /// Cancelled by SIGTERM: the run stops after the current page or batches, leaving resumable state.
    pub cancel: tokio_util::sync::CancellationToken,
    /// The worker id in the run lease (default `host:pid`).
    pub worker: Option<String>,
}
