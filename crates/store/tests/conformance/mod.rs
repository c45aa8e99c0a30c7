//! The conformance suite: written once, run against every back end (see tests/store.rs).

use std::sync::Arc;
use std::time::Duration;

use ml_store::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::harness::{TestDb, contains};

fn rec(key: &str, version: u32) -> StagedRecord {
    StagedRecord {
        key: key.to_string(),
        when_modified: Some(format!("2026-01-01T00:00:{:02}Z", version % 60)),
        source_hash: format!("hash-{key}-{version}"),
        row_json: format!("{{\"KEY\":\"{key}\",\"V\":{version}}}"),
    }
}

fn page(
    conn: &str,
    run: RunId,
    stream: &str,
    mode: StageMode,
    records: Vec<StagedRecord>,
) -> StagePage {
    StagePage {
        connection: conn.to_string(),
        run,
        stream: stream.to_string(),
        mode,
        records,
        deletes: vec![],
        failed: vec![],
        pending_cursor: None,
    }
}

fn delivery(run: RunId, batch: &str, outcome: DeliveryOutcome, error: Option<&str>) -> Delivery {
    Delivery {
        run,
        batch_id: batch.to_string(),
        request_id: Some(format!("req-{batch}")),
        outcome,
        error: error.map(str::to_string),
    }
}

async fn audit_all(s: &dyn Store, conn: &str) -> Vec<AuditEntry> {
    s.audit_search(&AuditFilter {
        connection: Some(conn.into()),
        limit: Some(100_000),
        ..Default::default()
    })
    .await
    .unwrap()
}

pub async fn connections_and_credentials(db: Arc<TestDb>) {
    let s = &*db.store;
    let a = s.ensure_connection("acme").await.unwrap();
    assert_eq!(s.ensure_connection("acme").await.unwrap(), a, "idempotent");
    s.ensure_connection("globex").await.unwrap();
    assert_eq!(s.list_connections().await.unwrap(), vec!["acme", "globex"]);
    assert!(matches!(
        s.begin_run("nope", "manual").await,
        Err(StoreError::UnknownConnection(_))
    ));

    let key = MasterKey::generate();
    let sealed = seal(
        &key,
        &credential_name("acme", "intacct"),
        &SecretString::from("pw-1".to_string()),
    )
    .unwrap();
    s.put_credential("acme", "intacct", sealed.clone(), json!({"user_id": "ws"}))
        .await
        .unwrap();
    let got = s.get_credential("acme", "intacct").await.unwrap().unwrap();
    assert_eq!(got.sealed, sealed);
    assert_eq!(got.public_fields, json!({"user_id": "ws"}));
    assert_eq!(
        open_credential(&key, "acme/intacct", &got.sealed)
            .unwrap()
            .expose_secret(),
        "pw-1"
    );
    assert!(s.get_credential("acme", "powerbi").await.unwrap().is_none());

    // Overwrite, then replace several in one call.
    let s2 = seal(
        &key,
        "acme/intacct",
        &SecretString::from("pw-2".to_string()),
    )
    .unwrap();
    s.put_credential("acme", "intacct", s2.clone(), json!({}))
        .await
        .unwrap();
    assert_eq!(
        s.get_credential("acme", "intacct")
            .await
            .unwrap()
            .unwrap()
            .sealed,
        s2
    );
    let pb = seal(
        &key,
        "globex/powerbi",
        &SecretString::from("cs".to_string()),
    )
    .unwrap();
    s.put_credential("globex", "powerbi", pb, json!({"client_id": "c"}))
        .await
        .unwrap();
    let all = s.list_credentials().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|c| (c.connection.as_str(), c.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![("acme", "intacct"), ("globex", "powerbi")]
    );
    assert!(s.delete_credential("globex", "powerbi").await.unwrap());
    assert!(!s.delete_credential("globex", "powerbi").await.unwrap());
}

pub async fn key_rotation(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let (old, new, other) = (
        MasterKey::generate(),
        MasterKey::generate(),
        MasterKey::generate(),
    );
    for kind in ["intacct", "powerbi"] {
        let name = credential_name("acme", kind);
        let sealed = seal(&old, &name, &SecretString::from(format!("secret-{kind}"))).unwrap();
        s.put_credential("acme", kind, sealed, json!({}))
            .await
            .unwrap();
    }
    // A wrong "old" key: nothing changes.
    let before = s.list_credentials().await.unwrap();
    let err = rotate_key(s, &other, &new).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Crypto(CryptoError::MixedKeys { .. })),
        "{err}"
    );
    assert_eq!(s.list_credentials().await.unwrap(), before);

    let report = rotate_key(s, &old, &new).await.unwrap();
    assert_eq!(report.rotated, 2);
    for kind in ["intacct", "powerbi"] {
        let c = s.get_credential("acme", kind).await.unwrap().unwrap();
        let name = credential_name("acme", kind);
        assert_eq!(
            open_credential(&new, &name, &c.sealed)
                .unwrap()
                .expose_secret(),
            format!("secret-{kind}")
        );
        let e = open_credential(&old, &name, &c.sealed).unwrap_err();
        assert!(matches!(e, CryptoError::WrongKey { .. }));
        assert!(e.to_string().contains(&new.fingerprint()), "{e}");
    }
    // Re-running after a completed rotation is harmless.
    let again = rotate_key(s, &old, &new).await.unwrap();
    assert_eq!((again.rotated, again.already_new), (0, 2));
}

pub async fn secrets_not_in_clear(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let key = MasterKey::generate();
    let secret = "Zq7-SENTINEL-SECRET-4f1c9e";
    let public = "public-SENTINEL-user-8d2a";
    let sealed = seal(
        &key,
        "acme/intacct",
        &SecretString::from(secret.to_string()),
    )
    .unwrap();
    let dbg = format!("{sealed:?}");
    assert!(
        !dbg.contains(&hex::encode(&sealed.ciphertext)) && !dbg.contains(secret),
        "{dbg}"
    );
    s.put_credential("acme", "intacct", sealed, json!({ "user_id": public }))
        .await
        .unwrap();
    let cred = s.get_credential("acme", "intacct").await.unwrap().unwrap();
    assert!(!format!("{cred:?}").contains(secret));

    let dump = db.dump().await;
    // The scan can see stored data at all (else the next assertion proves nothing)...
    assert!(
        contains(&dump, public.as_bytes()),
        "public field not found in the dump"
    );
    // ...and the secret is not there in clear text.
    assert!(
        !contains(&dump, secret.as_bytes()),
        "secret found in clear text"
    );
    assert!(!format!("{key:?}").contains("bytes: ["));
}

pub async fn runs_lifecycle(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("globex").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    let r2 = s.begin_run("acme", "schedule").await.unwrap();
    let g1 = s.begin_run("globex", "demo").await.unwrap();
    assert!(r1 < r2 && r2 < g1);

    let mut res = StreamResult {
        status: Some(StreamStatus::Ok),
        extracted: 10,
        staged: 10,
        inserted: 7,
        updated: 2,
        unchanged: 1,
        pushed: 9,
        ..Default::default()
    };
    s.record_stream_result(r1, "VENDOR", &res).await.unwrap();
    res.pushed = 10;
    s.record_stream_result(r1, "VENDOR", &res).await.unwrap(); // upsert
    let failed = StreamResult {
        status: Some(StreamStatus::Failed),
        error: Some("Intacct PL04000005: Permission denied. Correction: grant the user read access to APBILL".into()),
        ..Default::default()
    };
    s.record_stream_result(r1, "APBILL", &failed).await.unwrap();
    s.finish_run(r1, RunStatus::Partial, json!({"streams": 2}))
        .await
        .unwrap();
    assert!(matches!(
        s.finish_run(RunId(999_999), RunStatus::Failed, json!({}))
            .await,
        Err(StoreError::UnknownRun(_))
    ));

    let d = s.get_run(r1).await.unwrap().unwrap();
    assert_eq!(d.run.status, RunStatus::Partial);
    assert_eq!(d.run.trigger, "manual");
    assert_eq!(d.run.summary, json!({"streams": 2}));
    assert!(d.run.finished_at.is_some());
    assert_eq!(d.streams.len(), 2);
    assert_eq!(d.streams[0].stream, "APBILL");
    assert_eq!(d.streams[0].result, failed);
    assert_eq!(d.streams[1].result, res);
    assert!(s.get_run(RunId(999_999)).await.unwrap().is_none());

    let listed = s.list_runs(Some("acme"), 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r2, r1]
    );
    assert_eq!(
        s.list_runs(None, 2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![g1, r2]
    );
    let open_runs = s.unfinished_runs("acme").await.unwrap();
    assert_eq!(open_runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2]);
    assert_eq!(open_runs[0].status, RunStatus::Running);

    // A skipped scheduled run is one finished row with its reason, never an unfinished one; a
    // connection not yet known is created for it.
    let skipped = s
        .record_skipped_run("new-conn", "schedule", "credentials refused")
        .await
        .unwrap();
    let d = s.get_run(skipped).await.unwrap().unwrap();
    assert_eq!(d.run.status, RunStatus::Skipped);
    assert_eq!(d.run.trigger, "schedule");
    assert_eq!(d.run.summary, json!({"skipped": "credentials refused"}));
    assert_eq!(d.run.finished_at, Some(d.run.started_at));
    assert!(s.unfinished_runs("new-conn").await.unwrap().is_empty());

    // The console's metrics: runs by status and per-stream sums, in two grouped reads.
    let totals = s.run_totals().await.unwrap();
    let count = |c: &str, st: RunStatus| {
        totals
            .runs
            .iter()
            .find(|r| r.connection == c && r.status == st)
            .map(|r| r.runs)
    };
    assert_eq!(count("acme", RunStatus::Partial), Some(1));
    assert_eq!(count("acme", RunStatus::Running), Some(1));
    assert_eq!(count("new-conn", RunStatus::Skipped), Some(1));
    let vendor = totals
        .streams
        .iter()
        .find(|t| t.connection == "acme" && t.stream == "VENDOR")
        .unwrap();
    assert_eq!(
        (vendor.extracted, vendor.pushed, vendor.failed_runs),
        (10, 10, 0)
    );
    let r1_detail = s.get_run(r1).await.unwrap().unwrap();
    assert_eq!(vendor.last_ok_at, Some(r1_detail.streams[1].updated_at));
    let bills = totals
        .streams
        .iter()
        .find(|t| t.stream == "APBILL")
        .unwrap();
    assert_eq!((bills.failed_runs, bills.last_ok_at), (1, None));

    // The failed stream's full error text is in the audit trail.
    let fails = s
        .audit_search(&AuditFilter {
            connection: Some("acme".into()),
            action: Some(AuditAction::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].error, failed.error);
    assert_eq!(fails[0].stream.as_deref(), Some("APBILL"));
}

pub async fn cursors(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let run = s.begin_run("acme", "manual").await.unwrap();
    assert_eq!(s.cursor("acme", "VENDOR").await.unwrap(), None);
    let pos = |wm: &str, n| CursorPos {
        when_modified: wm.into(),
        recordno: n,
    };
    let mut p = page("acme", run, "VENDOR", StageMode::Replace, vec![rec("1", 1)]);
    p.pending_cursor = Some(pos("2026-01-01T00:00:00", 1));
    s.stage_page(p).await.unwrap();
    assert_eq!(
        s.cursor("acme", "VENDOR").await.unwrap().unwrap(),
        Cursor {
            committed: None,
            pending: Some(pos("2026-01-01T00:00:00", 1))
        }
    );
    s.commit_cursor("acme", "VENDOR").await.unwrap();
    let mut p = page("acme", run, "VENDOR", StageMode::Replace, vec![rec("2", 1)]);
    p.pending_cursor = Some(pos("2026-01-02T00:00:00", 2));
    s.stage_page(p).await.unwrap();
    assert_eq!(
        s.cursor("acme", "VENDOR").await.unwrap().unwrap(),
        Cursor {
            committed: Some(pos("2026-01-01T00:00:00", 1)),
            pending: Some(pos("2026-01-02T00:00:00", 2))
        }
    );
    s.commit_cursor("acme", "VENDOR").await.unwrap();
    s.commit_cursor("acme", "VENDOR").await.unwrap(); // no pending: no change
    assert_eq!(
        s.cursor("acme", "VENDOR").await.unwrap().unwrap(),
        Cursor {
            committed: Some(pos("2026-01-02T00:00:00", 2)),
            pending: None
        }
    );
    assert_eq!(s.cursor("acme", "CUSTOMER").await.unwrap(), None);
    s.reset_cursor("acme", "VENDOR").await.unwrap();
    assert_eq!(s.cursor("acme", "VENDOR").await.unwrap(), None);
}

pub async fn staging_append_classifies(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    let sum = s
        .stage_page(page(
            "acme",
            r1,
            "GLENTRY",
            StageMode::Append,
            vec![rec("1", 1), rec("2", 1), rec("3", 1)],
        ))
        .await
        .unwrap();
    assert_eq!(
        sum,
        StageSummary {
            inserted: 3,
            ..Default::default()
        }
    );
    assert_eq!(s.outbox_count("acme", "GLENTRY").await.unwrap(), 3);

    let r2 = s.begin_run("acme", "manual").await.unwrap();
    let mut p = page(
        "acme",
        r2,
        "GLENTRY",
        StageMode::Append,
        vec![rec("1", 1), rec("2", 2), rec("4", 1)],
    );
    p.deletes = vec!["3".into(), "never-existed".into()];
    p.failed = vec![FailedRecord {
        key: "5".into(),
        when_modified: None,
        source_hash: None,
        error: "AMOUNT '12,5' is not a decimal".into(),
    }];
    let sum = s.stage_page(p).await.unwrap();
    assert_eq!(
        sum,
        StageSummary {
            inserted: 1,
            updated: 1,
            unchanged: 1,
            deleted: 1,
            failed: 1
        }
    );
    // Unchanged records get no outbox row; the failed one is never pushed.
    let out = s.outbox_batch("acme", "GLENTRY", 0, 100).await.unwrap();
    assert_eq!(
        out.iter()
            .map(|o| (o.key.as_str(), o.row_json.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("1", "{\"KEY\":\"1\",\"V\":1}"),
            ("2", "{\"KEY\":\"2\",\"V\":1}"),
            ("3", "{\"KEY\":\"3\",\"V\":1}"),
            ("2", "{\"KEY\":\"2\",\"V\":2}"),
            ("4", "{\"KEY\":\"4\",\"V\":1}"),
        ]
    );
    // Paging by id.
    let next = s
        .outbox_batch("acme", "GLENTRY", out[1].id, 2)
        .await
        .unwrap();
    assert_eq!(next, out[2..4].to_vec());
    assert_eq!(s.mirror_count("acme", "GLENTRY").await.unwrap(), 3);

    let entries = run_entries(s, r2).await;
    assert_eq!(
        key_action_row(&entries[..4]),
        vec![
            // Changed records, then deletes, then failures, each in key order.
            (
                "2",
                AuditAction::Updated,
                Some(rec("2", 2).row_json.as_str())
            ),
            (
                "4",
                AuditAction::Inserted,
                Some(rec("4", 1).row_json.as_str())
            ),
            ("3", AuditAction::Deleted, None),
            ("5", AuditAction::Failed, None),
        ]
    );
    // Then one entry for the unchanged record, with no key: its row is in the entry that staged it.
    assert_eq!(entries.len(), 5);
    assert_eq!(
        (entries[4].action, entries[4].record_key.as_deref()),
        (AuditAction::Unchanged, None)
    );
    assert_eq!(
        entries[3].error.as_deref(),
        Some("AMOUNT '12,5' is not a decimal")
    );
    assert_eq!(entries[0].source_hash.as_deref(), Some("hash-2-2"));
    // Each outbox row points at its staging entry.
    let staged_seq = entries[0].seq;
    assert!(
        out.iter()
            .any(|o| o.key == "2" && o.audit_seq == staged_seq)
    );

    // A key twice in one page: classified in order, mirror holds the last. Records are chained in
    // key order, a key's records in page order, and deletes after them.
    let r3 = s.begin_run("acme", "manual").await.unwrap();
    let mut p = page(
        "acme",
        r3,
        "GLENTRY",
        StageMode::Append,
        vec![rec("9", 1), rec("8", 1), rec("9", 2)],
    );
    p.deletes = vec!["8".into()];
    let sum = s.stage_page(p).await.unwrap();
    assert_eq!((sum.inserted, sum.updated, sum.deleted), (2, 1, 1));
    assert_eq!(
        key_action_row(&run_entries(s, r3).await),
        vec![
            (
                "8",
                AuditAction::Inserted,
                Some(rec("8", 1).row_json.as_str())
            ),
            (
                "9",
                AuditAction::Inserted,
                Some(rec("9", 1).row_json.as_str())
            ),
            (
                "9",
                AuditAction::Updated,
                Some(rec("9", 2).row_json.as_str())
            ),
            ("8", AuditAction::Deleted, None),
        ]
    );
    let m = s
        .mirror_page("acme", "GLENTRY", Some("8"), 10)
        .await
        .unwrap();
    assert_eq!(
        m,
        vec![MirrorRow {
            key: "9".into(),
            row_json: rec("9", 2).row_json
        }]
    );
    assert!(matches!(
        s.stage_page(page(
            "acme",
            r3,
            "GLENTRY",
            StageMode::Append,
            vec![rec("", 1)]
        ))
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(s.audit_verify("acme").await.unwrap().ok);
}

/// The digest of an `unchanged` summary as its documentation gives it, computed independently:
/// SHA-256 of "mlc-unchanged-v1" and each (key, source hash) pair, every part length-prefixed.
fn unchanged_digest(pairs: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in std::iter::once("mlc-unchanged-v1").chain(pairs.iter().flat_map(|(k, v)| [*k, *v]))
    {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The `detail` of an `unchanged` summary entry, parsed.
fn summary_detail(e: &AuditEntry) -> serde_json::Value {
    assert_eq!(
        (e.action, e.record_key.as_deref()),
        (AuditAction::Unchanged, None),
        "{e:?}"
    );
    serde_json::from_str(e.detail.as_deref().expect("a summary has a detail")).unwrap()
}

/// A page staged again unchanged (a stream read whole every run, like GL balances) adds one
/// `unchanged` entry with the count and a digest of its keys and hashes, not one entry a record;
/// a record's history stays its real changes, the mirror and replay still read the rows from the
/// entries that staged them, and the chain verifies, also after pruning.
pub async fn staging_unchanged_records_are_summarised(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let stream = "GLACCOUNTBALANCE";
    let recs = || vec![rec("c", 1), rec("a", 1), rec("b", 1)];
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page("acme", r1, stream, StageMode::Replace, recs()))
        .await
        .unwrap();
    assert_eq!(run_entries(s, r1).await.len(), 3);

    // The same page again: one summary entry for the page.
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    let sum = s
        .stage_page(page("acme", r2, stream, StageMode::Replace, recs()))
        .await
        .unwrap();
    assert_eq!(
        sum,
        StageSummary {
            unchanged: 3,
            ..Default::default()
        }
    );
    let entries = run_entries(s, r2).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].stream.as_deref(), Some(stream));
    assert_eq!(entries[0].row_json, None);
    assert_eq!(
        summary_detail(&entries[0]),
        json!({
            "count": 3,
            "first_key": "a",
            "last_key": "c",
            "digest": unchanged_digest(&[("a", "hash-a-1"), ("b", "hash-b-1"), ("c", "hash-c-1")]),
        })
    );
    assert!(s.audit_verify("acme").await.unwrap().ok);

    // A record's history is its staging, not a line per unchanged run.
    let history = |key: &str| {
        let f = AuditFilter {
            connection: Some("acme".into()),
            record_key: Some(key.into()),
            ..Default::default()
        };
        async move {
            s.audit_search(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.run.unwrap(), e.action))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(history("b").await, vec![(r1, AuditAction::Inserted)]);

    // Mixed: a changed, d new, b unchanged. The mirror keeps reading b from its first entry.
    let r3 = s.begin_run("acme", "manual").await.unwrap();
    let sum = s
        .stage_page(page(
            "acme",
            r3,
            stream,
            StageMode::Replace,
            vec![rec("d", 1), rec("b", 1), rec("a", 2)],
        ))
        .await
        .unwrap();
    assert_eq!((sum.inserted, sum.updated, sum.unchanged), (1, 1, 1));
    let entries = run_entries(s, r3).await;
    assert_eq!(
        key_action_row(&entries[..2]),
        vec![
            (
                "a",
                AuditAction::Updated,
                Some(rec("a", 2).row_json.as_str())
            ),
            (
                "d",
                AuditAction::Inserted,
                Some(rec("d", 1).row_json.as_str())
            ),
        ]
    );
    assert_eq!(entries.len(), 3);
    assert_eq!(summary_detail(&entries[2])["count"], 1);
    assert_eq!(summary_detail(&entries[2])["first_key"], "b");
    let rows = s.mirror_page("acme", stream, None, 100).await.unwrap();
    let want = |v: &[(&str, u32)]| {
        v.iter()
            .map(|(k, n)| MirrorRow {
                key: k.to_string(),
                row_json: rec(k, *n).row_json,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(rows, want(&[("a", 2), ("b", 1), ("c", 1), ("d", 1)]));
    // Replay as of each run still finds every row.
    let as_of = |run| async move {
        s.rows_as_of_run("acme", stream, run, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.row_json))
            .collect::<Vec<_>>()
    };
    let pairs = |v: Vec<MirrorRow>| {
        v.into_iter()
            .map(|m| (m.key, m.row_json))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        as_of(r2).await,
        pairs(want(&[("a", 1), ("b", 1), ("c", 1)]))
    );
    assert_eq!(
        as_of(r3).await,
        pairs(want(&[("a", 2), ("b", 1), ("c", 1), ("d", 1)]))
    );

    // Pruning everything so far copies the rows into the mirror; the chain verifies from its
    // anchor, and staging unchanged again after the prune is summarised and verifies too.
    db.clock.advance(chrono::Duration::days(1));
    let pruned = s.audit_prune("acme", db.clock.now()).await.unwrap();
    assert!(pruned.deleted >= 7, "{pruned:?}");
    assert_eq!(
        s.mirror_page("acme", stream, None, 100).await.unwrap(),
        rows
    );
    let r4 = s.begin_run("acme", "manual").await.unwrap();
    let sum = s
        .stage_page(page(
            "acme",
            r4,
            stream,
            StageMode::Replace,
            vec![rec("a", 2), rec("b", 1), rec("c", 1), rec("d", 1)],
        ))
        .await
        .unwrap();
    assert_eq!(sum.unchanged, 4);
    let entries = run_entries(s, r4).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(summary_detail(&entries[0])["count"], 4);
    assert_eq!(
        s.mirror_page("acme", stream, None, 100).await.unwrap(),
        rows
    );
    assert!(s.audit_verify("acme").await.unwrap().ok);

    // The summary is chained like every entry: editing its count is caught.
    let seq = entries[0].seq;
    db.exec(&format!(
        "UPDATE audit SET detail = replace(detail, '\"count\":4', '\"count\":5') \
         WHERE connection_id = {} AND seq = {seq}",
        cid_of("acme")
    ))
    .await;
    assert_eq!(
        s.audit_verify("acme").await.unwrap().first_bad.map(|b| b.0),
        Some(seq)
    );
}

pub async fn outbox_delivery(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    let recs: Vec<_> = (1..=6).map(|i| rec(&format!("k{i}"), 1)).collect();
    s.stage_page(page("acme", r1, "GLENTRY", StageMode::Append, recs))
        .await
        .unwrap();
    let rows = s.outbox_batch("acme", "GLENTRY", 0, 100).await.unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();

    // Batch A accepted: rows gone, table grows.
    let n = s
        .mark_delivered(
            "acme",
            "GLENTRY",
            &ids[0..2],
            &delivery(r1, "A", DeliveryOutcome::Accepted, None),
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Batch B ambiguous: rows stay, flagged, not offered again.
    s.mark_delivered(
        "acme",
        "GLENTRY",
        &ids[2..4],
        &delivery(r1, "B", DeliveryOutcome::Ambiguous, None),
    )
    .await
    .unwrap();
    // Batch C failed: rows stay, available for retry.
    let err = "Power BI 400 InvalidRequest: column 'AMOUNT' expects Double";
    s.mark_delivered(
        "acme",
        "GLENTRY",
        &ids[4..6],
        &delivery(r1, "C", DeliveryOutcome::Failed, Some(err)),
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_count("acme", "GLENTRY").await.unwrap(), 4);
    let pending = s.outbox_batch("acme", "GLENTRY", 0, 100).await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids[4..6].to_vec()
    );
    let amb = s.ambiguous_rows("acme", "GLENTRY", 0, 100).await.unwrap();
    assert_eq!(
        amb.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );
    assert!(
        amb.iter()
            .all(|r| r.ambiguous && r.batch_id.as_deref() == Some("B"))
    );
    let st = s.stream_state("acme", "GLENTRY").await.unwrap();
    assert_eq!((st.table_rows, st.last_loaded_run), (2, Some(r1)));

    // The check says batch B did not land: clear, and it is offered again.
    s.clear_ambiguous("acme", "GLENTRY", &ids[2..3])
        .await
        .unwrap();
    assert_eq!(
        s.outbox_batch("acme", "GLENTRY", 0, 100)
            .await
            .unwrap()
            .len(),
        3
    );
    s.mark_ambiguous("acme", "GLENTRY", &ids[2..3], "B2")
        .await
        .unwrap();
    assert_eq!(
        s.ambiguous_rows("acme", "GLENTRY", 0, 100).await.unwrap()[0]
            .batch_id
            .as_deref(),
        Some("B2")
    );

    // Audit entries per row per delivery, with batch and request ids and the error.
    let pushed = s
        .audit_search(&AuditFilter {
            connection: Some("acme".into()),
            action: Some(AuditAction::PushFailed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pushed.len(), 2);
    assert_eq!(pushed[0].error.as_deref(), Some(err));
    assert_eq!(pushed[0].batch_id.as_deref(), Some("C"));
    assert_eq!(pushed[0].request_id.as_deref(), Some("req-C"));

    // Replay: exactly the rows accepted in r1.
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    s.mark_delivered(
        "acme",
        "GLENTRY",
        &ids[4..6],
        &delivery(r2, "D", DeliveryOutcome::Accepted, None),
    )
    .await
    .unwrap();
    let replay = s.rows_pushed_by_run(r1, "GLENTRY", 0, 100).await.unwrap();
    assert_eq!(
        replay
            .iter()
            .map(|r| (r.key.as_str(), r.row_json.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("k1", rows[0].row_json.as_str()),
            ("k2", rows[1].row_json.as_str())
        ]
    );
    let replay2 = s.rows_pushed_by_run(r2, "GLENTRY", 0, 100).await.unwrap();
    assert_eq!(
        replay2.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        vec!["k5", "k6"]
    );
    let paged = s
        .rows_pushed_by_run(r2, "GLENTRY", replay2[0].id, 100)
        .await
        .unwrap();
    assert_eq!(paged, replay2[1..].to_vec());
    assert_eq!(
        s.stream_state("acme", "GLENTRY").await.unwrap().table_rows,
        4
    );
    assert_eq!(
        s.mark_delivered(
            "acme",
            "GLENTRY",
            &[],
            &delivery(r2, "E", DeliveryOutcome::Accepted, None)
        )
        .await
        .unwrap(),
        0
    );
    assert!(s.audit_verify("acme").await.unwrap().ok);
}

pub async fn replace_mode_and_mirror(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    assert_eq!(
        s.stream_state("acme", "VENDOR").await.unwrap(),
        StreamState::default()
    );
    let recs: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|k| rec(k, 1))
        .collect();
    s.stage_page(page("acme", r1, "VENDOR", StageMode::Replace, recs))
        .await
        .unwrap();
    assert_eq!(
        s.outbox_count("acme", "VENDOR").await.unwrap(),
        0,
        "no outbox in replace mode"
    );
    assert!(s.stream_state("acme", "VENDOR").await.unwrap().dirty);

    // The versions the mirror holds, for the keys it has (and none for one it lacks).
    let mut versions = s
        .mirror_versions(
            "acme",
            "VENDOR",
            &["c".to_string(), "zz".to_string(), "a".to_string()],
        )
        .await
        .unwrap();
    versions.sort();
    assert_eq!(
        versions,
        vec![
            ("a".to_string(), Some("2026-01-01T00:00:01Z".to_string())),
            ("c".to_string(), Some("2026-01-01T00:00:01Z".to_string())),
        ]
    );
    assert!(
        s.mirror_versions("acme", "GLENTRY", &["a".to_string()])
            .await
            .unwrap()
            .is_empty(),
        "another stream's mirror"
    );

    // Keyset paging over the mirror.
    let p1 = s.mirror_page("acme", "VENDOR", None, 2).await.unwrap();
    let p2 = s
        .mirror_page("acme", "VENDOR", Some(&p1[1].key), 2)
        .await
        .unwrap();
    let p3 = s
        .mirror_page("acme", "VENDOR", Some(&p2[1].key), 2)
        .await
        .unwrap();
    let keys: Vec<_> = p1
        .iter()
        .chain(&p2)
        .chain(&p3)
        .map(|r| r.key.as_str())
        .collect();
    assert_eq!(keys, vec!["a", "b", "c", "d", "e"]);
    assert_eq!(p1[0].row_json, rec("a", 1).row_json);
    assert_eq!(
        s.mirror_keys_page("acme", "VENDOR", Some("b"), 2)
            .await
            .unwrap(),
        vec!["c", "d"]
    );
    assert_eq!(s.mirror_count("acme", "VENDOR").await.unwrap(), 5);

    // The same pages as texts: the page's rows, None past the end.
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    while let Some(p) = s
        .mirror_rows("acme", "VENDOR", after.as_deref(), 2)
        .await
        .unwrap()
    {
        let mut rows: Vec<String> = p.rows().map(str::to_string).collect();
        rows.sort();
        assert_eq!(rows.len(), p.len());
        after = Some(p.cursor.clone());
        pages.push(rows);
    }
    let by_page = |keys: &[&str]| {
        let mut rows: Vec<String> = keys.iter().map(|k| rec(k, 1).row_json).collect();
        rows.sort();
        rows
    };
    // Staged in key order, so the order rows were added (SQLite's) is key order too.
    assert_eq!(
        pages,
        vec![by_page(&["a", "b"]), by_page(&["c", "d"]), by_page(&["e"])]
    );
    assert!(
        s.mirror_rows("acme", "NO_SUCH_STREAM", None, 2)
            .await
            .unwrap()
            .is_none(),
        "an empty mirror has no page"
    );

    let ok = |b: &str| delivery(r1, b, DeliveryOutcome::Accepted, None);
    s.mark_reloaded("acme", "VENDOR", r1, 5, &[ok("R1"), ok("R2")])
        .await
        .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert_eq!(
        st,
        StreamState {
            dirty: false,
            last_loaded_run: Some(r1),
            table_rows: 5,
            mirror_version: st.mirror_version,
            rebuild: None,
        }
    );
    // Nothing changed: stays clean.
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r2,
        "VENDOR",
        StageMode::Replace,
        vec![rec("a", 1)],
    ))
    .await
    .unwrap();
    assert!(!s.stream_state("acme", "VENDOR").await.unwrap().dirty);
    // A delete makes it dirty; a failed reload keeps it dirty.
    let mut p = page("acme", r2, "VENDOR", StageMode::Replace, vec![]);
    p.deletes = vec!["e".into()];
    s.stage_page(p).await.unwrap();
    assert!(s.stream_state("acme", "VENDOR").await.unwrap().dirty);
    s.mark_reloaded(
        "acme",
        "VENDOR",
        r2,
        4,
        &[
            delivery(r2, "R3", DeliveryOutcome::Accepted, None),
            delivery(r2, "R4", DeliveryOutcome::Failed, Some("429")),
        ],
    )
    .await
    .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(st.dirty);
    assert_eq!(st.last_loaded_run, Some(r1));
    let reload_entries = s
        .audit_search(&AuditFilter {
            connection: Some("acme".into()),
            run: Some(r2),
            action: Some(AuditAction::PushFailed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reload_entries.len(), 1);
    assert_eq!(reload_entries[0].batch_id.as_deref(), Some("R4"));
    assert!(s.audit_verify("acme").await.unwrap().ok);
}

pub async fn replay_as_of_run(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Replace,
        vec![rec("a", 1), rec("b", 1), rec("c", 1)],
    ))
    .await
    .unwrap();
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    let mut p = page(
        "acme",
        r2,
        "VENDOR",
        StageMode::Replace,
        vec![rec("a", 1), rec("b", 2), rec("d", 1)],
    );
    p.deletes = vec!["c".into()];
    s.stage_page(p).await.unwrap();
    let r3 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r3,
        "VENDOR",
        StageMode::Replace,
        vec![rec("c", 3)],
    ))
    .await
    .unwrap();

    let as_of = |run| async move {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s
                .rows_as_of_run("acme", "VENDOR", run, after.as_deref(), 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            out.extend(page.into_iter().map(|r| (r.key, r.row_json)));
        }
        out
    };
    let row = |k: &str, v| (k.to_string(), rec(k, v).row_json);
    assert_eq!(as_of(r1).await, vec![row("a", 1), row("b", 1), row("c", 1)]);
    assert_eq!(as_of(r2).await, vec![row("a", 1), row("b", 2), row("d", 1)]);
    assert_eq!(
        as_of(r3).await,
        vec![row("a", 1), row("b", 2), row("c", 3), row("d", 1)]
    );
    // The current mirror agrees with the latest replay.
    let mirror: Vec<_> = s
        .mirror_page("acme", "VENDOR", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.row_json))
        .collect();
    assert_eq!(mirror, as_of(r3).await);
}

pub async fn dataset_state(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    assert_eq!(s.dataset("acme").await.unwrap(), None);
    let mut d = DatasetState {
        group_id: "g1".into(),
        dataset_id: "d1".into(),
        schema_json: "{\"tables\":[]}".into(),
        schema_hash: "h1".into(),
    };
    s.save_dataset("acme", &d).await.unwrap();
    assert_eq!(s.dataset("acme").await.unwrap().as_ref(), Some(&d));
    d.schema_hash = "h2".into();
    d.dataset_id = "d2".into();
    s.save_dataset("acme", &d).await.unwrap();
    assert_eq!(s.dataset("acme").await.unwrap(), Some(d));
}

pub async fn dataset_migration(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    assert_eq!(s.dataset_migration("acme").await.unwrap(), None);
    let mut m = DatasetMigration {
        group_id: "g1".into(),
        from_dataset_id: "d1".into(),
        to_dataset_id: None,
        started_at: db.clock.now(),
    };
    s.save_dataset_migration("acme", Some(&m)).await.unwrap();
    assert_eq!(
        s.dataset_migration("acme").await.unwrap().as_ref(),
        Some(&m)
    );
    m.to_dataset_id = Some("d2".into());
    s.save_dataset_migration("acme", Some(&m)).await.unwrap();
    assert_eq!(
        s.dataset_migration("acme").await.unwrap().as_ref(),
        Some(&m)
    );
    s.save_dataset_migration("acme", None).await.unwrap();
    assert_eq!(s.dataset_migration("acme").await.unwrap(), None);
}

pub async fn push_history(db: Arc<TestDb>) {
    let s = &*db.store;
    let t0 = db.clock.now();
    let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
    let posts = [
        PushPost {
            at: at(0),
            rows: 10_000,
        },
        PushPost {
            at: at(30),
            rows: 0,
        },
        PushPost {
            at: at(90),
            rows: 2_500,
        },
    ];
    s.record_posts("ds-1", &posts, at(-3600)).await.unwrap();
    s.record_posts(
        "ds-2",
        &[PushPost {
            at: at(10),
            rows: 7,
        }],
        at(-3600),
    )
    .await
    .unwrap();
    assert_eq!(s.recent_posts("ds-1", at(0)).await.unwrap(), posts.to_vec());
    assert_eq!(
        s.recent_posts("ds-1", at(1)).await.unwrap(),
        posts[1..].to_vec()
    );
    assert_eq!(
        s.recent_posts("ds-2", at(-10)).await.unwrap(),
        vec![PushPost {
            at: at(10),
            rows: 7
        }],
        "datasets are kept apart"
    );
    // Recording forgets what is older than asked, for that dataset only.
    s.record_posts(
        "ds-1",
        &[PushPost {
            at: at(4000),
            rows: 1,
        }],
        at(60),
    )
    .await
    .unwrap();
    assert_eq!(
        s.recent_posts("ds-1", at(-10)).await.unwrap(),
        vec![
            posts[2],
            PushPost {
                at: at(4000),
                rows: 1
            }
        ]
    );
    assert_eq!(s.recent_posts("ds-2", at(-10)).await.unwrap().len(), 1);
}

pub async fn leases(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("globex").await.unwrap();
    let ttl = Duration::from_secs(60);
    let a = s
        .try_acquire_lease("acme", "worker-a", ttl)
        .await
        .unwrap()
        .expect("free lease");
    assert_eq!(a.worker_id, "worker-a");
    assert_eq!(a.expires_at, db.clock.now() + chrono::Duration::seconds(60));
    assert!(
        s.try_acquire_lease("acme", "worker-b", ttl)
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    assert!(
        s.try_acquire_lease("globex", "worker-b", ttl)
            .await
            .unwrap()
            .is_some(),
        "other connection"
    );
    assert_eq!(
        s.current_lease("acme").await.unwrap().unwrap().token,
        a.token
    );

    db.clock.advance(chrono::Duration::seconds(50));
    let renewed = s
        .renew_lease("acme", &a.token, ttl)
        .await
        .unwrap()
        .expect("still ours");
    db.clock.advance(chrono::Duration::seconds(50));
    assert!(
        s.try_acquire_lease("acme", "worker-b", ttl)
            .await
            .unwrap()
            .is_none(),
        "renewed"
    );
    assert!(renewed.expires_at > a.expires_at);

    // Worker A dies: after expiry B takes over, and A's token no longer works.
    db.clock.advance(chrono::Duration::seconds(11));
    let b = s
        .try_acquire_lease("acme", "worker-b", ttl)
        .await
        .unwrap()
        .expect("expired lease");
    assert_ne!(b.token, a.token);
    assert!(
        s.renew_lease("acme", &a.token, ttl)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.release_lease("acme", &a.token).await.unwrap());
    assert!(s.release_lease("acme", &b.token).await.unwrap());
    assert!(s.current_lease("acme").await.unwrap().is_none());
    assert!(
        s.try_acquire_lease("acme", "worker-c", ttl)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn leases_race(db: Arc<TestDb>) {
    db.store.ensure_connection("acme").await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = db.store.clone();
            tokio::spawn(async move {
                s.try_acquire_lease("acme", &format!("w{i}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
}

/// A rebuild's pages of mirror rows come back as one text per 500 rows: a page of several texts
/// holds each of its rows once, and its greatest key leads to the next page.
pub async fn mirror_rows_in_parts(db: Arc<TestDb>) {
    let s = &*db.store;
    let keys: Vec<String> = (0..1_201).map(|i| format!("{i:05}")).collect();
    let r = stage_vendors(s, &keys).await;
    let (sizes, seen) = all_mirror_rows(s, 1_000).await;
    assert_eq!(sizes, [1_000, 201]);
    let mut expected: Vec<String> = keys.iter().map(|k| rec(k, 1).row_json).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // A page that is not a whole number of parts (700 = 500 + 200), and a last page one row past
    // a part (501): every row once, pages of exactly the size asked.
    let (sizes, seen) = all_mirror_rows(s, 700).await;
    assert_eq!(sizes, [700, 501]);
    assert_eq!(seen, expected);

    // Rows added after, with keys before all the others, and rows changed in place: a page's order
    // is the back end's (SQLite: the order rows were added), but every row comes once, as it is now.
    let mut later: Vec<StagedRecord> = (0..100).map(|i| rec(&format!("-{i:04}"), 2)).collect();
    later.extend((0..100).map(|i| rec(&format!("{i:05}"), 2)));
    s.stage_page(page("acme", r, "VENDOR", StageMode::Replace, later))
        .await
        .unwrap();
    let (_, seen) = all_mirror_rows(s, 700).await;
    let mut expected: Vec<String> = (0..100)
        .map(|i| rec(&format!("-{i:04}"), 2).row_json)
        .chain(
            keys.iter()
                .enumerate()
                .map(|(i, k)| rec(k, if i < 100 { 2 } else { 1 }).row_json),
        )
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

/// Stages version 1 of `keys` into acme's VENDOR mirror in one page of a new run, returned.
async fn stage_vendors(s: &dyn Store, keys: &[String]) -> RunId {
    s.ensure_connection("acme").await.unwrap();
    let r = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r,
        "VENDOR",
        StageMode::Replace,
        keys.iter().map(|k| rec(k, 1)).collect(),
    ))
    .await
    .unwrap();
    r
}

/// Every page of acme's VENDOR mirror, `limit` rows a page: the pages' sizes and all rows, sorted.
async fn all_mirror_rows(s: &dyn Store, limit: u32) -> (Vec<usize>, Vec<String>) {
    let (mut after, mut sizes, mut rows) = (None::<String>, Vec::new(), Vec::new());
    while let Some(p) = s
        .mirror_rows("acme", "VENDOR", after.as_deref(), limit)
        .await
        .unwrap()
    {
        sizes.push(p.len());
        rows.extend(p.rows().map(str::to_string));
        after = Some(p.cursor.clone());
    }
    rows.sort();
    (sizes, rows)
}

/// Key pages are read a few thousand keys a query, joined: every key once, in bytewise order,
/// pages of the size asked, and a key holding the separator (U+001F) comes back whole.
pub async fn mirror_keys_in_parts(db: Arc<TestDb>) {
    let s = &*db.store;
    let mut keys: Vec<String> = (0..4_500).map(|i| format!("{i}")).collect();
    keys.push("2\u{1f}odd".to_string());
    stage_vendors(s, &keys).await;
    let (mut after, mut seen, mut sizes) = (None::<String>, Vec::new(), Vec::new());
    loop {
        let p = s
            .mirror_keys_page("acme", "VENDOR", after.as_deref(), 3_000)
            .await
            .unwrap();
        let Some(last) = p.last().cloned() else { break };
        sizes.push(p.len());
        seen.extend(p);
        after = Some(last);
    }
    assert_eq!(sizes, [3_000, 1_501]);
    keys.sort();
    assert_eq!(seen, keys, "every key once, in bytewise order");
}

/// Search by key reads the key index up to where it was last brought (the end of a run) and the
/// chain itself after that point: a key's entries from both sides are found, and no other key's or
/// connection's.
pub async fn audit_search_by_key_spans_the_key_index(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("globex").await.unwrap();
    let g = s.begin_run("globex", "manual").await.unwrap();
    s.stage_page(page(
        "globex",
        g,
        "VENDOR",
        StageMode::Append,
        vec![rec("1", 1)],
    ))
    .await
    .unwrap();
    s.finish_run(g, RunStatus::Succeeded, json!({}))
        .await
        .unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Append,
        vec![rec("1", 1), rec("2", 1)],
    ))
    .await
    .unwrap();
    // Indexed here.
    s.finish_run(r1, RunStatus::Succeeded, json!({}))
        .await
        .unwrap();
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    for stream in ["VENDOR", "CUSTOMER"] {
        s.stage_page(page(
            "acme",
            r2,
            stream,
            StageMode::Append,
            vec![rec("1", 2)],
        ))
        .await
        .unwrap();
    }

    let by_key = |stream: Option<&str>, key: &str| {
        let f = AuditFilter {
            connection: Some("acme".into()),
            stream: stream.map(str::to_string),
            record_key: Some(key.into()),
            ..Default::default()
        };
        async move {
            s.audit_search(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.run.unwrap(), e.stream.unwrap(), e.action))
                .collect::<Vec<_>>()
        }
    };
    let key_1 = vec![
        (r1, "VENDOR".to_string(), AuditAction::Inserted),
        (r2, "VENDOR".to_string(), AuditAction::Updated),
        (r2, "CUSTOMER".to_string(), AuditAction::Inserted),
    ];
    assert_eq!(
        by_key(None, "1").await,
        key_1,
        "indexed and unindexed entries"
    );
    assert_eq!(by_key(Some("VENDOR"), "1").await, key_1[..2].to_vec());
    assert_eq!(
        by_key(Some("VENDOR"), "2").await,
        vec![(r1, "VENDOR".to_string(), AuditAction::Inserted)]
    );
    assert!(by_key(None, "3").await.is_empty());
    s.finish_run(r2, RunStatus::Succeeded, json!({}))
        .await
        .unwrap();
    assert_eq!(by_key(None, "1").await, key_1, "all indexed");
    assert_eq!(by_key(Some("CUSTOMER"), "1").await, key_1[2..].to_vec());
}

pub async fn audit_search_and_export(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("globex").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Replace,
        vec![rec("1", 1), rec("2", 1)],
    ))
    .await
    .unwrap();
    db.clock.advance(chrono::Duration::hours(1));
    let t1 = db.clock.now();
    let r2 = s.begin_run("acme", "manual").await.unwrap();
    let mut with_comma = rec("3", 1);
    with_comma.row_json = "{\"NAME\":\"Smith, \\\"J\\\"\"}".into();
    s.stage_page(page(
        "acme",
        r2,
        "CUSTOMER",
        StageMode::Replace,
        vec![rec("1", 2), with_comma],
    ))
    .await
    .unwrap();
    let g = s.begin_run("globex", "manual").await.unwrap();
    s.stage_page(page(
        "globex",
        g,
        "VENDOR",
        StageMode::Replace,
        vec![rec("1", 1)],
    ))
    .await
    .unwrap();

    let f = |f: AuditFilter| async move { s.audit_search(&f).await.unwrap() };
    assert_eq!(
        f(AuditFilter {
            connection: Some("acme".into()),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert_eq!(f(AuditFilter::default()).await.len(), 5);
    assert_eq!(
        f(AuditFilter {
            run: Some(r2),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        f(AuditFilter {
            stream: Some("VENDOR".into()),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    let k1 = f(AuditFilter {
        connection: Some("acme".into()),
        record_key: Some("1".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        k1.iter()
            .map(|e| e.stream.as_deref().unwrap())
            .collect::<Vec<_>>(),
        vec!["VENDOR", "CUSTOMER"]
    );
    assert_eq!(
        f(AuditFilter {
            from: Some(t1),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        f(AuditFilter {
            to: Some(t1),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        f(AuditFilter {
            action: Some(AuditAction::Inserted),
            ..Default::default()
        })
        .await
        .len(),
        5
    );
    let first2 = f(AuditFilter {
        limit: Some(2),
        ..Default::default()
    })
    .await;
    let rest = f(AuditFilter {
        after_id: Some(first2[1].id),
        ..Default::default()
    })
    .await;
    assert_eq!(first2.len() + rest.len(), 5);
    assert!(first2[1].id < rest[0].id);
    let e = &k1[0];
    assert_eq!(e.connection, "acme");
    assert_eq!((e.seq, e.prev_hash.len(), e.hash.len()), (1, 64, 64));
    assert_eq!(e.prev_hash, "0".repeat(64));

    let filter = AuditFilter {
        connection: Some("acme".into()),
        ..Default::default()
    };
    let mut csv = Vec::new();
    assert_eq!(
        export_audit(s, &filter, ExportFormat::Csv, &mut csv)
            .await
            .unwrap(),
        4
    );
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("id,connection,seq,run,"));
    assert!(
        csv.contains("\"{\"\"NAME\"\":\"\"Smith, \\\"\"J\\\"\"\"\"}\""),
        "{csv}"
    );
    let mut jl = Vec::new();
    export_audit(s, &filter, ExportFormat::JsonLines, &mut jl)
        .await
        .unwrap();
    let parsed: Vec<AuditEntry> = String::from_utf8(jl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, f(filter.clone()).await);
}

/// The ids of up to `limit` rows waiting in the outbox of `stream`, oldest first.
pub async fn outbox_ids(s: &dyn Store, conn: &str, stream: &str, limit: u32) -> Vec<i64> {
    s.outbox_batch(conn, stream, 0, limit)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

/// The record keys of `run`'s audit entries, as `audit search --run` finds them.
/// Every audit entry of `run`, in chain order.
pub async fn run_entries(s: &dyn Store, run: RunId) -> Vec<AuditEntry> {
    s.audit_search(&AuditFilter {
        run: Some(run),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Each entry's key, action and row.
pub fn key_action_row(entries: &[AuditEntry]) -> Vec<(&str, AuditAction, Option<&str>)> {
    entries
        .iter()
        .map(|e| {
            (
                e.record_key.as_deref().unwrap(),
                e.action,
                e.row_json.as_deref(),
            )
        })
        .collect()
}

pub async fn run_keys(s: &dyn Store, run: RunId) -> Vec<String> {
    run_entries(s, run)
        .await
        .into_iter()
        .map(|e| e.record_key.unwrap())
        .collect()
}

/// Search and replay by run read the run's span of its connection's chain. Two runs of one
/// connection whose entries interleave, a run of another connection inside that span, and a run
/// that appended nothing: each run finds exactly its own entries.
pub async fn runs_are_found_in_their_span_of_the_chain(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("globex").await.unwrap();
    let a = s.begin_run("acme", "manual").await.unwrap();
    let b = s.begin_run("acme", "manual").await.unwrap();
    let g = s.begin_run("globex", "manual").await.unwrap();
    let idle = s.begin_run("acme", "manual").await.unwrap();
    let stage = |run, conn: &'static str, keys: &[&str]| {
        let records = keys.iter().map(|k| rec(k, 1)).collect();
        async move {
            s.stage_page(page(conn, run, "GLENTRY", StageMode::Append, records))
                .await
                .unwrap()
        }
    };
    stage(a, "acme", &["a1", "a2"]).await;
    stage(b, "acme", &["b1"]).await;
    stage(g, "globex", &["g1"]).await;
    stage(a, "acme", &["a3"]).await;

    let keys_of = |run| run_keys(s, run);
    assert_eq!(keys_of(a).await, ["a1", "a2", "a3"]);
    assert_eq!(keys_of(b).await, ["b1"]);
    assert_eq!(keys_of(g).await, ["g1"]);
    assert!(keys_of(idle).await.is_empty());

    // Deliver every acme row in run b: the pushed entries are b's, whatever run staged the rows.
    let ids = outbox_ids(s, "acme", "GLENTRY", 100).await;
    assert_eq!(ids.len(), 4);
    s.mark_delivered(
        "acme",
        "GLENTRY",
        &ids,
        &delivery(b, "B1", DeliveryOutcome::Accepted, None),
    )
    .await
    .unwrap();
    let replayed = |run| async move {
        s.rows_pushed_by_run(run, "GLENTRY", 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect::<Vec<_>>()
    };
    assert_eq!(replayed(b).await, ["a1", "a2", "b1", "a3"]);
    assert!(replayed(a).await.is_empty());
    assert!(replayed(idle).await.is_empty());
    assert_eq!(keys_of(b).await, ["b1", "a1", "a2", "b1", "a3"]);

    // Paged two at a time, as `audit search --run` pages.
    let mut after_id = None;
    let mut pages = Vec::new();
    loop {
        let page = s
            .audit_search(&AuditFilter {
                run: Some(b),
                after_id,
                limit: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after_id = Some(last.id);
        pages.push(
            page.iter()
                .map(|e| e.record_key.clone().unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(pages, [vec!["b1", "a1"], vec!["a2", "b1"], vec!["a3"]]);
}

async fn chain_of(s: &dyn Store, conn: &str, n: usize) {
    s.ensure_connection(conn).await.unwrap();
    let run = s.begin_run(conn, "manual").await.unwrap();
    let recs = (0..n).map(|i| rec(&format!("k{i:03}"), 1)).collect();
    s.stage_page(page(conn, run, "VENDOR", StageMode::Replace, recs))
        .await
        .unwrap();
}

fn cid_of(conn: &str) -> String {
    format!("(SELECT id FROM connections WHERE name = '{conn}')")
}

pub async fn audit_verify_detects_tampering(db: Arc<TestDb>) {
    let s = &*db.store;
    for conn in ["clean", "edited", "deleted", "swapped", "truncated"] {
        chain_of(s, conn, 5).await;
        let r = s.audit_verify(conn).await.unwrap();
        assert!(
            r.ok && r.entries_checked == 5 && r.first_bad.is_none(),
            "{conn}: {r:?}"
        );
    }
    db.exec(&format!(
        "UPDATE audit SET row_json = '{{\"KEY\":\"k002\",\"V\":666}}' WHERE connection_id = {} AND seq = 3",
        cid_of("edited")
    ))
    .await;
    db.exec(&format!(
        "DELETE FROM audit WHERE connection_id = {} AND seq = 2",
        cid_of("deleted")
    ))
    .await;
    let c = cid_of("swapped");
    db.exec(&format!(
        "UPDATE audit SET seq = -1 WHERE connection_id = {c} AND seq = 2; \
         UPDATE audit SET seq = 2 WHERE connection_id = {c} AND seq = 3; \
         UPDATE audit SET seq = 3 WHERE connection_id = {c} AND seq = -1;"
    ))
    .await;
    db.exec(&format!(
        "DELETE FROM audit WHERE connection_id = {} AND seq = 5",
        cid_of("truncated")
    ))
    .await;

    let bad = |conn: &'static str| async move {
        let r = s.audit_verify(conn).await.unwrap();
        assert!(!r.ok, "{conn}: tampering not detected");
        r.first_bad.unwrap()
    };
    let (seq, why) = bad("edited").await;
    assert_eq!(seq, 3, "{why}");
    assert!(why.contains("edited"), "{why}");
    let (seq, why) = bad("deleted").await;
    assert_eq!(seq, 2, "{why}");
    assert!(why.contains("missing"), "{why}");
    assert_eq!(bad("swapped").await.0, 2);
    assert_eq!(bad("truncated").await.0, 5);
    assert!(
        s.audit_verify("clean").await.unwrap().ok,
        "other chains unaffected"
    );
}

pub async fn audit_prune_keeps_chain_verifiable(db: Arc<TestDb>) {
    let s = &*db.store;
    chain_of(s, "acme", 4).await; // seq 1..=4 at t0
    db.clock.advance(chrono::Duration::days(40));
    let cut = db.clock.now();
    let run = s.begin_run("acme", "manual").await.unwrap();
    s.stage_page(page(
        "acme",
        run,
        "GLENTRY",
        StageMode::Append,
        vec![rec("x", 1)],
    ))
    .await
    .unwrap(); // seq 5
    s.stage_page(page(
        "acme",
        run,
        "VENDOR",
        StageMode::Replace,
        vec![rec("k000", 2)],
    ))
    .await
    .unwrap(); // seq 6

    // seq 5 still has a row waiting in the outbox: pruning stops before it.
    let r = s
        .audit_prune("acme", cut + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        r,
        PruneReport {
            deleted: 4,
            anchor_seq: Some(4)
        }
    );
    let v = s.audit_verify("acme").await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!((v.entries_checked, v.anchor_seq), (2, Some(4)));
    // The mirror read k001..k003 from the entries just pruned: it keeps their rows itself now.
    let vendors = |versions: [u32; 4]| {
        let mut rows: Vec<String> = (0..4)
            .map(|i| rec(&format!("k{i:03}"), versions[i]).row_json)
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(all_mirror_rows(s, 3).await.1, vendors([2, 1, 1, 1]));
    let by_key: Vec<String> = s
        .mirror_page("acme", "VENDOR", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.row_json)
        .collect();
    assert_eq!(by_key, vendors([2, 1, 1, 1]));
    assert_eq!(
        audit_all(s, "acme")
            .await
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![5, 6]
    );

    // Deliver it; a later prune moves the anchor on and the chain still verifies.
    let ids = outbox_ids(s, "acme", "GLENTRY", 10).await;
    s.mark_delivered(
        "acme",
        "GLENTRY",
        &ids,
        &delivery(run, "B", DeliveryOutcome::Accepted, None),
    )
    .await
    .unwrap(); // seq 7
    db.clock.advance(chrono::Duration::days(1));
    s.stage_page(page(
        "acme",
        run,
        "VENDOR",
        StageMode::Replace,
        vec![rec("k001", 2)],
    ))
    .await
    .unwrap(); // seq 8
    let r = s
        .audit_prune("acme", cut + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        r,
        PruneReport {
            deleted: 3,
            anchor_seq: Some(7)
        }
    );
    let v = s.audit_verify("acme").await.unwrap();
    assert!(v.ok && v.entries_checked == 1, "{v:?}");
    assert_eq!(all_mirror_rows(s, 3).await.1, vendors([2, 2, 1, 1]));
    // A row kept in the mirror by a prune, staged again: unchanged stays, a change reads anew.
    let again = s
        .stage_page(page(
            "acme",
            run,
            "VENDOR",
            StageMode::Replace,
            vec![rec("k002", 1), rec("k003", 3)],
        ))
        .await
        .unwrap(); // seq 9 (k003), 10 (the unchanged summary)
    assert_eq!((again.unchanged, again.updated), (1, 1), "{again:?}");
    assert_eq!(all_mirror_rows(s, 3).await.1, vendors([2, 2, 1, 3]));
    // Nothing older: no-op.
    assert_eq!(s.audit_prune("acme", cut).await.unwrap().deleted, 0);
    // Tampering after pruning is still caught.
    db.exec(&format!(
        "UPDATE audit SET record_key = 'zzz' WHERE connection_id = {} AND seq = 8",
        cid_of("acme")
    ))
    .await;
    assert_eq!(
        s.audit_verify("acme").await.unwrap().first_bad.unwrap().0,
        8
    );
    // ...and a broken prefix is never pruned away (nor the mirror's rows moved).
    db.clock.advance(chrono::Duration::days(1));
    let e = s.audit_prune("acme", db.clock.now()).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(audit_all(s, "acme").await.len(), 3);
    assert_eq!(all_mirror_rows(s, 3).await.1, vendors([2, 2, 1, 3]));
}

/// A mirror row is read from the audit entry that staged it. If that entry is deleted or emptied
/// behind the store's back, a rebuild stops with an error that names the record and what to do;
/// it never sends fewer rows than the mirror holds.
pub async fn a_mirror_row_without_its_entry_is_a_loud_error(db: Arc<TestDb>) {
    let s = &*db.store;
    chain_of(s, "acme", 3).await; // k000..k002 at seq 1..=3
    db.exec(&format!(
        "DELETE FROM audit WHERE connection_id = {} AND seq = 2",
        cid_of("acme")
    ))
    .await;
    let e = s.mirror_rows("acme", "VENDOR", None, 10).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
    for needed in [
        "'k001'",
        "entry 2",
        "audit verify",
        "sync --connection acme --stream VENDOR --full",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from: {text}");
    }
    let e = s.mirror_page("acme", "VENDOR", None, 10).await.unwrap_err();
    assert!(e.to_string().contains("'k001'"), "{e}");
    // The other rows are still there to read key by key.
    let first = s.mirror_page("acme", "VENDOR", None, 1).await.unwrap();
    assert_eq!(
        first,
        vec![MirrorRow {
            key: "k000".into(),
            row_json: rec("k000", 1).row_json
        }]
    );
}

pub async fn concurrent_staging_serialises_chain(db: Arc<TestDb>) {
    db.store.ensure_connection("acme").await.unwrap();
    db.store.ensure_connection("globex").await.unwrap();
    let run = db.store.begin_run("acme", "manual").await.unwrap();
    let grun = db.store.begin_run("globex", "manual").await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|t| {
            let s = db.store.clone();
            tokio::spawn(async move {
                for p in 0..5 {
                    let (conn, run) = if t % 2 == 0 {
                        ("acme", run)
                    } else {
                        ("globex", grun)
                    };
                    let recs = (0..50).map(|i| rec(&format!("t{t}-p{p}-{i}"), 1)).collect();
                    s.stage_page(page(conn, run, &format!("S{t}"), StageMode::Append, recs))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for conn in ["acme", "globex"] {
        let v = db.store.audit_verify(conn).await.unwrap();
        assert!(v.ok, "{conn}: {v:?}");
        assert_eq!(v.entries_checked, 3 * 5 * 50);
    }
}

pub async fn mark_dirty_flags_a_rebuild(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    s.mark_reloaded("acme", "VENDOR", r1, 5, &[]).await.unwrap();
    let clean = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(!clean.dirty);
    assert_eq!(clean.table_rows, 5);
    s.mark_dirty("acme", "VENDOR").await.unwrap();
    let dirty = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(dirty.dirty);
    assert_eq!(dirty.table_rows, 0);
    // A stream never seen before can be flagged too (a dataset just created).
    s.mark_dirty("acme", "GLACCOUNT").await.unwrap();
    assert!(s.stream_state("acme", "GLACCOUNT").await.unwrap().dirty);
    assert!(s.audit_verify("acme").await.unwrap().ok);
}

/// A record's business ID (a column of its row) finds its mirror key, wherever the row is kept
/// (in the audit entry that staged it, or in the mirror after that entry was pruned); values no
/// row holds, other streams' and other connections' rows, and deleted rows are not found.
pub async fn mirror_keys_by_column_find_business_ids(db: Arc<TestDb>) {
    let s = &*db.store;
    let row = |key: &str, id: &str, n: i64| StagedRecord {
        key: key.to_string(),
        when_modified: Some("2026-01-01T00:00:01Z".to_string()),
        source_hash: format!("hash-{key}"),
        row_json: json!({"RECORDNO": key.parse::<i64>().unwrap(), "VENDORID": id, "N": n})
            .to_string(),
    };
    s.ensure_connection("acme").await.unwrap();
    s.ensure_connection("other").await.unwrap();
    let r = s.begin_run("acme", "manual").await.unwrap();
    let recs = vec![
        row("1", "V-1", 10),
        row("2", "V-2", 20),
        row("3", "V \"quoted\"", 30),
        row("4", "V-2", 40), // a business ID held by two rows (one since re-created)
        row("5", "V-5", 50),
    ];
    s.stage_page(page("acme", r, "VENDOR", StageMode::Replace, recs))
        .await
        .unwrap();
    let r2 = s.begin_run("other", "manual").await.unwrap();
    s.stage_page(page(
        "other",
        r2,
        "VENDOR",
        StageMode::Replace,
        vec![row("9", "V-1", 1)],
    ))
    .await
    .unwrap();
    s.stage_page(page(
        "acme",
        r,
        "CUSTOMER",
        StageMode::Replace,
        vec![row("8", "V-1", 1)],
    ))
    .await
    .unwrap();
    let mut deleted = page("acme", r, "VENDOR", StageMode::Replace, vec![]);
    deleted.deletes = vec!["5".to_string()];
    s.stage_page(deleted).await.unwrap();

    let find = |column: &'static str, values: &[&str]| {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        async move {
            let mut found = s
                .mirror_keys_by_column("acme", "VENDOR", column, &values)
                .await
                .unwrap();
            found.sort();
            found
        }
    };
    let pair = |v: &str, k: &str| (v.to_string(), k.to_string());
    assert_eq!(
        find("VENDORID", &["V-1", "V-2", "V \"quoted\"", "V-5", "V-404"]).await,
        vec![
            pair("V \"quoted\"", "3"),
            pair("V-1", "1"),
            pair("V-2", "2"),
            pair("V-2", "4"),
        ]
    );
    assert!(find("VENDORID", &[]).await.is_empty());
    assert!(
        find("NAME", &["V-1"]).await.is_empty(),
        "a column no row has"
    );
    // A number compares as its text.
    assert_eq!(find("N", &["20"]).await, vec![pair("20", "2")]);
    // More values than one statement holds.
    let many: Vec<String> = (0..2_500)
        .map(|i| format!("X-{i}"))
        .chain(["V-1".to_string()])
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(find("VENDORID", &many).await, vec![pair("V-1", "1")]);

    // Rows whose entries were pruned are read from the mirror itself.
    db.clock.advance(chrono::Duration::days(40));
    let pruned = s.audit_prune("acme", db.clock.now()).await.unwrap();
    assert!(pruned.deleted >= 4, "{pruned:?}");
    assert_eq!(
        find("VENDORID", &["V-1", "V-2"]).await,
        vec![pair("V-1", "1"), pair("V-2", "2"), pair("V-2", "4")]
    );
}

/// A rebuild's progress is kept while its table is dirty and forgotten by `mark_dirty` and
/// `mark_reloaded`; the mirror's version moves with every staged page that changed the mirror
/// (inserts, updates, deletes, append streams too) and with nothing else.
pub async fn rebuild_progress_and_mirror_version(db: Arc<TestDb>) {
    let s = &*db.store;
    s.ensure_connection("acme").await.unwrap();
    let r1 = s.begin_run("acme", "manual").await.unwrap();
    let version = |st: &StreamState| st.mirror_version;
    let recs: Vec<_> = ["a", "b", "c"].iter().map(|k| rec(k, 1)).collect();
    s.stage_page(page("acme", r1, "VENDOR", StageMode::Replace, recs))
        .await
        .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(st.dirty);
    assert_eq!(st.rebuild, None);
    let v1 = version(&st);
    assert!(v1 > 0, "{st:?}");

    // Unchanged records leave the version alone.
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Replace,
        vec![rec("a", 1)],
    ))
    .await
    .unwrap();
    assert_eq!(
        version(&s.stream_state("acme", "VENDOR").await.unwrap()),
        v1
    );

    // A rebuild starts: dirty, then its progress.
    s.mark_dirty("acme", "VENDOR").await.unwrap();
    let progress = RebuildProgress {
        mirror_version: v1,
        cursor: Some("17".into()),
        rows: 2,
        done: vec!["19".into(), "23".into()],
        page_rows: 1,
    };
    s.save_rebuild_progress("acme", "VENDOR", &progress)
        .await
        .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert_eq!(st.rebuild.as_ref(), Some(&progress));
    assert_eq!(st.table_rows, 2, "the rows confirmed are in the table");
    assert_eq!(version(&st), v1);

    // An update, an insert and a delete each move the version; the progress stays (the reader
    // compares versions).
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Replace,
        vec![rec("a", 2)],
    ))
    .await
    .unwrap();
    let v2 = version(&s.stream_state("acme", "VENDOR").await.unwrap());
    assert!(v2 > v1);
    s.stage_page(page(
        "acme",
        r1,
        "VENDOR",
        StageMode::Replace,
        vec![rec("d", 1)],
    ))
    .await
    .unwrap();
    let v3 = version(&s.stream_state("acme", "VENDOR").await.unwrap());
    assert!(v3 > v2);
    let mut p = page("acme", r1, "VENDOR", StageMode::Replace, vec![]);
    p.deletes = vec!["b".into()];
    s.stage_page(p).await.unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(version(&st) > v3);
    assert_eq!(st.rebuild.as_ref(), Some(&progress));
    // Deleting a key the mirror does not hold changes nothing.
    let v4 = version(&st);
    let mut p = page("acme", r1, "VENDOR", StageMode::Replace, vec![]);
    p.deletes = vec!["zzz".into()];
    s.stage_page(p).await.unwrap();
    assert_eq!(
        version(&s.stream_state("acme", "VENDOR").await.unwrap()),
        v4
    );

    // Append streams' mirrors have versions too; streams are apart.
    s.stage_page(page(
        "acme",
        r1,
        "APBILL",
        StageMode::Append,
        vec![rec("x", 1)],
    ))
    .await
    .unwrap();
    let bills = s.stream_state("acme", "APBILL").await.unwrap();
    assert!(bills.mirror_version > 0 && !bills.dirty, "{bills:?}");
    assert_eq!(
        version(&s.stream_state("acme", "VENDOR").await.unwrap()),
        v4
    );

    // mark_dirty forgets the progress (the table is to be emptied again).
    s.mark_dirty("acme", "VENDOR").await.unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert_eq!(st.rebuild, None);
    assert_eq!(st.table_rows, 0);
    assert_eq!(version(&st), v4, "marks leave the version alone");

    // So does mark_reloaded; and a clean table keeps none.
    let fresh = RebuildProgress {
        mirror_version: v4,
        cursor: None,
        rows: 0,
        done: Vec::new(),
        page_rows: 10,
    };
    s.save_rebuild_progress("acme", "VENDOR", &fresh)
        .await
        .unwrap();
    assert_eq!(
        s.stream_state("acme", "VENDOR").await.unwrap().rebuild,
        Some(fresh.clone())
    );
    s.mark_reloaded(
        "acme",
        "VENDOR",
        r1,
        3,
        &[delivery(r1, "B1", DeliveryOutcome::Accepted, None)],
    )
    .await
    .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert!(!st.dirty);
    assert_eq!(st.rebuild, None);
    assert_eq!(st.table_rows, 3);
    s.save_rebuild_progress("acme", "VENDOR", &fresh)
        .await
        .unwrap();
    let st = s.stream_state("acme", "VENDOR").await.unwrap();
    assert_eq!(st.rebuild, None, "a clean table records no rebuild");
    assert_eq!(st.table_rows, 3);
    assert!(s.audit_verify("acme").await.unwrap().ok);
}
