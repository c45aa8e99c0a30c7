//! Simulator configuration: credentials, company size, session lifetime, concurrency and latency knobs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

/// Web Services sender id accepted by a default simulator.
pub const DEFAULT_SENDER_ID: &str = "ML_SIM_SENDER";
/// Password of [`DEFAULT_SENDER_ID`].
pub const DEFAULT_SENDER_PASSWORD: &str = "sim-sender-secret";
/// Company id of the simulated company.
pub const DEFAULT_COMPANY_ID: &str = "MLDEMO";
/// Web services user of the simulated company.
pub const DEFAULT_USER_ID: &str = "ws_powerbi";
/// Password of [`DEFAULT_USER_ID`].
pub const DEFAULT_USER_PASSWORD: &str = "sim-user-secret";
/// A sender that exists (its password is right) but is not on the company's Web Services authorization list.
pub const UNAUTHORIZED_SENDER_ID: &str = "ML_OTHER_SENDER";
/// Password of [`UNAUTHORIZED_SENDER_ID`].
pub const UNAUTHORIZED_SENDER_PASSWORD: &str = "other-sender-secret";
/// A company id the gateway layer rejects with HTTP 401 `XMLGW_JPP0002` (it "does not exist").
pub const GATEWAY_UNKNOWN_COMPANY_ID: &str = "NOSUCHCOMPANY";

/// Volume of the synthetic company. Every count is a number of records generated from the seed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompanySize {
    pub vendors: u64,
    pub gl_accounts: u64,
    pub departments: u64,
    pub locations: u64,
    pub classes: u64,
    pub projects: u64,
    pub customers: u64,
    pub employees: u64,
    pub items: u64,
    pub ap_bills: u64,
    pub ap_payments: u64,
    pub gl_entries: u64,
    /// Months of GL balances (GLACCOUNTBALANCE periods), ending with the month before the clock start.
    pub periods: u64,
    /// Delete events pre-seeded in AUDITHISTORY (besides the ones `delete` writes).
    pub audit_deletes: u64,
    pub users: u64,
}

impl CompanySize {
    /// The demo firm: a mid-sized services company.
    pub fn demo() -> Self {
        CompanySize {
            vendors: 2000,
            gl_accounts: 150,
            departments: 8,
            locations: 3,
            classes: 5,
            projects: 40,
            customers: 300,
            employees: 60,
            items: 100,
            ap_bills: 6000,
            ap_payments: 4000,
            gl_entries: 12000,
            periods: 12,
            audit_deletes: 40,
            users: 12,
        }
    }

    /// A very small company for tests (a few records of every object).
    pub fn tiny() -> Self {
        CompanySize {
            vendors: 25,
            gl_accounts: 12,
            departments: 3,
            locations: 3,
            classes: 2,
            projects: 4,
            customers: 10,
            employees: 6,
            items: 5,
            ap_bills: 30,
            ap_payments: 20,
            gl_entries: 40,
            periods: 3,
            audit_deletes: 4,
            users: 3,
        }
    }
}

impl Default for CompanySize {
    fn default() -> Self {
        Self::demo()
    }
}

/// Server-side response time: `per_request` + `per_function` x functions + `per_record` x records,
/// the simulator's own work counted inside it (as real Intacct's query time is part of its latency),
/// never less than that work. The simulator sleeps with tokio; tests use zero or paused time.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub per_request: Duration,
    pub per_function: Duration,
    pub per_record: Duration,
}

/// Everything a simulator instance is built from. `Default` is the demo-sized firm with seed 42.
/// `Debug` leaves the passwords out.
#[derive(Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub size: CompanySize,
    /// Session duration configured for the company; every call slides the expiry by this much.
    pub session_lifetime: Duration,
    /// Concurrent requests per company before the gateway answers HTTP 429 GW-0010.
    pub max_concurrency: usize,
    pub latency: Latency,
    pub company_id: String,
    pub user_id: String,
    pub user_password: String,
    /// Senders on the company's Web Services authorization list: sender id → password.
    pub senders: BTreeMap<String, String>,
    /// Senders with valid credentials that are NOT authorized for this company: id → password.
    pub unauthorized_senders: BTreeMap<String, String>,
    /// Company ids the gateway layer rejects with HTTP 401 XMLGW_JPP0002 before any XML processing.
    pub gateway_unknown_companies: BTreeSet<String>,
    /// Objects the web services user has no read permission on (PL04000005).
    pub denied_objects: BTreeSet<String>,
    /// Whether the user may view audit history (AUDITHISTORY); false → the no-errorno denial.
    pub audit_history_readable: bool,
    /// Endpoint returned by getAPISession; `None` = this simulator's own loopback URL.
    pub advertised_endpoint: Option<String>,
    /// Start of the simulated clock (company local time, no zone, like Intacct timestamps).
    pub clock_start: NaiveDateTime,
    /// Whether the simulated clock also advances with real time (true) or only by `advance_clock`
    /// (false: fully deterministic timestamps for tests).
    pub clock_follows_real_time: bool,
    /// Offset of the company's time zone, used in `sessiontimestamp`/`sessiontimeout` and readUserFormatting.
    pub utc_offset_minutes: i32,
}

impl Default for SimConfig {
    fn default() -> Self {
        let mut senders = BTreeMap::new();
        senders.insert(
            DEFAULT_SENDER_ID.to_string(),
            DEFAULT_SENDER_PASSWORD.to_string(),
        );
        let mut unauthorized = BTreeMap::new();
        unauthorized.insert(
            UNAUTHORIZED_SENDER_ID.to_string(),
            UNAUTHORIZED_SENDER_PASSWORD.to_string(),
        );
        SimConfig {
            seed: 42,
            size: CompanySize::demo(),
            session_lifetime: Duration::from_secs(2 * 3600),
            max_concurrency: 2,
            latency: Latency::default(),
            company_id: DEFAULT_COMPANY_ID.to_string(),
            user_id: DEFAULT_USER_ID.to_string(),
            user_password: DEFAULT_USER_PASSWORD.to_string(),
            senders,
            unauthorized_senders: unauthorized,
            gateway_unknown_companies: [GATEWAY_UNKNOWN_COMPANY_ID.to_string()].into(),
            denied_objects: BTreeSet::new(),
            audit_history_readable: true,
            advertised_endpoint: None,
            clock_start: NaiveDate::from_ymd_opt(2026, 11, 1)
                .and_then(|d| d.and_hms_opt(8, 0, 0))
                .expect("valid constant date"),
            utc_offset_minutes: 0,
            clock_follows_real_time: true,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("size", &self.size)
            .field("session_lifetime", &self.session_lifetime)
            .field("max_concurrency", &self.max_concurrency)
            .field("latency", &self.latency)
            .field("company_id", &self.company_id)
            .field("user_id", &self.user_id)
            .field("user_password", &"<redacted>")
            .field("senders", &self.senders.keys().collect::<Vec<_>>())
            .field(
                "unauthorized_senders",
                &self.unauthorized_senders.keys().collect::<Vec<_>>(),
            )
            .field("gateway_unknown_companies", &self.gateway_unknown_companies)
            .field("denied_objects", &self.denied_objects)
            .field("audit_history_readable", &self.audit_history_readable)
            .field("advertised_endpoint", &self.advertised_endpoint)
            .field("clock_start", &self.clock_start)
            .field("clock_follows_real_time", &self.clock_follows_real_time)
            .field("utc_offset_minutes", &self.utc_offset_minutes)
            .finish()
    }
}

impl SimConfig {
    /// A tiny company for tests, otherwise default.
    pub fn tiny() -> Self {
        SimConfig {
            size: CompanySize::tiny(),
            ..Self::default()
        }
    }
}
