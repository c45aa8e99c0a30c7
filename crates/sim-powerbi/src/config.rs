//! Simulator configuration: tenants, app registrations, workspaces, push limits and the clock.
//!
//! `SimConfig::default()` is a working demo setup: one tenant ([`DEFAULT_TENANT_ID`]) with one app
//! ([`DEFAULT_CLIENT_ID`] / [`DEFAULT_CLIENT_SECRET`]) that is a Member of one workspace ([`DEFAULT_WORKSPACE`]),
//! the public-cloud Power BI scope, documented push limits, a real clock and no faults.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::faults::FaultPlan;

/// Tenant id of the default simulated Entra tenant.
pub const DEFAULT_TENANT_ID: &str = "11111111-2222-3333-4444-555555555555";
/// A verified domain of the default tenant (token requests may name the tenant by domain).
pub const DEFAULT_TENANT_DOMAIN: &str = "mldemo.onmicrosoft.com";
/// Application (client) id of the default app registration.
pub const DEFAULT_CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
/// Secret *value* of the default app registration.
pub const DEFAULT_CLIENT_SECRET: &str = "sim~client~secret";
/// Secret *id* of the default app's secret: sending it instead of the value gives AADSTS7000215, as in Entra.
pub const DEFAULT_CLIENT_SECRET_ID: &str = "5ec7e7a1-0000-4000-8000-5ec7e7a10001";
/// Display name of the default workspace.
pub const DEFAULT_WORKSPACE: &str = "Finance";
/// Id of the default workspace.
pub const DEFAULT_WORKSPACE_ID: &str = "f0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b";
/// Power BI resource (App ID URI) of the public cloud; the v2 scope is this plus `/.default`.
pub const PUBLIC_POWERBI_RESOURCE: &str = "https://analysis.windows.net/powerbi/api";

/// A secret value in the simulator's configuration. Debug and Display redact it so a `SimConfig` can be logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimSecret(String);

impl SimSecret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        SimSecret(value.into())
    }
    /// The secret value, for comparison with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SimSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimSecret(<redacted>)")
    }
}

impl fmt::Display for SimSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which national cloud the simulator pretends to be: decides the accepted scope and the hosts shown in
/// URLs inside responses (`@odata.context`, `webUrl`, `error_uri`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCloud {
    /// Power BI resource URI; the only accepted v2 scope is `{resource}/.default` and the v1 `resource` must equal it.
    pub powerbi_resource: String,
    /// Host shown in `@odata.context`, e.g. `https://api.powerbi.com`.
    pub api_host: String,
    /// Portal host shown in `webUrl`, e.g. `https://app.powerbi.com`.
    pub portal_host: String,
    /// Login host shown in AADSTS `error_uri`, e.g. `https://login.microsoftonline.com`.
    pub login_host: String,
}

impl SimCloud {
    /// The commercial cloud.
    pub fn public() -> Self {
        SimCloud {
            powerbi_resource: PUBLIC_POWERBI_RESOURCE.to_owned(),
            api_host: "https://api.powerbi.com".to_owned(),
            portal_host: "https://app.powerbi.com".to_owned(),
            login_host: "https://login.microsoftonline.com".to_owned(),
        }
    }
    /// US Government Community Cloud (commercial Entra, government Power BI hosts).
    pub fn us_gov() -> Self {
        SimCloud {
            powerbi_resource: "https://analysis.usgovcloudapi.net/powerbi/api".to_owned(),
            api_host: "https://api.powerbigov.us".to_owned(),
            portal_host: "https://app.powerbigov.us".to_owned(),
            login_host: "https://login.microsoftonline.com".to_owned(),
        }
    }
    /// The v2 scope a token request must carry.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.powerbi_resource)
    }
}

impl Default for SimCloud {
    fn default() -> Self {
        SimCloud::public()
    }
}

/// One client secret of an app registration.
#[derive(Clone, Debug)]
pub struct ClientSecretConfig {
    /// The secret's id (a GUID in Entra). Sending it instead of the value is a classic mistake → AADSTS7000215.
    pub id: String,
    pub value: SimSecret,
    /// After this instant (simulated wall clock) the secret gives AADSTS7000222.
    pub expires_at: Option<DateTime<Utc>>,
}

/// One app registration (service principal) in a tenant.
#[derive(Clone, Debug)]
pub struct AppConfig {
    pub client_id: String,
    pub display_name: String,
    pub secrets: Vec<ClientSecretConfig>,
    /// The app has a certificate uploaded: `client_assertion` JWTs are accepted (structure and claims checked,
    /// signature NOT verified — the simulator has no certificate store).
    pub certificate: bool,
    /// The tenant admin switch "Service principals can use Fabric APIs" includes this app (directly or via its
    /// security group). When false every REST call gets 401 `ServicePrincipalIsNotAllowedByTenantAdminSwitch`.
    pub allowed_by_tenant_switch: bool,
}

impl AppConfig {
    /// An app with one never-expiring secret, allowed by the tenant switch.
    pub fn with_secret(client_id: &str, secret: &str) -> Self {
        AppConfig {
            client_id: client_id.to_owned(),
            display_name: format!("sim-app-{client_id}"),
            secrets: vec![ClientSecretConfig {
                id: uuid::Uuid::new_v4().to_string(),
                value: SimSecret::new(secret),
                expires_at: None,
            }],
            certificate: false,
            allowed_by_tenant_switch: true,
        }
    }
}

/// One Entra tenant.
#[derive(Clone, Debug)]
pub struct TenantConfig {
    pub id: String,
    /// Verified domains that also name this tenant in the token URL.
    pub domains: Vec<String>,
    pub apps: Vec<AppConfig>,
}

/// Workspace role of a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkspaceRole {
    Admin,
    Member,
    Contributor,
    /// Read-only: writes get 401 `PowerBINotAuthorizedException`, executeQueries gets 404 `PowerBIEntityNotFound`.
    Viewer,
}

impl WorkspaceRole {
    pub(crate) fn can_write(self) -> bool {
        !matches!(self, WorkspaceRole::Viewer)
    }
}

/// A workspace member (service principals only: the simulator has no users).
#[derive(Clone, Debug)]
pub struct WorkspaceMember {
    pub client_id: String,
    pub role: WorkspaceRole,
}

/// Retention policy of a push dataset (fixed at creation, `?defaultRetentionPolicy=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Retention {
    None,
    #[serde(rename = "basicFIFO")]
    BasicFifo,
}

impl Retention {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Retention::None => "None",
            Retention::BasicFifo => "basicFIFO",
        }
    }
}

/// What kind of dataset a preset is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresetKind {
    /// A push dataset as if created through the API.
    Push(Retention),
    /// An import dataset published from Desktop: rows POSTs get 404 "is not Push API dataset".
    Import,
}

/// A table of a preset dataset: columns as `(name, dataType)`.
#[derive(Clone, Debug)]
pub struct PresetTable {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// A dataset that exists before the simulator starts.
#[derive(Clone, Debug)]
pub struct PresetDataset {
    pub id: String,
    pub name: String,
    pub kind: PresetKind,
    pub tables: Vec<PresetTable>,
}

/// One workspace ("group").
#[derive(Clone, Debug)]
pub struct WorkspaceConfig {
    pub id: String,
    pub name: String,
    /// The tenant the workspace lives in; principals of other tenants cannot see it.
    pub tenant_id: String,
    pub members: Vec<WorkspaceMember>,
    pub datasets: Vec<PresetDataset>,
}

/// Push limits (Microsoft "Push semantic model limitations") and their time windows. Windows are configurable so
/// tests can use short ones; with `SimClock::manual()` they can be crossed without waiting at all.
#[derive(Clone, Debug)]
pub struct SimLimits {
    /// When false no limit below is enforced (stats are still recorded).
    pub enforce: bool,
    /// Max rows in one POST rows request (10,000) → 400 BadRequest.
    pub rows_per_post: usize,
    /// Max request body bytes of POST rows (16 MiB; the service says "16 MB") → 413 RequestEntityTooLarge.
    pub max_body_bytes: usize,
    /// Max characters of one string value (4,000) → 400 BadRequest.
    pub max_string_chars: usize,
    /// Max POST rows requests in flight per dataset (5); the 6th gets 429.
    pub max_in_flight: usize,
    /// Max accepted POST rows requests per dataset per sliding `minute` (120) → 429 with Retry-After.
    pub posts_per_minute: usize,
    pub minute: Duration,
    /// Max rows accepted per dataset per sliding `hour` (1,000,000) → 429 with Retry-After.
    pub rows_per_hour: u64,
    pub hour: Duration,
    /// Once the target table holds this many rows (250,000), at most `large_table_posts_per_hour` POSTs per `hour`.
    pub large_table_rows: usize,
    pub large_table_posts_per_hour: usize,
    /// basicFIFO: when a table grows beyond `fifo_high_water` rows (210,000) the oldest are dropped until
    /// `fifo_max_rows` (200,000) remain, so the table holds 200,000–210,000 newest rows like the service.
    pub fifo_max_rows: usize,
    pub fifo_high_water: usize,
    /// Retention None: a POST that would take a table beyond this (5,000,000) gets 400 BadRequest.
    pub none_max_rows: usize,
    /// Max tables / columns per table / relationships per dataset (75 each) → 400 BadRequest.
    pub max_tables: usize,
    pub max_columns: usize,
    pub max_relationships: usize,
    /// executeQueries per principal per `minute` (120) → 429.
    pub queries_per_minute: usize,
    /// Rows in one executeQueries result (100,000): beyond, 200 with the first rows and a table `error`.
    pub query_max_rows: usize,
}

impl Default for SimLimits {
    fn default() -> Self {
        SimLimits {
            enforce: true,
            rows_per_post: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
            max_string_chars: 4_000,
            max_in_flight: 5,
            posts_per_minute: 120,
            minute: Duration::from_secs(60),
            rows_per_hour: 1_000_000,
            hour: Duration::from_secs(3600),
            large_table_rows: 250_000,
            large_table_posts_per_hour: 120,
            fifo_max_rows: 200_000,
            fifo_high_water: 210_000,
            none_max_rows: 5_000_000,
            max_tables: 75,
            max_columns: 75,
            max_relationships: 75,
            queries_per_minute: 120,
            query_max_rows: 100_000,
        }
    }
}

/// The simulator's clock: drives token expiry, secret expiry and every rate window.
///
/// `real()` follows the machine clock (plus any `advance`); `manual()` stands still until `advance` is called,
/// so tests cross a 60-second window without sleeping. Clones share one clock.
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    start: Instant,
    start_wall: DateTime<Utc>,
    manual: bool,
    // std Mutex: held for a few instructions, never across an await.
    offset: Mutex<Duration>,
}

impl SimClock {
    /// Follows real time.
    pub fn real() -> Self {
        Self::build(false)
    }
    /// Stands still until [`SimClock::advance`].
    pub fn manual() -> Self {
        Self::build(true)
    }
    fn build(manual: bool) -> Self {
        SimClock {
            inner: Arc::new(ClockInner {
                start: Instant::now(),
                start_wall: Utc::now(),
                manual,
                offset: Mutex::new(Duration::ZERO),
            }),
        }
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.inner.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }
    /// Monotonic now.
    pub fn now(&self) -> Instant {
        let offset = *self.inner.offset.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.manual {
            self.inner.start + offset
        } else {
            Instant::now() + offset
        }
    }
    /// Wall-clock now, consistent with [`SimClock::now`].
    pub fn wall(&self) -> DateTime<Utc> {
        let elapsed = self.now().saturating_duration_since(self.inner.start);
        self.inner.start_wall
            + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }
}

impl fmt::Debug for SimClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClock")
            .field("manual", &self.inner.manual)
            .finish()
    }
}

impl Default for SimClock {
    fn default() -> Self {
        SimClock::real()
    }
}

/// Everything the simulator needs to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub tenants: Vec<TenantConfig>,
    pub workspaces: Vec<WorkspaceConfig>,
    pub cloud: SimCloud,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime: Duration,
    /// Send `expires_in`/`ext_expires_in` as JSON strings (the v1 endpoint always does).
    pub expires_in_as_string: bool,
    /// HTTP status for `invalid_client` token errors: 400 as Microsoft documents, 401 as sometimes observed.
    pub invalid_client_status: u16,
    /// Refuse `defaultMode: Push` creation too with FeatureDeprecatedError (the post-2027 world).
    pub push_creation_deprecated: bool,
    pub limits: SimLimits,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Seed of the fault-injection random generator (used when the plan has no seed of its own).
    pub seed: u64,
    pub faults: FaultPlan,
    pub clock: SimClock,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenants: vec![TenantConfig {
                id: DEFAULT_TENANT_ID.to_owned(),
                domains: vec![DEFAULT_TENANT_DOMAIN.to_owned()],
                apps: vec![AppConfig {
                    client_id: DEFAULT_CLIENT_ID.to_owned(),
                    display_name: "ml-connector".to_owned(),
                    secrets: vec![ClientSecretConfig {
                        id: DEFAULT_CLIENT_SECRET_ID.to_owned(),
                        value: SimSecret::new(DEFAULT_CLIENT_SECRET),
                        expires_at: None,
                    }],
                    certificate: true,
                    allowed_by_tenant_switch: true,
                }],
            }],
            workspaces: vec![WorkspaceConfig {
                id: DEFAULT_WORKSPACE_ID.to_owned(),
                name: DEFAULT_WORKSPACE.to_owned(),
                tenant_id: DEFAULT_TENANT_ID.to_owned(),
                members: vec![WorkspaceMember {
                    client_id: DEFAULT_CLIENT_ID.to_owned(),
                    role: WorkspaceRole::Member,
                }],
                datasets: Vec::new(),
            }],
            cloud: SimCloud::public(),
            token_lifetime: Duration::from_secs(3599),
            expires_in_as_string: false,
            invalid_client_status: 400,
            push_creation_deprecated: false,
            limits: SimLimits::default(),
            latency: Duration::ZERO,
            seed: 42,
            faults: FaultPlan::default(),
            clock: SimClock::real(),
        }
    }
}
