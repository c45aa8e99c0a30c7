//! `runs list|show` and the summary printed after `sync`.

use anyhow::Result;
use ml_store::RunId;

use crate::args::RunsCommand;
use crate::exit;
use ml_connector::app::App;
use ml_connector::pipeline::RunReport;

pub async fn run(app: &App, cmd: RunsCommand) -> Result<u8> {
    match cmd {
        RunsCommand::List { limit, connection } => {
            let runs = app
                .store
                .list_runs(connection.connection.as_deref(), limit)
                .await?;
            crate::outln!(
                "{:>6}  {:<12} {:<9} {:<11} {:<25} {:>8}",
                "run",
                "connection",
                "trigger",
                "status",
                "started (UTC)",
                "seconds"
            );
            for r in runs {
                let secs = r
                    .finished_at
                    .map(|f| {
                        format!(
                            "{:.1}",
                            (f - r.started_at).num_milliseconds() as f64 / 1000.0
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                crate::outln!(
                    "{:>6}  {:<12} {:<9} {:<11} {:<25} {:>8}",
                    r.id,
                    r.connection,
                    r.trigger,
                    r.status,
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    secs
                );
            }
            Ok(exit::OK)
        }
        RunsCommand::Show { id } => {
            let Some(detail) = app.store.get_run(RunId(id)).await? else {
                anyhow::bail!("there is no run {id}; `ml-connector runs list` shows the latest");
            };
            let r = &detail.run;
            crate::outln!(
                "run {} of {} ({}): {}",
                r.id,
                r.connection,
                r.trigger,
                r.status
            );
            crate::outln!("started  {}", r.started_at.to_rfc3339());
            if let Some(f) = r.finished_at {
                crate::outln!("finished {}", f.to_rfc3339());
            }
            if let Some(e) = r.summary.get("setup_error").and_then(|e| e.as_str()) {
                crate::outln!("error before any stream: {e}");
            }
            crate::outln!(
                "\n{:<18} {:<7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}",
                "stream",
                "status",
                "extracted",
                "new",
                "changed",
                "deleted",
                "unchanged",
                "pushed"
            );
            for s in &detail.streams {
                let x = &s.result;
                crate::outln!(
                    "{:<18} {:<7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8}",
                    s.stream,
                    x.status.map(|s| s.as_str()).unwrap_or("-"),
                    x.extracted,
                    x.inserted,
                    x.updated,
                    x.deleted,
                    x.unchanged,
                    x.pushed
                );
            }
            for s in detail.streams.iter().filter(|s| s.result.error.is_some()) {
                crate::outln!(
                    "\n{}: {}",
                    s.stream,
                    s.result.error.as_deref().unwrap_or("")
                );
            }
            Ok(exit::OK)
        }
    }
}

pub fn print_report(report: &RunReport) {
    if let Some(e) = &report.setup_error {
        crate::outln!("run {} failed before any stream: {e}", report.run);
        return;
    }
    crate::outln!(
        "{:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7}",
        "table",
        "read",
        "new",
        "changed",
        "deleted",
        "pushed",
        "in table",
        "seconds"
    );
    for s in &report.streams {
        if let Some(why) = &s.postponed {
            crate::outln!("{:<14} POSTPONED {why}", s.table);
            continue;
        }
        match &s.error {
            None => crate::outln!(
                "{:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7.1}",
                s.table,
                s.extracted,
                s.inserted,
                s.updated,
                s.deleted,
                s.pushed,
                s.table_rows,
                s.elapsed.as_secs_f64()
            ),
            Some(e) => crate::outln!("{:<14} FAILED  {e}", s.table),
        }
    }
    crate::outln!("run {}: {}", report.run, report.status.as_str());
}
