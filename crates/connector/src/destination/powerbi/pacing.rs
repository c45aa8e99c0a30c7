//! Power BI pacing across processes. Each process's pusher paces a dataset from the POSTs it has
//! sent itself; a new process (the next scheduled sync, a `powerbi push`, another worker) would
//! otherwise start with an empty hour and learn about its predecessor's POSTs from 429s. So every
//! POST is recorded in the store, and a pusher is seeded from there before its first POST to a
//! dataset.

use ml_powerbi::{BatchReport, PostRecord, PushLimits, Pusher};
use ml_store::{PushPost, StoreError};

use ml_clock::Clock;
use ml_store::Store;

/// Seeds `pusher` with the POSTs to `dataset_id` still inside its longest budget window; once per
/// dataset per pusher (later calls change nothing).
pub async fn seed(
    store: &dyn Store,
    clock: &dyn Clock,
    pusher: &Pusher,
    dataset_id: &str,
) -> Result<(), StoreError> {
    // A long-running service runs many syncs with one pusher: read the history only the first time.
    if pusher.paces(dataset_id) {
        return Ok(());
    }
    let since = clock.now() - memory(pusher.limits());
    let posts: Vec<PostRecord> = store
        .recent_posts(dataset_id, since)
        .await?
        .into_iter()
        .map(|p| PostRecord {
            at: p.at.into(),
            rows: p.rows,
        })
        .collect();
    if pusher.seed_history(dataset_id, &posts) && !posts.is_empty() {
        tracing::debug!(dataset = %dataset_id, posts = posts.len(), "pacer seeded with earlier POSTs");
    }
    Ok(())
}

/// Records the POSTs of one batch (and forgets those too old to count any more).
pub async fn remember(
    store: &dyn Store,
    clock: &dyn Clock,
    pusher: &Pusher,
    dataset_id: &str,
    report: &BatchReport,
) {
    if report.posts.is_empty() {
        return;
    }
    let posts: Vec<PushPost> = report
        .posts
        .iter()
        .map(|p| PushPost {
            at: p.at.into(),
            rows: p.rows,
        })
        .collect();
    let forget_before = clock.now() - memory(pusher.limits());
    // The history only spares the next process some 429s (which it honours); failing to write it
    // must not fail a batch that Power BI accepted.
    if let Err(e) = store.record_posts(dataset_id, &posts, forget_before).await {
        tracing::warn!(dataset = %dataset_id, error = %e, "could not record Power BI POSTs for pacing");
    }
}

/// How far back a POST still counts against a budget: the longest of the pusher's windows.
fn memory(limits: &PushLimits) -> chrono::Duration {
    chrono::Duration::from_std(limits.hour.max(limits.window)).unwrap_or(chrono::Duration::hours(1))
}
