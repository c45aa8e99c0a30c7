//! The run with nothing to do (issue 19): never-modified records found by their creation time
//! instead of all read again, GL balances' closed periods on a slower cadence, and the Intacct
//! session kept between runs. Real HTTP against both simulators; each `w.connection()` is a new
//! client, as the next `sync` process would build.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::World;
use ml_connector::app::{keep_intacct_session, resume_intacct_session};
use ml_connector::pipeline::{Connection, Events, RunOptions, RunReport, RunStatus};

fn opts() -> RunOptions {
    RunOptions {
        trigger: "test".into(),
        ..Default::default()
    }
}

/// A small company with enough vendors that some were never modified, and the streams of this
/// test only, cursors exact (no lookback) so each run reads what changed and nothing more.
async fn world(objects: &[&str]) -> World {
    let mut icfg = common::tiny_intacct();
    icfg.size.vendors = 200;
    let mut w = World::start(icfg).await;
    w.cfg
        .streams
        .retain(|s| objects.contains(&s.object.as_str()));
    for s in &mut w.cfg.streams {
        s.lookback = Duration::ZERO;
    }
    w
}

/// One run as `sync` makes it: from the session the last run kept, keeping its own.
async fn sync(w: &World, conn: &Connection) -> RunReport {
    resume_intacct_session(conn, &w.key).await;
    let report = conn.run(&opts(), &Events::default()).await.unwrap();
    keep_intacct_session(conn, &w.key).await;
    report
}

fn extracted(r: &RunReport, object: &str) -> u64 {
    r.streams
        .iter()
        .find(|s| s.object == object)
        .map(|s| s.extracted)
        .unwrap_or_else(|| panic!("no stream {object} in {r:#?}"))
}

fn never_modified(w: &World, object: &str) -> usize {
    w.intacct
        .records(object)
        .iter()
        .filter(|r| r.get("WHENMODIFIED").is_none_or(|v| v.is_empty()))
        .count()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A vendor and a bill created after the cursor and never modified (empty WHENMODIFIED) are found
/// by the next incremental run, the bill although its date (WHENCREATED) is two months back: it is
/// found by when it was entered (AUDITWHENCREATED). The never-modified records read before are not
/// read again, until the full pass is due.
#[tokio::test]
async fn records_created_after_the_cursor_and_never_modified_are_found_by_the_next_run() {
    let w = world(&["VENDOR", "APBILL"]).await;
    let mut conn = w.connection().await;
    let first = sync(&w, &conn).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let old_never_modified = never_modified(&w, "VENDOR");
    assert!(
        old_never_modified >= 2,
        "the company has never-modified vendors to leave alone"
    );

    w.intacct.advance_clock(Duration::from_secs(3600));
    let vendor = w.intacct.insert_never_modified(
        "VENDOR",
        fields(&[("VENDORID", "V-NEW-1"), ("NAME", "Created, never modified")]),
    );
    let now = ml_connector::pipeline::transform::parse_intacct_datetime(&w.intacct.now()).unwrap();
    let bill_date = (now - chrono::Duration::days(60))
        .format("%m/%d/%Y")
        .to_string();
    let bill = w.intacct.insert_never_modified(
        "APBILL",
        fields(&[
            ("VENDORID", "V-NEW-1"),
            ("RECORDID", "BILL-BACKDATED"),
            ("WHENCREATED", &bill_date),
        ]),
    );
    let created = &w
        .intacct
        .records("APBILL")
        .into_iter()
        .find(|r| r["RECORDNO"] == bill.to_string())
        .unwrap();
    assert_eq!(created["WHENMODIFIED"], "", "never modified");
    assert_eq!(created["WHENCREATED"], bill_date, "the bill's own date");
    assert!(
        !created["AUDITWHENCREATED"].is_empty(),
        "when it was entered"
    );

    let second = sync(&w, &conn).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{second:#?}");
    let has = |table: &str, key: u64| {
        w.table(table)
            .iter()
            .any(|r| r["RECORDNO"].as_i64() == Some(key as i64))
    };
    assert!(has("Vendors", vendor), "the new vendor reached Power BI");
    assert!(has("APBills", bill), "the back-dated bill reached Power BI");
    assert!(
        (extracted(&second, "VENDOR") as usize) < old_never_modified,
        "the never-modified vendors read before are not all read again: {} read, {} never modified",
        extracted(&second, "VENDOR"),
        old_never_modified
    );

    // Read once is enough: the next run does not read the new vendor and bill again (records
    // created after the last modification are bounded by the newest creation a run saw).
    let fourth = sync(&w, &conn).await;
    assert_eq!(extracted(&fourth, "VENDOR"), 0, "{fourth:#?}");
    assert_eq!(extracted(&fourth, "APBILL"), 0, "{fourth:#?}");

    // The safety net: with the full pass due every run, all of them are read again.
    for s in &mut conn.config.streams {
        s.never_modified_full_every = Duration::ZERO;
    }
    let third = sync(&w, &conn).await;
    assert!(extracted(&third, "VENDOR") as usize >= never_modified(&w, "VENDOR"));
    w.assert_tables_equal_source(chrono::FixedOffset::east_opt(0).unwrap());
}

/// After a full sync, a run with nothing changed logs in no more (the session the last run kept),
/// reads the open GL periods only, and pushes nothing; a new process reading the store finds the
/// session sealed, its id nowhere in clear.
#[tokio::test]
async fn a_run_with_nothing_changed_reuses_the_session_and_reads_only_open_periods() {
    let w = world(&["VENDOR", "DEPARTMENT", "GLACCOUNTBALANCE"]).await;
    let first = sync(&w, &w.connection().await).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let kept = w
        .store
        .get_credential(&w.cfg.name, "intacct_session")
        .await
        .unwrap()
        .expect("the session is kept");
    assert!(
        !kept.public_fields.to_string().contains("sessionid")
            && kept.public_fields.get("id").is_none(),
        "only its expiry is in clear: {}",
        kept.public_fields
    );

    let before = w.intacct.stats();
    let pushes_before = w.powerbi.stats().requests_by_operation.clone();
    let again = sync(&w, &w.connection().await).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{again:#?}");
    let after = w.intacct.stats();
    assert_eq!(after.logins, before.logins, "no login: the kept session");
    // Set-up (formatting and every lookup) and the one question of which streams, the open GL
    // periods' balances included, have anything to read: nothing else.
    assert!(
        after.http_requests - before.http_requests <= 2,
        "{} Intacct requests",
        after.http_requests - before.http_requests
    );
    assert!(
        extracted(&again, "GLACCOUNTBALANCE") < extracted(&first, "GLACCOUNTBALANCE"),
        "closed periods wait for their cadence: {} of {}",
        extracted(&again, "GLACCOUNTBALANCE"),
        extracted(&first, "GLACCOUNTBALANCE")
    );
    assert!(
        again
            .streams
            .iter()
            .all(|s| s.pushed == 0 && s.deleted == 0)
    );
    assert_eq!(
        w.powerbi.stats().requests_by_operation.get("post_rows"),
        pushes_before.get("post_rows"),
        "nothing pushed"
    );
    eprintln!(
        "no-change run: {} Intacct requests ({:?}), {} functions",
        after.http_requests - before.http_requests,
        after
            .requests_by_function
            .iter()
            .map(|(f, n)| (
                f.clone(),
                n - before.requests_by_function.get(f).unwrap_or(&0)
            ))
            .filter(|(_, n)| *n > 0)
            .collect::<Vec<_>>(),
        after.requests_by_function.values().sum::<u64>()
            - before.requests_by_function.values().sum::<u64>()
    );
    // The balances of every period are still in Power BI.
    assert_eq!(
        w.table("GLBalances").len() as u64,
        first
            .streams
            .iter()
            .find(|s| s.object == "GLACCOUNTBALANCE")
            .unwrap()
            .table_rows
            .max(extracted(&first, "GLACCOUNTBALANCE"))
    );

    // A balance of an open period that changes (its WHENMODIFIED moves) is found by the same
    // question and read with its periods.
    let stream = w
        .cfg
        .streams
        .iter()
        .find(|s| s.object == "GLACCOUNTBALANCE")
        .unwrap();
    let through = stream
        .periods_through
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let open = ml_connector::pipeline::extract::recent_periods(through, stream.open_periods);
    let balance = w
        .intacct
        .records("GLACCOUNTBALANCE")
        .into_iter()
        .find(|r| open.contains(&r["PERIOD"]))
        .expect("a balance of an open period");
    let key: u64 = balance["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("GLACCOUNTBALANCE", key, fields(&[("ENDBAL", "12345.67")]))
    );
    let changed = sync(&w, &w.connection().await).await;
    assert!(extracted(&changed, "GLACCOUNTBALANCE") > 0, "{changed:#?}");
    assert!(
        w.table("GLBalances")
            .iter()
            .any(|r| r["ENDBAL"].as_f64() == Some(12345.67)),
        "the changed balance reached Power BI"
    );
    let quiet = sync(&w, &w.connection().await).await;
    assert_eq!(extracted(&quiet, "GLACCOUNTBALANCE"), 0, "{quiet:#?}");
}

/// A kept session Intacct no longer accepts (it timed out on Intacct's side) costs one login and
/// the run goes on: it is not a refused sign-in, which would stop the client signing in again.
#[tokio::test]
async fn a_kept_session_intacct_refuses_costs_one_login_not_a_refusal() {
    let w = world(&["DEPARTMENT"]).await;
    sync(&w, &w.connection().await).await;
    // Intacct's clock passes the session's timeout; ours does not, so the kept session looks valid.
    w.intacct.advance_clock(Duration::from_secs(6 * 3600));
    let before = w.intacct.stats().logins;
    let report = sync(&w, &w.connection().await).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    assert!(!report.refused);
    assert_eq!(w.intacct.stats().logins, before + 1, "one login, then on");
}

/// With the default two-hour `lookback`, a run finds a stream quiet only while its lookback window
/// was read less than `lookback` ago: within it, one question tells the run nothing changed and the
/// stream is not read; past it, the window is read again (a record Intacct showed late is found);
/// a change after the cursor is always found at once.
#[tokio::test]
async fn a_quiet_stream_is_not_read_until_its_lookback_window_is_due() {
    let mut w = world(&["VENDOR", "DEPARTMENT"]).await;
    for s in &mut w.cfg.streams {
        s.lookback = Duration::from_secs(2 * 3600);
    }
    let clock = std::sync::Arc::new(ml_clock::ManualClock::starting_at(chrono::Utc::now()));
    let connect = || async {
        let mut conn = w.connection().await;
        conn.clock = clock.clone();
        conn
    };
    let requests = |w: &World| w.intacct.stats().http_requests;

    let first = sync(&w, &connect().await).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");

    // Nothing changed, the window was just read: one question, no read.
    let before = requests(&w);
    let quiet = sync(&w, &connect().await).await;
    assert_eq!(quiet.status, RunStatus::Succeeded, "{quiet:#?}");
    assert_eq!(extracted(&quiet, "VENDOR"), 0, "{quiet:#?}");
    assert_eq!(extracted(&quiet, "DEPARTMENT"), 0, "{quiet:#?}");
    assert!(
        requests(&w) - before <= 2,
        "{} requests",
        requests(&w) - before
    );

    // A change after the cursor is found by the same question, and read.
    let key: u64 = w.intacct.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    assert!(
        w.intacct
            .update("VENDOR", key, fields(&[("NAME", "Renamed Ltd")]))
    );
    let changed = sync(&w, &connect().await).await;
    assert!(extracted(&changed, "VENDOR") >= 1, "{changed:#?}");
    assert_eq!(extracted(&changed, "DEPARTMENT"), 0, "{changed:#?}");
    assert!(
        w.table("Vendors")
            .iter()
            .any(|r| r["NAME"] == serde_json::json!("Renamed Ltd")),
        "the renamed vendor reached Power BI"
    );

    // A delete is found by the same question (AUDITHISTORY after the newest delete event a read
    // saw), and once found it does not keep the stream from being quiet.
    let gone: u64 = w.intacct.records("VENDOR")[1]["RECORDNO"].parse().unwrap();
    assert!(w.intacct.delete("VENDOR", gone));
    let deleted = sync(&w, &connect().await).await;
    let vendors = deleted
        .streams
        .iter()
        .find(|s| s.object == "VENDOR")
        .unwrap();
    assert_eq!(vendors.deleted, 1, "{deleted:#?}");
    assert!(
        !w.table("Vendors")
            .iter()
            .any(|r| r["RECORDNO"].as_i64() == Some(gone as i64)),
        "the deleted vendor left Power BI"
    );
    let before = requests(&w);
    let after_delete = sync(&w, &connect().await).await;
    assert_eq!(extracted(&after_delete, "VENDOR"), 0, "{after_delete:#?}");
    assert!(
        requests(&w) - before <= 2,
        "{} requests",
        requests(&w) - before
    );

    // Past the lookback, each stream reads its window again, once.
    clock.advance(Duration::from_secs(2 * 3600 + 1));
    let due = sync(&w, &connect().await).await;
    assert!(extracted(&due, "DEPARTMENT") >= 1, "{due:#?}");
    let again = sync(&w, &connect().await).await;
    assert_eq!(extracted(&again, "DEPARTMENT"), 0, "{again:#?}");
    assert_eq!(extracted(&again, "VENDOR"), 0, "{again:#?}");
    w.assert_tables_equal_source(chrono::FixedOffset::east_opt(0).unwrap());
}
