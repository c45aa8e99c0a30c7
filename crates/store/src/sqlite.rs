//! [`SqliteStore`]: the default back end, one database file in the data dir.
//!
//! Durability: the database runs in WAL mode with `synchronous = NORMAL`. A transaction is
//! committed once its frames are in the WAL file (the OS page cache), so a crash or SIGKILL of the
//! *process* never loses or tears a committed transaction; only a power loss or kernel crash can
//! lose the last few commits (never corrupt the file). Writers take the lock up front
//! (`BEGIN IMMEDIATE`), so a read-then-write transaction never fails halfway on lock upgrade.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::backend::prelude::*;

/// The writer's page cache (negative: KiB). Staging inserts into the mirror's and the audit trail's
/// key indexes in key order, and numeric keys compared as text land all over those indexes: once
/// they outgrow the cache, every page staged re-reads and rewrites index pages.
const WRITER_CACHE_KIB: &str = "-32768";
/// A reader's page cache. Readers page through the mirror and the outbox once per load, in key or
/// id order: a cache keeps little that is read again.
const READER_CACHE_KIB: &str = "-4096";

/// SQLite back end.
pub struct SqliteStore {
    /// Readers: concurrent reads never wait behind each other (WAL).
    pool: SqlitePool,
    /// The one connection every write goes through. SQLite allows one writer at a time anyway, and a
    /// connection throws its whole page cache away when it finds that *another* connection wrote
    /// since its last transaction: with writes spread over a pool, every staged page started on a
    /// cold cache and re-read the mirror's and the audit trail's index pages from the file.
    writer: SqlitePool,
    clock: Arc<dyn Clock>,
    /// Connection name → id; connections are never deleted, so entries never go stale.
    cache: Mutex<HashMap<String, i64>>,
}

/// The state file holds the audit trail (every record's row) and the sealed credentials: it is
/// created readable by its owner only (0600), and an older, looser file is narrowed. SQLite gives
/// its `-wal` and `-shm` files the database file's permissions, so they follow.
#[cfg(unix)]
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let loose = |meta: std::fs::Metadata| meta.permissions().mode() & 0o077 != 0;
    if loose(file.metadata()?) {
        owner_only(path)?;
    }
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        if std::fs::metadata(&side).is_ok_and(loose) {
            owner_only(&side)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_file(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// The state file's companion (`-wal`, `-shm`, ...).
pub(crate) fn side_file(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    std::path::PathBuf::from(s)
}

/// Readable and writable by the owner only.
#[cfg(unix)]
pub(crate) fn owner_only(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
pub(crate) fn owner_only(_path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

impl SqliteStore {
    /// Opens (creating the file and its directory if needed) and migrates.
    pub async fn open(path: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let open_err = |source: sqlx::Error| {
            if crate::damage::is_damage(&source) {
                return crate::damage::damaged(path, &source);
            }
            StoreError::Open {
                location: path.display().to_string(),
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        }
        private_file(path).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // Page cache: see WRITER_CACHE_KIB and READER_CACHE_KIB.
            .pragma("cache_size", READER_CACHE_KIB)
            // 16 KiB pages for new files (an existing file keeps its own): audit rows carry the whole
            // Power BI row, and bigger pages mean fewer b-tree splits and overflow pages per record
            // staged (~10 % more records/s in the stage bench than 4 KiB).
            .page_size(16384)
            // sqlx runs each connection on its own thread and hands rows over a bounded channel:
            // with its default of 50 the two threads take turns every 50 rows of a 10,000-row
            // mirror page. 1,024 rows (~1 MB of VENDOR rows) lets the SQLite thread run ahead.
            .row_buffer_size(1024)
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // Checkpoints every 4,000 WAL pages (64 MiB) rather than 1,000: a page rewritten by
            // several staged batches between two checkpoints is copied into the file once, and the
            // checkpoints' fsyncs come a quarter as often (1-2 % less CPU a record, BENCHMARKS.md
            // "Session 6"). The WAL file grows to that size on disk.
            .connect_with(
                opts.clone()
                    .pragma("cache_size", WRITER_CACHE_KIB)
                    .pragma("wal_autocheckpoint", "4000"),
            )
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(source)
                    if crate::damage::is_damage(&source) =>
                {
                    crate::damage::damaged(path, &source)
                }
                e => StoreError::Migrate(e),
            })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(3)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        Ok(SqliteStore {
            pool,
            writer,
            clock,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The underlying pool of readers (tests and maintenance tools).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The one connection every write goes through (tests and maintenance tools).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn close_pools(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Nothing to do: SQLite's planner uses the key index without statistics.
    async fn after_stage(&self, _rows: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

crate::backend::impl_store!(
    SqliteStore,
    Sqlite,
    SqliteConnection,
    lock = "",
    backend = "sqlite",
    anonymous_placeholders = true
);
