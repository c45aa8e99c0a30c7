//! `ml-connector dataset migrate`: prints what the library's migration did or would do, and the
//! steps left to the user (tiles to re-pin, the old dataset to delete once satisfied).

use anyhow::Result;

use ml_connector::app::App;
use ml_connector::config::Mode;
use ml_connector::destination::powerbi::migrate::{MigrateOutcome, MigrateReport, migrate};
use ml_connector::pipeline::{Events, RunOptions, RunStatus};

use crate::exit;

pub async fn run(app: &App, connection: Option<&str>, dry_run: bool) -> Result<u8> {
    let conn = app.connection(connection).await?;
    let opts = RunOptions {
        trigger: "migrate".into(),
        ..Default::default()
    };
    // As `sync`: SIGTERM or Ctrl-C stops the filling run after its current batch; the next
    // `dataset migrate` continues with the same new dataset.
    let stop = opts.cancel.clone();
    let watcher = tokio::spawn(async move {
        ml_connector::scheduler::service::wait_for_signal().await;
        tracing::warn!(
            "stopping after the current batch: run `ml-connector dataset migrate` again to continue with the same new dataset"
        );
        stop.cancel();
    });
    let report = migrate(&conn, &opts, dry_run, &Events::default()).await;
    watcher.abort();
    let report = report?;
    print(&conn.config.name, &report);
    Ok(exit_code(&report))
}

fn exit_code(r: &MigrateReport) -> u8 {
    match (&r.outcome, &r.run) {
        (MigrateOutcome::Incomplete(_), Some(run)) if run.refused => exit::REFUSED,
        (MigrateOutcome::Incomplete(_), Some(run))
            if matches!(run.status, RunStatus::Failed | RunStatus::Interrupted) =>
        {
            exit::FAILURE
        }
        // Postponed rebuilds, a stream that failed, reports not rebound: done in part.
        (MigrateOutcome::Incomplete(_), _) => exit::PARTIAL,
        _ => exit::OK,
    }
}

fn print(connection: &str, r: &MigrateReport) {
    let old = &r.old_dataset_id;
    match &r.outcome {
        MigrateOutcome::NothingToDo => {
            crate::outln!(
                "connection {connection}: dataset {:?} ({old}) has exactly the configured tables; nothing to migrate",
                r.dataset_name
            );
            return;
        }
        MigrateOutcome::DryRun => crate::outln!(
            "dry run, nothing changed: connection {connection} would get a new push dataset {:?} with {} tables, filled from the local copy; the old dataset {old} is kept",
            r.dataset_name,
            r.tables.len()
        ),
        MigrateOutcome::Incomplete(why) => crate::outln!(
            "connection {connection}: the migration is not finished{}: {why}",
            r.new_dataset_id
                .as_ref()
                .map(|n| format!(" (new dataset {n})"))
                .unwrap_or_default()
        ),
        MigrateOutcome::Done => crate::outln!(
            "connection {connection}: new dataset {} ({:?}) has every configured table, filled from the local copy{}",
            r.new_dataset_id.as_deref().unwrap_or("?"),
            r.dataset_name,
            r.run
                .as_ref()
                .map(|run| format!(" (run {})", run.run))
                .unwrap_or_default()
        ),
    }
    if r.outcome == MigrateOutcome::DryRun {
        for t in &r.tables {
            let mode = match t.mode {
                Mode::Replace => "replace",
                Mode::Append => "append",
            };
            let note = if !t.in_old_dataset {
                ", new table (its stream is read from Intacct by the migration)"
            } else if t.mode == Mode::Append {
                ", append: the new table gets the rows staged from now on, the old one keeps their history"
            } else {
                ""
            };
            crate::outln!(
                "  {:<20} {mode:<8} {:>10} rows  {:>6} POSTs{note}",
                t.table,
                t.rows,
                t.posts
            );
        }
    }
    for t in &r.dropped_tables {
        crate::outln!(
            "  table {t} of the old dataset is fed by no configured stream: the new dataset has no such table"
        );
    }
    let verb = match r.outcome {
        MigrateOutcome::Done => "rebound to the new dataset",
        _ => "to rebind to the new dataset once it is filled",
    };
    for rep in &r.reports {
        crate::outln!("  report {:?} ({}): {verb}", rep.name, rep.id);
    }
    for (rep, why) in &r.not_rebound {
        crate::outln!("  report {:?} ({}) NOT rebound: {why}", rep.name, rep.id);
    }
    if !r.tiles.is_empty() {
        crate::outln!(
            "dashboard tiles showing the old dataset (Power BI has no API to rebind a tile: pin them again from a report of the new dataset):"
        );
        for t in &r.tiles {
            crate::outln!(
                "  dashboard {:?} ({}): tile {:?} ({})",
                t.dashboard,
                t.dashboard_id,
                t.title,
                t.tile_id
            );
        }
    }
    match r.outcome {
        MigrateOutcome::Done => crate::outln!(
            "the old dataset {old} is unchanged and no longer fed: delete it in Power BI once you are satisfied"
        ),
        MigrateOutcome::Incomplete(_) => crate::outln!(
            "reports still show the old dataset {old}; run `ml-connector dataset migrate --connection {connection}` again to continue with the same new dataset"
        ),
        _ => {}
    }
}
