//! The file exactly as serde reads it, before any validation.
//!
//! Kept apart from the public model so that the model can hold parsed values (durations, URLs, cron
//! expressions) while these shapes keep every scalar we validate `Spanned`: the span is what lets an error
//! name the line. `deny_unknown_fields` everywhere, so a misspelt key (or a pasted password) is refused
//! rather than silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) data_dir: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) master_key_file: Option<String>,
    pub(super) audit_retention: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) connection: Vec<RawConnection>,
    pub(super) console: Option<RawConsole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsole {
    pub(super) bind: Option<Spanned<String>>,
    pub(super) metrics_token_file: Option<String>,
    pub(super) ready_failed_runs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub(super) name: Spanned<String>,
    pub(super) schedule: Option<Spanned<String>>,
    pub(super) time_zone: Option<Spanned<String>>,
    pub(super) refused_backoff: Option<Spanned<String>>,
    pub(super) intacct: RawIntacct,
    pub(super) powerbi: RawPowerBi,
    /// `powerbi` (default) or `fabric_mirroring`.
    pub(super) destination: Option<Spanned<String>>,
    pub(super) fabric: Option<RawFabric>,
    #[serde(default)]
    pub(super) stream: Vec<RawStream>,
}

/// `[connection.fabric]`: the mirrored database whose landing zone `fabric_mirroring` writes to.
/// The service principal is `[connection.powerbi]`'s (tenant_id, client_id, authority_url and the
/// secret of `credentials set powerbi`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFabric {
    pub(super) workspace: Option<String>,
    pub(super) mirrored_database: Option<String>,
    pub(super) cloud: Option<String>,
    pub(super) landing_zone_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_loopback_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntacct {
    pub(super) sender_id: Spanned<String>,
    pub(super) company_id: Spanned<String>,
    pub(super) user_id: Spanned<String>,
    pub(super) entity: Option<String>,
    pub(super) endpoint: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_loopback_http: bool,
    pub(super) max_concurrent_requests: Option<Spanned<i64>>,
    pub(super) page_size: Option<Spanned<i64>>,
    pub(super) request_timeout: Option<Spanned<String>>,
    pub(super) session_max_age: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPowerBi {
    pub(super) cloud: Option<Spanned<String>>,
    pub(super) tenant_id: Spanned<String>,
    pub(super) client_id: Spanned<String>,
    pub(super) workspace: Spanned<String>,
    pub(super) dataset: Option<String>,
    pub(super) retention: Option<Spanned<String>>,
    pub(super) authority_url: Option<Spanned<String>>,
    pub(super) api_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) allow_loopback_http: bool,
    pub(super) request_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStream {
    pub(super) object: Spanned<String>,
    pub(super) table: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) fields: Vec<String>,
    #[serde(default)]
    pub(super) custom_fields: Vec<String>,
    pub(super) lookback: Option<Spanned<String>>,
    pub(super) schema_drift: Option<Spanned<String>>,
    pub(super) deletes: Option<Spanned<String>>,
    pub(super) key_compare_every: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) columns: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) column_types: BTreeMap<String, Spanned<String>>,
    pub(super) manage_schema: Option<bool>,
    pub(super) periods: Option<Spanned<i64>>,
    pub(super) periods_through: Option<Spanned<String>>,
    pub(super) never_modified_full_every: Option<Spanned<String>>,
    pub(super) open_periods: Option<Spanned<i64>>,
    pub(super) closed_periods_every: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::super::EXAMPLE;
    use super::super::tests::parse;

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
}
