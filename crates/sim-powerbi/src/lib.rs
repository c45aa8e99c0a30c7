//! A faithful simulator of Microsoft Entra client credentials and the Power BI push-dataset REST API.
//!
//! It answers with the real services' JSON shapes, status codes, headers and error documents (see
//! `shared/reference/powerbi-rest.md`), enforces the documented push limits, and injects faults on request.
//! It deliberately shares no code with the `ml-powerbi` client, so a bug mirrored in both cannot hide.
//!
//! # Layout
//!
//! - [`config`]: `SimConfig` — tenants, apps and secrets, workspaces and members, cloud, `SimLimits`, `SimClock`.
//! - [`faults`]: `FaultPlan` — per-operation, per-request-number or seeded-probability faults.
//! - [`stats`]: `Stats` — counters read by tests and benchmarks (also `GET /stats`).
//! - `server`: accept loop and hyper connection service; drops connections for the reset faults.
//! - `state`: the world (workspaces → datasets → tables → rows as raw JSON text), tokens, counters.
//! - `token`: `POST /{tenant}/oauth2/v2.0/token` (and v1 `/oauth2/token`), AADSTS error documents.
//! - `api`: the `/v1.0/myorg` REST surface: routes (`mod.rs`), the access path every handler shares
//!   (`access`: faults, bearer token, workspace role, dataset/table lookup), answer shapes (`respond`),
//!   `groups`, `datasets`, `tables`, `rows`, `query` (executeQueries), `reports` (list, Rebind),
//!   `dashboards` (dashboards and their tiles).
//! - `schema`: strict validation: JSON reading (`json`), `CreateDatasetRequest`/`Table` (`definition`), row
//!   values (`row`).
//! - `limits`: sliding windows behind the per-dataset push limits.
//! - `dax`: the small DAX subset executeQueries understands (COUNTROWS, SUM, MIN, MAX, COUNT, DISTINCTCOUNT,
//!   TOPN, table scans, `{ scalar }`): `parse` (lexer, parser) and `eval`.
//! - `admin`: `/admin/rows/...`, `/admin/faults`, `/stats` for `ml-connector sim powerbi` users.
//!
//! # Choices where the real service is undocumented
//!
//! - Body over `max_body_bytes` → 413 `RequestEntityTooLarge` (what Azure front ends answer).
//! - Retention None, table would exceed `none_max_rows` → 400 `BadRequest` (waiting would not help, so not 429).
//! - basicFIFO trims to `fifo_max_rows` once a table passes `fifo_high_water` (200,000 / 210,000).
//! - Throttled or rejected POSTs do not consume the per-minute/per-hour budgets; only accepted ones do.
//! - The large-table rule (≥ 250,000 rows → 120 POSTs/hour per dataset) applies when the POST's target table
//!   holds that many rows; the POST count it checks is the dataset's.
//! - A POST counts in flight from arrival to answer; the 6th concurrent one is refused with 429, Retry-After 1.
//! - Rows with a key that is not a column of the table → 400 (stricter than the service may be).
//! - `client_assertion` signatures are NOT verified (structure, `aud`, `iss`, `sub`, `exp`, `nbf` are).
//! - PUT table answers with the stored table definition (the swagger's `Table`, which requires `columns`); the
//!   reference observed just `{"name": ...}`, a subset. PUT cannot create a table: 404 `ItemNotFound` with the
//!   message users reported for it (`Table '<pi>X</pi>' not found in dataset '...|id'`, gbrueckl/PowerBI.API.Client
//!   #21; microsoft/PowerBI-CSharp #127 saw the 404 too). PUT keeps existing rows.
//! - Rebind of a report id the workspace lacks → 404 `ItemNotFound` (`Report {id} is not found.`, the shape of
//!   the dataset 404); to a dataset that is not in the workspace → 404 `PowerBIEntityNotFound` (what a missing
//!   Build permission gives elsewhere); a Viewer → 401 `PowerBINotAuthorizedException` (Write on the report is
//!   required); a paginated report → 400 (the Rebind page lists it as unsupported). Cross-workspace rebinds
//!   are not simulated.
//! - Reports, dashboards and tiles exist only when a test seeds them (`add_report`, `add_dashboard`,
//!   `add_tile`): the push API never creates them.
//! - GET tables lists each table as it was defined (name, columns, measures), a superset of the names-only
//!   answer the reference expects.
//! - Blank DAX results (COUNTROWS of an empty table) are omitted from the row unless `includeNulls` is true,
//!   as the service does: `{"rows":[{}]}`.
//! - Rate windows are sliding; `Retry-After` is the whole seconds until the window frees enough budget (≥ 1).
//! - `defaultRetentionPolicy` and `defaultMode` are matched case-insensitively (.NET enum parsing); JSON property
//!   names are case-sensitive; `$filter=name eq '…'` on groups is case-sensitive.
//! - Strings are limited in Unicode scalar values (chars), DateTime values must be ISO 8601
//!   (`2024-06-30`, `2024-06-30T12:00:00[.fff][Z|±hh:mm]`), Decimal accepts a JSON number or a numeric string.
//!
//! # Using it in tests
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ml_sim_powerbi::{SimClock, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig { clock: SimClock::manual(), ..SimConfig::default() }).await?;
//! // token: POST {sim.authority_url()}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token with DEFAULT_CLIENT_ID/SECRET
//! // REST:  {sim.api_url()}/v1.0/myorg/groups/{DEFAULT_WORKSPACE_ID}/datasets ...
//! sim.advance_clock(std::time::Duration::from_secs(61)); // cross a rate window without sleeping
//! let rows = sim.table_rows("Finance", "Sage Intacct", "Vendors");
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod faults;
pub mod stats;

mod admin;
mod api;
mod dax;
mod limits;
mod schema;
mod server;
mod state;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    AppConfig, ClientSecretConfig, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
    DEFAULT_CLIENT_SECRET_ID, DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID, DEFAULT_WORKSPACE,
    DEFAULT_WORKSPACE_ID, PUBLIC_POWERBI_RESOURCE, PresetDataset, PresetKind, PresetTable,
    Retention, SimClock, SimCloud, SimConfig, SimLimits, SimSecret, TenantConfig, WorkspaceConfig,
    WorkspaceMember, WorkspaceRole,
};
pub use faults::{FaultKind, FaultPlan, FaultRule, Operation, Trigger};
pub use state::{DatasetInfo, ReportInfo};
pub use stats::Stats;

use state::Shared;

/// A running simulator bound to a local port. Dropping it without [`Simulator::shutdown`] stops the server task too.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(Self::start_on(listener, cfg).await)
    }

    /// Serves on an already-bound listener (the CLI binds the user's `--port`).
    pub async fn start_on(listener: TcpListener, cfg: SimConfig) -> Simulator {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let shared = Arc::new(Shared::new(cfg));
        let router = api::router(shared.clone())
            .merge(token::router(shared.clone()))
            .merge(admin::router(shared.clone()));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, shared.clone(), rx));
        Simulator {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the REST API: `http://127.0.0.1:PORT` (REST under `/v1.0/myorg/...`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of the authority: `http://127.0.0.1:PORT` (token at `/{tenant}/oauth2/v2.0/token`).
    pub fn authority_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Full v2 token URL for a tenant (also what a `client_assertion` must name as `aud`).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.authority_url())
    }

    /// Rows of a table in arrival order; workspace and dataset by name or id. `None` when any is unknown.
    /// Parses every row: on big tables prefer [`Simulator::table_row_count`].
    pub fn table_rows(
        &self,
        workspace: &str,
        dataset: &str,
        table: &str,
    ) -> Option<Vec<Map<String, Value>>> {
        self.shared.table_rows(workspace, dataset, table)
    }

    /// Appends a row directly (no validation, no limits), as if it had been pushed earlier. Returns false when
    /// the workspace, dataset or table does not exist.
    pub fn inject_row(
        &self,
        workspace: &str,
        dataset: &str,
        table: &str,
        row: Map<String, Value>,
    ) -> bool {
        self.shared.inject_row(workspace, dataset, table, row)
    }

    /// Number of rows in a table without parsing them (cheap on big tables).
    pub fn table_row_count(&self, workspace: &str, dataset: &str, table: &str) -> Option<usize> {
        self.shared.table_row_count(workspace, dataset, table)
    }

    /// The datasets of a workspace (by name or id), in creation order.
    pub fn datasets(&self, workspace: &str) -> Option<Vec<DatasetInfo>> {
        self.shared.datasets(workspace)
    }

    /// Seeds a report bound to `dataset` (id or name) in a workspace (name or id), as if someone had
    /// published it from Power BI Desktop; its id, or None when either is unknown.
    pub fn add_report(&self, workspace: &str, name: &str, dataset: &str) -> Option<String> {
        self.shared.add_report(workspace, name, dataset, false)
    }

    /// As [`Simulator::add_report`], for a paginated report (which Rebind refuses).
    pub fn add_paginated_report(
        &self,
        workspace: &str,
        name: &str,
        dataset: &str,
    ) -> Option<String> {
        self.shared.add_report(workspace, name, dataset, true)
    }

    /// The reports of a workspace and the dataset each is bound to now.
    pub fn reports(&self, workspace: &str) -> Option<Vec<ReportInfo>> {
        self.shared.reports(workspace)
    }

    /// Seeds an empty dashboard; its id.
    pub fn add_dashboard(&self, workspace: &str, name: &str) -> Option<String> {
        self.shared.add_dashboard(workspace, name)
    }

    /// Pins a tile showing `dataset` (id or name) on a dashboard (id), from `report` (id) if given;
    /// its id.
    pub fn add_tile(
        &self,
        workspace: &str,
        dashboard: &str,
        title: &str,
        dataset: &str,
        report: Option<&str>,
    ) -> Option<String> {
        self.shared
            .add_tile(workspace, dashboard, title, dataset, report)
    }

    /// Makes every issued token expired now: the next REST call gets 403 `TokenExpired`.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// Replaces the fault plan (request counters restart at 1).
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.set_faults(plan);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Moves the simulator's clock forward (token expiry, secret expiry, rate windows).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// While held, POST rows requests are counted in flight and then wait before being processed; release with
    /// `hold_row_posts(false)`. Lets tests fill the in-flight budget deterministically.
    pub fn hold_row_posts(&self, hold: bool) {
        self.shared.hold_posts.send_replace(hold);
    }

    /// POST rows requests currently in flight for a dataset (by id).
    pub fn in_flight_posts(&self, dataset_id: &str) -> usize {
        self.shared.in_flight(dataset_id)
    }

    /// Stops accepting, lets open connections finish their current request (at most 5 s), and waits for the
    /// server task.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
