//! Counters a test or benchmark reads back to prove how a client behaved (also served as `GET /stats`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of the simulator's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every HTTP request the router saw (admin and stats endpoints included).
    pub http_requests: u64,
    /// Requests per operation name (see [`crate::Operation::name`]).
    pub requests_by_operation: BTreeMap<String, u64>,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Token failures by AADSTS code ("7000215", ...; "7000215-secret-id" when the secret id was sent).
    pub token_errors: BTreeMap<String, u64>,
    /// 429 answers sent (limits and injected throttles).
    pub throttled_429: u64,
    /// 429 answers by reason: "in_flight", "posts_per_minute", "rows_per_hour", "large_table_posts_per_hour",
    /// "queries_per_minute", "injected".
    pub throttled_by_reason: BTreeMap<String, u64>,
    /// Faults injected by the fault plan, by kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Highest number of concurrent POST rows requests seen, per dataset id.
    pub peak_in_flight_posts: BTreeMap<String, usize>,
    /// Most POST rows requests (accepted or not) that arrived within any one sliding `minute`, per dataset id.
    pub max_posts_in_minute_window: BTreeMap<String, usize>,
    /// Rows accepted through POST rows, per dataset id.
    pub rows_accepted: BTreeMap<String, u64>,
    /// Rows currently stored, keyed "workspace name/dataset name/table name".
    pub rows_stored: BTreeMap<String, u64>,
}
