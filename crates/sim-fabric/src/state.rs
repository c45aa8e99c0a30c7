//! The simulator's shared state: configuration, issued tokens, uncommitted appends, the fault
//! plan, the replicator's tables and the counters.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::SimConfig;
use crate::faults::{FaultKind, FaultPlan, Faults, Operation};
use crate::tables::TableState;

/// Counters read by tests (also `GET /stats`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub tokens_issued: u64,
    /// Requests per operation name.
    pub requests: BTreeMap<String, u64>,
    /// Error answers per ADLS error code (injected faults included).
    pub errors: BTreeMap<String, u64>,
    /// Bytes committed by flushes.
    pub bytes_flushed: u64,
    pub renames: u64,
}

pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    /// token → expiry.
    tokens: Mutex<HashMap<String, Instant>>,
    /// path (relative to the root) → data appended but not flushed.
    pub(crate) uncommitted: Mutex<HashMap<String, Vec<u8>>>,
    faults: Mutex<Faults>,
    pub(crate) tables: Mutex<BTreeMap<String, TableState>>,
    stats: Mutex<Stats>,
    /// Serialises the replicator with itself (the HTTP handlers take `tables` only briefly).
    pub(crate) replicating: Mutex<()>,
}

/// Poisoning only means another request panicked; the data is still consistent enough for a simulator.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(cfg: SimConfig) -> Self {
        Shared {
            cfg,
            tokens: Mutex::new(HashMap::new()),
            uncommitted: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            tables: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(Stats::default()),
            replicating: Mutex::new(()),
        }
    }

    pub(crate) fn landing_zone_dir(&self) -> PathBuf {
        self.cfg
            .root
            .join(&self.cfg.workspace_id)
            .join(&self.cfg.mirrored_database_id)
            .join("Files")
            .join("LandingZone")
    }

    pub(crate) fn begin(&self, op: Operation) -> Option<FaultKind> {
        *lock(&self.stats)
            .requests
            .entry(op.name().to_string())
            .or_insert(0) += 1;
        lock(&self.faults).begin(op)
    }

    pub(crate) fn set_faults(&self, plan: FaultPlan) {
        lock(&self.faults).set(plan);
    }

    pub(crate) fn count_error(&self, code: &str) {
        *lock(&self.stats)
            .errors
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    pub(crate) fn count_flush(&self, bytes: u64) {
        lock(&self.stats).bytes_flushed += bytes;
    }

    pub(crate) fn count_rename(&self) {
        lock(&self.stats).renames += 1;
    }

    pub(crate) fn issue_token(&self) -> String {
        let token = format!("simfabric.{}", uuid::Uuid::new_v4().simple());
        lock(&self.tokens).insert(token.clone(), Instant::now() + self.cfg.token_lifetime);
        lock(&self.stats).tokens_issued += 1;
        token
    }

    /// `Some(true)`: valid; `Some(false)`: known but expired; `None`: unknown.
    pub(crate) fn check_token(&self, token: &str) -> Option<bool> {
        lock(&self.tokens)
            .get(token)
            .map(|exp| Instant::now() < *exp)
    }

    pub(crate) fn expire_tokens(&self) {
        let past = Instant::now() - Duration::from_secs(1);
        for exp in lock(&self.tokens).values_mut() {
            *exp = past;
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    pub(crate) fn table(&self, name: &str) -> Option<TableState> {
        lock(&self.tables).get(name).cloned()
    }

    pub(crate) fn table_names(&self) -> Vec<String> {
        lock(&self.tables).keys().cloned().collect()
    }
}
