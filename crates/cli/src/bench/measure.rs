//! What the benchmark reads from /proc: the connector's CPU time and peak memory are the figures
//! it exists to report, and the machine's description makes them comparable between runs.

use std::path::Path;

/// Cores and memory of this machine, from /proc.
pub(super) fn machine() -> String {
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

pub(super) fn proc_status_kb(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (user, system) CPU seconds of this process, from /proc/self/stat (clock ticks of 1/100 s: the
/// kernel's USER_HZ, fixed at 100 on Linux whatever the kernel's internal HZ).
pub(super) fn cpu_times() -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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
