//! The documented push limits of one dataset (reference §5.1): the per-request limits the batcher cuts by and the
//! per-window budgets the pacer keeps. A module of its own so that both read it without reading each other.

use std::time::Duration;

/// Push limits; defaults are the service's documented values. Tests shorten `window`/`hour`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushLimits {
    pub max_rows_per_post: usize,
    pub max_bytes_per_post: usize,
    pub max_in_flight: usize,
    pub posts_per_window: usize,
    pub window: Duration,
    pub rows_per_hour: u64,
    pub hour: Duration,
    pub large_table_rows: u64,
    pub large_table_posts_per_hour: usize,
    /// Attempts per batch for 429/5xx/connect failures (the first send included).
    pub max_attempts: u32,
    /// First backoff step without a Retry-After; doubled per attempt up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for PushLimits {
    fn default() -> Self {
        Self {
            max_rows_per_post: 10_000,
            max_bytes_per_post: 16_000_000,
            max_in_flight: 5,
            posts_per_window: 120,
            window: Duration::from_secs(60),
            rows_per_hour: 1_000_000,
            hour: Duration::from_secs(3600),
            large_table_rows: 250_000,
            large_table_posts_per_hour: 120,
            max_attempts: 6,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(120),
        }
    }
}

impl PushLimits {
    /// No pacing at all (benchmarks against a simulator with limits switched off).
    pub fn unlimited() -> Self {
        Self {
            max_in_flight: 64,
            posts_per_window: usize::MAX,
            rows_per_hour: u64::MAX,
            large_table_rows: u64::MAX,
            large_table_posts_per_hour: usize::MAX,
            ..Self::default()
        }
    }

    pub(crate) fn logs_anything(&self) -> bool {
        self.posts_per_window != usize::MAX
            || self.rows_per_hour != u64::MAX
            || (self.large_table_rows != u64::MAX && self.large_table_posts_per_hour != usize::MAX)
    }
}
