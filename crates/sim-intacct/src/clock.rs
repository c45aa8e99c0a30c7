//! The simulated clock: a fixed start date-time that advances with real time plus test-driven jumps, so
//! WHENMODIFIED values and session expiry can be exercised without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{FixedOffset, NaiveDateTime, TimeZone};

/// Company-local simulated time (Intacct timestamps carry no zone; `offset` is used for ISO renderings).
#[derive(Debug)]
pub struct SimClock {
    start: NaiveDateTime,
    /// None = the clock moves only by `advance`.
    real_start: Option<Instant>,
    offset: FixedOffset,
    // A std Mutex: held only for an add, never across an await.
    advanced: Mutex<Duration>,
}

impl SimClock {
    pub fn new(start: NaiveDateTime, utc_offset_minutes: i32, follow_real_time: bool) -> Self {
        SimClock {
            start,
            real_start: follow_real_time.then(Instant::now),
            offset: FixedOffset::east_opt(utc_offset_minutes * 60)
                .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset")),
            advanced: Mutex::new(Duration::ZERO),
        }
    }

    /// Current simulated local time, truncated to whole seconds like Intacct's timestamps.
    pub fn now(&self) -> NaiveDateTime {
        let adv = *self.advanced.lock().expect("clock lock");
        let real = self.real_start.map(|s| s.elapsed()).unwrap_or_default();
        let t = self.start + chrono::Duration::from_std(real + adv).unwrap_or_default();
        t.with_nanosecond_zero()
    }

    /// Current simulated time as an Intacct timestamp (`MM/DD/YYYY HH:MM:SS`).
    pub fn now_ts(&self) -> String {
        fmt_ts(self.now())
    }

    pub fn advance(&self, d: Duration) {
        *self.advanced.lock().expect("clock lock") += d;
    }

    /// ISO-8601 with the company's offset, as in `sessiontimestamp`.
    pub fn iso(&self, t: NaiveDateTime) -> String {
        match self.offset.from_local_datetime(&t).single() {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            None => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        }
    }

    pub fn offset_hours(&self) -> f64 {
        f64::from(self.offset.local_minus_utc()) / 3600.0
    }
}

trait TruncNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl TruncNanos for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// `MM/DD/YYYY HH:MM:SS`, Intacct's TIMESTAMP rendering.
pub fn fmt_ts(t: NaiveDateTime) -> String {
    t.format("%m/%d/%Y %H:%M:%S").to_string()
}

/// `MM/DD/YYYY`, Intacct's DATE rendering.
pub fn fmt_date(d: chrono::NaiveDate) -> String {
    d.format("%m/%d/%Y").to_string()
}

/// Parses a TIMESTAMP value as Intacct accepts it in filters (a bare date means midnight).
pub fn parse_ts(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M"))
        .ok()
        .or_else(|| parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0)))
}

/// Parses a DATE value (`MM/DD/YYYY`); a timestamp's date part is accepted too.
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let s = s.trim();
    let head = s.split(' ').next().unwrap_or(s);
    chrono::NaiveDate::parse_from_str(head, "%m/%d/%Y").ok()
}
