//! The command line: what each command takes, with a description and an example in its `--help`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ml-connector",
    version,
    about = "Keeps Power BI push datasets fed with current Sage Intacct data",
    after_help = "Exit codes: 0 success; 1 failure; 2 bad usage or configuration; 3 a run finished partially \
(some streams failed); 4 a remote system refused our credentials or permissions; 5 `verify` or `audit verify` \
found a difference.\n\nStart with `ml-connector demo`, then `ml-connector init`."
)]
pub struct Cli {
    /// The configuration file (default: $ML_CONNECTOR_CONFIG, then ./ml-connector.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format (on stderr): human on a terminal, JSON lines otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human on a terminal, JSON lines otherwise.
    Auto,
    /// One readable line per event; colours only on a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented example configuration and create the master key file.
    #[command(after_help = "Example: ml-connector init --config /etc/ml-connector.toml")]
    Init {
        /// Overwrite an existing configuration file (the key file is never overwritten).
        #[arg(long, conflicts_with = "key_only")]
        force: bool,
        /// Only create the master key file the existing configuration names; leave the configuration as it is.
        #[arg(long)]
        key_only: bool,
    },
    /// Store, show or re-encrypt the secrets (sealed in the state store, never in the config file).
    #[command(
        subcommand,
        after_help = "Example: ml-connector credentials set intacct"
    )]
    Credentials(CredentialsCommand),
    /// Check both systems: one verdict each, with the fix when something is wrong.
    #[command(after_help = "Example: ml-connector ping --connection acme")]
    Ping(ConnectionArg),
    /// Intacct alone: `ping`, or `query` an object as JSON lines.
    #[command(
        subcommand,
        after_help = "Example: ml-connector intacct query GLACCOUNT --limit 5"
    )]
    Intacct(IntacctCommand),
    /// Power BI alone: `ping`, or `push` a JSON-lines file of rows into a table.
    #[command(subcommand, after_help = "Example: ml-connector powerbi ping")]
    Powerbi(PowerBiCommand),
    /// Run one sync now: extract what changed, stage it, push it.
    #[command(
        after_help = "Examples:\n  ml-connector sync\n  ml-connector sync --connection acme --stream VENDOR --full\n  ml-connector sync --dry-run"
    )]
    Sync(SyncArgs),
    /// The long-running service: each connection on its own schedule (SIGTERM stops after the current batch).
    #[command(after_help = "Example: ml-connector run --worker-id $(hostname)")]
    Run {
        /// Identifies this worker in leases when several share one PostgreSQL database.
        #[arg(long)]
        worker_id: Option<String>,
        /// Do not serve the operations console beside the schedules.
        #[arg(long)]
        no_console: bool,
    },
    /// The operations console alone over the same store (pages, JSON API, /metrics, /healthz, /readyz), or `token rotate`.
    #[command(
        after_help = "Examples:\n  ml-connector console                      # http://127.0.0.1:8686 ([console] bind)\n  ml-connector console --bind 127.0.0.1:9000\n  ml-connector console token rotate         # a new console token, shown once"
    )]
    Console {
        /// Listen here instead of `[console] bind` (default 127.0.0.1:8686).
        #[arg(long, value_name = "ADDR:PORT")]
        bind: Option<std::net::SocketAddr>,
        #[command(subcommand)]
        command: Option<ConsoleCommand>,
    },
    /// Back up or restore the SQLite state store (PostgreSQL: use pg_dump and pg_restore).
    #[command(
        subcommand,
        after_help = "Example: ml-connector store backup /backups/ml-connector-$(date +%F).sqlite"
    )]
    Store(StoreCommand),
    /// List runs, or show one with its streams and errors.
    #[command(subcommand, after_help = "Example: ml-connector runs show 42")]
    Runs(RunsCommand),
    /// Search, export, verify or prune the audit trail.
    #[command(
        subcommand,
        after_help = "Example: ml-connector audit search --key 1042 --format jsonl"
    )]
    Audit(AuditCommand),
    /// Push again exactly the rows an earlier run pushed (replace streams: the table as it was after that run).
    #[command(after_help = "Example: ml-connector replay --run 42 --stream VENDOR --dry-run")]
    Replay {
        /// The run whose pushed rows are pushed again (`ml-connector runs list` shows the ids).
        #[arg(long)]
        run: i64,
        /// Only this stream (Intacct object or table name).
        #[arg(long)]
        stream: Option<String>,
        /// Show what would be pushed without pushing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// The connection's Power BI dataset: `migrate` it to a new one with every configured table.
    #[command(
        subcommand,
        after_help = "Example: ml-connector dataset migrate --connection acme --dry-run"
    )]
    Dataset(DatasetCommand),
    /// Compare each Power BI table with the local mirror (row counts and column sums).
    #[command(after_help = "Example: ml-connector verify --connection acme")]
    Verify(ConnectionArg),
    /// List the Intacct objects the connector knows (table, kind, business ID); with --check, whether the company has each.
    #[command(
        after_help = "Examples:\n  ml-connector objects\n  ml-connector objects --check --connection acme"
    )]
    Objects {
        /// Look each object up in the company (needs the connection's Intacct credentials).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// Measure the whole job against the simulators: requests, wall time against its floor, CPU, memory.
    #[command(after_help = "Example: cargo run --release -- bench --records 1000000")]
    Bench(crate::bench::BenchArgs),
    /// Start one simulator on a port, for trying the connector by hand.
    #[command(
        subcommand,
        after_help = "Example: ml-connector sim intacct --port 18080"
    )]
    Sim(SimCommand),
    /// Run the whole job against both simulators, in-process: a full sync, changes, an incremental sync.
    #[command(after_help = "Example: cargo run --release -- demo")]
    Demo {
        /// Keep the demo's state here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Vendors in the simulated company.
        #[arg(long, default_value_t = 2000)]
        vendors: usize,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct ConnectionArg {
    /// The connection to use (needed when the configuration has several).
    #[arg(long)]
    pub connection: Option<String>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Only these streams (Intacct object or table name); repeatable.
    #[arg(long)]
    pub stream: Vec<String>,
    /// Ignore the cursors: re-read everything, detect deletes by comparison, reload every table.
    #[arg(long)]
    pub full: bool,
    /// No progress bars even on a terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Change nothing: say per stream what would be read and how many rows each table would push, with the hour's budget left.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Read secrets from a no-echo prompt (or stdin with --stdin) and seal them in the store.
    #[command(
        after_help = "Examples:\n  ml-connector credentials set intacct\n  printf 'sender-pw\\nuser-pw\\n' | ml-connector credentials set intacct --stdin\n  ml-connector credentials set powerbi --certificate cert.pem --private-key key.pem"
    )]
    Set {
        /// Which system's secrets: intacct (sender and user passwords) or powerbi (client secret or certificate).
        #[arg(value_enum)]
        system: System,
        #[command(flatten)]
        connection: ConnectionArg,
        /// Read the secrets from standard input, one per line, instead of prompting.
        #[arg(long)]
        stdin: bool,
        /// Power BI: a certificate (PEM) instead of a client secret.
        #[arg(long, requires = "private_key")]
        certificate: Option<PathBuf>,
        /// Power BI: the certificate's private key (PEM).
        #[arg(long)]
        private_key: Option<PathBuf>,
    },
    /// Show what is stored: only the non-secret fields.
    #[command(after_help = "Example: ml-connector credentials show")]
    Show(ConnectionArg),
    /// Re-encrypt every credential under a new master key (the old key file is kept as *.old).
    #[command(after_help = "Example: ml-connector credentials rotate-key")]
    RotateKey,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Intacct,
    Powerbi,
}

#[derive(Subcommand, Debug)]
pub enum IntacctCommand {
    /// Log in, open a session, read one record; print company, entity, user and session expiry.
    #[command(after_help = "Example: ml-connector intacct ping")]
    Ping(ConnectionArg),
    /// Read an object and print its records as JSON lines.
    #[command(
        after_help = "Example: ml-connector intacct query VENDOR --fields VENDORID,NAME --where \"STATUS = 'active'\" --limit 10"
    )]
    Query {
        /// The Intacct object to read, e.g. VENDOR or GLACCOUNT.
        object: String,
        /// Comma-separated fields (default: RECORDNO and the catalogue's fields).
        #[arg(long)]
        fields: Option<String>,
        /// A filter: FIELD OP 'value' joined by AND; OP is = != < <= > >= like.
        #[arg(long = "where")]
        filter: Option<String>,
        /// Print at most this many records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        connection: ConnectionArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum PowerBiCommand {
    /// Get a token, find the workspace, list its datasets; diagnose what is wrong.
    #[command(after_help = "Example: ml-connector powerbi ping")]
    Ping(ConnectionArg),
    /// Push a file of JSON lines (one row object per line) into a table of the connection's dataset.
    #[command(after_help = "Example: ml-connector powerbi push Vendors vendors.jsonl")]
    Push {
        /// The table of the connection's dataset to push into (it must exist).
        table: String,
        /// The JSON-lines file: one row object per line, column names as keys.
        file: PathBuf,
        #[command(flatten)]
        connection: ConnectionArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Create a new push dataset with every configured table (a push dataset cannot gain tables),
    /// fill it from the local copy, rebind the workspace's reports to it and list the dashboard
    /// tiles to re-pin. The old dataset is kept; run it again to continue a migration that stopped.
    #[command(
        after_help = "Examples:\n  ml-connector dataset migrate --dry-run\n  ml-connector dataset migrate --connection acme"
    )]
    Migrate {
        /// Change nothing: say which tables the new dataset gets, the rows and POSTs to fill it, the reports to rebind and the tiles to re-pin.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        connection: ConnectionArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// The console token: `rotate` replaces it (shown once; logs everyone out).
    #[command(subcommand, after_help = "Example: ml-connector console token rotate")]
    Token(ConsoleTokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum ConsoleTokenCommand {
    /// Create a new console token, print it once, and store only its hash (the old one stops working).
    #[command(after_help = "Example: ml-connector console token rotate")]
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Write a consistent copy of the state store to FILE while it is in use (a new file, mode 0600).
    #[command(after_help = "Example: ml-connector store backup /backups/state-2026-12-06.sqlite")]
    Backup {
        /// Where to write the copy; must not exist yet.
        file: std::path::PathBuf,
    },
    /// Replace the state store with the backup FILE after checking its integrity. Stop every
    /// `run`, `sync` and other command using the store first.
    #[command(after_help = "Example: ml-connector store restore /backups/state-2026-12-06.sqlite")]
    Restore {
        /// The backup to restore.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// The latest runs, newest first.
    #[command(
        after_help = "Examples:\n  ml-connector runs list --limit 20\n  ml-connector runs list --status failed"
    )]
    List {
        /// Show at most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only runs in this state.
        #[arg(long, value_enum)]
        status: Option<RunState>,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// One run: its streams, counts and errors (with Intacct's correction text); for a run under
    /// way, the streams finished so far and those still to come.
    #[command(after_help = "Example: ml-connector runs show 42")]
    Show {
        /// The run's id (`ml-connector runs list` shows them).
        id: i64,
    },
}

/// The state of a run, as `runs list` shows it.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Under way (or left so by a process that stopped; the next run marks it interrupted).
    Running,
    /// Every stream finished.
    Succeeded,
    /// Some streams failed or were postponed.
    Partial,
    /// Every stream failed, or the run failed before any stream.
    Failed,
    /// Stopped by SIGTERM or Ctrl-C, or by a process that stopped.
    Interrupted,
    /// A scheduled time `run` did not run, with the reason (credentials refused, another worker's
    /// run, the previous run still going).
    Skipped,
}

impl RunState {
    pub fn as_store(self) -> ml_store::RunStatus {
        match self {
            RunState::Running => ml_store::RunStatus::Running,
            RunState::Succeeded => ml_store::RunStatus::Succeeded,
            RunState::Partial => ml_store::RunStatus::Partial,
            RunState::Failed => ml_store::RunStatus::Failed,
            RunState::Interrupted => ml_store::RunStatus::Interrupted,
            RunState::Skipped => ml_store::RunStatus::Skipped,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Search entries; print them as a table, CSV or JSON lines.
    #[command(
        after_help = "Example: ml-connector audit search --stream VENDOR --key 1042 --format csv > vendor-1042.csv"
    )]
    Search {
        /// Only this run's entries.
        #[arg(long)]
        run: Option<i64>,
        /// Only this stream's entries: its Intacct object (VENDOR) or its table (Vendors).
        #[arg(long)]
        stream: Option<String>,
        /// The record key (RECORDNO).
        #[arg(long)]
        key: Option<String>,
        /// From this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        from: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Print at most this many entries, oldest first, and say so on stderr when more match
        /// (default: 1000 for the table, every entry for csv and jsonl).
        #[arg(long)]
        limit: Option<u64>,
        /// How to print the entries: an aligned table, CSV (every column) or JSON lines.
        #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
        format: AuditFormat,
        #[command(flatten)]
        connection: ConnectionArg,
    },
    /// Check the hash chain: detects an edited, removed or reordered entry.
    #[command(after_help = "Example: ml-connector audit verify")]
    Verify(ConnectionArg),
    /// Delete entries older than a date, keeping the chain verifiable from an anchor.
    #[command(after_help = "Example: ml-connector audit prune --before 2025-01-01T00:00:00Z")]
    Prune {
        /// Delete entries created before this time (RFC 3339, e.g. 2025-01-01T00:00:00Z).
        #[arg(long)]
        before: String,
        #[command(flatten)]
        connection: ConnectionArg,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    Table,
    Csv,
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// The Intacct XML gateway simulator (credentials: see its start-up banner).
    #[command(after_help = "Example: ml-connector sim intacct --port 18080 --vendors 200000")]
    Intacct {
        /// The loopback port to listen on.
        #[arg(long, default_value_t = 18080)]
        port: u16,
        /// Vendors in the simulated company (the other objects keep their default sizes).
        #[arg(long, default_value_t = 2000)]
        vendors: usize,
        /// Seed of the generated company: the same seed gives the same records.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The Entra + Power BI simulator.
    #[command(after_help = "Example: ml-connector sim powerbi --port 18090")]
    Powerbi {
        /// The loopback port to listen on.
        #[arg(long, default_value_t = 18090)]
        port: u16,
    },
    /// The Entra + OneLake + open-mirroring simulator: a landing zone kept as plain files under
    /// --root, replicated into tables every two seconds (or on POST /admin/replicate).
    #[command(after_help = "Example: ml-connector sim fabric --root ./fabric-sim --port 18100")]
    Fabric {
        /// The directory the landing zone lives in, as plain files any Parquet reader can open.
        #[arg(long, value_name = "DIR")]
        root: PathBuf,
        /// The loopback port to listen on.
        #[arg(long, default_value_t = 18100)]
        port: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_command_says_what_it_does_and_shows_an_example() {
        fn walk(cmd: &mut clap::Command, path: String, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                let help = sub.render_long_help().to_string();
                if sub.get_about().is_none() || !help.contains("Example") {
                    missing.push(name.clone());
                }
                walk(sub, name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&mut Cli::command(), "ml-connector".into(), &mut missing);
        assert!(
            missing.is_empty(),
            "commands without a description or an example: {missing:?}"
        );
        Cli::command().debug_assert();
    }

    #[test]
    fn every_argument_says_what_it_is_for() {
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                // clap's own --help and --version describe themselves.
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, name, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "ml-connector".into(), &mut missing);
        assert!(
            missing.is_empty(),
            "arguments or commands without a description: {missing:?}"
        );
    }
}
