//! A simulator of Fabric open mirroring: Microsoft Entra client credentials for the storage scope,
//! the OneLake (ADLS Gen2 DFS) subset a landing zone is written with, and a replicator that merges
//! the landing zone's change files into tables, as Fabric's mirroring does.
//!
//! It shares no code with the `ml-onelake` client: requests are parsed and answers built here, and
//! change files are read with the `parquet` crate's record API (the client writes them with its
//! column writers), so a bug mirrored in both cannot hide.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`faults`] | `FaultPlan`: which request of which operation fails, and how |
//! | `token` | `POST /{tenant}/oauth2/v2.0/token`: client credentials for `https://storage.azure.com/.default`, AADSTS error documents |
//! | `dfs` | the DFS subset: create, append, flush, rename, list, get properties, read, delete, with ADLS Gen2's error bodies |
//! | `replicator` | per table folder: `_metadata.json`, files in sequence, markers merged by key, type changes refused |
//! | `admin` | `/admin/faults`, `/admin/replicate`, `/admin/tables/...`, `/stats` |
//!
//! The landing zone is plain files under `root/<workspace id>/<mirrored database id>/Files/LandingZone/`,
//! so any Parquet reader can inspect what a client wrote. Replication runs when asked
//! ([`FabricSim::replicate_now`], `POST /admin/replicate`) — tests never wait on a timer — and, under
//! `ml-connector sim fabric`, every few seconds.
//!
//! # Choices where the real service is undocumented or unconfirmed
//!
//! - An append at a position other than the uncommitted end answers 400 `InvalidFlushPosition`
//!   (the documented list has no append-specific code).
//! - Processed data files stay where they are (Fabric moves them to `_ProcessedFiles` later).
//! - Marker 0 (insert) of a key the table holds replaces the row and is counted in
//!   `duplicate_inserts`; marker 1 (update) of a missing key inserts it and is counted in
//!   `updates_of_missing`: tests assert both stay 0.
//! - A table whose folder has data files but no `_metadata.json` waits (keyless tables are out of scope).

pub mod faults;

mod admin;
mod dfs;
mod replicator;
mod state;
mod tables;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultKind, FaultPlan, FaultRule, Operation};
pub use state::Stats;
pub use tables::{TableState, TableStatus};

use state::Shared;

pub const DEFAULT_TENANT_ID: &str = "7d0c3a52-6f3e-4b9a-9d0e-3c1f5a7b2e41";
pub const DEFAULT_CLIENT_ID: &str = "c1d8e2f4-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
pub const DEFAULT_CLIENT_SECRET: &str = "sim-fabric-secret~not-for-production";
pub const DEFAULT_WORKSPACE_ID: &str = "4b6e1f0a-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
pub const DEFAULT_MIRRORED_DATABASE_ID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// The scope a OneLake token is asked for.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// What the simulator serves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The landing zones live under here as plain files.
    pub root: PathBuf,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub workspace_id: String,
    pub mirrored_database_id: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// Whether the app may write to the workspace (false: every DFS call answers 403).
    pub can_write: bool,
}

impl SimConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SimConfig {
            root: root.into(),
            tenant_id: DEFAULT_TENANT_ID.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            workspace_id: DEFAULT_WORKSPACE_ID.into(),
            mirrored_database_id: DEFAULT_MIRRORED_DATABASE_ID.into(),
            token_lifetime: Duration::from_secs(3599),
            can_write: true,
        }
    }
}

/// A running simulator bound to a local port.
pub struct FabricSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FabricSim {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(cfg: SimConfig) -> std::io::Result<FabricSim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        FabricSim::start_on(listener, cfg).await
    }

    /// Serves on an already-bound listener (the CLI binds the user's `--port`).
    pub async fn start_on(listener: TcpListener, cfg: SimConfig) -> std::io::Result<FabricSim> {
        std::fs::create_dir_all(
            cfg.root
                .join(&cfg.workspace_id)
                .join(&cfg.mirrored_database_id)
                .join("Files")
                .join("LandingZone"),
        )?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg));
        let router = token::router(shared.clone())
            .merge(admin::router(shared.clone()))
            .merge(dfs::router(shared.clone()));
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await;
        });
        Ok(FabricSim {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the authority (token at `/{tenant}/oauth2/v2.0/token`) and the DFS host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The landing zone's URL, as the mirrored database's home page shows it.
    pub fn landing_zone_url(&self) -> String {
        let c = &self.shared.cfg;
        format!(
            "{}/{}/{}/Files/LandingZone",
            self.base_url(),
            c.workspace_id,
            c.mirrored_database_id
        )
    }

    /// The landing zone's folder on disk.
    pub fn landing_zone_dir(&self) -> PathBuf {
        self.shared.landing_zone_dir()
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Runs the replicator once over every table folder, synchronously.
    pub fn replicate_now(&self) {
        self.shared.replicate();
    }

    /// A mirrored table's state (`None`: the replicator has not seen the folder).
    pub fn table(&self, table: &str) -> Option<TableState> {
        self.shared.table(table)
    }

    /// Names of the tables the replicator knows.
    pub fn tables(&self) -> Vec<String> {
        self.shared.table_names()
    }

    /// Replaces the fault plan (request counters restart at 1).
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.set_faults(plan);
    }

    /// Makes every issued token expired now: the next DFS call gets 401.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FabricSim {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
