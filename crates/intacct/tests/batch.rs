//! Several functions in one request, each answered on its own, over real HTTP against the
//! Intacct simulator.

use std::collections::BTreeSet;
use std::time::Duration;

use ml_intacct::{BalancesRequest, ErrorKind, IntacctClient, IntacctSettings, RetryPolicy};
use ml_sim_intacct::{Fault, FaultPlan, FaultTrigger, SimConfig, Simulator};
use secrecy::SecretString;

fn client(sim: &Simulator, page_size: u32) -> IntacctClient {
    let mut s = IntacctSettings::new(
        ml_sim_intacct::DEFAULT_SENDER_ID,
        SecretString::from(ml_sim_intacct::DEFAULT_SENDER_PASSWORD),
        ml_sim_intacct::DEFAULT_COMPANY_ID,
        ml_sim_intacct::DEFAULT_USER_ID,
        SecretString::from(ml_sim_intacct::DEFAULT_USER_PASSWORD),
    );
    s.endpoint = sim.endpoint().parse().unwrap();
    s.allow_loopback_http = true;
    s.page_size = page_size;
    s.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(30),
    };
    IntacctClient::new(s).unwrap()
}

#[tokio::test]
async fn setup_reads_formatting_and_every_lookup_in_one_request() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = client(&sim, 100);
    client.ping().await.unwrap();
    let before = sim.stats().http_requests;
    let setup = client
        .setup(&["VENDOR", "LOCATIONS", "GLACCOUNT"])
        .await
        .expect("the request as a whole succeeds");
    assert_eq!(sim.stats().http_requests - before, 1, "one round trip");
    assert!(!setup.formatting.expect("formatting").gmt_offset.is_empty());
    assert_eq!(setup.lookups.len(), 3);
    let vendor = setup.lookups[0].as_ref().expect("VENDOR");
    assert!(
        vendor.fields.iter().any(|f| f.id == "VENDORID"),
        "{vendor:?}"
    );
    // The unknown object fails its own lookup only, with Intacct's error.
    let missing = setup.lookups[1].as_ref().unwrap_err();
    assert_eq!(missing.kind, ErrorKind::ObjectNotFound, "{missing}");
    assert!(setup.lookups[2].is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_function_failing_now_and_then_is_retried_alone_and_the_batch_finishes() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = client(&sim, 5);
    let all = sim.records("GLACCOUNTBALANCE");
    let periods: Vec<String> = all
        .iter()
        .map(|r| r["PERIOD"].clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(periods.len() >= 2, "{periods:?}");
    client.ping().await.unwrap();
    // Every 3rd function is "temporarily off-line": a request of several periods always has
    // one failing, so retrying whole requests would never finish.
    sim.set_faults(
        FaultPlan::none().with(FaultTrigger::EveryFunction { n: 3 }, Fault::ServiceOffline),
    );
    let before = sim.stats();
    let rows = client
        .account_balances(BalancesRequest {
            periods: periods.clone(),
            fields: vec!["RECORDNO".into(), "PERIOD".into(), "ENDBAL".into()],
            filter: None,
            modified_since: None,
        })
        .await
        .expect("every period read despite the faults");
    let got: BTreeSet<String> = rows
        .iter()
        .map(|r| r.get("RECORDNO").unwrap().to_owned())
        .collect();
    let want: BTreeSet<String> = all.iter().map(|r| r["RECORDNO"].clone()).collect();
    assert_eq!(got.len(), rows.len(), "no record twice");
    assert_eq!(got, want);
    let after = sim.stats();
    let faults = after.faults_injected - before.faults_injected;
    assert!(faults > 0, "the plan fired");
    // Only the failed functions were sent again: functions run = pages read + one per fault.
    let functions = after
        .requests_by_function
        .get("query")
        .copied()
        .unwrap_or(0)
        - before
            .requests_by_function
            .get("query")
            .copied()
            .unwrap_or(0);
    let pages: u64 = periods
        .iter()
        .map(|p| all.iter().filter(|r| &r["PERIOD"] == p).count() as u64 / 5 + 1)
        .sum();
    assert_eq!(
        functions,
        pages + faults,
        "{functions} functions, {pages} pages, {faults} faults"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_newest_deletion_is_one_function_and_names_its_time() {
    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let client = client(&sim, 100);
    let key: u64 = sim.records("VENDOR")[0]["RECORDNO"].parse().unwrap();
    assert!(sim.delete("VENDOR", key));
    let newest = client
        .newest_deletion("VENDOR")
        .await
        .expect("AUDITHISTORY readable");
    let all = client
        .deleted_since(
            "VENDOR",
            chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap().into(),
        )
        .await
        .unwrap();
    let latest = all.iter().filter_map(|d| d.access_time).max();
    assert!(latest.is_some(), "{all:?}");
    assert_eq!(newest, latest);
    sim.shutdown().await;
}
