//! A process killed with SIGKILL while staging leaves a consistent store: every page is wholly
//! present or wholly absent, and the audit chain verifies.
//!
//! The test re-executes its own binary in "stager" mode (env `ML_STORE_STAGER_DB`), which stages
//! large pages in a loop and prints a line once the first page is committed; the parent kills it
//! right after reading that line, i.e. while the next page is being staged.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ml_store::*;

const STAGER_ENV: &str = "ML_STORE_STAGER_DB";
const READY: &str = "STAGER_READY";
const PAGE: usize = 50_000;
const TEST_NAME: &str = "sigkill_during_staging_leaves_consistent_store";

fn cursor_for(page: usize) -> CursorPos {
    CursorPos {
        when_modified: format!("2026-01-01T00:00:00.{page:06}"),
        recordno: ((page + 1) * PAGE) as i64,
    }
}

fn stager(path: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = open(&StoreLocation::Sqlite(path.to_path_buf()))
            .await
            .unwrap();
        store.ensure_connection("acme").await.unwrap();
        let run = store.begin_run("acme", "manual").await.unwrap();
        // Bounded, so a stager orphaned by a failing parent still ends.
        for p in 0usize..40 {
            let records = (0..PAGE)
                .map(|i| {
                    let n = p * PAGE + i;
                    StagedRecord {
                        key: format!("{n:09}"),
                        when_modified: Some("2026-01-01T00:00:00".into()),
                        source_hash: format!("{n:064x}"),
                        row_json: format!(
                            "{{\"RECORDNO\":{n},\"AMOUNT\":\"{n}.25\",\"MEMO\":\"line {n}\"}}"
                        ),
                    }
                })
                .collect();
            store
                .stage_page(StagePage {
                    connection: "acme".into(),
                    run,
                    stream: "GLENTRY".into(),
                    mode: StageMode::Append,
                    records,
                    deletes: vec![],
                    failed: vec![],
                    pending_cursor: Some(cursor_for(p)),
                })
                .await
                .unwrap();
            if p == 0 {
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{READY}").unwrap();
                out.flush().unwrap();
            }
        }
    });
}

#[test]
fn sigkill_during_staging_leaves_consistent_store() {
    if let Some(path) = std::env::var_os(STAGER_ENV) {
        stager(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(STAGER_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("stager exited before it was ready")
            .unwrap();
        // libtest prints "test NAME ... " without a newline before the test's own output.
        if line.contains(READY) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the stager must have been killed");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = open(&StoreLocation::Sqlite(path.clone())).await.unwrap();
        let mirror = store.mirror_count("acme", "GLENTRY").await.unwrap() as usize;
        let outbox = store.outbox_count("acme", "GLENTRY").await.unwrap() as usize;
        let verify = store.audit_verify("acme").await.unwrap();
        assert!(verify.ok, "{verify:?}");
        let audit = verify.entries_checked as usize;
        assert!(
            mirror >= PAGE,
            "the first page was committed before the kill"
        );
        assert_eq!(
            mirror % PAGE,
            0,
            "a page is wholly present or absent: mirror {mirror}"
        );
        assert_eq!(outbox, mirror, "one outbox row per staged record");
        assert_eq!(audit, mirror, "one audit entry per staged record");
        let pages = mirror / PAGE;
        let cursor = store.cursor("acme", "GLENTRY").await.unwrap().unwrap();
        assert_eq!(
            cursor.pending,
            Some(cursor_for(pages - 1)),
            "cursor moved with its page"
        );
        // The last committed page's rows are all there, the next page's none.
        let last = store
            .mirror_keys_page(
                "acme",
                "GLENTRY",
                Some(&format!("{:09}", pages * PAGE - 2)),
                10,
            )
            .await
            .unwrap();
        assert_eq!(last, vec![format!("{:09}", pages * PAGE - 1)]);
        eprintln!("after SIGKILL: {pages} whole page(s) of {PAGE} records present");
        store.close().await;
    });
}
