//! ml-connector keeps Power BI fed with current Sage Intacct data: the product library. The
//! `ml-connector` binary (`crates/cli`) is a thin shell over it.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the TOML file (connections, streams, schedules), validated with file/line/key errors |
//! | [`catalogue`] | the Intacct objects we know, their default tables, keys and fields |
//! | [`app`] | opening what a command needs: config, store, master key, a connection's clients from its sealed credentials |
//! | [`pipeline`] | one run of a connection: plan → extract → transform → stage → deliver, crash-safe and resumable; replay and verify |
//! | [`destination`] | where rows go, behind one trait ([`destination::Destination`]); Power BI push datasets today |
//! | [`scheduler`] | cron in a time zone and catch-up; the run lease (one run of a connection at a time, across processes); the long-running service |
//! | [`status`] | read-only computed views for the console: a connection's health, next run, per table data as of and rows |
//!
//! The arrows go one way: `scheduler` → `pipeline` ← `destination`, both over `config`,
//! `catalogue` and the store. Time comes from one injected clock (`ml_clock`), set at the edge
//! ([`app::App`]). The remote APIs live in their own crates (`ml-intacct`, `ml-powerbi`), the
//! state in `ml-store`; the simulators (`ml-sim-intacct`, `ml-sim-powerbi`), which share no code
//! with the clients, are used only by the binary's demo and bench and by tests.

pub mod app;
pub mod catalogue;
pub mod config;
pub mod destination;
pub mod pipeline;
pub mod scheduler;
pub mod status;
