//! Sliding-window bookkeeping for the per-dataset push limits. Pure: every function takes `now`.
//!
//! The service documents "per minute" and "per hour" without saying whether the windows are fixed or rolling;
//! the simulator uses rolling (sliding) windows, the stricter reading, so a client that passes here passes there.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Events (with a weight) inside a sliding window.
#[derive(Debug, Default)]
pub(crate) struct Window {
    events: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    /// Forgets events older than `len`.
    pub(crate) fn expire(&mut self, now: Instant, len: Duration) {
        while let Some(&(t, w)) = self.events.front() {
            if now.saturating_duration_since(t) >= len {
                self.events.pop_front();
                self.total -= w;
            } else {
                break;
            }
        }
    }

    pub(crate) fn push(&mut self, now: Instant, weight: u64) {
        self.events.push_back((now, weight));
        self.total += weight;
    }

    /// Number of events in the window (call `expire` first).
    pub(crate) fn count(&self) -> usize {
        self.events.len()
    }

    /// Sum of weights in the window (call `expire` first).
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// How long until the window can take one more event of `weight` within `limit` (total weight), or
    /// `None` when it can right now. Used both for counts (weight 1) and row budgets.
    pub(crate) fn wait_for(
        &self,
        now: Instant,
        len: Duration,
        weight: u64,
        limit: u64,
    ) -> Option<Duration> {
        if self.total + weight <= limit {
            return None;
        }
        let mut need = self.total + weight - limit;
        for &(t, w) in &self.events {
            if w >= need {
                return Some((t + len).saturating_duration_since(now));
            }
            need -= w;
        }
        // Even an empty window cannot take it (weight > limit): the caller reports a non-retryable error.
        Some(len)
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Per-dataset pacing state, shared by all tables of the dataset.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Accepted POST rows requests, for the per-minute limit.
    pub(crate) minute_posts: Window,
    /// Accepted POST rows requests, for the large-table per-hour limit.
    pub(crate) hour_posts: Window,
    /// Accepted rows, for the rows-per-hour limit.
    pub(crate) hour_rows: Window,
    /// Every POST rows request that arrived (accepted or not), for the "max in any minute" statistic.
    pub(crate) observed: Window,
    pub(crate) in_flight: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_expires_and_computes_waits() {
        let t0 = Instant::now();
        let len = Duration::from_secs(60);
        let mut w = Window::default();
        w.push(t0, 400);
        w.push(t0 + Duration::from_secs(10), 400);
        w.push(t0 + Duration::from_secs(20), 200);
        let now = t0 + Duration::from_secs(30);
        w.expire(now, len);
        assert_eq!(w.total(), 1000);
        assert_eq!(w.count(), 3);
        // 100 more rows need the first event (400) to age out: at t0+60 → 30 s from now.
        assert_eq!(
            w.wait_for(now, len, 100, 1000),
            Some(Duration::from_secs(30))
        );
        // 500 more need the first two (800 freed) to go: t0+10+60 → 40 s.
        assert_eq!(
            w.wait_for(now, len, 500, 1000),
            Some(Duration::from_secs(40))
        );
        assert_eq!(w.wait_for(now, len, 0, 1000), None);
        w.expire(t0 + Duration::from_secs(70), len);
        assert_eq!(w.total(), 200);
        assert_eq!(w.count(), 1);
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(300)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1300)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }
}
