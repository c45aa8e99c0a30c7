//! Queries asked for at the same moment go out together.
//!
//! A run reads its streams side by side, so at the start of a run (every stream's first pages),
//! after it (every stream's deletes) and whenever a slot of the company's concurrency limit frees
//! while several streams wait, many one-page queries are ready at once. Each costs a round trip
//! when sent alone; waiting for a slot, they are put into one request instead (up to
//! [`MAX_FUNCTIONS_PER_REQUEST`]), each function keeping its own result (see [`super::batch`]).
//! A query never waits for company: it goes as soon as a dispatch slot is free, with whatever else
//! is waiting then. A run with nothing to read costs a few requests whatever its number of objects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{FunctionCall, FunctionResult, Query};

use super::IntacctClient;
use super::batch::MAX_FUNCTIONS_PER_REQUEST;

/// The queries waiting, and the dispatch slots (as many as the company's concurrent requests).
pub(super) struct Coalescer {
    waiting: Mutex<Vec<Waiting>>,
    slots: Arc<Semaphore>,
    /// Dispatchers holding a slot that have not yet taken their share.
    gathering: AtomicUsize,
}

struct Waiting {
    query: Query,
    answer: oneshot::Sender<Result<FunctionResult, IntacctError>>,
}

impl Coalescer {
    pub(super) fn new(slots: usize) -> Self {
        Coalescer {
            waiting: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            gathering: AtomicUsize::new(0),
        }
    }

    /// This slot's share of what waits: split evenly with the slots still free, so queries that
    /// can run side by side do (two pages of one read keep both slots busy), and only what
    /// would otherwise wait for a slot rides along.
    fn take(&self, gathering: Gathering<'_>) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        // This dispatcher, the others about to take, and the slots nobody holds yet.
        let free = self.slots.available_permits() + self.gathering.load(Ordering::Acquire);
        drop(gathering);
        let n = waiting.len().div_ceil(free).min(MAX_FUNCTIONS_PER_REQUEST);
        waiting.drain(..n).collect()
    }
}

/// A dispatcher between taking its slot and taking its share, counted while it lives (also when
/// its caller stops waiting in between).
struct Gathering<'a>(&'a AtomicUsize);

impl<'a> Gathering<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Gathering(count)
    }
}

impl Drop for Gathering<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl IntacctClient {
    /// `q`'s result, sent in one request with the other queries waiting when a slot frees.
    pub(super) async fn query_coalesced(&self, q: Query) -> Result<FunctionResult, IntacctError> {
        let c = &self.inner.coalescer;
        let (answer, mut answered) = oneshot::channel();
        c.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Waiting { query: q, answer });
        loop {
            tokio::select! {
                biased;
                r = &mut answered => return r.unwrap_or_else(|_| Err(lost())),
                permit = c.slots.clone().acquire_owned() => {
                    let permit = permit.expect("the semaphore is never closed");
                    let gathering = Gathering::new(&c.gathering);
                    // Lets the other queries of this moment (another stream's page, ready on
                    // the other worker or a step behind in this task) join.
                    tokio::task::yield_now().await;
                    let batch = c.take(gathering);
                    if batch.is_empty() {
                        // Ours went out with another request: its answer comes on `answered`.
                        drop(permit);
                        return answered.await.unwrap_or_else(|_| Err(lost()));
                    }
                    // Sent from a task of its own: a caller that stops waiting (its stream was
                    // dropped) must not take the others' answers with it.
                    let client = self.clone();
                    tokio::spawn(async move {
                        client.dispatch(batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    async fn dispatch(&self, batch: Vec<Waiting>) {
        let (calls, answers): (Vec<FunctionCall>, Vec<_>) = batch
            .into_iter()
            .map(|w| (FunctionCall::Query(w.query), w.answer))
            .unzip();
        match self.call_each("query", calls).await {
            Ok(results) => {
                for (answer, r) in answers.into_iter().zip(results) {
                    let _ = answer.send(r);
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A dispatch ended without answering (its task panicked or the runtime is shutting down).
fn lost() -> IntacctError {
    IntacctError::new(
        ErrorKind::Unavailable,
        ErrorLevel::Transport,
        "the request carrying this query ended without an answer",
    )
}
