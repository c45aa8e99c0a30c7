//! Streams whose next items are fetched while the consumer handles the current one: a producer
//! task feeds a small channel, so requests overlap with the caller's work but never run further
//! ahead than the channel holds.

use std::future::Future;

use tokio::sync::mpsc;

use crate::error::IntacctError;

use super::page::{Next, Page};

/// Where a producer sends the pages of a stream.
pub(super) type PageTx = mpsc::Sender<Result<Page, IntacctError>>;

/// Waits until the one-slot channel is empty, i.e. the consumer has taken the previous page.
/// Producers call it before each fetch, so they run exactly one page ahead: the consumer holds
/// page n, page n+1 is fetched (then waits in the slot), and nothing more. `false` when the
/// stream was dropped. The producer is the channel's only sender, so the capacity seen free
/// here is still free when it sends.
async fn ahead_ok<T>(tx: &mpsc::Sender<T>) -> bool {
    tx.reserve().await.is_ok()
}

/// Runs `producer` in a task that sends pages into a one-slot channel, so the next page is
/// being fetched while the consumer handles the current one. The task starts on first poll
/// and stops when the stream is dropped (its next send fails).
pub(super) fn prefetching<T, F, Fut>(producer: F) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    prefetching_n(1, producer)
}

/// Like [`prefetching`] with `n` slots, for producers that run several fetches at once and
/// reserve a slot before each.
pub(super) fn prefetching_n<T, F, Fut>(
    n: usize,
    producer: F,
) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    enum State<F, T> {
        Idle(F, usize),
        Running(mpsc::Receiver<T>),
    }
    futures::stream::unfold(State::Idle(producer, n), |state| async move {
        let mut rx = match state {
            State::Idle(p, n) => {
                let (tx, rx) = mpsc::channel(n.max(1));
                tokio::spawn(p(tx));
                rx
            }
            State::Running(rx) => rx,
        };
        rx.recv().await.map(|item| (item, State::Running(rx)))
    })
}

/// An item of a prefetched stream that can come back with nothing in it; such an item is not
/// sent, since the consumer has nothing to do with it.
pub(super) trait Batch {
    fn is_empty(&self) -> bool;
}

impl Batch for Page {
    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Batch for Vec<i64> {
    fn is_empty(&self) -> bool {
        <[i64]>::is_empty(self)
    }
}

/// Sends the items of one keyset pass, from `from` until the pass is finished, each fetched by
/// `fetch` only once the consumer has taken the one before. `false` when the stream is over
/// instead: the consumer dropped it, or an error was sent as its last item.
pub(super) async fn send_pass<T, P, F, Fut>(
    tx: &mpsc::Sender<Result<T, IntacctError>>,
    mut from: Next<P>,
    mut fetch: F,
) -> bool
where
    T: Batch,
    F: FnMut(Option<P>) -> Fut,
    Fut: Future<Output = Result<(T, Next<P>), IntacctError>>,
{
    while let Some(after) = from {
        if !ahead_ok(tx).await {
            return false;
        }
        let (item, next) = match fetch(after).await {
            Ok(step) => step,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return false;
            }
        };
        from = next;
        if !item.is_empty() && tx.send(Ok(item)).await.is_err() {
            return false;
        }
    }
    true
}
