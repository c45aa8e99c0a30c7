//! Backing up and restoring a SQLite state store, and telling a damaged file from other failures.
//!
//! A backup is SQLite's `VACUUM INTO`: a consistent copy taken while the store is open (readers and
//! the writer may go on), compacted, written to a new file. A restore checks the copy's integrity
//! first, then puts it in place of the state file in one rename, with the old WAL and shared-memory
//! files removed (they belong to the file being replaced). PostgreSQL stores are backed up with the
//! database's own tools (`pg_dump`, `pg_restore`).

use std::path::Path;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::damage::{damaged, is_damage};
use crate::sqlite::{owner_only, side_file};
use crate::{SqliteStore, StoreError};

impl SqliteStore {
    /// Writes a consistent, compacted copy of the store to `to` (which must not exist yet), readable
    /// by its owner only.
    pub async fn backup_to(&self, to: &Path) -> Result<u64, StoreError> {
        if to.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists; choose a new file for the backup",
                to.display()
            )));
        }
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("{} is not a UTF-8 path", to.display())))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(self.writer())
            .await?;
        owner_only(to)?;
        Ok(std::fs::metadata(to)?.len())
    }
}

/// Puts the backup `from` in place of the state file `state` after checking its integrity. The
/// store must not be open anywhere (no `run`, `sync` or other command using it).
pub async fn restore_sqlite(from: &Path, state: &Path) -> Result<(), StoreError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(from)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| {
            if is_damage(&e) {
                damaged(from, &e)
            } else {
                StoreError::Db(e)
            }
        })?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| {
            if is_damage(&e) {
                damaged(from, &e)
            } else {
                StoreError::Db(e)
            }
        })?;
    drop(conn);
    if verdict != "ok" {
        return Err(StoreError::Damaged {
            location: from.display().to_string(),
            detail: format!("integrity check: {verdict}"),
        });
    }
    let staged = side_file(state, ".restoring");
    std::fs::copy(from, &staged)?;
    owner_only(&staged)?;
    for side in ["-wal", "-shm"] {
        match std::fs::remove_file(side_file(state, side)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::rename(&staged, state)?;
    Ok(())
}
