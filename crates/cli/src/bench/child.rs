//! The connector's own process: the parent spawns it (pinned when measuring cost) and reads the
//! Intacct simulator's counters at each stream boundary it reports; the child side runs one sync
//! and measures itself, so the figures are the connector's and not the simulators'.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncBufReadExt;

use ml_sim_intacct as sim_intacct;
use ml_sim_powerbi as sim_powerbi;
use ml_store::crypto::MasterKey;

use ml_connector::config::Mode;
use ml_connector::pipeline::{Events, RunEvent, RunOptions};

use super::measure::{cpu_times, proc_status_kb};
use super::{ChildResult, ChildSpec, ChildStream, SyncMeasure};

pub(super) async fn sync_in_child(
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
    let by_function = i1
        .requests_by_function
        .iter()
        .map(|(f, n)| {
            let before = i0.requests_by_function.get(f).copied().unwrap_or(0);
            (f.clone(), n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let pbi_by_operation = p1
        .requests_by_operation
        .iter()
        .map(|(op, n)| {
            let before = p0.requests_by_operation.get(op).copied().unwrap_or(0);
            (op.clone(), n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(SyncMeasure {
        child: child_result,
        intacct_by_function: by_function,
        pbi_requests: p1.http_requests - p0.http_requests,
        pbi_by_operation,
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

/// The connector side: one sync against the parent's simulators, reported on stdout.
pub(super) async fn run(spec: ChildSpec) -> Result<()> {
    let started = Instant::now();
    let store = ml_store::open(&ml_store::StoreLocation::Sqlite(
        spec.data_dir.join("state.sqlite"),
    ))
    .await?;
    // One key for every child of a scenario, as one installation keeps its key file: what a sync
    // sealed (the Intacct session it leaves for the next run) opens in the next.
    let key_file = spec.data_dir.join("master.key");
    let key = if key_file.exists() {
        MasterKey::load_file(&key_file)?
    } else {
        MasterKey::create_file(&key_file)?
    };
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
        if spec.baseline {
            s.never_modified_full_every = std::time::Duration::ZERO;
            s.closed_periods_every = std::time::Duration::ZERO;
        }
        s.mode = if spec.mode == "append" {
            Mode::Append
        } else {
            Mode::Replace
        };
    }
    let mut conn = crate::demo::connect_demo(cfg, store, &key).await?;
    // As `sync` does: the session the previous child kept, and this one's kept for the next.
    if !spec.baseline {
        ml_connector::app::resume_intacct_session(&conn, &key).await;
    }
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
    ml_connector::app::keep_intacct_session(&conn, &key).await;
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
