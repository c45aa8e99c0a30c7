//! What the staging benches share: the pages they stage and the CPU clock they read.

use ml_store::StagedRecord;

/// Records per page, as Intacct's `query` returns them.
pub const PAGE: usize = 2_000;

/// `ML_STORE_BENCH_RECORDS`, else a million.
pub fn record_count() -> usize {
    env_count("ML_STORE_BENCH_RECORDS").unwrap_or(1_000_000)
}

/// A positive number from the environment variable `name`.
fn env_count(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
}

/// The order the benches' records arrive in: `ML_STORE_BENCH_ORDER=modified` as a full pull's
/// modified pass delivers them (by WHENMODIFIED: record numbers scattered over the whole key range,
/// so every page inserts into the key indexes all over), else by record number (each page a
/// contiguous key range, as the never-modified pass delivers them).
fn arrival_order(total: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..total).collect();
    if std::env::var("ML_STORE_BENCH_ORDER").as_deref() == Ok("modified") {
        use rand::{SeedableRng, seq::SliceRandom};
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    }
    order
}

/// Records per staging transaction: `ML_STORE_BENCH_PAGE`, else [`PAGE`].
fn page_size() -> usize {
    env_count("ML_STORE_BENCH_PAGE").unwrap_or(PAGE)
}

/// `total` GL-entry-like records in pages of [`page_size`], every key new, in [`arrival_order`].
/// Built before the timed region: the benches measure the store.
pub fn pages(total: usize) -> Vec<Vec<StagedRecord>> {
    arrival_order(total)
        .chunks(page_size())
        .map(|numbers| {
            numbers
                .iter()
                .map(|&n| StagedRecord {
                    key: n.to_string(),
                    when_modified: Some(format!("2026-01-{:02}T10:00:00", n % 28 + 1)),
                    source_hash: format!("{:064x}", n as u128 * 0x9E37_79B9_7F4A_7C15),
                    row_json: format!(
                        "{{\"RECORDNO\":{n},\"BATCHNO\":{},\"ACCOUNTNO\":\"{}\",\"AMOUNT\":{}.{:02},\
                         \"DEPARTMENTID\":\"D{}\",\"LOCATIONID\":\"L{}\",\"ENTRY_DATE\":\"2026-01-{:02}T00:00:00\",\
                         \"MEMO\":\"Journal line {n}\"}}",
                        n / 10,
                        4000 + n % 300,
                        n % 100_000,
                        n % 100,
                        n % 40,
                        n % 12,
                        n % 28 + 1
                    ),
                })
                .collect()
        })
        .collect()
}

/// User + system CPU seconds of the whole process (every thread, SQLite's worker included), from
/// /proc/self/stat in USER_HZ ticks (1/100 s on Linux); 0 elsewhere. The wall-clock figure moves
/// with whatever else the machine runs; this one does not.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    tick(11) + tick(12)
}

/// Bytes of a SQLite database and its WAL.
pub fn sqlite_size(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes this process has handed to `write`/`pwrite` so far (`wchar` in /proc/self/io); 0 elsewhere.
/// SQLite writes every changed page twice in WAL mode (the WAL, then the checkpoint into the file),
/// so this is what a schema or pragma change does to the I/O per record, independent of how fast the
/// disk is.
pub fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The line both staging benches print: throughput, CPU of the whole process, the database's size
/// and the bytes written, per record.
pub fn report(what: &str, staged: u64, secs: f64, cpu: f64, size: u64, written: u64) {
    let per_record = |v: u64| v as f64 / staged.max(1) as f64;
    println!(
        "{what}: {staged} records in {secs:.2} s = {:.0} records/s; CPU {cpu:.2} s (all threads) = {:.0} records per \
         CPU-second; database {:.1} MiB ({:.0} bytes/record); {:.0} bytes written per record",
        staged as f64 / secs,
        staged as f64 / cpu.max(0.01),
        size as f64 / (1024.0 * 1024.0),
        per_record(size),
        per_record(written)
    );
}
