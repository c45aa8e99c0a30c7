//! Telling a damaged SQLite state file from other failures, and the one error that says so with
//! the fix. Opening the store and restoring a backup both need it.

use std::path::Path;

use crate::StoreError;

/// SQLite's verdicts on a file that is not, or no longer, a whole database: SQLITE_CORRUPT (11),
/// SQLITE_NOTADB (26), SQLITE_IOERR_SHORT_READ (522: the file ends before a page it lists, as a
/// truncated copy does), and their texts.
pub(crate) fn is_damage(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = e
        && matches!(db.code().as_deref(), Some("11" | "26" | "522"))
    {
        return true;
    }
    let text = e.to_string().to_ascii_lowercase();
    text.contains("file is not a database")
        || text.contains("malformed")
        || text.contains("disk image")
        || text.contains("file is encrypted")
}

/// The error for a damaged state file: said once, with the fix.
pub(crate) fn damaged(path: &Path, e: &sqlx::Error) -> StoreError {
    StoreError::Damaged {
        location: path.display().to_string(),
        detail: e.to_string(),
    }
}
