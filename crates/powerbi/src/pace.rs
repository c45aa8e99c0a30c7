//! Pacing inside the documented push limits of one dataset (reference §5.1): at most `max_in_flight` POSTs pending,
//! at most `posts_per_window` POSTs in ANY window of `window`, at most `rows_per_hour` rows in any `hour`, and at
//! most `large_table_posts_per_hour` POSTs in any `hour` once the target table holds `large_table_rows` rows.
//!
//! The budgets are exact sliding logs, not token buckets (a bucket can burst past the limit at a window edge).
//! A POST is counted from the moment it is admitted until `window` (or `hour`) after its response arrived: the
//! service counts a request when it receives it, which is somewhere between those two instants, so counting the
//! whole span guarantees the service never sees more than the limit in any window, whatever the network delay.
//! A POST whose response has not arrived yet counts as "now". [`PaceLog`] is the pure part (no clock, no async);
//! [`DatasetPacer`] adds the semaphore, the waiting and the events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast};
use tokio::time::Instant;

use crate::events::PushEvent;
pub use crate::events::WaitReason;
pub use crate::limits::PushLimits;

/// The verdict on a POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Wait until `until`, or for an in-flight POST to complete when `until` is `None`.
    Wait {
        reason: WaitReason,
        until: Option<Instant>,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    /// None while the response is outstanding (counts as "now").
    end: Option<Instant>,
    rows: u64,
}

/// Exact sliding log of one dataset's POSTs (pure: the caller passes the time).
#[derive(Debug, Default)]
pub struct PaceLog {
    entries: VecDeque<Entry>,
    next_id: u64,
    blocked_until: Option<Instant>,
}

impl PaceLog {
    /// Decides whether a POST of `rows` rows may go now.
    pub fn check(
        &mut self,
        limits: &PushLimits,
        now: Instant,
        rows: u64,
        large_table: bool,
    ) -> Admission {
        if let Some(b) = self.blocked_until {
            if b > now {
                return Admission::Wait {
                    reason: WaitReason::RetryAfter,
                    until: Some(b),
                };
            }
            self.blocked_until = None;
        }
        self.prune(limits, now);
        let live = |e: &Entry, span: Duration| e.end.is_none_or(|end| end + span > now);
        // For each budget: the effective times of the entries still inside the span, oldest first (None = in flight).
        let times = |span: Duration| {
            let mut t: Vec<(Option<Instant>, u64)> = self
                .entries
                .iter()
                .filter(|e| live(e, span))
                .map(|e| (e.end, e.rows))
                .collect();
            t.sort_by_key(|(end, _)| end.map_or((1, None), |x| (0, Some(x))));
            t
        };
        if limits.posts_per_window != usize::MAX {
            let t = times(limits.window);
            if t.len() >= limits.posts_per_window {
                let (end, _) = t[t.len() - limits.posts_per_window];
                return Admission::Wait {
                    reason: WaitReason::PostsPerWindow,
                    until: end.map(|e| e + limits.window),
                };
            }
        }
        if large_table && limits.large_table_posts_per_hour != usize::MAX {
            let t = times(limits.hour);
            if t.len() >= limits.large_table_posts_per_hour {
                let (end, _) = t[t.len() - limits.large_table_posts_per_hour];
                return Admission::Wait {
                    reason: WaitReason::LargeTablePostsPerHour,
                    until: end.map(|e| e + limits.hour),
                };
            }
        }
        if limits.rows_per_hour != u64::MAX {
            let t = times(limits.hour);
            // A batch larger than the whole budget could never go; let it go alone into an empty hour instead.
            let rows = rows.min(limits.rows_per_hour);
            let mut sum: u64 = t.iter().map(|(_, r)| r).sum();
            if sum + rows > limits.rows_per_hour {
                for (end, r) in &t {
                    sum -= r;
                    if sum + rows <= limits.rows_per_hour {
                        return Admission::Wait {
                            reason: WaitReason::RowsPerHour,
                            until: end.map(|e| e + limits.hour),
                        };
                    }
                }
                unreachable!("an empty log always admits");
            }
        }
        Admission::Admit
    }

    /// Records an admitted POST; returns its id for [`PaceLog::complete`].
    pub fn admit(&mut self, limits: &PushLimits, rows: u64) -> u64 {
        self.next_id += 1;
        if limits.logs_anything() {
            self.entries.push_back(Entry {
                id: self.next_id,
                end: None,
                rows,
            });
        }
        self.next_id
    }

    /// The response to POST `id` arrived at `now`; `rows_applied` false drops its rows from the budget (the service
    /// refused them) while the POST itself still counts.
    pub fn complete(&mut self, id: u64, now: Instant, rows_applied: bool) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.end = Some(now);
            if !rows_applied {
                e.rows = 0;
            }
        }
    }

    /// Adds POSTs that ended before this log existed (another process's, read back from where it
    /// recorded them), as (end, rows applied): the budgets then count them like this log's own.
    pub fn seed(&mut self, past: impl IntoIterator<Item = (Instant, u64)>) {
        for (end, rows) in past {
            self.next_id += 1;
            self.entries.push_back(Entry {
                id: self.next_id,
                end: Some(end),
                rows,
            });
        }
    }

    /// Holds every POST of the dataset until `until` (a 429's Retry-After).
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }

    fn prune(&mut self, limits: &PushLimits, now: Instant) {
        let span = limits.window.max(limits.hour);
        self.entries
            .retain(|e| e.end.is_none_or(|end| end + span > now));
    }
}

/// Pacing state of one dataset, shared by all its tables and callers.
pub struct DatasetPacer {
    pub(crate) dataset: String,
    limits: PushLimits,
    in_flight: Arc<Semaphore>,
    log: Mutex<PaceLog>, // std Mutex: never held across an await
    completed: Notify,
}

/// An admitted POST: holds an in-flight slot until completed. Dropping it without [`DatasetPacer::complete`] (the
/// caller's future was cancelled mid-request) completes it as "rows may have been applied", so a cancelled send
/// can neither leak a slot nor leave an entry counting as in flight forever.
pub struct Ticket {
    id: u64,
    pacer: Arc<DatasetPacer>,
    permit: Option<OwnedSemaphorePermit>,
    pub waited: Duration,
}

impl Ticket {
    fn finish(&mut self, rows_applied: bool) {
        if let Some(permit) = self.permit.take() {
            self.pacer.log.lock().expect("pace log poisoned").complete(
                self.id,
                Instant::now(),
                rows_applied,
            );
            drop(permit);
            self.pacer.completed.notify_waiters();
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.finish(true);
    }
}

impl DatasetPacer {
    pub fn new(dataset: String, limits: PushLimits) -> Self {
        Self {
            dataset,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            limits,
            log: Mutex::new(PaceLog::default()),
            completed: Notify::new(),
        }
    }

    /// Waits for an in-flight slot and for every budget, then admits the POST.
    pub async fn acquire(
        self: &Arc<Self>,
        rows: u64,
        large_table: bool,
        events: &broadcast::Sender<PushEvent>,
    ) -> Ticket {
        let started = Instant::now();
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        loop {
            let notified = self.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let verdict = {
                let mut log = self.log.lock().expect("pace log poisoned");
                match log.check(&self.limits, now, rows, large_table) {
                    Admission::Admit => Ok(log.admit(&self.limits, rows)),
                    Admission::Wait { reason, until } => Err((reason, until)),
                }
            };
            match verdict {
                Ok(id) => {
                    return Ticket {
                        id,
                        pacer: self.clone(),
                        permit: Some(permit),
                        waited: started.elapsed(),
                    };
                }
                Err((reason, Some(until))) => {
                    let wait = until.saturating_duration_since(now);
                    tracing::info!(dataset = %self.dataset, reason = reason.as_str(), ?wait, "waiting for Power BI push budget");
                    let _ = events.send(PushEvent::Waiting {
                        dataset: self.dataset.clone(),
                        reason: reason.as_str(),
                        wait,
                    });
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = &mut notified => {}
                    }
                }
                Err((_, None)) => notified.await,
            }
        }
    }

    /// Reports the end of an admitted POST (frees the slot, starts its sliding-window expiry).
    pub fn complete(&self, mut ticket: Ticket, rows_applied: bool) {
        debug_assert!(std::ptr::eq(Arc::as_ptr(&ticket.pacer), self));
        ticket.finish(rows_applied);
    }

    /// See [`PaceLog::seed`].
    pub fn seed(&self, past: impl IntoIterator<Item = (Instant, u64)>) {
        self.log.lock().expect("pace log poisoned").seed(past);
    }

    /// Holds all POSTs of this dataset until `until` (after a 429).
    pub fn block_until(&self, until: Instant) {
        self.log
            .lock()
            .expect("pace log poisoned")
            .block_until(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PushLimits {
        PushLimits {
            posts_per_window: 3,
            window: Duration::from_secs(1),
            rows_per_hour: 100,
            hour: Duration::from_secs(10),
            large_table_rows: 50,
            large_table_posts_per_hour: 5,
            ..PushLimits::default()
        }
    }

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let l = limits();
        let t0 = Instant::now();
        let mut log = PaceLog::default();
        // Three quick POSTs completing at 0.1, 0.2, 0.3 s.
        for i in 0..3 {
            assert_eq!(log.check(&l, t0, 1, false), Admission::Admit);
            let id = log.admit(&l, 1);
            log.complete(id, t0 + s(0.1 * (i + 1) as f64), true);
        }
        // The fourth must wait until the first completion + 1 s, not merely 1 s after the first admission.
        assert_eq!(
            log.check(&l, t0 + s(0.5), 1, false),
            Admission::Wait {
                reason: WaitReason::PostsPerWindow,
                until: Some(t0 + s(1.1))
            }
        );
        assert_eq!(log.check(&l, t0 + s(1.1), 1, false), Admission::Admit);
    }

    #[test]
    fn in_flight_posts_count_as_now() {
        let l = limits();
        let t0 = Instant::now();
        let mut log = PaceLog::default();
        for _ in 0..3 {
            log.admit(&l, 1);
        }
        assert_eq!(
            log.check(&l, t0 + s(100.0), 1, false),
            Admission::Wait {
                reason: WaitReason::PostsPerWindow,
                until: None
            }
        );
    }

    #[test]
    fn rows_per_hour_waits_for_enough_rows_to_expire() {
        let l = PushLimits {
            posts_per_window: usize::MAX,
            ..limits()
        };
        let t0 = Instant::now();
        let mut log = PaceLog::default();
        for (i, rows) in [40u64, 30, 20].into_iter().enumerate() {
            let id = log.admit(&l, rows);
            log.complete(id, t0 + s(i as f64), true);
        }
        assert_eq!(log.check(&l, t0 + s(3.0), 10, false), Admission::Admit);
        // 90 used; 50 more needs the 40-row entry (ended at 0 s) to leave the 10 s hour.
        assert_eq!(
            log.check(&l, t0 + s(3.0), 50, false),
            Admission::Wait {
                reason: WaitReason::RowsPerHour,
                until: Some(t0 + s(10.0))
            }
        );
        // 80 more needs the first two gone.
        assert_eq!(
            log.check(&l, t0 + s(3.0), 80, false),
            Admission::Wait {
                reason: WaitReason::RowsPerHour,
                until: Some(t0 + s(11.0))
            }
        );
        assert_eq!(log.check(&l, t0 + s(11.0), 80, false), Admission::Admit);
        // Refused rows do not use the budget.
        let id = log.admit(&l, 100);
        log.complete(id, t0 + s(11.0), false);
        assert_eq!(log.check(&l, t0 + s(11.0), 60, false), Admission::Admit);
    }

    #[test]
    fn large_tables_get_the_hourly_post_cap() {
        let l = PushLimits {
            posts_per_window: usize::MAX,
            rows_per_hour: u64::MAX,
            ..limits()
        };
        let t0 = Instant::now();
        let mut log = PaceLog::default();
        for i in 0..5 {
            let id = log.admit(&l, 1);
            log.complete(id, t0 + s(i as f64), true);
        }
        assert_eq!(log.check(&l, t0 + s(5.0), 1, false), Admission::Admit);
        assert_eq!(
            log.check(&l, t0 + s(5.0), 1, true),
            Admission::Wait {
                reason: WaitReason::LargeTablePostsPerHour,
                until: Some(t0 + s(10.0))
            }
        );
    }

    #[test]
    fn retry_after_blocks_the_whole_dataset() {
        let l = limits();
        let t0 = Instant::now();
        let mut log = PaceLog::default();
        log.block_until(t0 + s(7.0));
        assert_eq!(
            log.check(&l, t0, 1, false),
            Admission::Wait {
                reason: WaitReason::RetryAfter,
                until: Some(t0 + s(7.0))
            }
        );
        assert_eq!(log.check(&l, t0 + s(7.0), 1, false), Admission::Admit);
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_posts_and_reports_waiting() {
        let l = PushLimits {
            rows_per_hour: u64::MAX,
            ..limits()
        };
        let pacer = Arc::new(DatasetPacer::new("ds".into(), l));
        let (tx, mut rx) = broadcast::channel(64);
        let t0 = Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..7 {
            let t = pacer.acquire(1, false, &tx).await;
            admitted.push(Instant::now() - t0);
            pacer.complete(t, true);
        }
        // Completions happen at admission (no network): 3 per second, exactly on the window edges.
        assert_eq!(
            admitted,
            vec![s(0.0), s(0.0), s(0.0), s(1.0), s(1.0), s(1.0), s(2.0)]
        );
        let PushEvent::Waiting {
            dataset,
            reason,
            wait,
        } = rx.try_recv().unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (dataset.as_str(), reason, wait),
            ("ds", "per-minute POST budget", s(1.0))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_slots_are_limited() {
        let l = PushLimits {
            max_in_flight: 2,
            ..PushLimits::unlimited()
        };
        let pacer = Arc::new(DatasetPacer::new("ds".into(), l));
        let (tx, _rx) = broadcast::channel(8);
        let a = pacer.acquire(1, false, &tx).await;
        let _b = pacer.acquire(1, false, &tx).await;
        let third = tokio::time::timeout(s(5.0), pacer.acquire(1, false, &tx)).await;
        assert!(third.is_err(), "a third POST must wait for a slot");
        pacer.complete(a, true);
        let c = tokio::time::timeout(s(0.1), pacer.acquire(1, false, &tx))
            .await
            .expect("slot freed");
        // A ticket dropped without completion (a cancelled send) frees its slot too.
        drop(c);
        tokio::time::timeout(s(0.1), pacer.acquire(1, false, &tx))
            .await
            .expect("dropped ticket freed its slot");
    }
}
