//! The command line: parse, call the library, print. Exit codes are documented in `--help`.

mod audit;
mod console;
mod credentials;
mod dataset;
mod dry_run;
mod filter;
mod ping;
mod runs;

use std::path::Path;
use std::process::ExitCode;

use crate::exit;

use anyhow::{Context as _, Result};
use clap::Parser;

use crate::args::{
    Cli, Command, DatasetCommand, IntacctCommand, LogFormat, PowerBiCommand, SimCommand,
};

use ml_connector::app::App;
use ml_connector::pipeline::{Events, RunOptions, RunStatus};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; its log lines would only interleave with it.
    let quiet = matches!(cli.command, Command::Demo { .. });
    init_logging(cli.log_format, quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.chain().any(|c| {
                c.downcast_ref::<ml_connector::config::ConfigError>()
                    .is_some()
                    || matches!(
                        c.downcast_ref::<ml_connector::pipeline::PipelineError>(),
                        Some(ml_connector::pipeline::PipelineError::UnknownStream(_))
                    )
                    || matches!(
                        c.downcast_ref::<ml_connector::app::AppError>(),
                        Some(
                            ml_connector::app::AppError::Config(_)
                                | ml_connector::app::AppError::Usage(_)
                        )
                    )
            });
            // `run` stops at start when every scheduled connection's credentials were refused.
            let refused = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ml_connector::app::AppError>(),
                    Some(ml_connector::app::AppError::AllRefused(_))
                )
            });
            let code = if usage {
                exit::USAGE
            } else if refused {
                exit::REFUSED
            } else {
                exit::FAILURE
            };
            ExitCode::from(code)
        }
    }
}

fn init_logging(format: LogFormat, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "warn"
    } else {
        "warn,ml_connector=info"
    };
    let filter =
        EnvFilter::try_from_env("ML_CONNECTOR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // Colour codes only for a terminal (and not with NO_COLOR): a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        // Each line whole, above the progress bars when a sync shows them.
        .with_writer(crate::progress::LogWriter);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.compact().init();
    }
}

async fn open(cli_config: Option<&Path>) -> Result<App> {
    let path = ml_connector::config::locate(cli_config);
    Ok(App::open(&path).await?)
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Init { key_only: true, .. } => init_key(config),
        Command::Init { force, .. } => init(config, force),
        Command::Store(cmd) => store(config, cmd).await,
        Command::Credentials(cmd) => credentials::run(open(config).await?, cmd).await,
        Command::Ping(c) => ping::both(&open(config).await?, c.connection.as_deref()).await,
        Command::Intacct(IntacctCommand::Ping(c)) => {
            ping::intacct(&open(config).await?, c.connection.as_deref()).await
        }
        Command::Intacct(IntacctCommand::Query {
            object,
            fields,
            filter,
            limit,
            connection,
        }) => {
            ping::intacct_query(
                &open(config).await?,
                connection.connection.as_deref(),
                &object,
                fields,
                filter,
                limit,
            )
            .await
        }
        Command::Powerbi(PowerBiCommand::Ping(c)) => {
            ping::powerbi(&open(config).await?, c.connection.as_deref()).await
        }
        Command::Powerbi(PowerBiCommand::Push {
            table,
            file,
            connection,
        }) => {
            ping::powerbi_push(
                &open(config).await?,
                connection.connection.as_deref(),
                &table,
                &file,
            )
            .await
        }
        Command::Sync(args) => {
            let app = open(config).await?;
            let key = app.master_key()?;
            let cfg = app
                .config
                .connection(args.connection.connection.as_deref())
                .map_err(ml_connector::app::AppError::Usage)?
                .clone();
            let conn = app.connect(cfg, &key).await?;
            // A sync from cron starts from the session the last one kept, and keeps its own.
            ml_connector::app::resume_intacct_session(&conn, &key).await;
            let opts = RunOptions {
                trigger: "manual".into(),
                streams: args.stream,
                full: args.full,
                ..Default::default()
            };
            if args.dry_run {
                let dry = ml_connector::pipeline::preview::preview(&conn, &opts).await?;
                dry_run::print(&dry);
                return Ok(exit::OK);
            }
            // SIGTERM or Ctrl-C stops the run after its current batch, as under `run`: the run is
            // recorded `interrupted` and the next sync resumes from the state it left.
            let stop = opts.cancel.clone();
            let watcher = tokio::spawn(async move {
                ml_connector::scheduler::service::wait_for_signal().await;
                tracing::warn!(
                    "stopping: the current batch finishes, then the run stops (press Ctrl-C again to stop at once)"
                );
                stop.cancel();
                ml_connector::scheduler::service::wait_for_signal().await;
                eprintln!(
                    "stopped at once: the run stays `running` until the next sync marks it interrupted and resumes its work"
                );
                std::process::exit(i32::from(exit::FAILURE));
            });
            let bars = crate::progress::Bars::new(!args.quiet, &conn.config);
            let events = bars.events();
            let report = conn.run(&opts, &events).await;
            watcher.abort();
            ml_connector::app::keep_intacct_session(&conn, &key).await;
            let report = report?;
            bars.finish();
            runs::print_report(&report);
            Ok(match report.status {
                RunStatus::Succeeded => exit::OK,
                RunStatus::Partial => exit::PARTIAL,
                RunStatus::Failed if report.refused => exit::REFUSED,
                RunStatus::Failed | RunStatus::Interrupted => exit::FAILURE,
            })
        }
        Command::Run {
            worker_id,
            no_console,
        } => {
            let app = open(config).await?;
            // The console beside the schedules; it stops when the service does. The schedules
            // matter more: a console that cannot start (no token, port taken) is only a warning.
            let console = match no_console {
                true => None,
                false => match console::start(&app, None).await {
                    Ok((listener, console)) => Some(tokio::spawn(ml_console::serve(
                        listener,
                        console,
                        std::future::pending(),
                    ))),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "the console is not served");
                        None
                    }
                },
            };
            let result = ml_connector::scheduler::service::run(&app, worker_id).await;
            if let Some(task) = console {
                task.abort();
            }
            result?;
            Ok(exit::OK)
        }
        Command::Console { bind, command } => console::run(config, bind, command).await,
        Command::Runs(cmd) => runs::run(&open(config).await?, cmd).await,
        Command::Audit(cmd) => audit::run(&open(config).await?, cmd).await,
        Command::Replay {
            run,
            stream,
            dry_run,
            connection,
        } => {
            let app = open(config).await?;
            let conn = app.connection(connection.connection.as_deref()).await?;
            let report = ml_connector::pipeline::replay::replay(
                &conn,
                run,
                stream.as_deref(),
                dry_run,
                &Events::default(),
            )
            .await?;
            for t in &report.tables {
                crate::outln!(
                    "{:<20} {:>9} rows {}",
                    t.table,
                    t.rows,
                    if dry_run { "would be pushed" } else { "pushed" }
                );
            }
            if !dry_run {
                crate::outln!(
                    "replace tables now hold run {run}'s rows and are marked for a rebuild: the next `ml-connector sync` brings them back to current"
                );
            }
            Ok(exit::OK)
        }
        Command::Objects { check, connection } => {
            let app = if check {
                Some(open(config).await?)
            } else {
                None
            };
            ping::objects(app.as_ref(), connection.connection.as_deref()).await
        }
        Command::Dataset(DatasetCommand::Migrate {
            dry_run,
            connection,
        }) => {
            dataset::run(
                &open(config).await?,
                connection.connection.as_deref(),
                dry_run,
            )
            .await
        }
        Command::Verify(c) => {
            let app = open(config).await?;
            let conn = app.connection(c.connection.as_deref()).await?;
            let report = ml_connector::pipeline::verify::verify(&conn).await?;
            for t in &report.tables {
                crate::outln!("{t}");
            }
            Ok(if report.all_match() {
                exit::OK
            } else {
                exit::DIFFERENCE
            })
        }
        Command::Bench(args) => {
            crate::bench::run(args).await?;
            Ok(exit::OK)
        }
        Command::Sim(SimCommand::Intacct {
            port,
            vendors,
            seed,
        }) => {
            crate::demo::serve_intacct(port, vendors, seed).await?;
            Ok(exit::OK)
        }
        Command::Sim(SimCommand::Powerbi { port }) => {
            crate::demo::serve_powerbi(port).await?;
            Ok(exit::OK)
        }
        Command::Sim(SimCommand::Fabric { root, port }) => {
            crate::demo::serve_fabric(root, port).await?;
            Ok(exit::OK)
        }
        Command::Demo { data_dir, vendors } => {
            crate::demo::run(data_dir, vendors).await?;
            Ok(exit::OK)
        }
    }
}

/// `init --key-only`: the master key the configuration names, without touching the configuration.
fn init_key(config: Option<&Path>) -> Result<u8> {
    let path = ml_connector::config::locate(config);
    let cfg = ml_connector::config::Config::load(&path)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let key_path = ml_connector::app::key_file_path(&cfg);
    if key_path.exists() {
        anyhow::bail!(
            "{} already exists; it is kept (a new key could not read the credentials sealed with it)",
            key_path.display()
        );
    }
    ml_store::crypto::MasterKey::create_file(&key_path)?;
    crate::outln!(
        "created the master key {} (mode 0600): back it up; then store the credentials with `ml-connector credentials set intacct` and `... powerbi`",
        key_path.display()
    );
    Ok(exit::OK)
}

/// `store backup` / `store restore` (SQLite; PostgreSQL has its own tools).
async fn store(config: Option<&Path>, cmd: crate::args::StoreCommand) -> Result<u8> {
    use crate::args::StoreCommand;
    use ml_store::Store as _;
    let path = ml_connector::config::locate(config);
    let cfg = ml_connector::config::Config::load(&path)?;
    let ml_store::StoreLocation::Sqlite(state) = ml_connector::app::store_location(&cfg) else {
        anyhow::bail!(
            "this configuration keeps its state in PostgreSQL: back it up with `pg_dump` and restore it with `pg_restore` (or your database service's snapshots)"
        );
    };
    match cmd {
        StoreCommand::Backup { file } => {
            let store = ml_store::SqliteStore::open(&state, ml_clock::system()).await?;
            let result = store.backup_to(&file).await;
            store.close().await;
            let bytes = result?;
            crate::outln!(
                "backed up {} to {} ({bytes} bytes, mode 0600); keep the master key file backed up too",
                state.display(),
                file.display()
            );
        }
        StoreCommand::Restore { file } => {
            ml_store::backup::restore_sqlite(&file, &state).await?;
            crate::outln!(
                "restored {} from {}; runs after the backup are not in it, and the next sync reads again from the backup's cursors",
                state.display(),
                file.display()
            );
        }
    }
    Ok(exit::OK)
}

fn init(config: Option<&Path>, force: bool) -> Result<u8> {
    let path = ml_connector::config::locate(config);
    if path.exists() && !force {
        anyhow::bail!(
            "{} already exists; edit it, or pass --force to overwrite it with the example",
            path.display()
        );
    }
    std::fs::write(&path, ml_connector::config::EXAMPLE)
        .with_context(|| format!("cannot write {}", path.display()))?;
    crate::outln!("wrote {}", path.display());
    let cfg = ml_connector::config::Config::load(&path)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let key_path = ml_connector::app::key_file_path(&cfg);
    if key_path.exists() {
        crate::outln!("kept the existing master key {}", key_path.display());
    } else {
        ml_store::crypto::MasterKey::create_file(&key_path)?;
        crate::outln!(
            "created the master key {} (mode 0600): back it up; without it the stored credentials cannot be read",
            key_path.display()
        );
    }
    console::init_token(&cfg.data_dir)?;
    crate::outln!(
        "next: edit the file, then `ml-connector credentials set intacct` and `ml-connector credentials set powerbi`"
    );
    Ok(exit::OK)
}
