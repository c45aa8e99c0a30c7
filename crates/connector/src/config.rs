//! The configuration file: one TOML document describing connections, their streams and schedules.
//!
//! Secrets never live here (they are sealed in the store by `ml-connector credentials set`), so the file can
//! be checked into version control. Every validation error names the file, the line and the key, and says
//! what is expected: a finance team's engineer should be able to fix it without reading our source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::{self, StreamKind};
use ml_powerbi::schema::DataType;

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
}

#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub name: String,
    pub schedule: Option<Schedule>,
    pub intacct: IntacctSection,
    pub powerbi: PowerBiSection,
    pub streams: Vec<StreamConfig>,
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
}

// ---- raw, serde-facing shapes: every scalar we validate is Spanned so errors can name the line ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<String>,
    database_url: Option<String>,
    master_key_file: Option<String>,
    audit_retention: Option<Spanned<String>>,
    #[serde(default)]
    connection: Vec<RawConnection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnection {
    name: Spanned<String>,
    schedule: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    intacct: RawIntacct,
    powerbi: RawPowerBi,
    #[serde(default)]
    stream: Vec<RawStream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntacct {
    sender_id: Spanned<String>,
    company_id: Spanned<String>,
    user_id: Spanned<String>,
    entity: Option<String>,
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    allow_loopback_http: bool,
    max_concurrent_requests: Option<Spanned<i64>>,
    page_size: Option<Spanned<i64>>,
    request_timeout: Option<Spanned<String>>,
    session_max_age: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPowerBi {
    cloud: Option<Spanned<String>>,
    tenant_id: Spanned<String>,
    client_id: Spanned<String>,
    workspace: Spanned<String>,
    dataset: Option<String>,
    retention: Option<Spanned<String>>,
    authority_url: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    #[serde(default)]
    allow_loopback_http: bool,
    request_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    object: Spanned<String>,
    table: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    custom_fields: Vec<String>,
    lookback: Option<Spanned<String>>,
    schema_drift: Option<Spanned<String>>,
    deletes: Option<Spanned<String>>,
    key_compare_every: Option<Spanned<String>>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    #[serde(default)]
    column_types: BTreeMap<String, Spanned<String>>,
    manage_schema: Option<bool>,
    periods: Option<Spanned<i64>>,
    periods_through: Option<Spanned<String>>,
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    fn invalid<T>(
        &self,
        spanned: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line_of(spanned.span().start),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => humantime::parse_duration(v.get_ref().trim()).map_err(|e| {
                self.invalid(
                    v,
                    key,
                    format!("expected a duration such as \"30s\", \"15m\" or \"2h\" ({e})"),
                )
            }),
        }
    }

    fn url(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<url::Url>, ConfigError> {
        match value {
            None => Ok(None),
            Some(v) => url::Url::parse(v.get_ref())
                .map(Some)
                .map_err(|e| self.invalid(v, key, format!("expected an absolute URL ({e})"))),
        }
    }

    fn non_empty(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        let s = value.get_ref().trim();
        if s.is_empty() {
            return Err(self.invalid(value, key, "must not be empty"));
        }
        Ok(s.to_string())
    }
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
        Ok(Config {
            path: path.to_path_buf(),
            data_dir,
            database_url,
            master_key_file: raw.master_key_file.map(|f| base.join(f)),
            audit_retention,
            connections,
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

fn convert_connection(ctx: &Ctx, c: RawConnection) -> Result<ConnectionConfig, ConfigError> {
    let name = ctx.non_empty(&c.name, "connection.name")?;
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(ctx.invalid(
            &c.name,
            "connection.name",
            "use letters, digits, '-' and '_' only",
        ));
    }
    let time_zone = match &c.time_zone {
        None => chrono_tz::UTC,
        Some(tz) => chrono_tz::Tz::from_str(tz.get_ref()).map_err(|_| {
            ctx.invalid(
                tz,
                "connection.time_zone",
                "expected an IANA time zone such as \"America/Chicago\" or \"UTC\"",
            )
        })?,
    };
    let schedule = match &c.schedule {
        None => None,
        Some(expr) => {
            let cron = croner::Cron::from_str(expr.get_ref()).map_err(|e| {
                ctx.invalid(
                    expr,
                    "connection.schedule",
                    format!("expected a 5-field cron expression such as \"0 2 * * *\" (02:00 every day): {e}"),
                )
            })?;
            Some(Schedule {
                expression: expr.get_ref().clone(),
                cron,
                time_zone,
            })
        }
    };
    let i = c.intacct;
    let positive =
        |v: &Option<Spanned<i64>>, key: &str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match v {
                None => Ok(default),
                Some(s) if (1..=max).contains(s.get_ref()) => Ok(*s.get_ref()),
                Some(s) => {
                    Err(ctx.invalid(s, key, format!("expected a whole number from 1 to {max}")))
                }
            }
        };
    let intacct = IntacctSection {
        sender_id: ctx.non_empty(&i.sender_id, "intacct.sender_id")?,
        company_id: ctx.non_empty(&i.company_id, "intacct.company_id")?,
        user_id: ctx.non_empty(&i.user_id, "intacct.user_id")?,
        entity: i.entity.filter(|e| !e.trim().is_empty()),
        endpoint: ctx.url(&i.endpoint, "intacct.endpoint")?,
        allow_loopback_http: i.allow_loopback_http,
        max_concurrent_requests: positive(
            &i.max_concurrent_requests,
            "intacct.max_concurrent_requests",
            2,
            64,
        )? as usize,
        page_size: positive(&i.page_size, "intacct.page_size", 2000, 2000)? as u32,
        request_timeout: ctx.duration(
            &i.request_timeout,
            "intacct.request_timeout",
            Duration::from_secs(300),
        )?,
        session_max_age: ctx.duration(
            &i.session_max_age,
            "intacct.session_max_age",
            Duration::from_secs(50 * 60),
        )?,
    };
    let p = c.powerbi;
    let cloud = match &p.cloud {
        None => "public".to_string(),
        Some(v) => {
            let s = v.get_ref().to_ascii_lowercase();
            if !["public", "usgov", "usgovhigh", "usgovdod", "china"].contains(&s.as_str()) {
                return Err(ctx.invalid(
                    v,
                    "powerbi.cloud",
                    "expected one of public, usgov, usgovhigh, usgovdod, china",
                ));
            }
            s
        }
    };
    let retention = match &p.retention {
        None => Retention::None,
        Some(v) => match v.get_ref().as_str() {
            "none" | "None" => Retention::None,
            "basicFIFO" | "basicfifo" => Retention::BasicFifo,
            _ => {
                return Err(ctx.invalid(
                    v,
                    "powerbi.retention",
                    "expected \"none\" (keeps every row, up to 5,000,000 per table) or \"basicFIFO\" (drops the oldest rows beyond 200,000: never use it for ledger data)",
                ));
            }
        },
    };
    let powerbi = PowerBiSection {
        cloud,
        tenant_id: ctx.non_empty(&p.tenant_id, "powerbi.tenant_id")?,
        client_id: ctx.non_empty(&p.client_id, "powerbi.client_id")?,
        workspace: ctx.non_empty(&p.workspace, "powerbi.workspace")?,
        dataset: p
            .dataset
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| "Sage Intacct".into()),
        retention,
        authority_url: ctx.url(&p.authority_url, "powerbi.authority_url")?,
        api_url: ctx.url(&p.api_url, "powerbi.api_url")?,
        allow_loopback_http: p.allow_loopback_http,
        request_timeout: ctx.duration(
            &p.request_timeout,
            "powerbi.request_timeout",
            Duration::from_secs(120),
        )?,
    };
    let mut streams = Vec::new();
    for s in c.stream {
        let stream = convert_stream(ctx, s)?;
        if streams
            .iter()
            .any(|o: &StreamConfig| o.table == stream.table)
        {
            return Err(ConfigError::Invalid {
                path: ctx.path.to_path_buf(),
                line: 0,
                key: "connection.stream.table".into(),
                message: format!(
                    "two streams of connection {name:?} write to table {:?}",
                    stream.table
                ),
            });
        }
        streams.push(stream);
    }
    Ok(ConnectionConfig {
        name,
        schedule,
        intacct,
        powerbi,
        streams,
    })
}

fn convert_stream(ctx: &Ctx, s: RawStream) -> Result<StreamConfig, ConfigError> {
    let object = ctx
        .non_empty(&s.object, "stream.object")?
        .to_ascii_uppercase();
    let entry = catalogue::entry(&object);
    let kind = match entry {
        Some(e) => e.kind,
        None => StreamKind::Dimension, // user-defined dimensions and other standard objects
    };
    let table = match &s.table {
        Some(t) => {
            let name = ctx.non_empty(t, "stream.table")?;
            if let Some(bad) = name.chars().find(|c| catalogue::forbidden_table_char(*c)) {
                return Err(ctx.invalid(
                    t,
                    "stream.table",
                    format!("Power BI table names cannot contain {bad:?}"),
                ));
            }
            name
        }
        None => catalogue::default_table_name(&object),
    };
    let mode = match &s.mode {
        None => Mode::Replace,
        Some(m) => match m.get_ref().as_str() {
            "replace" => Mode::Replace,
            "append" => Mode::Append,
            _ => return Err(ctx.invalid(m, "stream.mode", "expected \"replace\" or \"append\"")),
        },
    };
    if kind == StreamKind::Balances && mode == Mode::Append {
        return Err(ctx.invalid(
            s.mode.as_ref().unwrap_or(&s.object),
            "stream.mode",
            "GL balances are a snapshot: use mode = \"replace\"",
        ));
    }
    let schema_drift = match &s.schema_drift {
        None => SchemaDrift::AddColumn,
        Some(v) => match v.get_ref().as_str() {
            "add_column" => SchemaDrift::AddColumn,
            "block" => SchemaDrift::Block,
            _ => {
                return Err(ctx.invalid(
                    v,
                    "stream.schema_drift",
                    "expected \"add_column\" or \"block\"",
                ));
            }
        },
    };
    let deletes = match &s.deletes {
        None => DeleteDetection::Auto,
        Some(v) => match v.get_ref().as_str() {
            "auto" => DeleteDetection::Auto,
            "audit_history" => DeleteDetection::AuditHistory,
            "key_compare" => DeleteDetection::KeyCompare,
            "none" => DeleteDetection::None,
            _ => {
                return Err(ctx.invalid(
                    v,
                    "stream.deletes",
                    "expected \"auto\", \"audit_history\", \"key_compare\" or \"none\"",
                ));
            }
        },
    };
    let periods = match &s.periods {
        None => 12,
        Some(p) if (1..=120).contains(p.get_ref()) => *p.get_ref() as u32,
        Some(p) => {
            return Err(ctx.invalid(
                p,
                "stream.periods",
                "expected a number of months from 1 to 120",
            ));
        }
    };
    let mut column_types = BTreeMap::new();
    for (field, t) in &s.column_types {
        let dt = DataType::parse(t.get_ref()).ok_or_else(|| {
            ctx.invalid(
                t,
                "stream.column_types",
                "expected Int64, Double, Decimal, Boolean, DateTime or String",
            )
        })?;
        column_types.insert(field.to_ascii_uppercase(), dt);
    }
    let periods_through = match &s.periods_through {
        None => None,
        Some(v) => Some(
            chrono::NaiveDate::parse_from_str(&format!("{}-01", v.get_ref().trim()), "%Y-%m-%d")
                .map_err(|_| {
                    ctx.invalid(
                        v,
                        "stream.periods_through",
                        "expected a month such as \"2026-10\"",
                    )
                })?,
        ),
    };
    Ok(StreamConfig {
        periods_through,
        kind,
        table,
        mode,
        fields: s
            .fields
            .iter()
            .map(|f| f.trim().to_ascii_uppercase())
            .collect(),
        custom_fields: s
            .custom_fields
            .iter()
            .map(|f| f.trim().to_ascii_uppercase())
            .collect(),
        lookback: ctx.duration(
            &s.lookback,
            "stream.lookback",
            Duration::from_secs(2 * 3600),
        )?,
        key_compare_every: ctx.duration(
            &s.key_compare_every,
            "stream.key_compare_every",
            Duration::ZERO,
        )?,
        schema_drift,
        deletes,
        column_map: s.columns,
        column_types,
        manage_schema: s.manage_schema.unwrap_or(true),
        periods,
        object,
    })
}

/// The commented example `ml-connector init` writes.
pub const EXAMPLE: &str = r#"# ml-connector configuration.
# Secrets are NOT in this file: store them with `ml-connector credentials set intacct` and
# `ml-connector credentials set powerbi` (they are encrypted under the master key in the data directory).

data_dir = ".ml-connector"            # SQLite state, the master key file, logs (relative to this file)
# database_url = "postgres://user@host/db"   # or ML_CONNECTOR_DATABASE_URL; SQLite when absent
# audit_retention = "400d"            # prune audit entries older than this after each run (default: keep all)

[[connection]]
name = "acme"
schedule = "0 2 * * *"                # cron (minute hour day month weekday), in the time zone below
time_zone = "America/Chicago"

[connection.intacct]
sender_id = "ACME_SENDER"             # your Web Services sender ID
company_id = "acme"
user_id = "ws_powerbi"                # a Web Services user whose role may read the objects below
# entity = "US-EAST"                  # log in at one entity of a multi-entity company
max_concurrent_requests = 2           # Intacct's per-company limit for most performance tiers
# request_timeout = "300s"
# session_max_age = "50m"

[connection.powerbi]
cloud = "public"                      # public | usgov | usgovhigh | usgovdod | china
tenant_id = "00000000-0000-0000-0000-000000000000"
client_id = "00000000-0000-0000-0000-000000000000"
workspace = "Finance"                 # workspace name or id; the service principal must be Member or Contributor
dataset = "Sage Intacct"
retention = "none"                    # none | basicFIFO (basicFIFO drops old rows: never for ledger data)

[[connection.stream]]
object = "VENDOR"                     # table defaults to the catalogue's name ("Vendors")
mode = "replace"                      # replace (mirror Intacct) | append (change log)
lookback = "2h"                       # re-read this much before the last cursor: Intacct is eventually consistent
# custom_fields = ["VENDOR_TIER"]
# deletes = "auto"                    # auto | audit_history | key_compare | none
# key_compare_every = "24h"           # when comparing keys: at most this often (default: every run)
# schema_drift = "add_column"         # add_column | block
# column_types = { EXCHANGE_RATE = "Double" }   # override a column's type

[[connection.stream]]
object = "GLACCOUNT"

[[connection.stream]]
object = "GLACCOUNTBALANCE"           # GL balances: account x period x book
periods = 12                          # months kept (one row per account, period, book, department, location)
# periods_through = "2026-10"         # last month read (default: the current month)

[[connection.stream]]
object = "DEPARTMENT"

[[connection.stream]]
object = "LOCATION"

[[connection.stream]]
object = "APBILL"

[[connection.stream]]
object = "APPYMT"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/tmp/ml.toml"), text)
    }

    #[test]
    fn the_example_parses() {
        let c = parse(EXAMPLE).expect("example must parse");
        assert_eq!(c.connections.len(), 1);
        let conn = &c.connections[0];
        assert_eq!(conn.streams.len(), 7);
        assert_eq!(conn.streams[0].table, "Vendors");
        assert_eq!(conn.streams[0].lookback, Duration::from_secs(7200));
        assert_eq!(
            conn.schedule.as_ref().unwrap().time_zone,
            chrono_tz::America::Chicago
        );
        assert_eq!(c.data_dir, PathBuf::from("/tmp/.ml-connector"));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let text = EXAMPLE.replace(
            "time_zone = \"America/Chicago\"",
            "time_zone = \"Mars/Olympus\"",
        );
        let err = parse(&text).unwrap_err().to_string();
        let line = EXAMPLE
            .lines()
            .position(|l| l.starts_with("time_zone"))
            .unwrap()
            + 1;
        assert!(
            err.contains(&format!("/tmp/ml.toml:{line}: `connection.time_zone`")),
            "{err}"
        );
        assert!(err.contains("IANA"), "{err}");

        let text = EXAMPLE.replace("mode = \"replace\"", "mode = \"upsert\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("`stream.mode`") && err.contains("\"append\""),
            "{err}"
        );

        let text = EXAMPLE.replace("schedule = \"0 2 * * *\"", "schedule = \"every night\"");
        assert!(parse(&text).unwrap_err().to_string().contains("cron"));
    }

    #[test]
    fn unknown_keys_and_secrets_are_refused() {
        let text = EXAMPLE.replace(
            "user_id = \"ws_powerbi\"",
            "user_id = \"ws\"\npassword = \"hunter2\"",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("password") && err.contains("line"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the value must not be echoed: {err}"
        );
    }

    #[test]
    fn balances_cannot_be_appended() {
        let text = EXAMPLE.replace("periods = 12", "periods = 12\nmode = \"append\"");
        assert!(parse(&text).unwrap_err().to_string().contains("snapshot"));
    }
}
