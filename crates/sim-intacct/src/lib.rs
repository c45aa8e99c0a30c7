//! A faithful simulator of the Sage Intacct XML Web Services gateway (`/ia/xml/xmlgw.phtml`).
//!
//! It parses requests and writes answers with its own XML code (it must not share a codec with
//! `ml-intacct`, so a bug mirrored in the product's encoder and decoder cannot pass unnoticed), serves a
//! seeded, reproducible synthetic company, and can inject every failure the real gateway is known for.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ml_sim_intacct::{Fault, FaultPlan, SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::tiny()).await?; // 127.0.0.1:0
//! let gateway_url = sim.endpoint(); // http://127.0.0.1:PORT/ia/xml/xmlgw.phtml
//! let recordno = sim.insert("VENDOR", [("VENDORID".into(), "V9".into())].into());
//! sim.set_faults(FaultPlan::on_request(2, Fault::Http503Html)); // the 2nd request from now
//! sim.advance_clock(std::time::Duration::from_secs(3 * 3600)); // sessions expire, no sleeping
//! # let _ = (gateway_url, recordno);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`config`]: `SimConfig`, company size, credentials, latency knobs and the DEFAULT_* constants.
//! - [`clock`]: the simulated clock (WHENMODIFIED of writes, session expiry) and Intacct date formats.
//! - [`data`]: object definitions (fields, types, lookup metadata), the seeded generator (one module
//!   per object family) and the record store (generated rows are produced on demand from the seed;
//!   writes live in an overlay), and the ordered index of generated rows by (WHENMODIFIED, RECORDNO).
//! - [`xml_in`]: request parsing into a small element tree (DOCTYPE rejected) and envelope validation.
//! - [`xml_out`]: response documents: the three error placements, gateway errors, result data.
//! - [`query_eval`]: readByQuery query strings and `query` filter elements parsed into one filter tree,
//!   typed comparisons, ordering.
//! - [`select`]: the rows of a page and the total: a scan, or for the connector's keyset shapes a walk
//!   of an ordered index of the generated rows (counts without visiting them).
//! - [`functions`]: the request pipeline (`pipeline`: transport faults, gateway errors, concurrency
//!   slot, latency), schema checks of function bodies (`parse`), the execution of each operation
//!   (`execute`), sign-in and sessions (`session`) and the read functions (`reads`: one module per
//!   family: readByQuery/readMore, query, read/readByName, lookup/readUserFormatting, balances).
//! - [`faults`]: fault plans (by request number or seeded probability).
//! - [`state`]: the shared simulator state: store, clock, sessions, result sets, stats, fault plan.
//! - [`server`]: the axum router (gateway and admin endpoints on one server).
//! - [`admin`]: HTTP admin endpoints (`/admin/...`, `/stats`) used by `ml-connector sim intacct`.
//!
//! # Fidelity notes
//!
//! Where the reference marks a behaviour as unconfirmed, the simulator picks one and says so here:
//! readByQuery shows entity-private rows at the top level (query needs `showprivate`); an unknown
//! `resultId` fails with errorno "Invalid resultId"; a wrong sender password is a control failure
//! XL03000006 "Incorrect Intacct XML Partner ID or password."; the injected control error uses
//! XL03000010 with correction "Please Try Again Later", the off-line text XL03000008; GW-0010 comes
//! with HTTP 429 and no Retry-After; write functions (create/update/delete) are answered with a
//! function failure (the connector only reads).

pub mod admin;
pub mod clock;
pub mod config;
pub mod data;
pub mod faults;
pub mod functions;
pub mod query_eval;
pub mod select;
pub mod server;
pub mod state;
pub mod xml_in;
pub mod xml_out;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{
    CompanySize, DEFAULT_COMPANY_ID, DEFAULT_SENDER_ID, DEFAULT_SENDER_PASSWORD, DEFAULT_USER_ID,
    DEFAULT_USER_PASSWORD, GATEWAY_UNKNOWN_COMPANY_ID, Latency, SimConfig, UNAUTHORIZED_SENDER_ID,
    UNAUTHORIZED_SENDER_PASSWORD,
};
pub use faults::{Fault, FaultPlan, FaultRule, FaultTrigger};
pub use state::Stats;

/// A running simulator bound to a loopback port. Dropping it without [`Simulator::shutdown`] leaves the
/// server task running until the runtime ends.
pub struct Simulator {
    state: Arc<state::State>,
    addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(Self::start_on(listener, cfg).await)
    }

    /// Serves on an already-bound listener (the CLI binds the port the user asked for).
    pub async fn start_on(listener: tokio::net::TcpListener, cfg: SimConfig) -> Simulator {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        // A wildcard bind (0.0.0.0) is not an address clients can call: advertise loopback instead.
        let mut advertised = addr;
        if advertised.ip().is_unspecified() {
            advertised.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let endpoint = format!("http://{advertised}/ia/xml/xmlgw.phtml");
        let state = Arc::new(state::State::new(cfg, endpoint));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app = server::router(state.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "intacct simulator server stopped with an error");
            }
        });
        Simulator {
            state,
            addr,
            shutdown: tx,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/ia/xml/xmlgw.phtml`
    pub fn endpoint(&self) -> String {
        self.state.endpoint.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Inserts a record; RECORDNO is assigned, WHENCREATED/WHENMODIFIED set from the sim clock.
    /// Unknown field names are ignored; an unknown object inserts nothing and returns 0.
    pub fn insert(&self, object: &str, fields: BTreeMap<String, String>) -> u64 {
        self.state.insert(object, fields, false)
    }

    /// Inserts a record that was never modified since its creation: WHENMODIFIED empty, as
    /// Intacct leaves it on such records (reference §6.1), WHENCREATED (and AUDITWHENCREATED where
    /// the object has it) from the sim clock.
    pub fn insert_never_modified(&self, object: &str, fields: BTreeMap<String, String>) -> u64 {
        self.state.insert(object, fields, true)
    }

    /// Updates fields of a record and moves its WHENMODIFIED to the sim clock. False if not found.
    pub fn update(&self, object: &str, recordno: u64, fields: BTreeMap<String, String>) -> bool {
        self.state.update(object, recordno, fields)
    }

    /// Deletes a record and writes an AUDITHISTORY delete event. False if not found.
    pub fn delete(&self, object: &str, recordno: u64) -> bool {
        self.state.delete(object, recordno)
    }

    /// Deletes a record and re-inserts its values under a new RECORDNO (APBILL re-creation from
    /// Purchasing). Returns the new RECORDNO, or None if the record does not exist.
    pub fn recreate(&self, object: &str, recordno: u64) -> Option<u64> {
        self.state.recreate(object, recordno)
    }

    /// All current records of an object, every field, as Intacct renders them (RECORDNO order).
    pub fn records(&self, object: &str) -> Vec<BTreeMap<String, String>> {
        self.state.records(object)
    }

    /// Installs a fault plan; its request numbers count from now.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.state.set_faults(plan)
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Moves the simulated clock forward (session expiry, WHENMODIFIED of later writes).
    pub fn advance_clock(&self, d: Duration) {
        self.state.clock.advance(d)
    }

    /// Current simulated time as an Intacct timestamp (`MM/DD/YYYY HH:MM:SS`).
    pub fn now(&self) -> String {
        self.state.clock.now_ts()
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}
