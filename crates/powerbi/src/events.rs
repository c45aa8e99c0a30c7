//! What the pusher tells the CLI and the logs while it works. The pacer announces waits and the pusher the rest, so
//! the notices live apart from both: each depends on them, neither on the other.

use std::time::Duration;

use uuid::Uuid;

/// Why a POST has to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    PostsPerWindow,
    RowsPerHour,
    LargeTablePostsPerHour,
    RetryAfter,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::PostsPerWindow => "per-minute POST budget",
            WaitReason::RowsPerHour => "hourly row budget",
            WaitReason::LargeTablePostsPerHour => "hourly POST budget of a table over 250,000 rows",
            WaitReason::RetryAfter => "Retry-After from Power BI",
        }
    }
}

/// Progress notices for the CLI and logs.
#[derive(Clone, Debug, PartialEq)]
pub enum PushEvent {
    /// A budget is spent: "waiting 14 min for the hourly row budget of dataset X".
    Waiting {
        dataset: String,
        reason: &'static str,
        wait: Duration,
    },
    /// The service answered 429 (or 5xx) and the batch will be resent.
    Retrying {
        dataset: String,
        batch_id: Uuid,
        attempt: u32,
        status: Option<u16>,
        wait: Duration,
    },
    /// The access token was refused mid-push and renewed.
    TokenRefreshed { dataset: String, batch_id: Uuid },
    /// A batch finished (any outcome).
    BatchDone {
        dataset: String,
        table: String,
        batch_id: Uuid,
        rows: usize,
        outcome: &'static str,
    },
}

impl std::fmt::Display for PushEvent {
    /// One line for the CLI, e.g. "waiting 14 min for the hourly row budget of dataset X".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushEvent::Waiting {
                dataset,
                reason,
                wait,
            } => {
                write!(
                    f,
                    "waiting {} for the {reason} of dataset {dataset}",
                    human(*wait)
                )
            }
            PushEvent::Retrying {
                dataset,
                batch_id,
                attempt,
                status,
                wait,
            } => {
                let why = status.map_or_else(
                    || "a connection failure".to_string(),
                    |s| format!("HTTP {s}"),
                );
                write!(
                    f,
                    "batch {batch_id} of dataset {dataset}: {why} on attempt {attempt}; resending in {}",
                    human(*wait)
                )
            }
            PushEvent::TokenRefreshed { dataset, batch_id } => {
                write!(
                    f,
                    "access token renewed while pushing batch {batch_id} of dataset {dataset}"
                )
            }
            PushEvent::BatchDone {
                dataset,
                table,
                batch_id,
                rows,
                outcome,
            } => {
                write!(
                    f,
                    "batch {batch_id} ({rows} rows) to {dataset}/{table}: {outcome}"
                )
            }
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 90.0 {
        format!("{:.0} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_event_reads_as_a_sentence() {
        let e = PushEvent::Waiting {
            dataset: "X".into(),
            reason: "hourly row budget",
            wait: Duration::from_secs(14 * 60),
        };
        assert_eq!(
            e.to_string(),
            "waiting 14 min for the hourly row budget of dataset X"
        );
        let e = PushEvent::Waiting {
            dataset: "X".into(),
            reason: "per-minute POST budget",
            wait: Duration::from_millis(400),
        };
        assert_eq!(
            e.to_string(),
            "waiting 400 ms for the per-minute POST budget of dataset X"
        );
    }
}
