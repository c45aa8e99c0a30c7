//! ml-connector keeps Power BI push datasets fed with current Sage Intacct data.
//!
//! # Layout
//!
//! - [`config`]: the TOML file (connections, streams, schedules), validated with file/line/key errors.
//! - [`catalogue`]: the Intacct objects we know, their default tables, keys and fields.
//! - [`transform`]: Intacct text values → typed Power BI values (pure).
//! - [`plan`]: a stream's table schema, from the catalogue, `lookup` and the user's column mapping.
//! - [`context`]: opens the store and builds the Intacct and Power BI clients from config + credentials.
//! - [`pipeline`]: one run of a connection: extract → transform → stage → load, crash-safe and resumable.
//! - [`replay`]: re-pushing what an earlier run pushed; [`verify`]: comparing Power BI with the mirror.
//! - [`lease`]: one run of a connection at a time, across processes (a lease row in the store).
//! - [`schedule`]: cron in a time zone, catch-up of a missed run, one run at a time per connection.
//! - [`service`]: the long-running `ml-connector run`.
//! - [`demo`]: both simulators in-process and the full job against them.
//! - [`bench`]: the end-to-end benchmark against the simulators.
//! - [`cli`]: the command line (a thin shell: parse, call the library, print).
//!
//! The remote APIs live in their own crates (`ml-intacct`, `ml-powerbi`), the state in `ml-store`, and the
//! simulators in `ml-sim-intacct` / `ml-sim-powerbi`, which share no code with the clients.

pub mod bench;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod lease;
pub mod pipeline;
pub mod plan;
pub mod replay;
pub mod schedule;
pub mod service;
pub mod transform;
pub mod verify;
