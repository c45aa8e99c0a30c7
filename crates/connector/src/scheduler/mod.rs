//! When each connection runs: a cron expression in a time zone, one run at a time per connection, and
//! one catch-up run at start when a scheduled time passed while the service was stopped.
//!
//! Time is read through [`Clock`] (the product's one time source, `ml_clock`) so tests drive it
//! with tokio's paused clock instead of sleeping.
//!
//! | module | job |
//! |---|---|
//! | this file | next and missed run times; `drive`, the loop of one connection's schedule |
//! | [`lease`] | one run of a connection at a time, across processes (a lease row in the store) |
//! | [`service`] | the long-running `ml-connector run` |

pub mod lease;
pub mod service;

use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Schedule;

pub use ml_clock::{Clock, SystemClock, TokioClock};

/// The first scheduled time strictly after `after`.
pub fn next_after(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&schedule.time_zone);
    schedule
        .cron
        .find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The latest scheduled time at or before `now`.
pub fn previous_at_or_before(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&schedule.time_zone);
    schedule
        .cron
        .find_previous_occurrence(&local, true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether a scheduled run was missed: a scheduled time passed after the last run started (or there
/// never was a run and a time has passed since the connection was first seen).
pub fn missed_run(
    schedule: &Schedule,
    last_run_started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match (previous_at_or_before(schedule, now), last_run_started) {
        (Some(prev), Some(last)) => prev > last,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Scheduled times that came while a run of the same connection was still going. They are not run
/// afterwards (runs of one connection never overlap, and the next scheduled run reads everything
/// they would have), only reported, so that the gap in the schedule is seen with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overrun {
    /// When the run that was still going started.
    pub run_started: DateTime<Utc>,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// How many scheduled times, `first` and `last` included (counted up to [`OVERRUN_COUNT_CAP`]).
    pub count: usize,
}

/// Enough to say "many"; a run outlasting more times than this is reported as this many.
pub const OVERRUN_COUNT_CAP: usize = 10_000;

/// The scheduled times in `(started, ended]`: those a run from `started` to `ended` overran.
pub fn overrun(
    schedule: &Schedule,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
) -> Option<Overrun> {
    let first = next_after(schedule, started).filter(|t| *t <= ended)?;
    let (mut last, mut count) = (first, 1);
    while count < OVERRUN_COUNT_CAP {
        match next_after(schedule, last) {
            Some(t) if t <= ended => {
                last = t;
                count += 1;
            }
            _ => break,
        }
    }
    Some(Overrun {
        run_started: started,
        first,
        last,
        count,
    })
}

/// Drives one connection's schedule until `shutdown` is cancelled: a catch-up run if one was missed,
/// then a run at each scheduled time. Runs of one connection never overlap because this loop awaits
/// each run; a run in progress is not dropped on shutdown (it watches the same token and stops after its
/// current batch), so the state it leaves is always resumable. Scheduled times that came while a run
/// was going are handed to `overran` when it ends, and not run.
///
/// A run may ask to be run again at a time of its own (a rebuild postponed until the push budget
/// frees): that run, with trigger `postponed`, comes at that time when it is before the next
/// scheduled one.
pub async fn drive<C, R, Fut, O, OFut>(
    schedule: &Schedule,
    clock: &C,
    last_run_started: Option<DateTime<Utc>>,
    mut run: R,
    mut overran: O,
    shutdown: &CancellationToken,
) where
    C: Clock + ?Sized,
    R: FnMut(&'static str) -> Fut,
    Fut: Future<Output = Option<DateTime<Utc>>>,
    O: FnMut(Overrun) -> OFut,
    OFut: Future<Output = ()>,
{
    let mut again: Option<DateTime<Utc>> = None;
    if missed_run(schedule, last_run_started, clock.now()) && !shutdown.is_cancelled() {
        let started = clock.now();
        again = run("catch-up").await;
        if let Some(o) = overrun(schedule, started, clock.now()) {
            overran(o).await;
        }
    }
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let now = clock.now();
        let Some(scheduled) = next_after(schedule, now) else {
            tracing::warn!(schedule = %schedule.expression, "the schedule has no future time; stopping it");
            return;
        };
        let (next, trigger) = match again.take() {
            Some(at) if at < scheduled => (at.max(now), "postponed"),
            _ => (scheduled, "schedule"),
        };
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        let started = clock.now();
        again = run(trigger).await;
        if let Some(o) = overrun(schedule, started, clock.now()) {
            overran(o).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use std::sync::{Arc, Mutex};

    fn schedule(expr: &str, tz: &str) -> Schedule {
        Schedule {
            expression: expr.into(),
            cron: croner::Cron::from_str(expr).unwrap(),
            time_zone: chrono_tz::Tz::from_str(tz).unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn times_are_computed_in_the_connection_time_zone() {
        let s = schedule("0 2 * * *", "America/Chicago");
        // 02:00 in Chicago in November (CST, UTC-6) is 08:00 UTC.
        assert_eq!(
            next_after(&s, utc("2026-11-24T07:00:00Z")),
            Some(utc("2026-11-24T08:00:00Z"))
        );
        assert_eq!(
            next_after(&s, utc("2026-11-24T08:00:00Z")),
            Some(utc("2026-11-25T08:00:00Z"))
        );
        // In July (CDT, UTC-5) the same schedule is 07:00 UTC.
        assert_eq!(
            next_after(&s, utc("2026-07-01T00:00:00Z")),
            Some(utc("2026-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn a_missed_run_is_detected_once() {
        let s = schedule("0 2 * * *", "UTC");
        let now = utc("2026-11-24T09:00:00Z");
        assert!(missed_run(&s, Some(utc("2026-11-23T02:00:05Z")), now));
        assert!(!missed_run(&s, Some(utc("2026-11-24T02:00:01Z")), now));
        assert!(missed_run(&s, None, now));
    }

    #[tokio::test(start_paused = true)]
    async fn drive_runs_at_each_scheduled_time_and_catches_up_once() {
        let s = schedule("*/15 * * * *", "UTC");
        let clock = TokioClock::starting_at(utc("2026-11-24T10:07:00Z"));
        type Log = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;
        let runs: Log = Arc::default();
        let stop = CancellationToken::new();
        let seen = runs.clone();
        let clock_ref = &clock;
        let drive_fut = drive(
            &s,
            clock_ref,
            Some(utc("2026-11-24T09:50:00Z")), // the 10:00 run was missed
            move |why| {
                let seen = seen.clone();
                let at = clock_ref.now();
                async move {
                    seen.lock().unwrap().push((why.to_string(), at));
                    // a run takes five minutes
                    tokio::time::sleep(Duration::from_secs(300)).await;
                    None
                }
            },
            |_| async {},
            &stop,
        );
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(40 * 60)).await;
            stop.cancel();
        };
        tokio::join!(drive_fut, stopper);
        let runs = runs.lock().unwrap().clone();
        let got: Vec<(String, String)> = runs
            .iter()
            .map(|(w, t)| (w.clone(), t.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("catch-up".to_string(), "10:07".to_string()),
                ("schedule".to_string(), "10:15".to_string()),
                ("schedule".to_string(), "10:30".to_string()),
                // started before the stop at 10:47 and allowed to finish
                ("schedule".to_string(), "10:45".to_string()),
            ]
        );
    }

    /// A run whose rebuild was postponed until 11:20 is run again then, not at the next
    /// scheduled time (12:00); a requested time after the next scheduled one changes nothing.
    #[tokio::test(start_paused = true)]
    async fn a_run_postponed_until_a_time_runs_again_then() {
        let s = schedule("0 * * * *", "UTC");
        let clock = TokioClock::starting_at(utc("2026-11-24T10:00:00Z"));
        type Log = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;
        let runs: Log = Arc::default();
        let stop = CancellationToken::new();
        let seen = runs.clone();
        let clock_ref = &clock;
        let drive_fut = drive(
            &s,
            clock_ref,
            Some(utc("2026-11-24T10:00:00Z")),
            move |why| {
                let seen = seen.clone();
                let at = clock_ref.now();
                async move {
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((why.to_string(), at));
                        seen.len()
                    };
                    match n {
                        // The 11:00 run postpones until 11:20; the 11:20 one asks for 13:30,
                        // after the next scheduled time, which comes first.
                        1 => Some(utc("2026-11-24T11:20:00Z")),
                        2 => Some(utc("2026-11-24T13:30:00Z")),
                        _ => None,
                    }
                }
            },
            |_| async {},
            &stop,
        );
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(3 * 3600 + 60)).await;
            stop.cancel();
        };
        tokio::join!(drive_fut, stopper);
        let got: Vec<(String, String)> = runs
            .lock()
            .unwrap()
            .iter()
            .map(|(w, t)| (w.clone(), t.format("%H:%M").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("schedule".to_string(), "11:00".to_string()),
                ("postponed".to_string(), "11:20".to_string()),
                ("schedule".to_string(), "12:00".to_string()),
                ("schedule".to_string(), "13:00".to_string()),
            ]
        );
    }

    /// A run that outlasts the next scheduled times: they are not run (runs never overlap) but
    /// handed over as one overrun when the run ends, and the schedule goes on at the next time.
    #[tokio::test(start_paused = true)]
    async fn times_that_come_while_a_run_is_going_are_reported_not_run() {
        let s = schedule("*/15 * * * *", "UTC");
        let clock = TokioClock::starting_at(utc("2026-11-24T10:10:00Z"));
        let runs: Arc<Mutex<Vec<String>>> = Arc::default();
        let overruns: Arc<Mutex<Vec<Overrun>>> = Arc::default();
        let stop = CancellationToken::new();
        let clock_ref = &clock;
        let (seen, missed) = (runs.clone(), overruns.clone());
        let drive_fut = drive(
            &s,
            clock_ref,
            Some(utc("2026-11-24T10:00:00Z")),
            move |_| {
                let seen = seen.clone();
                let at = clock_ref.now();
                async move {
                    let first = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(at.format("%H:%M").to_string());
                        seen.len() == 1
                    };
                    // The 10:15 run takes 40 minutes; the others 1.
                    let minutes = if first { 40 } else { 1 };
                    tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
                    None
                }
            },
            move |o| {
                missed.lock().unwrap().push(o);
                async {}
            },
            &stop,
        );
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(70 * 60)).await;
            stop.cancel();
        };
        tokio::join!(drive_fut, stopper);
        assert_eq!(*runs.lock().unwrap(), vec!["10:15", "11:00", "11:15"]);
        assert_eq!(
            *overruns.lock().unwrap(),
            vec![Overrun {
                run_started: utc("2026-11-24T10:15:00Z"),
                first: utc("2026-11-24T10:30:00Z"),
                last: utc("2026-11-24T10:45:00Z"),
                count: 2,
            }]
        );
        assert_eq!(
            overrun(&s, utc("2026-11-24T10:15:00Z"), utc("2026-11-24T10:29:59Z")),
            None,
            "a run that ends before the next time overran nothing"
        );
    }
}
