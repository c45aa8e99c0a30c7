//! The one time source of the product.
//!
//! Everything that decides by the wall clock (schedules, lease expiry, the lookback window, how often
//! keys are compared, which Power BI POSTs still count against an hour's budget, audit timestamps)
//! reads it through [`Clock`], handed down from the process's edge. Production uses [`SystemClock`];
//! tests use [`TokioClock`], which follows tokio's timer, so `tokio::time::pause()` and `advance()`
//! move every one of those decisions together, without sleeping.
//!
//! Durations measured inside one process (pacing windows, request timeouts, backoff) use
//! `tokio::time::Instant`, which the same paused timer drives: a test that pauses time sees both
//! move in step.
//!
//! It is a crate of its own because the store, the Power BI client and the connector all need it and
//! none of them may depend on another for it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Source of "now" (wall-clock time, UTC).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The shared handle every component keeps.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that follows tokio's (possibly paused) timer from a fixed start: with
/// `tokio::time::pause()`, `advance(d)` moves it by exactly `d`.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `base` now (in tokio's time).
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock {
            base,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }
}

/// A clock that moves only when told: for tests whose code under test also waits on I/O (a
/// database), where tokio's paused timer would auto-advance past that I/O's own timeouts.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: std::sync::Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or_default();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_exactly_with_paused_time() {
        let base = DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = TokioClock::starting_at(base);
        assert_eq!(clock.now(), base);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), base + chrono::Duration::seconds(90));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), base + chrono::Duration::seconds(3690));
    }

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let base = Utc::now();
        let clock = ManualClock::starting_at(base);
        assert_eq!(clock.now(), base);
        clock.advance(Duration::from_secs(121));
        assert_eq!(clock.now(), base + chrono::Duration::seconds(121));
    }
}
