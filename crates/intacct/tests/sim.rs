//! The client over real HTTP against the Intacct simulator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use ml_intacct::{
    BalancesRequest, ChangedSince, ErrorKind, ErrorLevel, IntacctClient, IntacctSettings, Pass,
    Query, RetryPolicy,
};
use ml_sim_intacct::{Fault, FaultPlan, FaultTrigger, SimConfig, Simulator};
use secrecy::SecretString;

fn settings(sim: &Simulator) -> IntacctSettings {
    let mut s = IntacctSettings::new(
        ml_sim_intacct::DEFAULT_SENDER_ID,
        SecretString::from(ml_sim_intacct::DEFAULT_SENDER_PASSWORD),
        ml_sim_intacct::DEFAULT_COMPANY_ID,
        ml_sim_intacct::DEFAULT_USER_ID,
        SecretString::from(ml_sim_intacct::DEFAULT_USER_PASSWORD),
    );
    s.endpoint = sim.endpoint().parse().unwrap();
    s.allow_loopback_http = true;
    s.request_timeout = Duration::from_secs(20);
    // Small, injectable delays: tests never wait seconds for a backoff.
    s.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(30),
    };
    s
}

fn logins(sim: &Simulator) -> u64 {
    sim.stats()
        .requests_by_function
        .get("getAPISession")
        .copied()
        .unwrap_or(0)
}

async fn collect(client: &IntacctClient, req: ChangedSince) -> Vec<ml_intacct::Page> {
    let mut out = Vec::new();
    let mut s = std::pin::pin!(client.changed_since(req));
    while let Some(p) = s.next().await {
        out.push(p.expect("page"));
    }
    out
}

fn req(object: &str, page_size: u32) -> ChangedSince {
    ChangedSince {
        object: object.into(),
        fields: vec!["RECORDNO".into(), "NAME".into(), "WHENMODIFIED".into()],
        since: None,
        page_size: Some(page_size),
        created_since: None,
    }
}

fn source_keys(sim: &Simulator, object: &str) -> BTreeSet<i64> {
    sim.records(object)
        .iter()
        .map(|r| r["RECORDNO"].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn many_reads_cost_one_login() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let info = client.ping().await.unwrap();
    assert_eq!(info.company_id, ml_sim_intacct::DEFAULT_COMPANY_ID);
    for _ in 0..5 {
        let page = client
            .query(Query::new("DEPARTMENT", &["RECORDNO", "DEPARTMENTID"]))
            .await
            .unwrap();
        assert_eq!(page.records.len(), sim.records("DEPARTMENT").len());
    }
    let def = client.lookup("VENDOR").await.unwrap();
    assert!(def.fields.iter().any(|f| f.id == "WHENMODIFIED"));
    let fmt = client.user_formatting().await.unwrap();
    assert!(!fmt.date_format.is_empty(), "{fmt:?}");
    // concurrent callers share the one session too
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.query(Query::new("CLASS", &["RECORDNO"])).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(logins(&sim), 1, "{:?}", sim.stats());
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_first_login_is_single_flight() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.query(Query::new("LOCATION", &["RECORDNO"])).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(logins(&sim), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn session_expiring_mid_paging_costs_one_relogin_and_loses_nothing() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let mut seen = Vec::new();
    let mut pages = 0;
    {
        let mut s = std::pin::pin!(client.changed_since(req("VENDOR", 4)));
        while let Some(p) = s.next().await {
            let p = p.unwrap();
            pages += 1;
            if pages == 2 {
                // the sim's session lifetime is 2 h; jump past it
                sim.advance_clock(Duration::from_secs(3 * 3600));
            }
            seen.extend(
                p.records
                    .iter()
                    .map(|r| r.get("RECORDNO").unwrap().parse::<i64>().unwrap()),
            );
        }
    }
    assert!(pages > 3, "{pages}");
    assert_eq!(
        logins(&sim),
        2,
        "one login, one re-login: {:?}",
        sim.stats()
    );
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no record repeated");
    assert_eq!(unique, source_keys(&sim, "VENDOR"), "no record lost");
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrency_limit_is_never_exceeded() {
    let mut cfg = SimConfig::tiny();
    cfg.max_concurrency = 16; // the sim would accept more; only our limit holds us back
    cfg.latency.per_request = Duration::from_millis(30);
    let sim = Simulator::start(cfg).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                let mut s = std::pin::pin!(c.all_keys("VENDOR"));
                while let Some(k) = s.next().await {
                    k.unwrap();
                }
            } else {
                c.query(Query::new("VENDOR", &["RECORDNO"])).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = sim.stats();
    assert!(st.peak_concurrency <= 2, "{st:?}");
    assert_eq!(
        st.peak_concurrency, 2,
        "the limit is used, not serialised: {st:?}"
    );
    assert_eq!(st.rejected_429, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn keyset_paging_while_records_change_between_pages() {
    keyset_paging_while_records_change(1, 3).await;
}

/// The same with parallel chains (a full read with two slots): pages come in any order, so the
/// checks are on versions, not on the order of pages.
#[tokio::test]
async fn parallel_full_read_while_records_change_between_pages() {
    keyset_paging_while_records_change(2, 4).await;
}

/// A full read with two slots keeps both busy, yields every record once, stays within one
/// request per page of each chain, and ends with a watermark no later than the newest record.
#[tokio::test]
async fn parallel_full_read_uses_every_slot() {
    let mut cfg = SimConfig::tiny();
    cfg.size.vendors = 600;
    // Requests must take some time to overlap at all on a one-thread test runtime.
    cfg.latency.per_request = Duration::from_millis(5);
    let sim = Simulator::start(cfg).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let before = source_keys(&sim, "VENDOR");
    let pages = collect(&client, req("VENDOR", 20)).await;
    let mut keys: Vec<i64> = pages
        .iter()
        .flat_map(|p| p.records.iter())
        .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        .collect();
    keys.sort_unstable();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "no record twice when nothing changes");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), before);
    let st = sim.stats();
    assert_eq!(st.peak_concurrency, 2, "{st:?}");
    assert_eq!(st.rejected_429, 0);
    let queries = st.requests_by_function.get("query").copied().unwrap_or(0);
    assert!(
        queries <= (n as u64).div_ceil(20) + 2,
        "{queries} queries for {n} records"
    );
    let last = pages.last().expect("pages");
    assert!(last.records.is_empty(), "the read ends with its watermark");
    let watermark = last.cursor.expect("a watermark");
    let parse = |s: &str| ml_intacct::protocol::values::parse_timestamp(s);
    let newest = pages
        .iter()
        .flat_map(|p| p.records.iter())
        .filter_map(|r| r.get("WHENMODIFIED").and_then(parse))
        .max()
        .unwrap();
    assert!(watermark.when_modified <= newest);
    assert!(pages[..pages.len() - 1].iter().all(|p| p.cursor.is_none()));
    sim.shutdown().await;
}

/// An incremental read with two slots: the never-modified records (most of what it reads) are
/// read by parallel RECORDNO ranges, with the changes alongside; nothing is missed or doubled.
#[tokio::test]
async fn parallel_incremental_read_splits_the_never_modified_pass() {
    let mut cfg = SimConfig::tiny();
    cfg.size.vendors = 2000;
    cfg.latency.per_request = Duration::from_millis(5);
    let sim = Simulator::start(cfg).await.unwrap();
    let mut one = settings(&sim);
    one.max_concurrent_requests = 1;
    let first = collect(&IntacctClient::new(one).unwrap(), req("VENDOR", 20)).await;
    let cursor = first.iter().rev().find_map(|p| p.cursor);
    sim.advance_clock(Duration::from_secs(60));
    let k = *source_keys(&sim, "VENDOR").iter().nth(7).unwrap();
    sim.update(
        "VENDOR",
        k as u64,
        BTreeMap::from([("NAME".into(), "changed".into())]),
    );
    let q0 = sim
        .stats()
        .requests_by_function
        .get("query")
        .copied()
        .unwrap_or(0);
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let mut r = req("VENDOR", 20);
    r.since = cursor;
    let pages = collect(&client, r).await;
    let queries = sim
        .stats()
        .requests_by_function
        .get("query")
        .copied()
        .unwrap_or(0)
        - q0;
    let null_now: BTreeSet<i64> = sim
        .records("VENDOR")
        .iter()
        .filter(|r| r.get("WHENMODIFIED").is_none_or(|w| w.is_empty()))
        .map(|r| r["RECORDNO"].parse().unwrap())
        .collect();
    let mut never: Vec<i64> = pages
        .iter()
        .filter(|p| p.pass == Pass::NeverModified)
        .flat_map(|p| p.records.iter())
        .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        .collect();
    let n = never.len();
    never.sort_unstable();
    never.dedup();
    assert_eq!(never.len(), n, "no never-modified record twice");
    assert_eq!(never.into_iter().collect::<BTreeSet<_>>(), null_now);
    let modified: Vec<i64> = pages
        .iter()
        .filter(|p| p.pass == Pass::Modified)
        .flat_map(|p| p.records.iter())
        .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        .collect();
    assert_eq!(modified, [k]);
    let watermark = pages.last().and_then(|p| p.cursor).expect("a watermark");
    assert!(watermark >= cursor.unwrap());
    assert!(
        queries <= (n as u64).div_ceil(20) + 4,
        "{queries} queries for {n} never-modified records"
    );
    assert_eq!(sim.stats().peak_concurrency, 2);
    sim.shutdown().await;
}

async fn keyset_paging_while_records_change(max_concurrent: usize, page_size: u32) {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut st = settings(&sim);
    st.max_concurrent_requests = max_concurrent;
    let client = IntacctClient::new(st).unwrap();
    let before = source_keys(&sim, "VENDOR");
    let mut yielded: Vec<(i64, String, String, Pass)> = Vec::new(); // (RECORDNO, WHENMODIFIED, NAME, pass)
    let mut updated = Vec::new();
    let mut inserted = Vec::new();
    let mut watermark = None;
    {
        let mut s = std::pin::pin!(client.changed_since(req("VENDOR", page_size)));
        let mut n = 0;
        while let Some(p) = s.next().await {
            let p = p.unwrap();
            if p.cursor.is_some() {
                watermark = watermark.max(p.cursor);
            }
            n += 1;
            for r in &p.records {
                yielded.push((
                    r.get("RECORDNO").unwrap().parse().unwrap(),
                    r.get("WHENMODIFIED").unwrap().to_owned(),
                    r.get("NAME").unwrap_or("").to_owned(),
                    p.pass,
                ));
            }
            if n <= 3 {
                // Between pages: update one record already yielded and one not yet yielded,
                // and insert a new one. Distinct seconds keep the keyset order strict.
                sim.advance_clock(Duration::from_secs(1));
                let done: BTreeSet<i64> = yielded.iter().map(|y| y.0).collect();
                let old = *done.iter().next().unwrap();
                let fresh = *before
                    .iter()
                    .rev()
                    .find(|k| !done.contains(k) && !updated.contains(*k))
                    .unwrap();
                for k in [old, fresh] {
                    let name = format!("renamed {k} at page {n}");
                    assert!(sim.update(
                        "VENDOR",
                        k as u64,
                        BTreeMap::from([("NAME".into(), name)])
                    ));
                    updated.push(k);
                }
                sim.advance_clock(Duration::from_secs(1));
                let id = sim.insert(
                    "VENDOR",
                    BTreeMap::from([
                        ("VENDORID".into(), format!("NEW{n}")),
                        ("NAME".into(), format!("new vendor {n}")),
                    ]),
                );
                inserted.push(id as i64);
            }
        }
    }
    let after: BTreeMap<i64, BTreeMap<String, String>> = sim
        .records("VENDOR")
        .into_iter()
        .map(|r| (r["RECORDNO"].parse().unwrap(), r))
        .collect();

    // 1. Nothing lost: every record existing at the start is yielded; so is every record
    //    existing at the end, except (parallel chains) one changed after its chain ended,
    //    which lies after the watermark, where the next run starts.
    let parse = |s: &str| ml_intacct::protocol::values::parse_timestamp(s);
    let watermark = watermark.expect("a cursor");
    let keys: BTreeSet<i64> = yielded.iter().map(|y| y.0).collect();
    assert!(before.iter().all(|k| keys.contains(k)));
    let versions_yielded: BTreeSet<(i64, &str)> =
        yielded.iter().map(|y| (y.0, y.1.as_str())).collect();
    for (k, rec) in &after {
        let wm = rec.get("WHENMODIFIED").map(String::as_str).unwrap_or("");
        if max_concurrent == 1 {
            assert!(keys.contains(k), "{k} not yielded");
        } else if !versions_yielded.contains(&(*k, wm)) {
            let pos = ml_intacct::Cursor {
                when_modified: parse(wm).expect("changed records have WHENMODIFIED"),
                recordno: *k,
            };
            assert!(
                pos > watermark,
                "{k} at {wm} missed and not after the watermark"
            );
        }
    }
    // 2. No version repeated: (RECORDNO, WHENMODIFIED) pairs are unique within the pass.
    let mut versions = BTreeSet::new();
    for (k, wm, _, _) in &yielded {
        assert!(
            versions.insert((*k, wm.clone())),
            "version of {k} at {wm:?} yielded twice"
        );
    }
    // 3. Only records changed during the pass appear more than once; the newest version
    //    yielded of every record (the last one, when chains are not parallel) is its final
    //    state, unless (parallel) that state is after the watermark.
    let mut count: HashMap<i64, usize> = HashMap::new();
    let mut last: HashMap<i64, (&str, &str)> = HashMap::new();
    for (k, wm, name, _) in &yielded {
        *count.entry(*k).or_default() += 1;
        let newer = match last.get(k) {
            Some((prev, _)) if max_concurrent > 1 => parse(wm) >= parse(prev),
            _ => true,
        };
        if newer {
            last.insert(*k, (wm.as_str(), name.as_str()));
        }
    }
    for (k, c) in &count {
        if *c > 1 {
            assert!(
                updated.contains(k),
                "{k} yielded {c} times but was not changed"
            );
        }
    }
    for (k, rec) in &after {
        let Some((wm, name)) = last.get(k).copied() else {
            continue; // checked in 1.
        };
        if max_concurrent > 1
            && parse(rec.get("WHENMODIFIED").map(String::as_str).unwrap_or(""))
                .is_some_and(|t| t >= watermark.when_modified)
        {
            continue;
        }
        assert_eq!(
            wm,
            rec.get("WHENMODIFIED").map(String::as_str).unwrap_or(""),
            "record {k}"
        );
        assert_eq!(
            name,
            rec.get("NAME").map(String::as_str).unwrap_or(""),
            "record {k}"
        );
    }
    // 4. Within each pass the keyset strictly increases (one chain per pass only).
    if max_concurrent == 1 {
        let mods: Vec<(String, i64)> = yielded
            .iter()
            .filter(|y| y.3 == Pass::Modified)
            .map(|y| (y.1.clone(), y.0))
            .collect();
        for w in mods.windows(2) {
            assert!(
                (parse(&w[0].0).unwrap(), w[0].1) < (parse(&w[1].0).unwrap(), w[1].1),
                "{w:?}"
            );
        }
    }
    // 5. Requests: one per page of every chain, plus at most one look after the others.
    let queries = sim
        .stats()
        .requests_by_function
        .get("query")
        .copied()
        .unwrap_or(0);
    let ceil = (yielded.len() as u64).div_ceil(page_size.into());
    assert!(
        queries <= ceil + 2 + 2 * max_concurrent as u64,
        "{queries} queries for {} records",
        yielded.len()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn incremental_run_from_a_cursor_reads_only_changes_and_never_modified() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    // One slot: the full read is the sequential scan, whose cursor is its exact last record
    // (the parallel read's watermark is lower, and the next run re-reads a little more).
    let mut st = settings(&sim);
    st.max_concurrent_requests = 1;
    let client = IntacctClient::new(st).unwrap();
    let first = collect(&client, req("VENDOR", 10)).await;
    let cursor = first.iter().rev().find_map(|p| p.cursor);
    sim.advance_clock(Duration::from_secs(60));
    let k = *source_keys(&sim, "VENDOR").iter().next().unwrap();
    sim.update(
        "VENDOR",
        k as u64,
        BTreeMap::from([("NAME".into(), "changed".into())]),
    );
    let mut r = req("VENDOR", 10);
    r.since = cursor;
    let second = collect(&client, r).await;
    let modified: Vec<i64> = second
        .iter()
        .filter(|p| p.pass == Pass::Modified)
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(modified, [k]);
    let never: usize = second
        .iter()
        .filter(|p| p.pass == Pass::NeverModified)
        .map(|p| p.records.len())
        .sum();
    let null_now = sim
        .records("VENDOR")
        .iter()
        .filter(|r| r.get("WHENMODIFIED").is_none_or(|w| w.is_empty()))
        .count();
    assert_eq!(never, null_now, "every never-modified record is re-read");
    sim.shutdown().await;
}

#[tokio::test]
async fn first_pages_batches_objects_in_one_request() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    client.ping().await.unwrap();
    let before = sim.stats().http_requests;
    let objects = ["DEPARTMENT", "LOCATION", "CLASS"];
    let reqs: Vec<ChangedSince> = objects
        .iter()
        .map(|o| ChangedSince {
            object: (*o).into(),
            fields: vec!["RECORDNO".into()],
            since: None,
            page_size: None,
            created_since: None,
        })
        .collect();
    let firsts = client.first_pages(&reqs).await.unwrap();
    assert_eq!(
        sim.stats().http_requests,
        before + 1,
        "one request for all objects"
    );
    for (o, f) in objects.iter().zip(&firsts) {
        assert!(f.resume.is_done());
        let got: BTreeSet<i64> = f
            .never_modified
            .records
            .iter()
            .chain(&f.modified.records)
            .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
            .collect();
        assert_eq!(got, source_keys(&sim, o), "{o}");
    }
    // and a stream resumes where a partial first page stopped
    let r = ChangedSince {
        object: "VENDOR".into(),
        fields: vec!["RECORDNO".into()],
        since: None,
        page_size: Some(4),
        created_since: None,
    };
    let f = client
        .first_pages(std::slice::from_ref(&r))
        .await
        .unwrap()
        .remove(0);
    let mut keys: Vec<i64> = f
        .never_modified
        .records
        .iter()
        .chain(&f.modified.records)
        .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        .collect();
    let mut s = std::pin::pin!(client.changed_since_resume(r, f.resume));
    while let Some(p) = s.next().await {
        keys.extend(
            p.unwrap()
                .records
                .iter()
                .map(|r| r.get("RECORDNO").unwrap().parse::<i64>().unwrap()),
        );
    }
    let set: BTreeSet<i64> = keys.iter().copied().collect();
    assert_eq!(set.len(), keys.len());
    assert_eq!(set, source_keys(&sim, "VENDOR"));
    sim.shutdown().await;
}

#[tokio::test]
async fn all_keys_and_deletions() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut s = settings(&sim);
    s.page_size = 7;
    let client = IntacctClient::new(s).unwrap();
    let since = ml_intacct::protocol::values::parse_timestamp(&sim.now()).unwrap();
    sim.advance_clock(Duration::from_secs(5));
    let victim = *source_keys(&sim, "VENDOR").iter().nth(3).unwrap();
    assert!(sim.delete("VENDOR", victim as u64));
    let mut keys = Vec::new();
    let mut st = std::pin::pin!(client.all_keys("VENDOR"));
    while let Some(k) = st.next().await {
        keys.extend(k.unwrap());
    }
    assert_eq!(
        keys.iter().copied().collect::<BTreeSet<_>>(),
        source_keys(&sim, "VENDOR")
    );
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    // A vendor's delete event names it by its VENDORID, not a RECORDNO.
    let deleted = client.deleted_since("VENDOR", since).await.unwrap();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].recordno, None);
    assert_eq!(deleted[0].object_key, format!("V{victim:05}"));
    // A bill's names it as `RECORDNO--REC`.
    let bill = *source_keys(&sim, "APBILL").iter().next().unwrap();
    assert!(sim.delete("APBILL", bill as u64));
    let deleted = client.deleted_since("APBILL", since).await.unwrap();
    assert_eq!(
        deleted.iter().map(|d| d.recordno).collect::<Vec<_>>(),
        [Some(bill)],
        "{deleted:?}"
    );
    // Which RECORDNOs Intacct still has.
    let mut present = client
        .present_keys("VENDOR", &[victim, victim + 1, 999_999])
        .await
        .unwrap();
    present.sort_unstable();
    assert_eq!(present, [victim + 1]);
    sim.shutdown().await;
}

#[tokio::test]
async fn audit_history_denied_is_its_own_error() {
    let mut cfg = SimConfig::tiny();
    cfg.audit_history_readable = false;
    let sim = Simulator::start(cfg).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let since = ml_intacct::protocol::values::parse_timestamp("01/01/2020 00:00:00").unwrap();
    let e = client.deleted_since("VENDOR", since).await.unwrap_err();
    assert!(e.is_audit_history_denied(), "{e:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn permission_denied_surfaces() {
    let mut cfg = SimConfig::tiny();
    cfg.denied_objects.insert("VENDOR".into());
    let sim = Simulator::start(cfg).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let e = client
        .query(Query::new("VENDOR", &["RECORDNO"]))
        .await
        .unwrap_err();
    assert!(e.is_permission_denied(), "{e:?}");
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert_eq!(e.errorno(), Some("PL04000005"));
    assert!(!e.retryable);
    assert!(
        e.to_string().contains("Grant the web services user's role"),
        "{e}"
    );
    // the stream surfaces it too, then ends
    let mut s = std::pin::pin!(client.changed_since(req("VENDOR", 10)));
    assert!(s.next().await.unwrap().unwrap_err().is_permission_denied());
    assert!(s.next().await.is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn account_balances_batch_periods_in_one_request() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut s = settings(&sim);
    s.page_size = 5;
    let client = IntacctClient::new(s).unwrap();
    let all = sim.records("GLACCOUNTBALANCE");
    let periods: BTreeSet<String> = all.iter().map(|r| r["PERIOD"].clone()).collect();
    assert!(periods.len() >= 2, "{periods:?}");
    client.ping().await.unwrap();
    let before = sim.stats().http_requests;
    let rows = client
        .account_balances(BalancesRequest {
            periods: periods.iter().cloned().collect(),
            fields: vec![
                "RECORDNO".into(),
                "PERIOD".into(),
                "ACCOUNTNO".into(),
                "ENDBAL".into(),
            ],
            filter: None,
            modified_since: None,
        })
        .await
        .unwrap();
    let got: BTreeSet<i64> = rows
        .iter()
        .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        .collect();
    assert_eq!(got.len(), rows.len());
    assert_eq!(got, source_keys(&sim, "GLACCOUNTBALANCE"));
    let requests = sim.stats().http_requests - before;
    let max_per_period = periods
        .iter()
        .map(|p| all.iter().filter(|r| &r["PERIOD"] == p).count())
        .max()
        .unwrap();
    assert_eq!(
        requests as usize,
        max_per_period / 5 + 1,
        "pages of all periods share requests"
    );
    sim.shutdown().await;
}

async fn with_fault(
    fault: Fault,
) -> (
    Result<ml_intacct::Page, ml_intacct::IntacctError>,
    u64,
    Simulator,
) {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut s = settings(&sim);
    s.request_timeout = Duration::from_millis(1500);
    let client = IntacctClient::new(s).unwrap();
    client.ping().await.unwrap();
    sim.set_faults(FaultPlan::on_request(1, fault));
    let before = sim.stats().http_requests;
    let r = client.query(Query::new("DEPARTMENT", &["RECORDNO"])).await;
    let n = sim.stats().http_requests - before;
    (r, n, sim)
}

#[tokio::test]
async fn transient_faults_are_retried() {
    for fault in [
        Fault::Http500Empty,
        Fault::Http502Html,
        Fault::Http503Html,
        Fault::Http524,
        Fault::CloudflareHtml,
        Fault::RateLimited,
        Fault::TruncatedXml,
        Fault::MalformedXml,
        Fault::ControlError,
        Fault::ServiceOffline,
        Fault::DropConnection,
        Fault::Slow { millis: 3000 },
    ] {
        let (r, n, sim) = with_fault(fault.clone()).await;
        let page = r.unwrap_or_else(|e| panic!("{fault:?} not retried: {e}"));
        assert!(!page.records.is_empty());
        assert_eq!(n, 2, "{fault:?}: one failure, one retry");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn an_outage_gives_up_after_the_attempt_budget() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    client.ping().await.unwrap();
    sim.set_faults(FaultPlan::none().with(FaultTrigger::FromRequest { n: 1 }, Fault::Http503Html));
    let before = sim.stats().http_requests;
    let e = client
        .query(Query::new("DEPARTMENT", &["RECORDNO"]))
        .await
        .unwrap_err();
    assert_eq!(sim.stats().http_requests - before, 4, "max_attempts");
    assert_eq!(
        (e.level, e.http_status, e.retryable),
        (ErrorLevel::Http, Some(503), true)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn errors_inside_200_surface_at_their_level() {
    // authentication: a session rejected once costs one re-login, then works
    let (r, n, sim) = with_fault(Fault::AuthError).await;
    r.unwrap();
    assert_eq!(n, 3, "rejected call, getAPISession, retried call");
    assert_eq!(logins(&sim), 2);
    sim.shutdown().await;

    // function level: "error processing the request" is retried; PL04000005 is not (see
    // permission_denied_surfaces)
    let (r, n, sim) = with_fault(Fault::FunctionError).await;
    r.unwrap();
    assert_eq!(n, 2);
    sim.shutdown().await;

    // a wrong password is surfaced, not retried
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut s = settings(&sim);
    s.user_password = SecretString::from("wrong");
    let client = IntacctClient::new(s).unwrap();
    let e = client.ping().await.unwrap_err();
    assert_eq!(
        (e.level, e.kind.clone()),
        (ErrorLevel::Authentication, ErrorKind::SignInIncorrect),
        "{e}"
    );
    assert_eq!(sim.stats().http_requests, 1);

    // an unauthorized sender is surfaced with the fix
    let mut s = settings(&sim);
    s.sender_id = ml_sim_intacct::UNAUTHORIZED_SENDER_ID.into();
    s.sender_password = SecretString::from(ml_sim_intacct::UNAUTHORIZED_SENDER_PASSWORD);
    let e = IntacctClient::new(s).unwrap().ping().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::SenderNotAuthorized, "{e}");
    assert!(e.to_string().contains("Web Services authorizations"));

    // the gateway's own 401 for an unknown company
    let mut s = settings(&sim);
    s.company_id = ml_sim_intacct::GATEWAY_UNKNOWN_COMPANY_ID.into();
    let e = IntacctClient::new(s).unwrap().ping().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::SignInIncorrect, "{e}");
    assert!(e.http_status.is_some_and(|s| s >= 400), "{e:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_returned_endpoint_off_intacct_is_refused() {
    let mut cfg = SimConfig::tiny();
    cfg.advertised_endpoint = Some("https://evil.example.com/ia/xml/xmlgw.phtml".into());
    let sim = Simulator::start(cfg).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let e = client
        .query(Query::new("DEPARTMENT", &["RECORDNO"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::EndpointRefused, "{e}");
    assert_eq!(sim.stats().http_requests, 1, "nothing sent after the login");
    let mut s = settings(&sim);
    s.allow_loopback_http = false;
    assert_eq!(
        IntacctClient::new(s).unwrap_err().kind,
        ErrorKind::EndpointRefused
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn ties_on_whenmodified_are_broken_by_recordno() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let all = collect(&client, req("VENDOR", 50)).await;
    let cursor = all.iter().rev().find_map(|p| p.cursor).unwrap();
    sim.advance_clock(Duration::from_secs(10));
    // eight records modified within the same second: pages of 3 must split the tie
    let keys: Vec<i64> = source_keys(&sim, "VENDOR")
        .into_iter()
        .skip(2)
        .take(8)
        .collect();
    for k in &keys {
        assert!(sim.update(
            "VENDOR",
            *k as u64,
            BTreeMap::from([("NAME".into(), format!("tie {k}"))])
        ));
    }
    let mut r = req("VENDOR", 3);
    r.since = Some(cursor);
    let pages = collect(&client, r).await;
    let got: Vec<i64> = pages
        .iter()
        .filter(|p| p.pass == Pass::Modified)
        .flat_map(|p| {
            p.records
                .iter()
                .map(|r| r.get("RECORDNO").unwrap().parse().unwrap())
        })
        .collect();
    assert_eq!(got, keys, "each tied record once, in RECORDNO order");
    assert!(pages.iter().filter(|p| p.pass == Pass::Modified).count() >= 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_near_their_timeout_are_refreshed_before_use() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut s = settings(&sim);
    // The sim's sessions last 2 h; a 3 h margin makes every session "near its end".
    s.session_refresh_margin = Duration::from_secs(3 * 3600);
    let client = IntacctClient::new(s).unwrap();
    for _ in 0..3 {
        client
            .query(Query::new("CLASS", &["RECORDNO"]))
            .await
            .unwrap();
    }
    assert_eq!(
        logins(&sim),
        3,
        "a fresh session for each call, none rejected"
    );
    let st = sim.stats();
    assert_eq!(st.http_requests, 6, "{st:?}");

    // and the age cap alone does the same
    let mut s = settings(&sim);
    s.session_max_age = Duration::ZERO;
    let client = IntacctClient::new(s).unwrap();
    client
        .query(Query::new("CLASS", &["RECORDNO"]))
        .await
        .unwrap();
    client
        .query(Query::new("CLASS", &["RECORDNO"]))
        .await
        .unwrap();
    assert_eq!(logins(&sim), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_next_page_is_fetched_while_the_consumer_holds_the_current_one() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = IntacctClient::new(settings(&sim)).unwrap();
    let queries = |sim: &Simulator| {
        sim.stats()
            .requests_by_function
            .get("query")
            .copied()
            .unwrap_or(0)
    };
    let mut s = std::pin::pin!(client.changed_since(req("VENDOR", 2)));
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.records.len(), 2);
    // Not polling the stream: the producer must still fetch the next page on its own.
    let mut waited = 0;
    while queries(&sim) < 2 {
        assert!(waited < 500, "no prefetch after {waited} checks");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // the prefetched page is the next one, nothing lost or repeated
    let second = s.next().await.unwrap().unwrap();
    let k = |p: &ml_intacct::Page, i: usize| {
        p.records[i]
            .get("RECORDNO")
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert!(k(&second, 0) != k(&first, 0) && k(&second, 0) != k(&first, 1));
    sim.shutdown().await;
}
