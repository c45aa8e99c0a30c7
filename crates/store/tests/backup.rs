//! A damaged SQLite state file is said once, with the fix; a backup taken while the store is open
//! restores it, after an integrity check.

use std::sync::Arc;

use ml_store::{SqliteStore, Store as _, StoreError, SystemClock};

async fn open(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(path, Arc::new(SystemClock)).await
}

#[tokio::test]
async fn a_truncated_store_is_named_damaged_once_and_a_backup_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.sqlite");
    let store = open(&state).await.unwrap();
    store.ensure_connection("acme").await.unwrap();
    let backup = dir.path().join("backup.sqlite");
    let bytes = store.backup_to(&backup).await.unwrap();
    assert!(bytes > 0);
    assert!(
        store.backup_to(&backup).await.is_err(),
        "an existing file is never overwritten"
    );
    store.close().await;

    // Truncated (a full disk, a bad copy): the first page survives, the rest is gone.
    let keep = std::fs::read(&state).unwrap()[..100].to_vec();
    std::fs::write(&state, keep).unwrap();
    let _ = std::fs::remove_file(dir.path().join("state.sqlite-wal"));
    let err = match open(&state).await {
        Err(e) => e,
        Ok(_) => panic!("a truncated store opened"),
    };
    let text = err.to_string();
    assert!(matches!(err, StoreError::Damaged { .. }), "{text}");
    assert!(text.contains("store restore"), "{text}");
    assert!(!text.contains("writable"), "{text}");

    // A damaged backup is refused before anything is replaced.
    let bad = dir.path().join("bad.sqlite");
    std::fs::write(&bad, b"not a database at all, just text").unwrap();
    assert!(matches!(
        ml_store::backup::restore_sqlite(&bad, &state).await,
        Err(StoreError::Damaged { .. })
    ));

    ml_store::backup::restore_sqlite(&backup, &state)
        .await
        .unwrap();
    let store = open(&state).await.unwrap();
    assert_eq!(store.list_connections().await.unwrap(), vec!["acme"]);
    store.close().await;
}
