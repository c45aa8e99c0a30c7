//! The `ml-connector` command line: a thin shell over the `ml_connector` library (parse, call the
//! library, print, pick the exit code), plus the demo and the benchmark, which start the simulators.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`args`] | the command line's arguments (clap), every one with its help |
//! | [`commands`] | dispatch: open what a command needs, call the library, print, pick the exit code |
//! | [`exit`] | the documented exit codes |
//! | [`out`] | command output that ends quietly when its reader goes away (`| head`) |
//! | [`progress`] | progress bars on a terminal, fed by the run's events |
//! | [`demo`] | both simulators in-process and the whole job against them; `sim intacct`/`sim powerbi` |
//! | [`bench`] | the end-to-end benchmark against the simulators |
//!
//! This crate is the only product crate that depends on the simulators.

pub mod args;
pub mod bench;
pub mod commands;
pub mod demo;
pub mod exit;
pub mod out;
pub mod progress;

/// The whole command line: parse, log, run the command, exit with its code.
pub fn main() -> std::process::ExitCode {
    commands::main()
}
