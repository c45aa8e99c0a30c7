//! The shared state of one simulator: the company's store, the simulated clock, sessions, readByQuery
//! result sets kept for readMore, the fault plan and the counters. Its own module so that the gateway
//! handlers, the admin endpoints and the router all depend on it, and not on each other.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, RwLock};

use serde::Serialize;

use crate::clock::{SimClock, fmt_ts};
use crate::config::SimConfig;
use crate::data::{Generator, Store, object_def};
use crate::faults::{FaultPlan, FaultState};

/// Counters the tests and `GET /stats` read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Gateway functions executed, by function name (readByQuery, query, getAPISession, ...).
    pub requests_by_function: BTreeMap<String, u64>,
    /// HTTP requests to the gateway URL (including ones answered 429 or with a fault).
    pub http_requests: u64,
    /// getAPISession calls plus requests authenticated with `<login>`.
    pub logins: u64,
    /// Most gateway requests in progress at once.
    pub peak_concurrency: usize,
    /// Gateway requests in progress now.
    pub in_flight: usize,
    /// Requests answered HTTP 429 GW-0010 because the concurrency cap was reached.
    pub rejected_429: u64,
    /// Faults injected by the fault plan.
    pub faults_injected: u64,
    /// Records returned in result data.
    pub records_returned: u64,
}

/// A session created by getAPISession.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub company_id: String,
    pub location_id: String,
    pub expires: chrono::NaiveDateTime,
}

/// A readByQuery result kept for readMore.
#[derive(Clone, Debug)]
pub struct ResultSet {
    pub object: &'static crate::data::ObjectDef,
    pub keys: Vec<u64>,
    pub next: usize,
    pub fields: Vec<usize>,
    pub page_size: usize,
}

/// Shared state of one simulator.
pub struct State {
    pub cfg: SimConfig,
    pub clock: SimClock,
    pub endpoint: String,
    // std locks: never held across an await; the store lock is a RwLock because reads dominate.
    pub store: RwLock<Store>,
    pub sessions: Mutex<HashMap<String, Session>>,
    pub results: Mutex<(HashMap<String, ResultSet>, VecDeque<String>)>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<Stats>,
    pub in_flight: Mutex<HashMap<String, usize>>,
    pub counter: std::sync::atomic::AtomicU64,
}

impl State {
    pub fn new(cfg: SimConfig, endpoint: String) -> Self {
        let generator = Generator {
            seed: cfg.seed,
            size: cfg.size.clone(),
            start: cfg.clock_start,
            user_id: cfg.user_id.clone(),
        };
        State {
            clock: SimClock::new(
                cfg.clock_start,
                cfg.utc_offset_minutes,
                cfg.clock_follows_real_time,
            ),
            store: RwLock::new(Store::new(generator)),
            cfg,
            endpoint,
            sessions: Mutex::new(HashMap::new()),
            results: Mutex::new((HashMap::new(), VecDeque::new())),
            faults: Mutex::new(FaultState::default()),
            stats: Mutex::new(Stats::default()),
            in_flight: Mutex::new(HashMap::new()),
            counter: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub fn insert(
        &self,
        object: &str,
        fields: BTreeMap<String, String>,
        never_modified: bool,
    ) -> u64 {
        let Some(def) = object_def(object) else {
            return 0;
        };
        let now = self.clock.now();
        self.store
            .write()
            .expect("store lock")
            .insert(def, &fields, now, never_modified)
    }

    pub fn update(&self, object: &str, recordno: u64, fields: BTreeMap<String, String>) -> bool {
        let Some(def) = object_def(object) else {
            return false;
        };
        let now = self.clock.now();
        self.store
            .write()
            .expect("store lock")
            .update(def, recordno, &fields, now)
    }

    pub fn delete(&self, object: &str, recordno: u64) -> bool {
        let Some(def) = object_def(object) else {
            return false;
        };
        let now = self.clock.now();
        let mut store = self.store.write().expect("store lock");
        // AUDITHISTORY names the record by its unique name field where it has one (VENDORID,
        // CUSTOMERID, ...), else as `RECORDNO--REC` (`ObjectDef::audit_key_field` gives the source).
        let object_key = match def.audit_key_field() {
            Some(field) => {
                let Some(record) = store.get(def, recordno) else {
                    return false;
                };
                let i = def.field_index(field).expect("audit key field defined");
                record.text(i).to_string()
            }
            None => format!("{recordno}--REC"),
        };
        let Some(name) = store.delete(def, recordno) else {
            return false;
        };
        if let Some(audit) = object_def("AUDITHISTORY")
            && def.kind != audit.kind
        {
            let mut ev = BTreeMap::new();
            ev.insert("OBJECTTYPE".to_string(), def.name.to_ascii_lowercase());
            ev.insert("OBJECTKEY".to_string(), object_key);
            ev.insert("OBJECTDESC".to_string(), name);
            ev.insert("USERID".to_string(), self.cfg.user_id.clone());
            ev.insert("ACCESSMODE".to_string(), "D".to_string());
            ev.insert("ACCESSTIME".to_string(), fmt_ts(now));
            ev.insert("SOURCE".to_string(), "api".to_string());
            store.insert(audit, &ev, now, false);
        }
        true
    }

    /// Deletes a record (with its AUDITHISTORY event) and inserts the same values under a new RECORDNO,
    /// as Intacct does to an AP bill whose Purchasing source document was edited.
    pub fn recreate(&self, object: &str, recordno: u64) -> Option<u64> {
        let def = object_def(object)?;
        let mut fields = {
            let store = self.store.read().expect("store lock");
            store.get(def, recordno)?.to_map()
        };
        if !self.delete(object, recordno) {
            return None;
        }
        fields.remove(def.key_field);
        fields.remove("WHENMODIFIED");
        if def.field_index("MODULEKEY").is_some() {
            fields.insert("MODULEKEY".into(), "9.PO".into());
        }
        Some(self.insert(object, fields, false))
    }

    pub fn records(&self, object: &str) -> Vec<BTreeMap<String, String>> {
        let Some(def) = object_def(object) else {
            return Vec::new();
        };
        let store = self.store.read().expect("store lock");
        let mut out = Vec::new();
        store.scan(def, |r| out.push(r.to_map()));
        out
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        *self.faults.lock().expect("faults lock") = FaultState::new(plan);
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().expect("stats lock").clone()
    }

    pub fn with_stats(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().expect("stats lock"))
    }
}
