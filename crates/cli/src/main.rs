//! The `ml-connector` binary: a thin shell over the `ml_connector` library
//! (the commands, the demo and the bench are in this crate's library, `ml_connector_cli`, so the
//! end-to-end tests can drive the demo's set-up too).

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    map_large_buffers();
    ml_connector_cli::main()
}

/// glibc hands a thread a new malloc arena whenever the one it would use is locked by another
/// thread, up to 8 per core, and keeps what each arena once held. The pipeline thread allocates
/// pages and rows that SQLite's and HTTP's threads free, so under CPU contention (another build on
/// the machine) the arenas multiplied and the peak memory of a 1,000,000-record sync rose from
/// 140 MB to 230 MB; with two arenas it stays at 134 MB, loaded or not, at no measurable CPU cost
/// (BENCHMARKS.md). An explicit `MALLOC_ARENA_MAX` in the environment wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator tunable; it runs before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Buffers of 1 MiB and more (Power BI batch bodies, pages of mirror rows) are mapped on their own
/// and given back to the kernel when freed. glibc's default threshold moves up to 32 MiB once such
/// a buffer has been freed, after which the rebuild's batches in flight came from the heap, which
/// keeps what it once held: the peak RSS of a 2,000,000-record sync varied from 112 to 179 MB from
/// run to run (BENCHMARKS.md). A threshold set here stays where it is set. Staging and the Intacct
/// transport avoid page-sized buffers of their own, so mapping costs no measurable CPU. An explicit
/// `MALLOC_MMAP_THRESHOLD_` in the environment wins.
///
/// Fixing that threshold also fixes the heap's trim threshold at its 128 KiB default, so freeing a
/// few hundred KB at the top of the heap gave it back to the kernel, and the next page staged
/// faulted it in again (~16 % of the pipeline thread's samples were page faults). The heap keeps up
/// to 8 MiB free at its top instead: 2-3 % less CPU a record, ~4 MB more at the peak
/// (BENCHMARKS.md, "Session 6"). `MALLOC_TRIM_THRESHOLD_` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_buffers() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets an allocator tunable; it runs before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_buffers() {}
