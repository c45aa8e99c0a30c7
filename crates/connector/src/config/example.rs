//! The starting point `ml-connector init` writes: a working file whose comments document every key.
//!
//! It lives next to the parser so the test below keeps it honest: if a key is renamed or a default
//! changes, the example stops parsing and the build says so.

/// The commented example `ml-connector init` writes.
pub const EXAMPLE: &str = r#"# ml-connector configuration.
# Secrets are NOT in this file: store them with `ml-connector credentials set intacct` and
# `ml-connector credentials set powerbi` (they are encrypted under the master key in the data directory).

data_dir = ".ml-connector"            # SQLite state, the master key file, logs (relative to this file)
# database_url = "postgres://user@host/db"   # or ML_CONNECTOR_DATABASE_URL; SQLite when absent
# audit_retention = "400d"            # prune audit entries older than this after each run (default: keep all)

# [console]                           # the operations console of `ml-connector run` and `ml-connector console`
# bind = "127.0.0.1:8686"             # beyond loopback it warns: put it behind a TLS reverse proxy
# metrics_token_file = "metrics.token"   # then /metrics needs this bearer token (else it is open)
# ready_failed_runs = 3               # /readyz fails while a connection's last this many runs all failed

[[connection]]
name = "acme"
schedule = "0 2 * * *"                # cron (minute hour day month weekday), in the time zone below
time_zone = "America/Chicago"
# refused_backoff = "6h"               # after refused credentials, `run` pauses until they are set again or this passes

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
# never_modified_full_every = "24h"   # records never modified are found by creation time; all re-read this often ("0s": every run)
# schema_drift = "add_column"         # add_column | block
# column_types = { EXCHANGE_RATE = "Double" }   # override a column's type

[[connection.stream]]
object = "GLACCOUNT"

[[connection.stream]]
object = "GLACCOUNTBALANCE"           # GL balances: account x period x book
periods = 12                          # months kept (one row per account, period, book, department, location)
# periods_through = "2026-10"         # last month read (default: the current month)
# open_periods = 2                    # the latest months, which can still change: re-read every run
# closed_periods_every = "24h"        # the older months: re-read this often ("0s": every run)

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
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::tests::parse;
    use super::EXAMPLE;

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
    fn the_console_section_parses_when_uncommented_and_is_checked() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.console, crate::config::ConsoleConfig::default());
        let on = EXAMPLE
            .replace("# [console]", "[console]")
            .replace("# bind = ", "bind = ")
            .replace("# metrics_token_file", "metrics_token_file")
            .replace("# ready_failed_runs = 3", "ready_failed_runs = 5");
        let c = parse(&on).expect("uncommented console section");
        assert_eq!(c.console.bind.to_string(), "127.0.0.1:8686");
        assert_eq!(
            c.console.metrics_token_file,
            Some(PathBuf::from("/tmp/metrics.token"))
        );
        assert_eq!(c.console.ready_failed_runs, 5);
        let bad = on.replace("\"127.0.0.1:8686\"", "\"localhost\"");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("console.bind") && err.contains(":1"), "{err}");
    }
}
