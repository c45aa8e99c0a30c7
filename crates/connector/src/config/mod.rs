//! The configuration file: one TOML document describing connections, their streams and schedules.
//!
//! Secrets never live here (they are sealed in the store by `ml-connector credentials set`), so the file can
//! be checked into version control. Every validation error names the file, the line and the key, and says
//! what is expected: a finance team's engineer should be able to fix it without reading our source.
//!
//! The module is split by job: `raw` is the file as serde reads it, `convert` validates it into the model
//! types below, and `example` is the commented file `init` writes.

mod convert;
mod example;
mod raw;

pub use example::EXAMPLE;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalogue::StreamKind;
use ml_powerbi::schema::DataType;

use convert::{Ctx, convert_connection};
use raw::RawConfig;

/// Where the configuration comes from, in the order users expect: `--config`, then the environment, then
/// `./ml-connector.toml`.
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if let Ok(path) = std::env::var("ML_CONNECTOR_CONFIG") {
        return PathBuf::from(path);
    }
    PathBuf::from("ml-connector.toml")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read the configuration file {path}: {source}. Create one with `ml-connector init`, or point to it with --config or ML_CONNECTOR_CONFIG."
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// Audit entries older than this are pruned after each run (the chain stays verifiable from an anchor).
    pub audit_retention: Option<Duration>,
    pub connections: Vec<ConnectionConfig>,
    pub console: ConsoleConfig,
}

/// The `[console]` section: where the operations console listens and what makes it not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub bind: std::net::SocketAddr,
    /// A file holding the bearer token `/metrics` then requires (Prometheus' `bearer_token_file`);
    /// without it `/metrics` is open, like `/healthz` and `/readyz`.
    pub metrics_token_file: Option<PathBuf>,
    /// `/readyz` fails while a connection's last this many runs all failed.
    pub ready_failed_runs: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 8686)),
            metrics_token_file: None,
            ready_failed_runs: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub name: String,
    pub schedule: Option<Schedule>,
    /// Under `run`: after a remote system refused this connection's credentials, scheduled runs
    /// pause until the credentials are stored again or this long has passed.
    pub refused_backoff: std::time::Duration,
    pub intacct: IntacctSection,
    pub powerbi: PowerBiSection,
    /// Where the connection's rows go.
    pub destination: DestinationKind,
    /// `[connection.fabric]`, required when `destination = "fabric_mirroring"`.
    pub fabric: Option<FabricSection>,
    pub streams: Vec<StreamConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// Power BI push datasets.
    PowerBi,
    /// Fabric open mirroring: change files in a mirrored database's landing zone.
    FabricMirroring,
}

#[derive(Debug, Clone)]
pub struct FabricSection {
    /// Workspace and mirrored database ids (informational until `fabric setup` exists).
    pub workspace: Option<String>,
    pub mirrored_database: Option<String>,
    pub cloud: String,
    /// The landing zone URL from the mirrored database's home page.
    pub landing_zone_url: String,
    pub allow_loopback_http: bool,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expression: String,
    pub cron: croner::Cron,
    pub time_zone: chrono_tz::Tz,
}

#[derive(Debug, Clone)]
pub struct IntacctSection {
    pub sender_id: String,
    pub company_id: String,
    pub user_id: String,
    pub entity: Option<String>,
    pub endpoint: Option<url::Url>,
    pub allow_loopback_http: bool,
    pub max_concurrent_requests: usize,
    pub page_size: u32,
    pub request_timeout: Duration,
    pub session_max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct PowerBiSection {
    pub cloud: String,
    pub tenant_id: String,
    pub client_id: String,
    pub workspace: String,
    pub dataset: String,
    pub retention: Retention,
    pub authority_url: Option<url::Url>,
    pub api_url: Option<url::Url>,
    pub allow_loopback_http: bool,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    None,
    BasicFifo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The table mirrors Intacct: rebuilt from the local mirror whenever it changed.
    Replace,
    /// New and changed records are appended (a change log).
    Append,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaDrift {
    /// A new Intacct field becomes a new column (PUT table, then the table is reloaded).
    AddColumn,
    /// The stream stops with an error until someone decides.
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteDetection {
    /// AUDITHISTORY, falling back to key comparison when the user may not read it.
    Auto,
    AuditHistory,
    KeyCompare,
    None,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub object: String,
    pub kind: StreamKind,
    pub table: String,
    pub mode: Mode,
    /// Extra fields to select beyond the catalogue's (custom fields included).
    pub fields: Vec<String>,
    pub custom_fields: Vec<String>,
    pub lookback: Duration,
    pub schema_drift: SchemaDrift,
    pub deletes: DeleteDetection,
    /// How often deletes are found by comparing every key (when AUDITHISTORY is not used); zero = every run.
    pub key_compare_every: Duration,
    /// Intacct field → existing Power BI column, for datasets whose tables someone else defined.
    pub column_map: BTreeMap<String, String>,
    /// When false the table schema in Power BI is never changed by us.
    pub manage_schema: bool,
    /// Intacct field → Power BI column type, overriding the type `lookup` implies (e.g. "Double" for a
    /// DECIMAL field whose values need more than Power BI's 4 decimal places).
    pub column_types: BTreeMap<String, DataType>,
    /// For GL balances: the number of most recent periods to keep in the table.
    pub periods: u32,
    /// For GL balances: the last month to read (default: the current month).
    pub periods_through: Option<chrono::NaiveDate>,
    /// How often every never-modified record (empty WHENMODIFIED) is read again, the safety net
    /// behind finding them by creation time since the cursor; zero = every run.
    pub never_modified_full_every: Duration,
    /// For GL balances: the most recent periods, which can still change, re-read every run.
    pub open_periods: u32,
    /// For GL balances: how often the older (closed) periods are re-read; zero = every run.
    pub closed_periods_every: Duration,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                text[..s.start.min(text.len())]
                    .bytes()
                    .filter(|b| *b == b'\n')
                    .count()
                    + 1
            });
            ConfigError::Syntax {
                path: path.to_path_buf(),
                message: match line {
                    Some(line) => format!("line {line}: {}", e.message()),
                    None => e.message().to_string(),
                },
            }
        })?;
        let ctx = Ctx { path, text };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let data_dir = base.join(raw.data_dir.as_deref().unwrap_or(".ml-connector"));
        let database_url = raw
            .database_url
            .or_else(|| std::env::var("ML_CONNECTOR_DATABASE_URL").ok())
            .filter(|s| !s.trim().is_empty());
        let mut connections = Vec::new();
        for c in raw.connection {
            let connection = convert_connection(&ctx, c)?;
            if connections
                .iter()
                .any(|o: &ConnectionConfig| o.name == connection.name)
            {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: 0,
                    key: "connection.name".into(),
                    message: format!(
                        "the name {:?} is used twice; each connection needs its own",
                        connection.name
                    ),
                });
            }
            connections.push(connection);
        }
        let audit_retention = match &raw.audit_retention {
            None => None,
            Some(_) => {
                Some(ctx.duration(&raw.audit_retention, "audit_retention", Duration::ZERO)?)
            }
        };
        let console = match raw.console {
            None => ConsoleConfig::default(),
            Some(c) => convert::convert_console(&ctx, &base, c)?,
        };
        Ok(Config {
            path: path.to_path_buf(),
            data_dir,
            database_url,
            master_key_file: raw.master_key_file.map(|f| base.join(f)),
            audit_retention,
            connections,
            console,
        })
    }

    pub fn connection(&self, name: Option<&str>) -> Result<&ConnectionConfig, String> {
        match name {
            Some(n) => self
                .connections
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| {
                    format!(
                        "no connection named {n:?} in {}; known: {}",
                        self.path.display(),
                        self.connections
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            None => match self.connections.as_slice() {
                [one] => Ok(one),
                [] => Err(format!("{} defines no [[connection]]", self.path.display())),
                _ => Err(
                    "several connections are configured: choose one with --connection NAME".into(),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared by the tests of every submodule: a fixed path, so assertions can look for it in messages.
    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/tmp/ml.toml"), text)
    }
}
