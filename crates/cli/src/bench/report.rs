//! The printed tables: each measured figure beside the floor the documented limits allow, so a
//! reader sees how close the connector comes to the best any client could do.

use std::fmt::Write as _;
use std::time::Duration;

use super::{BenchArgs, ChildStream, SyncMeasure};

/// Intacct's documented maximum page of `query`.
const INTACCT_PAGE: u64 = 2000;

pub(super) fn extracted(m: &SyncMeasure) -> u64 {
    m.child.streams.iter().map(|s| s.extracted).sum()
}

pub(super) fn cpu(m: &SyncMeasure) -> f64 {
    m.child.cpu_user + m.child.cpu_sys
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

pub(super) fn limits_table(
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

pub(super) fn cost_table(full: &SyncMeasure, incr: &SyncMeasure) -> String {
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
}
