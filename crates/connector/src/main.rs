//! The `ml-connector` binary: everything lives in the library; this only hands over to the CLI.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    ml_connector::cli::main()
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
