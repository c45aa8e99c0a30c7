//! Computed views of a connection's state, for the operations console and any other shell: its
//! health, its next scheduled run, and per table how fresh the data is and how many rows Power BI
//! holds. Read-only: everything comes from the store and the configuration, nothing remote.

use chrono::{DateTime, Utc};
use serde::Serialize;

use ml_store::{RunRecord, RunStatus, Store, StoreError, StreamStatus};

use crate::config::{ConnectionConfig, Mode, Schedule};

/// One word for a connection, worst first in what it asks of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The last finished run failed (or was interrupted).
    Failing,
    /// The last finished run left some streams failed or postponed.
    Partial,
    /// The last finished run succeeded, but a whole scheduled interval has passed since without a
    /// successful run (the service is not running, or every run since was skipped).
    Stale,
    Ok,
    /// No run has finished yet.
    Never,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Failing => "failing",
            Health::Partial => "partial",
            Health::Stale => "stale",
            Health::Ok => "ok",
            Health::Never => "never",
        }
    }
}

/// Runs that say something about health: finished and not skipped (a skipped time did nothing, and a
/// running one has no verdict yet).
fn verdicts(runs: &[RunRecord]) -> impl Iterator<Item = &RunRecord> {
    runs.iter()
        .filter(|r| !matches!(r.status, RunStatus::Running | RunStatus::Skipped))
}

/// The health of a connection from its runs, newest first.
pub fn health(runs: &[RunRecord], schedule: Option<&Schedule>, now: DateTime<Utc>) -> Health {
    let Some(last) = verdicts(runs).next() else {
        return Health::Never;
    };
    match last.status {
        RunStatus::Failed | RunStatus::Interrupted => return Health::Failing,
        RunStatus::Partial => return Health::Partial,
        _ => {}
    }
    // Stale: the schedule's last two times both passed after the last successful run started, so a
    // whole interval went by without one (one missed time is the run simply not being due yet).
    if let Some(s) = schedule
        && let Some(prev) = crate::scheduler::previous_at_or_before(s, now)
        && let Some(before) =
            crate::scheduler::previous_at_or_before(s, prev - chrono::Duration::seconds(1))
        && last.started_at < before
    {
        return Health::Stale;
    }
    Health::Ok
}

/// How many of the latest verdict runs failed in a row (the readiness rule).
pub fn failing_streak(runs: &[RunRecord]) -> u32 {
    verdicts(runs)
        .take_while(|r| matches!(r.status, RunStatus::Failed | RunStatus::Interrupted))
        .count() as u32
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectionStatus {
    pub name: String,
    pub health: Health,
    pub last_run: Option<RunRecord>,
    /// The next scheduled time, from the cron in its time zone (None without a schedule).
    pub next_run: Option<DateTime<Utc>>,
    pub schedule: Option<String>,
    pub time_zone: Option<String>,
    pub failing_streak: u32,
    pub tables: Vec<TableStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableStatus {
    pub object: String,
    pub table: String,
    pub mode: &'static str,
    /// The committed cursor's WHENMODIFIED: Intacct changes up to this time are in the table.
    pub data_as_of: Option<String>,
    /// Rows the store believes the Power BI table holds.
    pub rows_in_powerbi: u64,
    /// A replace table waiting for a rebuild from the mirror.
    pub dirty: bool,
    /// The stream's status in the last run that had it.
    pub last_status: Option<StreamStatus>,
    /// The remote system's words when the stream failed in that run.
    pub last_error: Option<String>,
}

/// The runs [`connection_status`] reads to judge a connection.
pub const RUNS_READ: u32 = 50;

/// The connection's runs, newest first; none when the store has never seen the connection.
pub async fn recent_runs(
    store: &dyn Store,
    connection: &str,
    limit: u32,
) -> Result<Vec<RunRecord>, StoreError> {
    match store.list_runs(Some(connection), limit).await {
        Err(StoreError::UnknownConnection(_)) => Ok(Vec::new()),
        other => other,
    }
}

/// Everything the overview shows of one configured connection.
pub async fn connection_status(
    store: &dyn Store,
    cfg: &ConnectionConfig,
    now: DateTime<Utc>,
) -> Result<ConnectionStatus, StoreError> {
    let runs = recent_runs(store, &cfg.name, RUNS_READ).await?;
    let last_detail = match verdicts(&runs).next() {
        Some(r) => store.get_run(r.id).await?,
        None => None,
    };
    let known = !runs.is_empty();
    let mut tables = Vec::with_capacity(cfg.streams.len());
    for s in &cfg.streams {
        let (cursor, state) = if known {
            (
                store.cursor(&cfg.name, &s.object).await?,
                store.stream_state(&cfg.name, &s.object).await?,
            )
        } else {
            (None, Default::default())
        };
        let last = last_detail
            .as_ref()
            .and_then(|d| d.streams.iter().find(|r| r.stream == s.object));
        tables.push(TableStatus {
            object: s.object.clone(),
            table: s.table.clone(),
            mode: match s.mode {
                Mode::Replace => "replace",
                Mode::Append => "append",
            },
            data_as_of: cursor.and_then(|c| c.committed).map(|p| p.when_modified),
            rows_in_powerbi: state.table_rows,
            dirty: state.dirty,
            last_status: last.and_then(|l| l.result.status),
            last_error: last.and_then(|l| l.result.error.clone()),
        });
    }
    let streak = failing_streak(&runs);
    Ok(ConnectionStatus {
        name: cfg.name.clone(),
        health: health(&runs, cfg.schedule.as_ref(), now),
        last_run: runs.into_iter().find(|r| r.status != RunStatus::Skipped),
        next_run: cfg
            .schedule
            .as_ref()
            .and_then(|s| crate::scheduler::next_after(s, now)),
        schedule: cfg.schedule.as_ref().map(|s| s.expression.clone()),
        time_zone: cfg.schedule.as_ref().map(|s| s.time_zone.to_string()),
        failing_streak: streak,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_store::RunId;

    fn run(id: i64, status: RunStatus, started: &str) -> RunRecord {
        RunRecord {
            id: RunId(id),
            connection: "acme".into(),
            trigger: "schedule".into(),
            status,
            started_at: started.parse().unwrap(),
            finished_at: None,
            summary: serde_json::json!({}),
        }
    }

    fn hourly() -> Schedule {
        Schedule {
            expression: "0 * * * *".into(),
            cron: "0 * * * *".parse().unwrap(),
            time_zone: chrono_tz::UTC,
        }
    }

    #[test]
    fn health_reads_the_last_verdict_and_the_schedule() {
        let now: DateTime<Utc> = "2026-12-06T10:30:00Z".parse().unwrap();
        let s = hourly();
        assert_eq!(health(&[], Some(&s), now), Health::Never);
        let ok = run(3, RunStatus::Succeeded, "2026-12-06T10:00:00Z");
        let skipped = run(4, RunStatus::Skipped, "2026-12-06T10:20:00Z");
        assert_eq!(health(&[skipped.clone(), ok], Some(&s), now), Health::Ok);
        // 09:00 and 10:00 both passed after it: a whole interval without a successful run.
        let old = run(2, RunStatus::Succeeded, "2026-12-06T08:59:00Z");
        assert_eq!(
            health(std::slice::from_ref(&old), Some(&s), now),
            Health::Stale
        );
        assert_eq!(health(std::slice::from_ref(&old), None, now), Health::Ok);
        let partial = run(5, RunStatus::Partial, "2026-12-06T10:00:00Z");
        assert_eq!(
            health(&[partial, old.clone()], Some(&s), now),
            Health::Partial
        );
        let failed = run(6, RunStatus::Failed, "2026-12-06T10:00:00Z");
        let running = run(7, RunStatus::Running, "2026-12-06T10:29:00Z");
        let runs = [running, failed.clone(), skipped, failed, old];
        assert_eq!(health(&runs, Some(&s), now), Health::Failing);
        assert_eq!(failing_streak(&runs), 2);
    }
}
