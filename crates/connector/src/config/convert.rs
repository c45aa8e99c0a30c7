//! Turning the raw TOML shapes into the validated model: defaults, ranges, enumerations, uniqueness.
//!
//! Every check fails with a `ConfigError::Invalid` that names the file, the line and the key and says what
//! would be accepted, because the reader is a finance team's engineer, not us.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ml_powerbi::schema::DataType;
use toml::Spanned;

use super::raw::{RawConnection, RawStream};
use super::{
    ConfigError, ConnectionConfig, DeleteDetection, DestinationKind, FabricSection, IntacctSection,
    Mode, PowerBiSection, Retention, Schedule, SchemaDrift, StreamConfig,
};
use crate::catalogue::{self, StreamKind};

/// How long scheduled runs pause after a refused credential when nobody stores new ones: long
/// enough that a wrong password is not tried every hour of the night (Intacct locks users out
/// after repeated failures), short enough that a fixed permission is picked up the same day.
const DEFAULT_REFUSED_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// The file being read, so that any error can be placed by line.
pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
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

    pub(super) fn duration(
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

/// `[console]`: the bind address, the metrics token file (relative to the config file) and N of
/// the readiness rule.
pub(super) fn convert_console(
    ctx: &Ctx,
    base: &std::path::Path,
    c: super::raw::RawConsole,
) -> Result<super::ConsoleConfig, ConfigError> {
    let mut out = super::ConsoleConfig::default();
    if let Some(b) = &c.bind {
        out.bind = b.get_ref().trim().parse().map_err(|_| {
            ctx.invalid(
                b,
                "console.bind",
                "expected an address and port such as \"127.0.0.1:8686\"",
            )
        })?;
    }
    out.metrics_token_file = c.metrics_token_file.map(|f| base.join(f));
    if let Some(n) = &c.ready_failed_runs {
        out.ready_failed_runs = u32::try_from(*n.get_ref())
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ctx.invalid(n, "console.ready_failed_runs", "expected 1 or more"))?;
    }
    Ok(out)
}

pub(super) fn convert_connection(
    ctx: &Ctx,
    c: RawConnection,
) -> Result<ConnectionConfig, ConfigError> {
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
    let refused_backoff = ctx.duration(
        &c.refused_backoff,
        "connection.refused_backoff",
        DEFAULT_REFUSED_BACKOFF,
    )?;
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
    let destination = match &c.destination {
        None => DestinationKind::PowerBi,
        Some(v) => match v.get_ref().as_str() {
            "powerbi" => DestinationKind::PowerBi,
            "fabric_mirroring" => DestinationKind::FabricMirroring,
            _ => {
                return Err(ctx.invalid(
                    v,
                    "destination",
                    "expected \"powerbi\" (push datasets) or \"fabric_mirroring\" (a mirrored database's landing zone)",
                ));
            }
        },
    };
    let fabric = match c.fabric {
        None => None,
        Some(f) => {
            let landing_zone_url = match (&f.landing_zone_url, &f.workspace, &f.mirrored_database) {
                (Some(u), _, _) => u.get_ref().trim().to_string(),
                (None, Some(w), Some(d)) => {
                    format!("https://onelake.dfs.fabric.microsoft.com/{w}/{d}/Files/LandingZone")
                }
                _ => {
                    return Err(ctx.invalid(
                        &c.name,
                        "fabric.landing_zone_url",
                        "[connection.fabric] needs landing_zone_url (copy it from the mirrored database's home page in Fabric), or workspace and mirrored_database ids",
                    ));
                }
            };
            Some(FabricSection {
                workspace: f.workspace,
                mirrored_database: f.mirrored_database,
                cloud: f.cloud.unwrap_or_else(|| "public".into()),
                landing_zone_url,
                allow_loopback_http: f.allow_loopback_http,
            })
        }
    };
    if destination == DestinationKind::FabricMirroring && fabric.is_none() {
        return Err(ctx.invalid(
            &c.name,
            "destination",
            "destination = \"fabric_mirroring\" needs a [connection.fabric] section with landing_zone_url",
        ));
    }
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
        refused_backoff,
        intacct,
        powerbi,
        destination,
        fabric,
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
    let open_periods = match &s.open_periods {
        None => 2,
        Some(p) if (1..=120).contains(p.get_ref()) => *p.get_ref() as u32,
        Some(p) => {
            return Err(ctx.invalid(
                p,
                "stream.open_periods",
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
        never_modified_full_every: ctx.duration(
            &s.never_modified_full_every,
            "stream.never_modified_full_every",
            Duration::from_secs(24 * 3600),
        )?,
        closed_periods_every: ctx.duration(
            &s.closed_periods_every,
            "stream.closed_periods_every",
            Duration::from_secs(24 * 3600),
        )?,
        open_periods,
        schema_drift,
        deletes,
        column_map: s.columns,
        column_types,
        manage_schema: s.manage_schema.unwrap_or(true),
        periods,
        object,
    })
}

#[cfg(test)]
mod tests {
    use super::super::EXAMPLE;
    use super::super::tests::parse;

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
    fn balances_cannot_be_appended() {
        let text = EXAMPLE.replace("periods = 12", "periods = 12\nmode = \"append\"");
        assert!(parse(&text).unwrap_err().to_string().contains("snapshot"));
    }
}
