//! The paced pusher: sends [`Batch`]es with `POST rows` inside every push limit of their dataset, retries what the
//! service certainly did not apply, and never resends what it may have applied.
//!
//! * 429 / 5xx (an HTTP status arrived, so the service refused the request): wait for `Retry-After` (a 429 also
//!   holds every other POST to the dataset) or back off, then resend, up to `max_attempts`.
//! * Connection refused / DNS / TLS failure (nothing reached the service): back off and resend.
//! * Timeout or a connection dropped after the body went out: the batch is [`BatchOutcome::Ambiguous`] and is NOT
//!   resent — POST rows has no idempotency key, so a resend could double the rows. The caller decides (for a
//!   replace-mode table: delete and reload; for append: count rows with a DAX query first).
//! * 403 TokenExpired / InvalidToken: the token is refreshed once and the batch resent (the service refused it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ml_clock::SharedClock;
use reqwest::Method;
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::batch::Batch;
use crate::client::PowerBiClient;
use crate::error::{ErrorClass, PowerBiError};
pub use crate::events::PushEvent;
use crate::limits::PushLimits;
use crate::pace::{DatasetPacer, Ticket};

/// Where a batch goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableTarget {
    pub group_id: String,
    pub dataset_id: String,
    pub table: String,
}

/// What happened to a batch.
#[derive(Clone, Debug)]
pub enum BatchOutcome {
    /// Power BI answered 2xx: the rows are in the table.
    Accepted,
    /// The request may or may not have been applied; it was not resent.
    Ambiguous { why: String },
    /// Certainly not applied.
    Failed(PowerBiError),
}

impl BatchOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            BatchOutcome::Accepted => "accepted",
            BatchOutcome::Ambiguous { .. } => "ambiguous",
            BatchOutcome::Failed(_) => "failed",
        }
    }
}

/// The record of one batch, for the audit trail.
#[derive(Clone, Debug)]
pub struct BatchReport {
    pub batch_id: Uuid,
    pub table: String,
    /// Row numbers (from the [`crate::Batcher`]) carried by the batch.
    pub row_range: std::ops::Range<u64>,
    pub rows: usize,
    pub bytes: usize,
    /// `RequestId` of the last response, if any.
    pub request_id: Option<String>,
    /// From the first wait to the final answer.
    pub duration: Duration,
    /// Time spent waiting for budgets, slots and Retry-After.
    pub waited: Duration,
    /// HTTP sends (the first included).
    pub attempts: u32,
    /// 429 answers received.
    pub throttled: u32,
    pub token_refreshes: u32,
    pub outcome: BatchOutcome,
    /// Every POST of this batch that counts against the dataset's budgets, for
    /// [`Pusher::seed_history`] in the next process.
    pub posts: Vec<PostRecord>,
}

/// One POST as the dataset's budgets see it: when its answer came and how many rows it added
/// (0 when the service refused them; the POST itself still counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostRecord {
    pub at: SystemTime,
    pub rows: u64,
}

/// Sends batches under per-dataset budgets; one per process, shared by every table and caller.
#[derive(Clone)]
pub struct Pusher {
    client: PowerBiClient,
    limits: PushLimits,
    pacers: Arc<Mutex<HashMap<String, Arc<DatasetPacer>>>>,
    events: broadcast::Sender<PushEvent>,
    /// Wall-clock time of each POST's record, which a later process reads back to pace itself: it must be the
    /// product's one clock, so a test that moves that clock moves the records with it.
    clock: SharedClock,
}

impl Pusher {
    pub fn new(client: PowerBiClient, limits: PushLimits) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            client,
            limits,
            pacers: Arc::new(Mutex::new(HashMap::new())),
            events,
            clock: ml_clock::system(),
        }
    }

    /// The same pusher reading wall-clock time from `clock` instead of the system's (the time stamped on each
    /// [`PostRecord`] and the "now" that ages [`Pusher::seed_history`]'s records).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn wall_now(&self) -> SystemTime {
        SystemTime::from(self.clock.now())
    }

    pub fn limits(&self) -> &PushLimits {
        &self.limits
    }

    /// Subscribe to progress notices (lagging receivers lose the oldest ones).
    pub fn events(&self) -> broadcast::Receiver<PushEvent> {
        self.events.subscribe()
    }

    /// Whether this pusher already paces `dataset` (has sent to it, or was seeded for it): then its
    /// own log knows the history and [`Pusher::seed_history`] would change nothing.
    pub fn paces(&self, dataset: &str) -> bool {
        self.pacers
            .lock()
            .expect("pacer map poisoned")
            .contains_key(dataset)
    }

    /// Tells the pacer of `dataset` about POSTs sent before this process started (recorded from
    /// earlier [`BatchReport::posts`]), so that a new process stays inside the hourly and
    /// per-minute budgets its predecessor used up, instead of learning them from 429s. Only a
    /// dataset this pusher has not sent to yet is seeded (its own log already knows the rest);
    /// returns whether it was.
    pub fn seed_history(&self, dataset: &str, posts: &[PostRecord]) -> bool {
        let mut m = self.pacers.lock().expect("pacer map poisoned");
        if m.contains_key(dataset) {
            return false;
        }
        let pacer = Arc::new(DatasetPacer::new(dataset.to_string(), self.limits.clone()));
        let (now, wall) = (Instant::now(), self.wall_now());
        pacer.seed(posts.iter().filter_map(|p| {
            // A time in the future (clock skew between hosts) counts as now: never less careful.
            let age = wall.duration_since(p.at).unwrap_or(Duration::ZERO);
            now.checked_sub(age).map(|end| (end, p.rows))
        }));
        m.insert(dataset.to_string(), pacer);
        true
    }

    fn pacer(&self, dataset: &str) -> Arc<DatasetPacer> {
        let mut m = self.pacers.lock().expect("pacer map poisoned");
        m.entry(dataset.to_string())
            .or_insert_with(|| {
                Arc::new(DatasetPacer::new(dataset.to_string(), self.limits.clone()))
            })
            .clone()
    }

    /// Sends one batch, paced and retried as described in the module docs. `table_rows_before` is how many rows the
    /// table holds before this batch (for the large-table POST cap).
    pub async fn send(
        &self,
        target: &TableTarget,
        batch: Batch,
        table_rows_before: u64,
    ) -> BatchReport {
        let started = Instant::now();
        let pacer = self.pacer(&target.dataset_id);
        let rows = batch.row_count();
        let large = table_rows_before >= self.limits.large_table_rows;
        let operation = format!("POST rows to table '{}'", target.table);
        let url = self
            .client
            .rows_url(&target.group_id, &target.dataset_id, &target.table);
        let mut report = BatchReport {
            batch_id: batch.id,
            table: target.table.clone(),
            row_range: batch.row_range(),
            rows,
            bytes: batch.byte_len(),
            request_id: None,
            duration: Duration::ZERO,
            waited: Duration::ZERO,
            attempts: 0,
            throttled: 0,
            token_refreshes: 0,
            outcome: BatchOutcome::Accepted,
            posts: Vec::new(),
        };
        // Ends an admitted POST in the pacer and keeps it for the report.
        let done =
            |pacer: &DatasetPacer, ticket: Ticket, applied: bool, posts: &mut Vec<PostRecord>| {
                pacer.complete(ticket, applied);
                posts.push(PostRecord {
                    at: self.wall_now(),
                    rows: if applied { rows as u64 } else { 0 },
                });
            };
        let mut retries = 0u32;
        let outcome = loop {
            let ticket = pacer.acquire(rows as u64, large, &self.events).await;
            report.waited += ticket.waited;
            // After the budget wait, which can be long enough for the cached token to expire.
            let token = match self.client.tokens().token().await {
                Ok(t) => t,
                Err(e) => {
                    done(&pacer, ticket, false, &mut report.posts);
                    break BatchOutcome::Failed(e.into());
                }
            };
            report.attempts += 1;
            let result = self
                .client
                .send_once(
                    &operation,
                    Method::POST,
                    url.clone(),
                    Some(batch.body().clone()),
                    &token,
                )
                .await;
            match result {
                Ok(answer) => {
                    done(&pacer, ticket, true, &mut report.posts);
                    report.request_id = answer
                        .headers
                        .get("requestid")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    break BatchOutcome::Accepted;
                }
                Err(PowerBiError::Api(e)) => {
                    done(&pacer, ticket, false, &mut report.posts);
                    report.request_id = e.request_id.clone().or(report.request_id.take());
                    if e.status == 429 {
                        report.throttled += 1;
                    }
                    match e.class() {
                        ErrorClass::Token if report.token_refreshes == 0 => {
                            report.token_refreshes += 1;
                            self.client.tokens().invalidate(&token).await;
                            let _ = self.events.send(PushEvent::TokenRefreshed {
                                dataset: target.dataset_id.clone(),
                                batch_id: batch.id,
                            });
                            continue;
                        }
                        ErrorClass::Retryable if report.attempts < self.limits.max_attempts => {
                            let wait = match e.retry_after {
                                Some(w) => w,
                                None => self.backoff(retries),
                            };
                            retries += 1;
                            if e.status == 429 {
                                // The budget is the dataset's, so every caller of this dataset holds off.
                                pacer.block_until(Instant::now() + wait);
                            }
                            tracing::warn!(dataset = %target.dataset_id, status = e.status, ?wait, "Power BI refused a batch; resending");
                            report.waited += self
                                .wait_to_resend(
                                    target,
                                    batch.id,
                                    report.attempts,
                                    Some(e.status),
                                    wait,
                                )
                                .await;
                            continue;
                        }
                        _ => break BatchOutcome::Failed(PowerBiError::Api(e)),
                    }
                }
                Err(PowerBiError::Transport(t)) => {
                    if let Some(status) = t.status
                        && (200..300).contains(&status)
                    {
                        // The service answered 2xx; only reading the (empty) body failed.
                        done(&pacer, ticket, true, &mut report.posts);
                        break BatchOutcome::Accepted;
                    }
                    if t.maybe_sent {
                        // Counted against the budget: the service may have applied it.
                        done(&pacer, ticket, true, &mut report.posts);
                        break BatchOutcome::Ambiguous { why: t.to_string() };
                    }
                    done(&pacer, ticket, false, &mut report.posts);
                    if report.attempts >= self.limits.max_attempts {
                        break BatchOutcome::Failed(PowerBiError::Transport(t));
                    }
                    let wait = self.backoff(retries);
                    retries += 1;
                    report.waited += self
                        .wait_to_resend(target, batch.id, report.attempts, None, wait)
                        .await;
                }
                Err(other) => {
                    done(&pacer, ticket, false, &mut report.posts);
                    break BatchOutcome::Failed(other);
                }
            }
        };
        report.duration = started.elapsed();
        report.outcome = outcome;
        let _ = self.events.send(PushEvent::BatchDone {
            dataset: target.dataset_id.clone(),
            table: target.table.clone(),
            batch_id: batch.id,
            rows,
            outcome: report.outcome.as_str(),
        });
        report
    }

    /// Announces a resend and waits for it; returns how long it waited.
    async fn wait_to_resend(
        &self,
        target: &TableTarget,
        batch_id: Uuid,
        attempt: u32,
        status: Option<u16>,
        wait: Duration,
    ) -> Duration {
        let _ = self.events.send(PushEvent::Retrying {
            dataset: target.dataset_id.clone(),
            batch_id,
            attempt,
            status,
            wait,
        });
        let before = Instant::now();
        tokio::time::sleep(wait).await;
        before.elapsed()
    }

    /// Exponential backoff with ±25 % jitter so concurrent callers do not resend in lockstep.
    fn backoff(&self, retries: u32) -> Duration {
        let base = self
            .limits
            .backoff
            .saturating_mul(1u32 << retries.min(16))
            .min(self.limits.max_backoff);
        let jitter = rand::random_range(0.75..1.25);
        base.mul_f64(jitter).min(self.limits.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ClientCredential, Cloud, PowerBiSettings};
    use chrono::{DateTime, Utc};
    use ml_clock::TokioClock;

    #[tokio::test(start_paused = true)]
    async fn seeded_history_is_aged_by_the_injected_clock() {
        let base = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let client = PowerBiClient::new(PowerBiSettings::new(
            Cloud::Public,
            "t",
            "c",
            ClientCredential::Secret("s".into()),
        ))
        .unwrap();
        let limits = PushLimits {
            rows_per_hour: 100,
            ..PushLimits::default()
        };
        let pusher =
            Pusher::new(client, limits).with_clock(Arc::new(TokioClock::starting_at(base)));
        // Ten minutes old by the injected clock (by the system's it would lie in the future and count as now).
        let at = SystemTime::from(base - chrono::Duration::minutes(10));
        assert!(pusher.seed_history("ds", &[PostRecord { at, rows: 100 }]));
        let (tx, _rx) = broadcast::channel(8);
        let ticket = pusher.pacer("ds").acquire(1, false, &tx).await;
        assert_eq!(ticket.waited, Duration::from_secs(50 * 60));
    }
}
