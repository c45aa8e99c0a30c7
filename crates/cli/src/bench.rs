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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

use ml_sim_intacct as sim_intacct;
use ml_sim_powerbi as sim_powerbi;
use ml_store::crypto::MasterKey;

use ml_connector::config::Mode;
use ml_connector::pipeline::{Events, RunEvent, RunOptions};

/// Intacct's documented maximum page of `query`.
const INTACCT_PAGE: u64 = 2000;

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
    /// Internal: run the connector side against simulators started by a parent `bench`.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

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
    intacct_logins: u64,
    intacct_429: u64,
    intacct_peak_concurrency: usize,
    posts: u64,
    pbi_429: u64,
    pbi_peak_in_flight: usize,
    pbi_max_posts_window: usize,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if let Some(spec) = &args.child {
        return child(serde_json::from_str(spec).context("bad --child spec")?).await;
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
    let machine = machine();
    println!("ml-connector bench: {machine}");
    println!(
        "objects {} x {} records, changes {}, mode {}\n",
        objects.join(","),
        args.records,
        args.changes,
        args.mode
    );

    let mut out = String::new();
    let mut cost: Option<(SyncMeasure, SyncMeasure)> = None;
    if !args.skip_cost {
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
    if !args.skip_limits {
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
    if !args.memory_at.is_empty() {
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
    println!("{out}");
    Ok(())
}

fn extracted(m: &SyncMeasure) -> u64 {
    m.child.streams.iter().map(|s| s.extracted).sum()
}

fn cpu(m: &SyncMeasure) -> f64 {
    m.child.cpu_user + m.child.cpu_sys
}

fn size_for(size: &mut sim_intacct::config::CompanySize, object: &str, n: u64) -> Result<()> {
    match object {
        "VENDOR" => size.vendors = n,
        "GLACCOUNT" => size.gl_accounts = n,
        "DEPARTMENT" => size.departments = n,
        "LOCATION" => size.locations = n,
        "CLASS" => size.classes = n,
        "PROJECT" => size.projects = n,
        "CUSTOMER" => size.customers = n,
        "EMPLOYEE" => size.employees = n,
        "ITEM" => size.items = n,
        "APBILL" => size.ap_bills = n,
        "APPYMT" => size.ap_payments = n,
        "GLENTRY" => size.gl_entries = n,
        // Balances are accounts x departments x locations x periods: their size follows the others.
        "GLACCOUNTBALANCE" => {}
        other => bail!("the benchmark cannot size {other}"),
    }
    Ok(())
}

/// Starts both simulators, runs a full sync in a child, makes changes, runs an incremental sync.
async fn scenario(
    args: &BenchArgs,
    objects: &[String],
    records: u64,
    latency: Duration,
    limits: bool,
    time_scale: f64,
    one_thread: bool,
) -> Result<(SyncMeasure, SyncMeasure)> {
    let mut icfg = sim_intacct::SimConfig::default();
    for o in objects {
        size_for(&mut icfg.size, o, records)?;
    }
    icfg.max_concurrency = args.concurrency;
    icfg.latency.per_request = latency;
    let intacct = Arc::new(sim_intacct::Simulator::start(icfg).await?);
    let mut pcfg = sim_powerbi::SimConfig::default();
    pcfg.limits.enforce = limits;
    pcfg.limits.minute = pcfg.limits.minute.div_f64(time_scale);
    pcfg.limits.hour = pcfg.limits.hour.div_f64(time_scale);
    let powerbi = Arc::new(sim_powerbi::Simulator::start(pcfg).await?);
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let spec = ChildSpec {
        intacct: intacct.endpoint(),
        powerbi: powerbi.api_url(),
        data_dir: dir.path().to_path_buf(),
        objects: objects.to_vec(),
        concurrency: args.concurrency,
        mode: args.mode.clone(),
        limits,
        time_scale,
        balances_through: crate::demo::last_closed_month(&intacct.now()),
    };
    let full = sync_in_child(&spec, &intacct, &powerbi, one_thread).await?;
    make_changes(&intacct, objects, records, args.changes);
    let incr = sync_in_child(&spec, &intacct, &powerbi, one_thread).await?;
    Ok((full, incr))
}

/// Updates `changes` records of each object, spread over its key range, an hour after the full sync.
fn make_changes(sim: &sim_intacct::Simulator, objects: &[String], records: u64, changes: u64) {
    sim.advance_clock(Duration::from_secs(3600));
    for o in objects {
        let Some(def) = sim_intacct::data::defs::object_def(o) else {
            continue;
        };
        let Some(field) = ["NAME", "DESCRIPTION", "TITLE", "MEMO"]
            .into_iter()
            .find(|f| def.field_index(f).is_some())
        else {
            continue;
        };
        let n = changes.min(records);
        let step = (records / n.max(1)).max(1);
        for i in 0..n {
            let key = def.recno_base + i * step;
            sim.update(
                o,
                key,
                [(field.to_string(), format!("bench change {i}"))]
                    .into_iter()
                    .collect(),
            );
        }
    }
}

async fn sync_in_child(
    spec: &ChildSpec,
    intacct: &Arc<sim_intacct::Simulator>,
    powerbi: &Arc<sim_powerbi::Simulator>,
    one_thread: bool,
) -> Result<SyncMeasure> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    // ML_BENCH_CHILD_WRAPPER="heaptrack" (or "perf record -g --"): a profiler of the connector
    // alone, words split on spaces; the simulators in this process stay out of its profile.
    let wrapper = std::env::var("ML_BENCH_CHILD_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut cmd = match words.next() {
        Some(program) => {
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(words).arg(exe);
            cmd
        }
        None => tokio::process::Command::new(exe),
    };
    cmd.arg("bench")
        .arg("--child")
        .arg(serde_json::to_string(spec)?)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    if one_thread {
        cmd.env("TOKIO_WORKER_THREADS", "1");
        pin_to_last_core(&mut cmd);
    }
    let i0 = intacct.stats();
    let p0 = powerbi.stats();
    let spawned = Instant::now();
    let mut child = cmd.spawn().context("cannot start the connector child")?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut per_stream = BTreeMap::new();
    let mut started_at: BTreeMap<String, u64> = BTreeMap::new();
    let mut result: Option<ChildResult> = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("STREAM_STARTED ") {
            started_at.insert(rest.to_string(), intacct.stats().http_requests);
        } else if let Some(rest) = line.strip_prefix("STREAM_FINISHED ") {
            let before = started_at.get(rest).copied().unwrap_or(0);
            per_stream.insert(
                rest.to_string(),
                intacct.stats().http_requests.saturating_sub(before),
            );
        } else if let Some(rest) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str(rest)?);
        }
    }
    let status = child.wait().await?;
    let Some(child_result) = result else {
        bail!("the connector child exited ({status}) without a result");
    };
    let i1 = intacct.stats();
    let p1 = powerbi.stats();
    let posts = |s: &sim_powerbi::Stats| {
        s.requests_by_operation
            .get("post_rows")
            .copied()
            .unwrap_or(0)
    };
    Ok(SyncMeasure {
        child: child_result,
        spawned: Some(spawned),
        intacct_per_stream: per_stream,
        intacct_total: i1.http_requests - i0.http_requests,
        intacct_logins: i1.logins - i0.logins,
        intacct_429: i1.rejected_429 - i0.rejected_429,
        intacct_peak_concurrency: i1.peak_concurrency,
        posts: posts(&p1) - posts(&p0),
        pbi_429: p1.throttled_429 - p0.throttled_429,
        pbi_peak_in_flight: p1.peak_in_flight_posts.values().copied().max().unwrap_or(0),
        pbi_max_posts_window: p1
            .max_posts_in_minute_window
            .values()
            .copied()
            .max()
            .unwrap_or(0),
    })
}

/// The earliest a push of `posts` POSTs and `rows` rows into an empty table can finish under the
/// documented limits (fresh budgets; the in-flight cap and transfer time are not limits on their own).
fn push_limit_floor(posts: u64, rows: u64, scale: f64) -> Duration {
    let l = ml_powerbi::PushLimits::default();
    let minute = l.window.as_secs_f64() / scale;
    let hour = l.hour.as_secs_f64() / scale;
    let by_posts = (posts.div_ceil(l.posts_per_window as u64)).saturating_sub(1) as f64 * minute;
    let by_rows = (rows.div_ceil(l.rows_per_hour)).saturating_sub(1) as f64 * hour;
    // Once the table holds 250,000 rows, at most 120 POSTs an hour.
    let by_large = if rows > l.large_table_rows {
        (posts.div_ceil(l.large_table_posts_per_hour as u64)).saturating_sub(1) as f64 * hour
    } else {
        0.0
    };
    Duration::from_secs_f64(by_posts.max(by_rows).max(by_large))
}

fn limits_table(
    args: &BenchArgs,
    objects: &[String],
    full: &SyncMeasure,
    incr: &SyncMeasure,
    limits: bool,
    cost: Option<&(SyncMeasure, SyncMeasure)>,
) -> String {
    let mut t = String::new();
    let lat = args.latency.as_secs_f64();
    let _ = writeln!(
        t,
        "| sync | object | records read | Intacct requests | floor ⌈n/2000⌉ | extraction wall | floor ⌈pages/conc⌉×lat | floor/wall | POSTs | 429s | push wall | push ceiling | ceiling/wall |"
    );
    let _ = writeln!(
        t,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (label, m, cost_m, prev) in [
        ("full", full, cost.map(|c| &c.0), None),
        ("incremental", incr, cost.map(|c| &c.1), Some(full)),
    ] {
        for o in objects {
            let Some(s) = m.child.streams.iter().find(|s| &s.object == o) else {
                continue;
            };
            let req = m.intacct_per_stream.get(o).copied().unwrap_or(0);
            let pages = s.extracted.div_ceil(INTACCT_PAGE).max(1);
            let floor = pages.div_ceil(args.concurrency.max(1) as u64) as f64 * lat;
            let ratio = if s.extract_secs > 0.0 {
                floor / s.extract_secs
            } else {
                0.0
            };
            let rows = s.pushed;
            let posts = if objects.len() == 1 {
                m.posts
            } else {
                rows.div_ceil(10_000)
            };
            let mut limit_floor = if limits {
                push_limit_floor(posts, rows, args.time_scale).as_secs_f64()
            } else {
                0.0
            };
            // The service's budgets are per sliding window, so the previous sync's pushes count.
            // A window frees as the earlier rows age out of it, at the pace they were sent: the
            // earliest finish of both pushes together is the earlier push's end plus the windows
            // the two need together (an ideal pusher that knew the earlier push).
            if let (true, Some(p)) = (limits, prev)
                && let Some(ps) = p.child.streams.iter().find(|x| &x.object == o)
                && let (Some(t0), Some(t1)) = (p.spawned, m.spawned)
            {
                let first_start = ps.push_start_secs;
                let this_start = (t1 - t0).as_secs_f64() + s.push_start_secs;
                let p_posts = if objects.len() == 1 {
                    p.posts
                } else {
                    ps.pushed.div_ceil(10_000)
                };
                let both = push_limit_floor(posts + p_posts, rows + ps.pushed, args.time_scale)
                    .as_secs_f64();
                if both > 0.0 {
                    limit_floor = limit_floor.max(first_start + ps.load_secs + both - this_start);
                }
            }
            // Without any limit the push still takes the time the unthrottled pipeline needs (cost scenario).
            let physical = cost_m
                .and_then(|c| c.child.streams.iter().find(|x| &x.object == o))
                .filter(|c| c.pushed == rows)
                .map(|c| c.load_secs)
                .unwrap_or(0.0);
            let ceiling = limit_floor.max(physical);
            // No limit bound and no cost scenario timed the unthrottled push (--skip-cost):
            // there is no ceiling to compare with, so say so rather than print 0.00.
            let unknown = ceiling == 0.0;
            let _ = writeln!(
                t,
                "| {label} | {o} | {} | {} | {} | {:.2} s | {:.2} s | {:.2} | {} | {} | {:.2} s | {} | {} |",
                s.extracted,
                req,
                s.extracted.div_ceil(INTACCT_PAGE),
                s.extract_secs,
                floor,
                ratio,
                posts,
                m.pbi_429,
                s.load_secs,
                if unknown {
                    "n/a".to_string()
                } else {
                    format!("{ceiling:.2} s")
                },
                if s.load_secs > 0.0 && rows > 0 && !unknown {
                    format!("{:.2}", ceiling / s.load_secs)
                } else {
                    "-".into()
                }
            );
            if let Some(e) = &s.error {
                let _ = writeln!(t, "\nstream {o} FAILED: {e}\n");
            }
        }
        let _ = writeln!(
            t,
            "| {label} | (run) | | {} total, {} login(s), {} Intacct 429s, peak concurrency {} | | {:.2} s run wall | | | {} | {} | peak in flight {} | max POSTs/window {} | |",
            m.intacct_total,
            m.intacct_logins,
            m.intacct_429,
            m.intacct_peak_concurrency,
            m.child.wall,
            m.posts,
            m.pbi_429,
            m.pbi_peak_in_flight,
            m.pbi_max_posts_window
        );
    }
    t
}

fn cost_table(full: &SyncMeasure, incr: &SyncMeasure) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| sync | records read | rows pushed | wall | CPU user | CPU sys | CPU s per 100k records | records per CPU-second | extract only: records per CPU-second | extract: wall / CPU | load: wall / CPU | peak RSS | store on disk |"
    );
    let _ = writeln!(
        t,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (label, m) in [("full", full), ("incremental", incr)] {
        let n = extracted(m);
        let pushed: u64 = m.child.streams.iter().map(|s| s.pushed).sum();
        let c = cpu(m);
        let phase = |f: fn(&ChildStream) -> f64| m.child.streams.iter().map(f).sum::<f64>();
        let extract_cpu = phase(|s| s.extract_cpu);
        let _ = writeln!(
            t,
            "| {label} | {n} | {pushed} | {:.2} s | {:.2} s | {:.2} s | {:.2} | {:.0} | {:.0} | {:.2} s / {:.2} s | {:.2} s / {:.2} s | {:.1} MB | {:.1} MB |",
            m.child.wall,
            m.child.cpu_user,
            m.child.cpu_sys,
            if n > 0 { c / n as f64 * 100_000.0 } else { 0.0 },
            if c > 0.0 { n as f64 / c } else { 0.0 },
            // The "decode, transform, serialize, stage with audit": the extract phase turns
            // each record into its Power BI row (JSON) and stages it; load reads rows back and POSTs.
            if extract_cpu > 0.0 {
                n as f64 / extract_cpu
            } else {
                0.0
            },
            phase(|s| s.extract_secs),
            phase(|s| s.extract_cpu),
            phase(|s| s.load_secs),
            phase(|s| s.load_cpu),
            m.child.peak_rss_kb as f64 / 1024.0,
            m.child.store_bytes as f64 / 1_048_576.0
        );
    }
    t
}

/// Cores and memory of this machine, from /proc.
fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    let mem_kb = proc_status_kb(Path::new("/proc/meminfo"), "MemTotal:").unwrap_or(0);
    format!(
        "{cores} cores ({model}), {:.1} GB memory",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

fn proc_status_kb(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs the child, every thread of it, on the machine's last core: "records per second on one
/// core" is then what it says, SQLite's and the decoder's threads included, and the connector does
/// not pay for its threads migrating between cores or for sharing a core's cache with the
/// simulators (without the pin, the figures of one build moved by ±8 % from run to run).
#[cfg(target_os = "linux")]
fn pin_to_last_core(cmd: &mut tokio::process::Command) {
    let Some(last) = std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() - 1)
    else {
        return;
    };
    // SAFETY: the closure runs in the forked child before exec and only makes one system call
    // (sched_setaffinity is async-signal-safe); it touches no lock and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(last, &mut set);
            // A refusal (a container's CPU mask without that core) leaves the child unpinned.
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_last_core(_cmd: &mut tokio::process::Command) {}

/// (user, system) CPU seconds of this process, from /proc/self/stat (clock ticks of 1/100 s: the
/// kernel's USER_HZ, fixed at 100 on Linux whatever the kernel's internal HZ).
fn cpu_times() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are plain.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

/// The connector side: one sync against the parent's simulators, reported on stdout.
async fn child(spec: ChildSpec) -> Result<()> {
    let started = Instant::now();
    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(
        spec.data_dir.join("state.sqlite"),
    ))
    .await?;
    let key = MasterKey::generate();
    let mut cfg = crate::demo::demo_connection(
        &spec.intacct,
        &spec.powerbi,
        &spec.powerbi,
        spec.balances_through,
    )?;
    cfg.name = "bench".into();
    cfg.intacct.max_concurrent_requests = spec.concurrency;
    cfg.streams.retain(|s| spec.objects.contains(&s.object));
    for s in &mut cfg.streams {
        s.mode = if spec.mode == "append" {
            Mode::Append
        } else {
            Mode::Replace
        };
    }
    let mut conn = crate::demo::connect_demo(cfg, store, &key).await?;
    let limits = if spec.limits {
        let mut l = ml_powerbi::PushLimits::default();
        l.window = l.window.div_f64(spec.time_scale);
        l.hour = l.hour.div_f64(spec.time_scale);
        l
    } else {
        // No pacing, but no more POSTs pending than a real sync would have (Power BI's 5 a
        // dataset): with 64, batches piled up behind the simulator's slower intake and the cost
        // scenario's peak memory measured that pile (12 batches, 40 MB more at 2,000,000 rows),
        // not the connector as it runs.
        ml_powerbi::PushLimits {
            max_in_flight: ml_powerbi::PushLimits::default().max_in_flight,
            ..ml_powerbi::PushLimits::unlimited()
        }
    };
    let client = ml_connector::destination::powerbi::PushDataset::of(
        conn.destination.as_ref(),
        &conn.config.name,
        "bench",
    )?
    .client
    .clone();
    conn.destination = Arc::new(
        ml_connector::destination::powerbi::PushDataset::with_limits(
            client,
            limits,
            conn.clock.clone(),
        ),
    );

    #[derive(Default, Clone)]
    struct Times {
        start: Option<(Instant, f64)>,
        staged: Option<(Instant, f64)>,
        /// VmHWM when the last page was staged: the extract phase's peak.
        staged_peak_kb: u64,
        end: Option<(Instant, f64)>,
    }
    let times: Arc<Mutex<BTreeMap<String, Times>>> = Arc::default();
    let events = {
        let times = times.clone();
        Events::new(move |e| {
            let now = {
                let (u, s) = cpu_times();
                (Instant::now(), u + s)
            };
            let mut t = times.lock().expect("lock");
            match e {
                RunEvent::StreamStarted { stream, .. } => {
                    println!("STREAM_STARTED {stream}");
                    t.entry(stream.clone()).or_default().start = Some(now);
                }
                RunEvent::Extracted { stream, .. } | RunEvent::Staged { stream, .. } => {
                    let entry = t.entry(stream.clone()).or_default();
                    entry.staged = Some(now);
                    entry.staged_peak_kb =
                        proc_status_kb(Path::new("/proc/self/status"), "VmHWM:").unwrap_or(0);
                }
                RunEvent::StreamFinished { stream, .. } => {
                    t.entry(stream.clone()).or_default().end = Some(now);
                    println!("STREAM_FINISHED {stream}");
                }
                _ => {}
            }
        })
    };
    let report = conn
        .run(
            &RunOptions {
                trigger: "bench".into(),
                ..Default::default()
            },
            &events,
        )
        .await?;
    // Closed before the CPU is read: closing checkpoints what the WAL still holds into the
    // database, work this run's records cost (6 % of the CPU at 100,000 records) that a `sync`
    // run from cron pays every time.
    conn.store.close().await;
    let wall = started.elapsed().as_secs_f64();
    let (cpu_user, cpu_sys) = cpu_times();
    let store_bytes = ["state.sqlite", "state.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(spec.data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let times = times.lock().expect("lock").clone();
    let streams = report
        .streams
        .iter()
        .map(|s| {
            let t = times.get(&s.object).cloned().unwrap_or_default();
            let start = t.start.unwrap_or((started, 0.0));
            let staged = t.staged.unwrap_or(start);
            let end = t.end.unwrap_or(staged);
            ChildStream {
                object: s.object.clone(),
                extracted: s.extracted,
                inserted: s.inserted,
                updated: s.updated,
                unchanged: s.unchanged,
                deleted: s.deleted,
                pushed: s.pushed,
                table_rows: s.table_rows,
                extract_secs: (staged.0 - start.0).as_secs_f64(),
                push_start_secs: (staged.0 - started).as_secs_f64(),
                load_secs: (end.0 - staged.0).as_secs_f64(),
                extract_cpu: staged.1 - start.1,
                extract_peak_rss_kb: t.staged_peak_kb,
                load_cpu: end.1 - staged.1,
                error: s.error.clone(),
            }
        })
        .collect();
    let result = ChildResult {
        status: report.status.as_str().into(),
        wall,
        cpu_user,
        cpu_sys,
        peak_rss_kb: proc_status_kb(Path::new("/proc/self/status"), "VmHWM:").unwrap_or(0),
        store_bytes,
        streams,
    };
    println!("RESULT {}", serde_json::to_string(&result)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_floor_follows_the_documented_limits() {
        // 10 POSTs of 100,000 rows: no window is crossed.
        assert_eq!(push_limit_floor(10, 100_000, 1.0), Duration::ZERO);
        // 240 POSTs: the second minute's 120 start after one window.
        assert_eq!(push_limit_floor(240, 200_000, 1.0), Duration::from_secs(60));
        // 1.5M rows: the hour's million is spent, the rest waits an hour.
        assert!(push_limit_floor(150, 1_500_000, 1.0) >= Duration::from_secs(3600));
        // Compressed windows scale the floor.
        assert_eq!(push_limit_floor(240, 200_000, 60.0), Duration::from_secs(1));
    }

    #[test]
    fn cpu_times_are_read_from_proc() {
        // Burn CPU until the kernel's 10 ms accounting shows it (bounded by a few seconds of wall).
        let start = Instant::now();
        let mut x = 0u64;
        while cpu_times().0 + cpu_times().1 < 0.02 && start.elapsed() < Duration::from_secs(10) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        let (user, sys) = cpu_times();
        assert!(user + sys >= 0.02, "CPU time not visible: {user} + {sys}");
        assert!(proc_status_kb(Path::new("/proc/self/status"), "VmHWM:").unwrap_or(0) > 0);
    }
}
