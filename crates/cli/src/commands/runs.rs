//! `runs list|show` and the summary printed after `sync`.

use anyhow::Result;
use ml_store::RunId;

use crate::args::RunsCommand;
use crate::exit;
use ml_connector::app::App;
use ml_connector::pipeline::RunReport;

pub async fn run(app: &App, cmd: RunsCommand) -> Result<u8> {
    match cmd {
        RunsCommand::List {
            limit,
            status,
            connection,
        } => {
            // The store lists the latest runs; a state is picked out of all of them here (a few
            // thousand rows a year at most).
            let fetch = if status.is_some() { u32::MAX } else { limit };
            let mut runs = app
                .store
                .list_runs(connection.connection.as_deref(), fetch)
                .await?;
            if let Some(wanted) = status {
                runs.retain(|r| r.status == wanted.as_store());
                runs.truncate(limit as usize);
            }
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
                // A skipped run's reason is its whole story: said on its line.
                let reason = r
                    .summary
                    .get("skipped")
                    .and_then(|s| s.as_str())
                    .map(|s| format!("  {s}"))
                    .unwrap_or_default();
                crate::outln!(
                    "{:>6}  {:<12} {:<9} {:<11} {:<25} {:>8}{reason}",
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
            let running = r.status == ml_store::RunStatus::Running;
            if running {
                let so_far = (app.clock.now() - r.started_at).num_seconds().max(0);
                let holder = app.store.current_lease(&r.connection).await?;
                match holder {
                    Some(l) => crate::outln!(
                        "under way for {so_far} s, by worker {}: the streams below are those finished so far",
                        l.worker_id
                    ),
                    None => crate::outln!(
                        "no worker holds {}'s lease: the process running it stopped; the next run marks it interrupted and resumes its work",
                        r.connection
                    ),
                }
            }
            if let Some(why) = r.summary.get("skipped").and_then(|e| e.as_str()) {
                crate::outln!("skipped: {why}");
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
            if running {
                // The configured streams not finished yet (one of them under way), in the order the run takes them.
                let pending: Vec<&str> = app
                    .config
                    .connection(Some(&r.connection))
                    .map(|c| {
                        c.streams
                            .iter()
                            .map(|s| s.object.as_str())
                            .filter(|o| !detail.streams.iter().any(|d| d.stream == *o))
                            .collect()
                    })
                    .unwrap_or_default();
                for o in pending {
                    crate::outln!("{o:<18} {:<7}", "pending");
                }
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
