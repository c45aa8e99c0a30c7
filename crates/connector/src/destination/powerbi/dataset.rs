//! Finding or creating the push dataset and keeping its tables in line with the streams' plans.
//!
//! The dataset id is persisted after creation: names are not unique in Power BI, so looking up by name
//! every run could pick another dataset of the same name. A dataset someone else defined is adopted, its
//! tables are checked against the column mappings, and its schema is never altered unless the stream's
//! `manage_schema` allows it.
//!
//! A push dataset cannot gain a table: a configured stream whose table the dataset lacks is tried
//! with PUT table (the documented call), and when Power BI refuses it (404 `ItemNotFound`, as users
//! reported) the run stops with the fix, `ml-connector dataset migrate` ([`super::migrate`]). A
//! migration under way (recorded in the store) makes this create the new dataset, once. A table no
//! stream feeds any more is left in the dataset, said once; a changed `dataset` name in the
//! configuration is honoured: the dataset of that name is adopted or created, and filled.

use ml_powerbi::Retention;
use ml_powerbi::schema::{DatasetSchema, TableSchema};
use ml_store::{DatasetMigration, DatasetState};
use sha2::{Digest, Sha256};

use ml_powerbi::PowerBiClient;

use super::target::{Target, mark_dirty};
use crate::config::{self, SchemaDrift};
use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;
use crate::pipeline::plan::StreamPlan;

fn schema_hash(schema: &DatasetSchema) -> String {
    let json = serde_json::to_string(schema).unwrap_or_default();
    hex::encode(Sha256::digest(json.as_bytes()))
}

pub async fn ensure(
    conn: &Context,
    client: &PowerBiClient,
    plans: &[&StreamPlan],
) -> Result<Target, PipelineError> {
    let cfg = &conn.config.powerbi;
    let name = conn.config.name.as_str();
    let group = client.find_workspace(&cfg.workspace).await?;
    let wanted = DatasetSchema {
        name: cfg.dataset.clone(),
        tables: plans.iter().map(|p| p.table_schema()).collect(),
        relationships: Vec::new(),
    };
    ml_powerbi::schema::validate_dataset(&wanted)
        .map_err(|e| PipelineError::Other(e.to_string()))?;

    let datasets = client.list_datasets(&group.id).await?;
    let stored = conn.store.dataset(name).await?;
    let recorded: Option<DatasetSchema> = stored
        .as_ref()
        .and_then(|s| serde_json::from_str(&s.schema_json).ok());
    // 0. `dataset migrate` asked for a new dataset that does not exist yet.
    if let Some(m) = conn.store.dataset_migration(name).await?
        && m.group_id == group.id
        && m.to_dataset_id.is_none()
    {
        let wanted = keep_unplanned_tables(conn, wanted, recorded.as_ref());
        return create_for_migration(conn, client, &group.id, &datasets, m, &wanted).await;
    }
    // A `dataset` renamed in the configuration is honoured: the dataset of the new name is adopted
    // or created below (and filled), and the old one is left as it is.
    let renamed = recorded
        .as_ref()
        .is_some_and(|r| !r.name.is_empty() && r.name != cfg.dataset);
    if renamed {
        tracing::info!(
            from = %recorded.as_ref().map(|r| r.name.as_str()).unwrap_or_default(),
            to = %cfg.dataset,
            "the configuration names another dataset: delivering to {:?} from now on (adopted if the workspace has a push dataset of that name, created and filled otherwise); the old dataset is left as it is",
            cfg.dataset
        );
    }
    // 1. The dataset we created or adopted before, if it still exists.
    if let Some(state) = stored.filter(|s| s.group_id == group.id && !renamed)
        && datasets.iter().any(|d| d.id == state.dataset_id)
    {
        let previous = recorded;
        reconcile_tables(
            conn,
            client,
            &group.id,
            &state.dataset_id,
            plans,
            previous.as_ref(),
        )
        .await?;
        // A run of some streams only (`sync --stream`) keeps the tables of the others in the
        // recorded schema: the dataset still has them, and `verify` still checks them.
        let wanted = keep_unplanned_tables(conn, wanted, previous.as_ref());
        // Said once: the recorded schema keeps configured tables only, so the next run has
        // nothing to say.
        for gone in previous
            .iter()
            .flat_map(|p| &p.tables)
            .filter(|t| !wanted.tables.iter().any(|w| w.name == t.name))
        {
            tracing::warn!(
                table = %gone.name,
                "table {} is in the dataset but no configured stream feeds it any more: it is left as it is, with its rows (`ml-connector dataset migrate` makes a dataset of the configured tables only)",
                gone.name
            );
        }
        if state.schema_hash != schema_hash(&wanted) {
            save(conn, &group.id, &state.dataset_id, &wanted).await?;
        }
        return Ok(Target {
            group_id: group.id,
            dataset_id: state.dataset_id,
            recreated: false,
        });
    }
    // 2. A push dataset of that name made by someone else (or by us before the state was lost): adopt it.
    if let Some(existing) = datasets.iter().find(|d| d.name == cfg.dataset) {
        if existing.add_rows_api_enabled == Some(false) {
            return Err(PipelineError::Other(format!(
                "dataset {:?} in workspace {:?} is not a push dataset (it was published from Power BI Desktop or another tool), so rows cannot be pushed to it. Choose another `dataset` name in the configuration; the connector will create a push dataset with that name",
                cfg.dataset, cfg.workspace
            )));
        }
        reconcile_tables(conn, client, &group.id, &existing.id, plans, None).await?;
        save(conn, &group.id, &existing.id, &wanted).await?;
        return Ok(Target {
            group_id: group.id,
            dataset_id: existing.id.clone(),
            recreated: true,
        });
    }
    // 3. Create it (with the recorded tables of streams this run did not plan: a renamed dataset
    // gets every configured table).
    let wanted = keep_unplanned_tables(conn, wanted, recorded.as_ref());
    let created = client
        .create_push_dataset(&group.id, &wanted, retention(conn))
        .await?;
    save(conn, &group.id, &created.id, &wanted).await?;
    mark_all_dirty(conn, "the dataset was created").await?;
    Ok(Target {
        group_id: group.id,
        dataset_id: created.id,
        recreated: true,
    })
}

fn retention(conn: &Context) -> Retention {
    match conn.config.powerbi.retention {
        config::Retention::None => Retention::None,
        config::Retention::BasicFifo => Retention::BasicFifo,
    }
}

/// A new dataset is empty: every configured stream's table (planned in this run or not) is rebuilt
/// from the mirror.
async fn mark_all_dirty(conn: &Context, why: &str) -> Result<(), PipelineError> {
    for s in &conn.config.streams {
        mark_dirty(conn, &s.object, why).await?;
    }
    Ok(())
}

/// Creates the new dataset of a `dataset migrate` with every configured table, and records it in
/// the migration before anything else, so a migration stopped from here on continues with it.
async fn create_for_migration(
    conn: &Context,
    client: &PowerBiClient,
    group: &str,
    datasets: &[ml_powerbi::Dataset],
    mut migration: DatasetMigration,
    wanted: &DatasetSchema,
) -> Result<Target, PipelineError> {
    let missing: Vec<&str> = conn
        .config
        .streams
        .iter()
        .filter(|s| !wanted.tables.iter().any(|t| t.name == s.table))
        .map(|s| s.object.as_str())
        .collect();
    if !missing.is_empty() {
        // A dataset cannot gain a table later: it is created only with all of them.
        return Err(PipelineError::Other(format!(
            "the new dataset is not created yet: stream(s) {} could not be planned in this run (see their errors), and the new dataset must have every configured table; run `ml-connector dataset migrate --connection {}` again",
            missing.join(", "),
            conn.config.name
        )));
    }
    // Killed between Power BI's answer and the record below, a migration left a dataset of this
    // name created since it started: that one is the new dataset, not a reason for another.
    let orphan = datasets.iter().find(|d| {
        d.name == wanted.name
            && d.id != migration.from_dataset_id
            && d.add_rows_api_enabled != Some(false)
            && d.created_date
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .is_some_and(|c| c >= migration.started_at)
    });
    let id = match orphan {
        Some(d) => {
            tracing::info!(dataset = %d.id, "continuing the migration with the dataset it created before it stopped");
            d.id.clone()
        }
        None => {
            client
                .create_push_dataset(group, wanted, retention(conn))
                .await?
                .id
        }
    };
    migration.to_dataset_id = Some(id.clone());
    conn.store
        .save_dataset_migration(&conn.config.name, Some(&migration))
        .await?;
    save(conn, group, &id, wanted).await?;
    mark_all_dirty(conn, "the dataset migration created a new dataset").await?;
    tracing::info!(
        from = %migration.from_dataset_id,
        to = %id,
        tables = wanted.tables.len(),
        "created the new dataset {:?} with every configured table; filling it from the local copy",
        wanted.name
    );
    Ok(Target {
        group_id: group.to_string(),
        dataset_id: id,
        recreated: true,
    })
}

/// `wanted` plus the recorded tables of configured streams this run did not plan, in the
/// configuration's order.
fn keep_unplanned_tables(
    conn: &Context,
    mut wanted: DatasetSchema,
    previous: Option<&DatasetSchema>,
) -> DatasetSchema {
    let Some(previous) = previous else {
        return wanted;
    };
    for stream in &conn.config.streams {
        let planned = wanted.tables.iter().any(|t| t.name == stream.table);
        if let Some(t) = previous.tables.iter().find(|t| t.name == stream.table)
            && !planned
        {
            wanted.tables.push(t.clone());
        }
    }
    let order = |name: &str| {
        conn.config
            .streams
            .iter()
            .position(|s| s.table == name)
            .unwrap_or(usize::MAX)
    };
    wanted.tables.sort_by_key(|t| order(&t.name));
    wanted
}

async fn save(
    conn: &Context,
    group: &str,
    dataset: &str,
    schema: &DatasetSchema,
) -> Result<(), PipelineError> {
    conn.store
        .save_dataset(
            &conn.config.name,
            &DatasetState {
                group_id: group.to_string(),
                dataset_id: dataset.to_string(),
                schema_json: serde_json::to_string(schema).unwrap_or_default(),
                schema_hash: schema_hash(schema),
            },
        )
        .await?;
    Ok(())
}

/// Brings existing tables in line with the plans: new columns are added (PUT table) when the stream
/// allows schema changes, tables the dataset lacks are added, mappings onto foreign tables are checked.
async fn reconcile_tables(
    conn: &Context,
    client: &PowerBiClient,
    group: &str,
    dataset: &str,
    plans: &[&StreamPlan],
    previous: Option<&DatasetSchema>,
) -> Result<(), PipelineError> {
    let existing = client.list_tables(group, dataset).await?;
    for plan in plans {
        let stream = conn
            .config
            .streams
            .iter()
            .find(|s| s.object == plan.object)
            .expect("a plan comes from a configured stream");
        let wanted = plan.table_schema();
        let known: Option<&TableSchema> =
            previous.and_then(|p| p.tables.iter().find(|t| t.name == plan.table));
        let present = existing.iter().any(|t| t.name == plan.table);
        if !stream.column_map.is_empty() {
            // The user's own table: check the mapping against its columns as Power BI lists them (or as
            // we recorded them when the listing has no columns), before anything is pushed.
            let listed = existing
                .iter()
                .find(|t| t.name == plan.table)
                .filter(|t| !t.columns.is_empty());
            if let Some(t) = listed {
                let as_schema = TableSchema::new(
                    t.name.clone(),
                    t.columns
                        .iter()
                        .map(|c| {
                            ml_powerbi::schema::Column::new(
                                c.name.clone(),
                                ml_powerbi::schema::DataType::parse(&c.data_type)
                                    .unwrap_or(ml_powerbi::schema::DataType::String),
                            )
                        })
                        .collect(),
                );
                plan.check_against_existing(&as_schema)?;
            } else if let Some(k) = known {
                plan.check_against_existing(k)?;
            }
            if present && !stream.manage_schema {
                continue;
            }
        }
        let drift = match known {
            Some(k) => plan.new_columns(k),
            None => Vec::new(),
        };
        let needs_put = !present || !drift.is_empty() || known.is_some_and(|k| k != &wanted);
        if !needs_put {
            continue;
        }
        if present && !drift.is_empty() && stream.schema_drift == SchemaDrift::Block {
            return Err(PipelineError::Other(format!(
                "stream {}: Intacct now has field(s) {} that table {} lacks, and schema_drift = \"block\". Set schema_drift = \"add_column\" to add them, or list the fields you want in `fields`",
                plan.object,
                drift.join(", "),
                plan.table
            )));
        }
        if present && !stream.manage_schema {
            return Err(PipelineError::Other(format!(
                "stream {}: table {} differs from the plan ({}) but manage_schema = false forbids changing it",
                plan.object,
                plan.table,
                if drift.is_empty() {
                    "column types".to_string()
                } else {
                    drift.join(", ")
                }
            )));
        }
        if !present {
            // The documented call first; Power BI is reported to refuse a table a push dataset
            // does not have yet (404 ItemNotFound), and then only a new dataset can have it.
            if let Err(e) = client.put_table(group, dataset, &wanted).await {
                let refused = e.api().is_some_and(|a| {
                    a.status == 404 || a.kind == ml_powerbi::ApiErrorKind::ItemNotFound
                });
                if !refused {
                    return Err(e.into());
                }
                return Err(PipelineError::Other(format!(
                    "stream {}: the dataset {:?} has no table {} and Power BI does not add a table to an existing push dataset (PUT table answered: {e}). Run `ml-connector dataset migrate --connection {}`: it creates a new dataset with every configured table, fills it from the local copy, and rebinds the workspace's reports to it (the old dataset is kept). Or remove the stream from the configuration",
                    plan.object, conn.config.powerbi.dataset, plan.table, conn.config.name
                )));
            }
            tracing::info!(table = %plan.table, "Power BI added the table to the dataset");
            mark_dirty(conn, &plan.object, "its table was added").await?;
            conn.store
                .reset_cursor(&conn.config.name, &plan.object)
                .await?;
            continue;
        }
        // Rows stored under the old schema may not survive a change (reference §3.4): rebuild the table.
        mark_dirty(conn, &plan.object, "its schema changed").await?;
        // Rows in the mirror were built with the old columns: read the whole object again this run so
        // every row gets the new ones (unchanged records would otherwise not be re-read).
        conn.store
            .reset_cursor(&conn.config.name, &plan.object)
            .await?;
        client.put_table(group, dataset, &wanted).await?;
        if !drift.is_empty() {
            tracing::info!(table = %plan.table, columns = ?drift, "added columns for new Intacct fields");
        }
    }
    Ok(())
}
