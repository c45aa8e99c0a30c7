//! `ml-connector bench`: the end-to-end benchmark against both simulators (see BENCHMARKS.md).
//!
//! The simulators run in this process; the connector runs in a child process (this same binary with
//! the hidden `--child` argument), so the CPU time and peak resident memory measured are the
//! connector's alone and not the simulators' (the Power BI simulator keeps every pushed row in memory).
//! The child reports stream boundaries on stdout as they happen; the parent reads the simulators'
//! request counters at those moments, which attributes every Intacct request to its stream.
//!
//! Three scenarios, each a full sync followed by an incremental one (after `--changes` updates):
//!
//! 1. **limits**: Intacct latency per request (`--latency`), its concurrency cap (`--concurrency`),
//!    Power BI limits enforced (`--limits on`), windows optionally compressed (`--time-scale`).
//! 2. **cost**: latency 0 and limits off, the child on one tokio worker thread: CPU seconds per
//!    100,000 records and records per CPU-second.
//! 3. **memory** (`--memory-at 100000,1000000`): the cost scenario at each size, peak RSS (VmHWM).
//! 4. **multi-object**: a company of nine objects of different sizes (bills, vendors, customers,
//!    payments, small dimensions, GL balances), the whole run timed against
//!    (logins + ⌈pages/concurrency⌉) × latency, requests beside pages.
//! 5. **no-change**: that company synced in full, then again with nothing changed: the second
//!    run's Intacct and Power BI requests and its wall time.
//!
//! `--scenario` picks some (`--scenario no-change`); without it, cost, limits and (with
//! `--memory-at`) memory run, as before.
//!
//! The parts: `scenario` sets up the simulators and the changes, `child` runs and measures the
//! connector in its own process, `measure` reads /proc, `report` prints the tables.

mod child;
mod measure;
mod report;
mod scenario;
mod whole;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use report::{cost_table, cpu, extracted, limits_table};
use scenario::scenario;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Records of each benchmarked object in the simulated company.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Objects to sync, comma separated (VENDOR, CUSTOMER, APBILL, APPYMT, GLENTRY, PROJECT, ...).
    #[arg(long, value_delimiter = ',', default_value = "VENDOR")]
    pub objects: Vec<String>,
    /// Latency the Intacct simulator adds to every request in the limits scenario.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Intacct's per-company concurrency (simulator cap and client setting).
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Power BI push limits in the limits scenario: on (enforced by the simulator, paced by the pusher) or off.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub limits: String,
    /// Divides Power BI's minute and hour windows (simulator and pusher alike) so a limit-bound push
    /// finishes in benchmark time; 1 = the real windows.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Records of each object updated in Intacct between the full and the incremental sync.
    #[arg(long, default_value_t = 100)]
    pub changes: u64,
    /// Stream mode of the benchmarked objects.
    #[arg(long, default_value = "replace", value_parser = ["replace", "append"])]
    pub mode: String,
    /// Skip the cost scenario (latency 0, limits off).
    #[arg(long)]
    pub skip_cost: bool,
    /// Skip the limits scenario.
    #[arg(long)]
    pub skip_limits: bool,
    /// Record counts at which to measure the connector's peak RSS (cost scenario each), e.g. 100000,1000000.
    #[arg(long, value_delimiter = ',')]
    pub memory_at: Vec<u64>,
    /// Scenarios to run, comma separated: limits, cost, memory, multi-object, no-change. Without it:
    /// cost and limits (less --skip-*), and memory when --memory-at is given.
    #[arg(long, value_delimiter = ',', value_parser = ["limits", "cost", "memory", "multi-object", "no-change"])]
    pub scenario: Vec<String>,
    /// Run the connector as before issue 19's savings, for a comparison on one build: every
    /// never-modified record and every GL period read each run, a login each run.
    #[arg(long)]
    pub baseline: bool,
    /// Internal: run the connector side against simulators started by a parent `bench`.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

// The records the parts hand each other. Defined here, in the parent of every part, so that each
// part reads their fields without the fields being opened wider than the benchmark.

/// What the parent tells the child (JSON in `--child`).
#[derive(Serialize, Deserialize, Debug, Clone)]
struct ChildSpec {
    intacct: String,
    powerbi: String,
    data_dir: PathBuf,
    objects: Vec<String>,
    concurrency: usize,
    mode: String,
    limits: bool,
    time_scale: f64,
    balances_through: Option<chrono::NaiveDate>,
    /// `--baseline`: no never-modified narrowing, every GL period each run, no kept session.
    #[serde(default)]
    baseline: bool,
}

/// What the child reports back (one `RESULT` line).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct ChildResult {
    status: String,
    wall: f64,
    cpu_user: f64,
    cpu_sys: f64,
    peak_rss_kb: u64,
    /// Size of the state store's files (database and WAL) once it is closed.
    #[serde(default)]
    store_bytes: u64,
    streams: Vec<ChildStream>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct ChildStream {
    object: String,
    extracted: u64,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    deleted: u64,
    pushed: u64,
    table_rows: u64,
    /// From stream start to the last page staged.
    extract_secs: f64,
    /// From the last page staged to the stream's end (delete rows, read the mirror, push).
    load_secs: f64,
    /// Peak RSS of the process when the stream's last page was staged (0 in older reports).
    #[serde(default)]
    extract_peak_rss_kb: u64,
    /// From the child's start to the last page staged (where the push begins).
    push_start_secs: f64,
    /// CPU seconds (user + system) of the connector process in each of those two phases.
    extract_cpu: f64,
    load_cpu: f64,
    error: Option<String>,
}

/// One sync as the parent saw it.
#[derive(Debug, Clone, Default)]
struct SyncMeasure {
    child: ChildResult,
    /// When the parent started the child (the child's clock starts a few milliseconds later).
    spawned: Option<Instant>,
    /// Intacct HTTP requests per stream, and for the whole run.
    intacct_per_stream: BTreeMap<String, u64>,
    intacct_total: u64,
    /// Gateway functions executed, by name (several may share one HTTP request).
    intacct_by_function: BTreeMap<String, u64>,
    intacct_logins: u64,
    intacct_429: u64,
    intacct_peak_concurrency: usize,
    posts: u64,
    /// Power BI HTTP requests (token, dataset checks, queries, pushes), and by operation.
    pbi_requests: u64,
    pbi_by_operation: BTreeMap<String, u64>,
    pbi_429: u64,
    pbi_peak_in_flight: usize,
    pbi_max_posts_window: usize,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if let Some(spec) = &args.child {
        return child::run(serde_json::from_str(spec).context("bad --child spec")?).await;
    }
    let objects: Vec<String> = args
        .objects
        .iter()
        .map(|o| o.trim().to_ascii_uppercase())
        .collect();
    for o in &objects {
        if ml_connector::catalogue::all().iter().all(|e| e.object != o) {
            bail!("unknown object {o}: use one of the catalogue's objects");
        }
    }
    let machine = measure::machine();
    println!("ml-connector bench: {machine}");
    println!(
        "objects {} x {} records, changes {}, mode {}\n",
        objects.join(","),
        args.records,
        args.changes,
        args.mode
    );

    let picked = |name: &str| args.scenario.iter().any(|s| s == name);
    let (run_cost, run_limits, run_memory) = if args.scenario.is_empty() {
        (
            !args.skip_cost,
            !args.skip_limits,
            !args.memory_at.is_empty(),
        )
    } else {
        (picked("cost"), picked("limits"), picked("memory"))
    };
    if run_memory && args.memory_at.is_empty() {
        bail!("the memory scenario needs --memory-at, e.g. --memory-at 100000,1000000");
    }
    let mut out = String::new();
    let mut cost: Option<(SyncMeasure, SyncMeasure)> = None;
    if run_cost {
        println!(
            "cost scenario: latency 0, Power BI limits off, connector on one worker thread ..."
        );
        let m = scenario(
            &args,
            &objects,
            args.records,
            Duration::ZERO,
            false,
            1.0,
            true,
        )
        .await?;
        cost = Some(m);
    }
    if run_limits {
        let limits = args.limits == "on";
        println!(
            "limits scenario: latency {:?}, concurrency {}, Power BI limits {} (time scale {}) ...",
            args.latency, args.concurrency, args.limits, args.time_scale
        );
        let (full, incr) = scenario(
            &args,
            &objects,
            args.records,
            args.latency,
            limits,
            args.time_scale,
            false,
        )
        .await?;
        writeln!(
            out,
            "\n## Limits scenario: {} records per object, Intacct latency {} ms, concurrency {}, Power BI limits {} (time scale {})\n",
            args.records,
            args.latency.as_millis(),
            args.concurrency,
            args.limits,
            args.time_scale
        )?;
        out.push_str(&limits_table(
            &args,
            &objects,
            &full,
            &incr,
            limits,
            cost.as_ref(),
        ));
    }
    if let Some((full, incr)) = &cost {
        writeln!(
            out,
            "\n## Cost scenario: {} records per object, latency 0, limits off, one worker thread\n",
            args.records
        )?;
        out.push_str(&cost_table(full, incr));
    }
    if run_memory {
        writeln!(
            out,
            "\n## Peak resident memory of the connector process (cost scenario)\n"
        )?;
        writeln!(
            out,
            "| records | full: peak RSS | full: peak RSS by the end of extract | full: wall | incremental: peak RSS | records/CPU-s (full) |"
        )?;
        writeln!(out, "|---:|---:|---:|---:|---:|---:|")?;
        for &n in &args.memory_at {
            println!("memory: {n} records ...");
            let (full, incr) =
                scenario(&args, &objects, n, Duration::ZERO, false, 1.0, true).await?;
            let recs = extracted(&full);
            writeln!(
                out,
                "| {} | {:.1} MB | {:.1} MB | {:.1} s | {:.1} MB | {:.0} |",
                n,
                full.child.peak_rss_kb as f64 / 1024.0,
                full.child
                    .streams
                    .iter()
                    .map(|s| s.extract_peak_rss_kb)
                    .max()
                    .unwrap_or(0) as f64
                    / 1024.0,
                full.child.wall,
                incr.child.peak_rss_kb as f64 / 1024.0,
                recs as f64 / cpu(&full).max(1e-9)
            )?;
        }
    }
    if picked("multi-object") {
        println!(
            "multi-object scenario: latency {:?}, concurrency {}, Power BI limits {} ...",
            args.latency, args.concurrency, args.limits
        );
        out.push_str(&whole::multi_object(&args).await?);
    }
    if picked("no-change") {
        println!(
            "no-change scenario: latency {:?}, concurrency {} ...",
            args.latency, args.concurrency
        );
        out.push_str(&whole::no_change(&args).await?);
    }
    println!("{out}");
    Ok(())
}
