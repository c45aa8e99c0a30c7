//! `ml-connector dataset migrate`: replaces the connection's push dataset by a new one with every
//! configured table, because a push dataset cannot gain tables (Power BI refuses PUT of a table the
//! dataset lacks; see the README's sources).
//!
//! The steps, each resumable:
//!
//! 1. The migration is recorded in the store (old dataset, no new one yet).
//! 2. One ordinary run of the connection: [`super::dataset::ensure`] sees the migration, creates
//!    the new dataset (same name: Power BI allows it, and the configuration keeps naming it),
//!    records its id in the migration and as the connection's dataset, and marks every table for a
//!    rebuild; the run then reads what changed in Intacct (a new stream: all of it) and rebuilds
//!    every `replace` table from the mirror with the rebuild code every sync uses (paced within the
//!    dataset's rows/hour and POSTs/hour, postponed when the hour's budget cannot finish a table,
//!    resumed where it stopped).
//! 3. Only once that run succeeded: the workspace's reports bound to the old dataset are rebound
//!    to the new one (Reports - Rebind Report In Group), and the dashboard tiles showing the old
//!    dataset are listed (the API has no call to rebind a tile: a person re-pins them).
//! 4. The migration record is removed once every report that can be rebound is.
//!
//! Stopped anywhere (a kill, Ctrl-C, a rebuild postponed to the next hour, Power BI failing), the
//! next `dataset migrate` continues with the same new dataset. The old dataset is never changed or
//! deleted: the user deletes it once satisfied.

use ml_powerbi::{PowerBiClient, Report};
use ml_store::DatasetMigration;

use super::PushDataset;
use super::budget::RebuildCost;
use crate::config::Mode;
use crate::pipeline::error::PipelineError;
use crate::pipeline::{Connection, Events, RunOptions, RunReport, RunStatus};

/// A table of the migration, as the dry run prices it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedTable {
    pub table: String,
    pub mode: Mode,
    /// Rows in the local mirror now (a stream never read yet has none: the migration reads it).
    pub rows: u64,
    /// POSTs those rows take at the largest batch size.
    pub posts: u64,
    /// The old dataset has this table.
    pub in_old_dataset: bool,
}

/// A dashboard tile that shows the old dataset; no API can point it at the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandedTile {
    pub dashboard: String,
    pub dashboard_id: String,
    pub title: String,
    pub tile_id: String,
}

/// How far a migration got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// The dataset has exactly the configured tables: nothing to do.
    NothingToDo,
    /// `--dry-run`: what would be done, nothing changed.
    DryRun,
    /// The new dataset is not filled yet (the run's outcome says why); reports still show the old
    /// one, and the next `dataset migrate` continues.
    Incomplete(String),
    /// Filled, and every report that can be rebound was.
    Done,
}

#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub outcome: MigrateOutcome,
    pub dataset_name: String,
    pub old_dataset_id: String,
    pub new_dataset_id: Option<String>,
    /// A migration stopped earlier was continued.
    pub resumed: bool,
    pub tables: Vec<MigratedTable>,
    /// Tables of the old dataset no configured stream feeds (not in the new dataset).
    pub dropped_tables: Vec<String>,
    /// The run that filled the new dataset.
    pub run: Option<RunReport>,
    /// Reports bound to the old dataset: to rebind (dry run), or rebound.
    pub reports: Vec<Report>,
    /// Reports that could not be rebound, with why.
    pub not_rebound: Vec<(Report, String)>,
    pub tiles: Vec<StrandedTile>,
}

/// Migrates the connection's dataset (see the module docs); `opts` gives the cancel token and the
/// worker id of the run that fills the new dataset.
pub async fn migrate(
    conn: &Connection,
    opts: &RunOptions,
    dry_run: bool,
    events: &Events,
) -> Result<MigrateReport, PipelineError> {
    let name = conn.config.name.as_str();
    let push = PushDataset::of(conn.destination.as_ref(), name, "dataset migrate")?;
    let client = &push.client;
    let group = client
        .find_workspace(&conn.config.powerbi.workspace)
        .await?;
    let state = conn.store.dataset(name).await?.ok_or_else(|| {
        PipelineError::Other(format!(
            "connection {name} has no dataset yet, so there is nothing to migrate: the next `ml-connector sync` creates one with every configured table"
        ))
    })?;
    let under_way = conn
        .store
        .dataset_migration(name)
        .await?
        .filter(|m| m.group_id == group.id);
    let from = under_way
        .as_ref()
        .map_or(state.dataset_id.clone(), |m| m.from_dataset_id.clone());
    let old_tables: Vec<String> = match client.list_tables(&group.id, &from).await {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        // The old dataset may be gone (deleted by hand); the migration does not need it.
        Err(e) if e.api().is_some_and(|a| a.status == 404) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let limits = push.pusher.limits();
    let mut tables = Vec::new();
    for s in &conn.config.streams {
        let rows = conn.store.mirror_count(name, &s.object).await?;
        tables.push(MigratedTable {
            table: s.table.clone(),
            mode: s.mode,
            rows,
            posts: RebuildCost::of(rows, limits).posts,
            in_old_dataset: old_tables.contains(&s.table),
        });
    }
    let dropped_tables: Vec<String> = old_tables
        .iter()
        .filter(|t| !conn.config.streams.iter().any(|s| &s.table == *t))
        .cloned()
        .collect();
    let mut report = MigrateReport {
        outcome: MigrateOutcome::NothingToDo,
        dataset_name: conn.config.powerbi.dataset.clone(),
        old_dataset_id: from.clone(),
        new_dataset_id: under_way.as_ref().and_then(|m| m.to_dataset_id.clone()),
        resumed: under_way.is_some(),
        tables,
        dropped_tables,
        run: None,
        reports: Vec::new(),
        not_rebound: Vec::new(),
        tiles: Vec::new(),
    };
    if under_way.is_none()
        && report.tables.iter().all(|t| t.in_old_dataset)
        && report.dropped_tables.is_empty()
    {
        return Ok(report);
    }
    report.reports = bound_reports(client, &group.id, &from).await?;
    report.tiles = stranded_tiles(client, &group.id, &from).await?;
    if dry_run {
        report.outcome = MigrateOutcome::DryRun;
        return Ok(report);
    }
    if under_way.is_none() {
        conn.store
            .save_dataset_migration(
                name,
                Some(&DatasetMigration {
                    group_id: group.id.clone(),
                    from_dataset_id: from.clone(),
                    to_dataset_id: None,
                    started_at: conn.clock.now(),
                }),
            )
            .await?;
        tracing::info!(old = %from, "dataset migration started");
    }
    let run = conn
        .run(
            &RunOptions {
                trigger: "migrate".into(),
                streams: Vec::new(),
                full: false,
                ..opts.clone()
            },
            events,
        )
        .await?;
    let migration = conn.store.dataset_migration(name).await?;
    report.new_dataset_id = migration.as_ref().and_then(|m| m.to_dataset_id.clone());
    let status = run.status.clone();
    let why = incomplete_reason(&run);
    report.run = Some(run);
    let Some(new) = report.new_dataset_id.clone() else {
        report.outcome = MigrateOutcome::Incomplete(why);
        return Ok(report);
    };
    if status != RunStatus::Succeeded {
        report.outcome = MigrateOutcome::Incomplete(why);
        return Ok(report);
    }
    // Filled: the reports move to the new dataset now, not before (they would show it half empty).
    let mut rebound = Vec::new();
    for r in std::mem::take(&mut report.reports) {
        if r.report_type.as_deref() == Some("PaginatedReport") {
            report.not_rebound.push((
                r,
                "a paginated report: the Rebind API does not support them; change its data source in Power BI Report Builder".into(),
            ));
            continue;
        }
        match client.rebind_report(&group.id, &r.id, &new).await {
            Ok(_) => {
                tracing::info!(report = %r.name, id = %r.id, "report rebound to the new dataset");
                rebound.push(r);
            }
            Err(e) => report.not_rebound.push((r, e.to_string())),
        }
    }
    report.reports = rebound;
    let retry = report
        .not_rebound
        .iter()
        .any(|(r, _)| r.report_type.as_deref() != Some("PaginatedReport"));
    if retry {
        report.outcome = MigrateOutcome::Incomplete(
            "some reports could not be rebound (listed above); run `dataset migrate` again to retry them".into(),
        );
    } else {
        conn.store.save_dataset_migration(name, None).await?;
        report.outcome = MigrateOutcome::Done;
    }
    Ok(report)
}

/// The workspace's reports bound to `dataset`.
async fn bound_reports(
    client: &PowerBiClient,
    group: &str,
    dataset: &str,
) -> Result<Vec<Report>, PipelineError> {
    Ok(client
        .list_reports(group)
        .await?
        .into_iter()
        .filter(|r| {
            r.dataset_id
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(dataset))
        })
        .collect())
}

/// The tiles of the workspace's dashboards that show `dataset`.
async fn stranded_tiles(
    client: &PowerBiClient,
    group: &str,
    dataset: &str,
) -> Result<Vec<StrandedTile>, PipelineError> {
    let mut out = Vec::new();
    for d in client.list_dashboards(group).await? {
        for t in client.list_tiles(group, &d.id).await? {
            if t.dataset_id
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(dataset))
            {
                out.push(StrandedTile {
                    dashboard: d.display_name.clone(),
                    dashboard_id: d.id.clone(),
                    title: t.title.unwrap_or_default(),
                    tile_id: t.id,
                });
            }
        }
    }
    Ok(out)
}

/// Why the run did not fill the new dataset, in one line.
fn incomplete_reason(run: &RunReport) -> String {
    if let Some(e) = &run.setup_error {
        return e.clone();
    }
    let mut parts: Vec<String> = run
        .streams
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .or(s.postponed.as_ref())
                .map(|m| format!("{}: {m}", s.object))
        })
        .collect();
    if parts.is_empty() {
        parts.push(format!("the run was {}", run.status.as_str()));
    }
    parts.join("; ")
}
