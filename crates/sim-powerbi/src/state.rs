//! The simulated service's state: workspaces, datasets, tables and rows, issued tokens, counters.
//!
//! Rows are stored as the raw JSON text of each row object (`Box<str>`) in arrival order and parsed only when
//! read: one million rows of a typical finance table take ~150 MB this way instead of ~1 GB as `serde_json::Map`s.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::{PresetKind, Retention, SimClock, SimConfig, WorkspaceMember, WorkspaceRole};
use crate::faults::{FaultEngine, FaultKind, FaultPlan, Operation};
use crate::limits::{Pacing, Window};
use crate::stats::Stats;

/// Column data types, parsed case-insensitively from `dataType` (`bool` and `Datetime` included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataType {
    Int64,
    Double,
    Decimal,
    Boolean,
    DateTime,
    String,
}

impl DataType {
    pub(crate) fn parse(s: &str) -> Option<DataType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "int64" => DataType::Int64,
            "double" => DataType::Double,
            "decimal" => DataType::Decimal,
            "boolean" | "bool" => DataType::Boolean,
            "datetime" => DataType::DateTime,
            "string" => DataType::String,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ColumnDef {
    pub(crate) name: String,
    pub(crate) data_type: DataType,
    /// The column object as the client sent it (echoed by GET tables).
    pub(crate) raw: Value,
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) columns: Arc<Vec<ColumnDef>>,
    /// The table object as sent, minus rows (echoed by GET tables).
    pub(crate) raw: Value,
    pub(crate) rows: VecDeque<Box<str>>,
}

impl Table {
    pub(crate) fn parse_rows(&self) -> Vec<Map<String, Value>> {
        self.rows
            .iter()
            .map(|r| serde_json::from_str(r).unwrap_or_default())
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DatasetKind {
    Push {
        retention: Retention,
        push_streaming: bool,
    },
    Import,
}

#[derive(Debug)]
pub(crate) struct Dataset {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: DatasetKind,
    pub(crate) created: DateTime<Utc>,
    pub(crate) configured_by: String,
    pub(crate) tables: Vec<Table>,
    pub(crate) pacing: Pacing,
}

impl Dataset {
    pub(crate) fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
    pub(crate) fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables.iter_mut().find(|t| t.name == name)
    }
    /// DAX resolves table names case-insensitively.
    pub(crate) fn table_ci(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// A report of a workspace, bound to one dataset. Reports are made in Power BI Desktop or the
/// portal, never through the push API, so only tests seed them ([`crate::Simulator::add_report`]).
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) dataset_id: String,
    /// Rebind refuses paginated reports (the Rebind page's "Limitations").
    pub(crate) paginated: bool,
}

/// A dashboard and its tiles (seeded by tests, as reports are).
#[derive(Clone, Debug)]
pub(crate) struct Dashboard {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) tiles: Vec<Tile>,
}

/// A tile pinned from a report (or a dataset, e.g. Q&A); the API can list it but not rebind it.
#[derive(Clone, Debug)]
pub(crate) struct Tile {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) report_id: Option<String>,
    pub(crate) dataset_id: String,
}

#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) tenant_id: String,
    pub(crate) members: Vec<WorkspaceMember>,
    pub(crate) datasets: Vec<Dataset>,
    pub(crate) reports: Vec<Report>,
    pub(crate) dashboards: Vec<Dashboard>,
}

impl Workspace {
    pub(crate) fn role_of(&self, client_id: &str) -> Option<WorkspaceRole> {
        self.members
            .iter()
            .find(|m| m.client_id.eq_ignore_ascii_case(client_id))
            .map(|m| m.role)
    }
    pub(crate) fn dataset_mut(&mut self, id: &str) -> Option<&mut Dataset> {
        self.datasets
            .iter_mut()
            .find(|d| d.id.eq_ignore_ascii_case(id))
    }
    /// By id, else by (first) name: for the admin/test accessors.
    pub(crate) fn dataset_by_name_or_id_mut(&mut self, key: &str) -> Option<&mut Dataset> {
        let pos = self
            .datasets
            .iter()
            .position(|d| d.id.eq_ignore_ascii_case(key))
            .or_else(|| self.datasets.iter().position(|d| d.name == key))?;
        self.datasets.get_mut(pos)
    }
}

#[derive(Debug, Default)]
pub(crate) struct World {
    pub(crate) workspaces: Vec<Workspace>,
}

impl World {
    pub(crate) fn workspace_mut(&mut self, id: &str) -> Option<&mut Workspace> {
        self.workspaces
            .iter_mut()
            .find(|w| w.id.eq_ignore_ascii_case(id))
    }
    pub(crate) fn workspace_by_name_or_id_mut(&mut self, key: &str) -> Option<&mut Workspace> {
        let pos = self
            .workspaces
            .iter()
            .position(|w| w.id.eq_ignore_ascii_case(key))
            .or_else(|| self.workspaces.iter().position(|w| w.name == key))?;
        self.workspaces.get_mut(pos)
    }
}

/// An issued access token.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) expires: Instant,
}

/// Everything the handlers share. Locks are std Mutexes held for short, non-async sections; `stats` is a leaf
/// lock (nothing else is taken while it is held), `world` may be held while taking `stats`.
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) clock: SimClock,
    pub(crate) world: Mutex<World>,
    pub(crate) tokens: Mutex<HashMap<String, IssuedToken>>,
    pub(crate) faults: Mutex<FaultEngine>,
    pub(crate) stats: Mutex<Stats>,
    /// executeQueries per principal, for the 120 queries/minute/user limit.
    pub(crate) query_windows: Mutex<HashMap<String, Window>>,
    /// While true, POST rows requests wait after being counted in flight (tests use it to fill the
    /// in-flight budget without timing).
    pub(crate) hold_posts: tokio::sync::watch::Sender<bool>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one handler must not wedge the whole simulator.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(cfg: SimConfig) -> Shared {
        let clock = cfg.clock.clone();
        let now = clock.wall();
        let mut world = World::default();
        for ws in &cfg.workspaces {
            let mut datasets = Vec::new();
            for p in &ws.datasets {
                let kind = match p.kind {
                    PresetKind::Push(retention) => DatasetKind::Push {
                        retention,
                        push_streaming: false,
                    },
                    PresetKind::Import => DatasetKind::Import,
                };
                let tables = p
                    .tables
                    .iter()
                    .map(|t| {
                        let columns: Vec<ColumnDef> = t
                            .columns
                            .iter()
                            .map(|(name, ty)| ColumnDef {
                                name: name.clone(),
                                data_type: DataType::parse(ty).unwrap_or(DataType::String),
                                raw: serde_json::json!({"name": name, "dataType": ty}),
                            })
                            .collect();
                        let raw = serde_json::json!({
                            "name": t.name,
                            "columns": columns.iter().map(|c| c.raw.clone()).collect::<Vec<_>>(),
                        });
                        Table {
                            name: t.name.clone(),
                            columns: Arc::new(columns),
                            raw,
                            rows: VecDeque::new(),
                        }
                    })
                    .collect();
                datasets.push(Dataset {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    kind,
                    created: now,
                    configured_by: "preset@sim.invalid".to_owned(),
                    tables,
                    pacing: Pacing::default(),
                });
            }
            world.workspaces.push(Workspace {
                id: ws.id.clone(),
                name: ws.name.clone(),
                tenant_id: ws.tenant_id.clone(),
                members: ws.members.clone(),
                datasets,
                reports: Vec::new(),
                dashboards: Vec::new(),
            });
        }
        let faults = FaultEngine::new(cfg.faults.clone(), cfg.seed);
        Shared {
            clock,
            world: Mutex::new(world),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            query_windows: Mutex::new(HashMap::new()),
            hold_posts: tokio::sync::watch::channel(false).0,
            cfg,
        }
    }

    pub(crate) fn set_faults(&self, plan: FaultPlan) {
        *lock(&self.faults) = FaultEngine::new(plan, self.cfg.seed);
    }

    /// Counts a request of `op` and asks the fault plan about it.
    pub(crate) fn begin(&self, op: Operation) -> Option<FaultKind> {
        *lock(&self.stats)
            .requests_by_operation
            .entry(op.name().to_owned())
            .or_insert(0) += 1;
        let fault = lock(&self.faults).next(op);
        if let Some(f) = &fault {
            let name = match f {
                FaultKind::Status { .. } => "status",
                FaultKind::Throttle { .. } => "throttle",
                FaultKind::ResetBeforeApply => "reset_before_apply",
                FaultKind::ResetAfterApply => "reset_after_apply",
                FaultKind::Delay { .. } => "delay",
            };
            *lock(&self.stats)
                .faults_injected
                .entry(name.to_owned())
                .or_insert(0) += 1;
        }
        fault
    }

    pub(crate) fn count_429(&self, reason: &str) {
        let mut s = lock(&self.stats);
        s.throttled_429 += 1;
        *s.throttled_by_reason.entry(reason.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn count_token_error(&self, key: &str) {
        *lock(&self.stats)
            .token_errors
            .entry(key.to_owned())
            .or_insert(0) += 1;
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        let world = lock(&self.world);
        let mut stored = BTreeMap::new();
        for ws in &world.workspaces {
            for ds in &ws.datasets {
                for t in &ds.tables {
                    stored.insert(
                        format!("{}/{}/{}", ws.name, ds.name, t.name),
                        t.rows.len() as u64,
                    );
                }
            }
        }
        s.rows_stored = stored;
        s
    }

    /// Rows of a table; workspace and dataset by id or name, table by exact name.
    pub(crate) fn table_rows(
        &self,
        workspace: &str,
        dataset: &str,
        table: &str,
    ) -> Option<Vec<Map<String, Value>>> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        let ds = ws.dataset_by_name_or_id_mut(dataset)?;
        Some(ds.table(table)?.parse_rows())
    }

    /// Appends a row without any validation or limit (a row "already in Power BI" for `verify` tests).
    pub(crate) fn inject_row(
        &self,
        workspace: &str,
        dataset: &str,
        table: &str,
        row: Map<String, Value>,
    ) -> bool {
        let mut world = lock(&self.world);
        let Some(ws) = world.workspace_by_name_or_id_mut(workspace) else {
            return false;
        };
        let Some(ds) = ws.dataset_by_name_or_id_mut(dataset) else {
            return false;
        };
        let Some(t) = ds.table_mut(table) else {
            return false;
        };
        let text = Value::Object(row).to_string();
        t.rows.push_back(text.into_boxed_str());
        true
    }
}

impl Shared {
    pub(crate) fn in_flight(&self, dataset_id: &str) -> usize {
        let world = lock(&self.world);
        world
            .workspaces
            .iter()
            .flat_map(|w| w.datasets.iter())
            .find(|d| d.id.eq_ignore_ascii_case(dataset_id))
            .map_or(0, |d| d.pacing.in_flight)
    }
}

/// A report as a test sees it: which dataset it is bound to now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportInfo {
    pub id: String,
    pub name: String,
    pub dataset_id: String,
}

impl Shared {
    /// Seeds a report bound to `dataset` (id or name, which must exist); its id, or None.
    pub(crate) fn add_report(
        &self,
        workspace: &str,
        name: &str,
        dataset: &str,
        paginated: bool,
    ) -> Option<String> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        let dataset_id = ws.dataset_by_name_or_id_mut(dataset)?.id.clone();
        let id = uuid::Uuid::new_v4().to_string();
        ws.reports.push(Report {
            id: id.clone(),
            name: name.to_owned(),
            dataset_id,
            paginated,
        });
        Some(id)
    }

    pub(crate) fn reports(&self, workspace: &str) -> Option<Vec<ReportInfo>> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        Some(
            ws.reports
                .iter()
                .map(|r| ReportInfo {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    dataset_id: r.dataset_id.clone(),
                })
                .collect(),
        )
    }

    /// Seeds an empty dashboard; its id, or None when the workspace is unknown.
    pub(crate) fn add_dashboard(&self, workspace: &str, name: &str) -> Option<String> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        let id = uuid::Uuid::new_v4().to_string();
        ws.dashboards.push(Dashboard {
            id: id.clone(),
            name: name.to_owned(),
            tiles: Vec::new(),
        });
        Some(id)
    }

    /// Pins a tile showing `dataset` (id or name) on a dashboard (by id), optionally from a
    /// report (by id); the tile's id, or None when any is unknown.
    pub(crate) fn add_tile(
        &self,
        workspace: &str,
        dashboard: &str,
        title: &str,
        dataset: &str,
        report: Option<&str>,
    ) -> Option<String> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        let dataset_id = ws.dataset_by_name_or_id_mut(dataset)?.id.clone();
        if let Some(r) = report
            && !ws.reports.iter().any(|x| x.id == r)
        {
            return None;
        }
        let d = ws.dashboards.iter_mut().find(|d| d.id == dashboard)?;
        let id = uuid::Uuid::new_v4().to_string();
        d.tiles.push(Tile {
            id: id.clone(),
            title: title.to_owned(),
            report_id: report.map(str::to_owned),
            dataset_id,
        });
        Some(id)
    }
}

/// What a test may want to know about a dataset without going through the REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    pub id: String,
    pub name: String,
    /// `None` for an import dataset (not a push dataset).
    pub retention: Option<Retention>,
    pub push_streaming: bool,
    /// Table names with their column names and data types as sent.
    pub tables: Vec<(String, Vec<(String, String)>)>,
}

impl Shared {
    pub(crate) fn table_row_count(
        &self,
        workspace: &str,
        dataset: &str,
        table: &str,
    ) -> Option<usize> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        let ds = ws.dataset_by_name_or_id_mut(dataset)?;
        Some(ds.table(table)?.rows.len())
    }

    pub(crate) fn datasets(&self, workspace: &str) -> Option<Vec<DatasetInfo>> {
        let mut world = lock(&self.world);
        let ws = world.workspace_by_name_or_id_mut(workspace)?;
        Some(
            ws.datasets
                .iter()
                .map(|d| {
                    let (retention, push_streaming) = match d.kind {
                        DatasetKind::Push {
                            retention,
                            push_streaming,
                        } => (Some(retention), push_streaming),
                        DatasetKind::Import => (None, false),
                    };
                    DatasetInfo {
                        id: d.id.clone(),
                        name: d.name.clone(),
                        retention,
                        push_streaming,
                        tables: d
                            .tables
                            .iter()
                            .map(|t| {
                                let cols = t
                                    .columns
                                    .iter()
                                    .map(|c| {
                                        let ty = c
                                            .raw
                                            .get("dataType")
                                            .and_then(Value::as_str)
                                            .unwrap_or("");
                                        (c.name.clone(), ty.to_owned())
                                    })
                                    .collect();
                                (t.name.clone(), cols)
                            })
                            .collect(),
                    }
                })
                .collect(),
        )
    }

    pub(crate) fn expire_tokens(&self) {
        let now = self.clock.now();
        for t in lock(&self.tokens).values_mut() {
            t.expires = now;
        }
    }
}
