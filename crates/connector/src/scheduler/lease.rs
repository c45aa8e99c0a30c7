//! One run of a connection at a time, across processes and machines: a lease row in the store.
//!
//! `run` (the service) and `sync` both hold the connection's lease while they work and renew it; it
//! expires when its holder dies. A holder on this same machine whose process is gone is recognised at
//! once (worker ids are `host:pid`), so a `sync` after a crash does not wait for the expiry.

use std::sync::Arc;
use std::time::Duration;

use ml_store::{Lease, Store};

use crate::pipeline::error::PipelineError;

pub const TTL: Duration = Duration::from_secs(120);

/// This process's worker id: `host:pid`, unless the user named the worker.
pub fn worker_id(explicit: Option<&str>) -> String {
    match explicit {
        Some(w) => w.to_string(),
        None => format!("{}:{}", hostname(), std::process::id()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `worker` names a process of this machine that no longer exists.
fn dead_local_holder(worker: &str) -> bool {
    let Some((host, pid)) = worker.rsplit_once(':') else {
        return false;
    };
    if host != hostname() {
        return false;
    }
    match pid.parse::<i32>() {
        Ok(pid) if pid > 0 => !process_exists(pid),
        _ => false,
    }
}

/// Whether a process with this pid exists: signal 0 checks without sending anything. EPERM means
/// it exists but belongs to another user.
#[cfg(unix)]
fn process_exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Elsewhere the holder is judged by its lease expiry alone.
#[cfg(not(unix))]
fn process_exists(_pid: i32) -> bool {
    true
}

/// A held lease, renewed in the background until [`Held::release`].
pub struct Held {
    store: Arc<dyn Store>,
    lease: Lease,
    renew: tokio::task::JoinHandle<()>,
}

impl Held {
    pub async fn release(&self) {
        self.renew.abort();
        if let Err(e) = self
            .store
            .release_lease(&self.lease.connection, &self.lease.token)
            .await
        {
            tracing::warn!(connection = %self.lease.connection, error = %e, "could not release the run lease; it expires by itself");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Without release (an early return), the lease simply expires; it must not be renewed forever.
        self.renew.abort();
    }
}

/// Takes the connection's lease, or says who holds it.
pub async fn acquire(
    store: &Arc<dyn Store>,
    connection: &str,
    worker: &str,
) -> Result<Option<Held>, PipelineError> {
    store.ensure_connection(connection).await?;
    let mut lease = store.try_acquire_lease(connection, worker, TTL).await?;
    if lease.is_none()
        && let Some(current) = store.current_lease(connection).await?
        && dead_local_holder(&current.worker_id)
    {
        tracing::info!(connection, holder = %current.worker_id, "the previous holder of the run lease is gone; taking it over");
        store.release_lease(connection, &current.token).await?;
        lease = store.try_acquire_lease(connection, worker, TTL).await?;
    }
    let Some(lease) = lease else { return Ok(None) };
    let renew = {
        let store = store.clone();
        let lease = lease.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TTL / 3).await;
                match store
                    .renew_lease(&lease.connection, &lease.token, TTL)
                    .await
                {
                    Ok(Some(_)) => {}
                    _ => {
                        tracing::warn!(connection = %lease.connection, "could not renew the run lease")
                    }
                }
            }
        })
    };
    Ok(Some(Held {
        store: store.clone(),
        lease,
        renew,
    }))
}

/// Takes the lease or fails with a message naming the holder.
pub async fn acquire_or_explain(
    store: &Arc<dyn Store>,
    connection: &str,
    worker: &str,
) -> Result<Held, PipelineError> {
    match acquire(store, connection, worker).await? {
        Some(h) => Ok(h),
        None => {
            let holder = store.current_lease(connection).await?;
            Err(PipelineError::LeaseHeld(match holder {
                Some(l) => format!(
                    "a run of connection {connection} is in progress (worker {}, lease until {}); wait for it, or stop that worker",
                    l.worker_id,
                    l.expires_at.to_rfc3339()
                ),
                None => format!(
                    "the run lease of connection {connection} could not be taken; try again"
                ),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_worker_whose_process_is_gone_is_dead() {
        let me = worker_id(None);
        assert!(!dead_local_holder(&me), "this process is alive");
        // Pids are bounded by pid_max (at most 2^22): this one cannot exist.
        assert!(dead_local_holder(&format!("{}:{}", hostname(), 9_999_999)));
        assert!(
            !dead_local_holder("another-host:1"),
            "a holder elsewhere is judged by its lease expiry"
        );
        assert!(!dead_local_holder("named-worker"));
    }

    /// A holder that stops renewing (its process hangs, its machine is gone) loses the lease after
    /// TTL by the store's clock, the one clock injected at the edge, and not a moment before.
    #[tokio::test]
    async fn a_lease_nobody_renews_expires_by_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ml_clock::ManualClock::starting_at(
            chrono::DateTime::parse_from_rfc3339("2026-12-01T02:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
        ));
        let store = ml_store::open_with_clock(
            &ml_store::StoreLocation::Sqlite(dir.path().join("state.sqlite")),
            clock.clone(),
        )
        .await
        .unwrap();
        // Another machine's worker: judged by expiry alone, never by a local pid.
        let first = acquire(&store, "demo", "elsewhere:1")
            .await
            .unwrap()
            .expect("a free lease is taken");
        drop(first); // stops renewing without releasing
        assert!(
            acquire(&store, "demo", "here:2").await.unwrap().is_none(),
            "held until it expires"
        );
        clock.advance(TTL - Duration::from_secs(1));
        assert!(
            acquire(&store, "demo", "here:2").await.unwrap().is_none(),
            "one second before expiry it is still held"
        );
        clock.advance(Duration::from_secs(2));
        let second = acquire(&store, "demo", "here:2").await.unwrap();
        assert!(second.is_some(), "expired: the next worker takes it");
        store.close().await;
    }
}
