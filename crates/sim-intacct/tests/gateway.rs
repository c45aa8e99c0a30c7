//! End-to-end tests of the simulated gateway over real HTTP.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use ml_sim_intacct::{
    DEFAULT_COMPANY_ID, DEFAULT_USER_ID, Fault, FaultPlan, FaultTrigger,
    GATEWAY_UNKNOWN_COMPANY_ID, Latency, SimConfig, Simulator, UNAUTHORIZED_SENDER_ID,
    UNAUTHORIZED_SENDER_PASSWORD,
};

/// A tiny company on a clock that moves only when the test says so.
fn tiny_cfg() -> SimConfig {
    SimConfig {
        clock_follows_real_time: false,
        ..SimConfig::tiny()
    }
}

async fn tiny() -> Simulator {
    Simulator::start(tiny_cfg())
        .await
        .expect("simulator starts")
}

async fn new_session(sim: &Simulator) -> String {
    let (status, doc) = post(&sim.endpoint(), envelope(&login(), &get_api_session())).await;
    assert_eq!(status, 200, "{doc}");
    first(&doc, "sessionid").expect("sessionid in getAPISession data")
}

fn is_iso_with_offset(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn success_envelope_echoes_control_and_carries_session_times() {
    let sim = tiny().await;
    let (status, doc) = post(
        &sim.endpoint(),
        envelope(
            &login(),
            &read_by_query("f1", "VENDOR", "RECORDNO,VENDORID,NAME", "", 5),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let control = first(&doc, "control").unwrap();
    assert_eq!(first(&control, "status").as_deref(), Some("success"));
    assert_eq!(
        first(&control, "senderid").as_deref(),
        Some("ML_SIM_SENDER")
    );
    assert_eq!(first(&control, "controlid").as_deref(), Some("ctl-42"));
    assert_eq!(first(&control, "uniqueid").as_deref(), Some("false"));
    assert_eq!(first(&control, "dtdversion").as_deref(), Some("3.0"));
    let auth = first(&doc, "authentication").unwrap();
    assert_eq!(first(&auth, "status").as_deref(), Some("success"));
    assert_eq!(first(&auth, "userid").as_deref(), Some(DEFAULT_USER_ID));
    assert_eq!(
        first(&auth, "companyid").as_deref(),
        Some(DEFAULT_COMPANY_ID)
    );
    assert_eq!(first(&auth, "locationid").as_deref(), Some(""));
    let ts = first(&auth, "sessiontimestamp").unwrap();
    let to = first(&auth, "sessiontimeout").unwrap();
    assert!(
        is_iso_with_offset(&ts) && is_iso_with_offset(&to),
        "{ts} / {to}"
    );
    let gap = chrono::DateTime::parse_from_rfc3339(&to).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&ts).unwrap();
    assert_eq!(gap.num_seconds(), 2 * 3600);
    let res = first(&doc, "result").unwrap();
    assert_eq!(first(&res, "status").as_deref(), Some("success"));
    assert_eq!(first(&res, "function").as_deref(), Some("readByQuery"));
    assert_eq!(first(&res, "controlid").as_deref(), Some("f1"));
    assert_eq!(attr(&doc, "data", "listtype").as_deref(), Some("vendor"));
    assert_eq!(attr(&doc, "data", "count").as_deref(), Some("5"));
    assert_eq!(count_tag(&doc, "vendor"), 5);
    assert_eq!(first(&doc, "VENDORID").as_deref(), Some("V00001"));
    assert_eq!(
        sim.stats().requests_by_function.get("readByQuery"),
        Some(&1)
    );
    assert_eq!(sim.stats().logins, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_slide_and_expire_on_the_sim_clock() {
    let sim = tiny().await;
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &get_api_session())).await;
    assert_eq!(
        first(&doc, "endpoint").as_deref(),
        Some(sim.endpoint().as_str())
    );
    assert_eq!(first(&doc, "function").as_deref(), Some("getAPISession"));
    let sid = first(&doc, "sessionid").unwrap();
    let call = || {
        envelope(
            &session(&sid),
            &read_by_query("f", "DEPARTMENT", "RECORDNO", "", 1),
        )
    };

    // 1h30 later the session is alive, and the call slides the expiry another 2 h.
    sim.advance_clock(Duration::from_secs(90 * 60));
    let (_, doc) = post(&sim.endpoint(), call()).await;
    assert_eq!(
        first(&first(&doc, "authentication").unwrap(), "status").as_deref(),
        Some("success"),
        "{doc}"
    );
    sim.advance_clock(Duration::from_secs(90 * 60));
    let (_, doc) = post(&sim.endpoint(), call()).await;
    assert_eq!(
        first(&first(&doc, "authentication").unwrap(), "status").as_deref(),
        Some("success"),
        "{doc}"
    );

    // Past the timeout: authentication failure, empty userid/companyid, no result.
    sim.advance_clock(Duration::from_secs(2 * 3600 + 60));
    let (status, doc) = post(&sim.endpoint(), call()).await;
    assert_eq!(status, 200);
    let auth = first(&doc, "authentication").unwrap();
    assert_eq!(first(&auth, "status").as_deref(), Some("failure"));
    assert_eq!(first(&auth, "userid").as_deref(), Some(""));
    assert_eq!(first(&auth, "companyid").as_deref(), Some(""));
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XL03000006"));
    assert!(
        first(&doc, "description2")
            .unwrap()
            .starts_with("Invalid session")
    );
    assert!(!doc.contains("<result>"));
    // The errormessage sits inside operation, after authentication.
    let op = first(&doc, "operation").unwrap();
    assert!(op.find("</authentication>").unwrap() < op.find("<errormessage>").unwrap());
    sim.shutdown().await;
}

#[tokio::test]
async fn sender_and_user_credential_errors_land_at_their_levels() {
    let sim = tiny().await;
    // Wrong sender password: control failure, errormessage beside control, no operation.
    let (status, doc) = post(
        &sim.endpoint(),
        envelope_with("ML_SIM_SENDER", "nope", false, &login(), &get_api_session()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        first(&first(&doc, "control").unwrap(), "status").as_deref(),
        Some("failure")
    );
    assert!(!doc.contains("<operation>"));
    assert!(doc.find("</control>").unwrap() < doc.find("<errormessage>").unwrap());
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XL03000006"));

    // A real sender not authorized for this company: authentication failure with the FAQ texts.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope_with(
            UNAUTHORIZED_SENDER_ID,
            UNAUTHORIZED_SENDER_PASSWORD,
            false,
            &login(),
            &get_api_session(),
        ),
    )
    .await;
    assert_eq!(
        first(&first(&doc, "control").unwrap(), "status").as_deref(),
        Some("success")
    );
    assert_eq!(
        first(&first(&doc, "authentication").unwrap(), "status").as_deref(),
        Some("failure")
    );
    assert_eq!(
        first(&doc, "description").as_deref(),
        Some("Invalid Web Services Authorization")
    );
    assert!(
        first(&doc, "description2")
            .unwrap()
            .contains("is not authorized to make Web Services requests to company ID 'MLDEMO'")
    );
    assert!(
        first(&doc, "correction")
            .unwrap()
            .starts_with("Contact the company administrator")
    );

    // Wrong user password.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login_as(DEFAULT_USER_ID, DEFAULT_COMPANY_ID, "bad"),
            &get_api_session(),
        ),
    )
    .await;
    let auth = first(&doc, "authentication").unwrap();
    assert_eq!(first(&auth, "status").as_deref(), Some("failure"));
    assert_eq!(first(&auth, "userid").as_deref(), Some(DEFAULT_USER_ID));
    assert_eq!(
        first(&doc, "description2").as_deref(),
        Some("Sign-in information is incorrect")
    );

    // Entity login with the pipe syntax works and is echoed as locationid.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login_as(DEFAULT_USER_ID, "MLDEMO|200", "sim-user-secret"),
            &get_api_session(),
        ),
    )
    .await;
    assert_eq!(
        first(&first(&doc, "authentication").unwrap(), "locationid").as_deref(),
        Some("200"),
        "{doc}"
    );
    assert_eq!(
        first(&first(&doc, "api").unwrap(), "locationid").as_deref(),
        Some("200")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn gateway_errors_use_http_status_and_minimal_control() {
    let sim = tiny().await;
    let (status, doc) = post(
        &sim.endpoint(),
        envelope(
            &login_as(DEFAULT_USER_ID, GATEWAY_UNKNOWN_COMPANY_ID, "x"),
            &get_api_session(),
        ),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XMLGW_JPP0002"));
    assert_eq!(
        first(&doc, "control").as_deref(),
        Some("<status>failure</status>")
    );

    let (status, doc) = post(&sim.endpoint(), String::new()).await;
    assert_eq!(status, 400);
    assert_eq!(first(&doc, "errorno").as_deref(), Some("GW-0011"));
    assert!(
        first(&doc, "description")
            .unwrap()
            .starts_with("Invalid Request [Request ID: ")
    );

    let (status, doc) = post(&sim.endpoint(), envelope(&session(""), &get_api_session())).await;
    assert_eq!(status, 400, "{doc}");
    sim.shutdown().await;
}

#[tokio::test]
async fn doctype_and_schema_violations_get_xl03000003() {
    let sim = tiny().await;
    let with_doctype = envelope(&login(), &get_api_session()).replacen(
        "<request>",
        "<!DOCTYPE request [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><request>",
        1,
    );
    let (status, doc) = post(&sim.endpoint(), with_doctype).await;
    assert_eq!(status, 200);
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XL03000003"));
    assert!(!doc.contains("root:"));

    // A huge offset is valid (>= 0) and simply returns nothing.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login(),
            &query("f", "VENDOR", &["RECORDNO"], "", "", 10, 0)
                .replace("<offset>0</offset>", "<offset>9223372036854775807</offset>"),
        ),
    )
    .await;
    assert_eq!(attr(&doc, "data", "count").as_deref(), Some("0"), "{doc}");

    let cases = [
        read_by_query("f", "VENDOR", "*", "", 1001),
        query("f", "VENDOR", &["RECORDNO"], "", "", 2001, 0),
        query("f", "VENDOR", &["*"], "", "", 10, 0),
        query(
            "f",
            "VENDOR",
            &["RECORDNO"],
            "<and><equalto><field>STATUS</field><value>active</value></equalto></and>",
            "",
            10,
            0,
        ),
        query(
            "f",
            "VENDOR",
            &["RECORDNO"],
            "<between><field>RECORDNO</field><value>1</value></between>",
            "",
            10,
            0,
        ),
        query(
            "f",
            "VENDOR",
            &["RECORDNO"],
            &format!(
                "<in><field>RECORDNO</field>{}</in>",
                (0..1001)
                    .map(|i| format!("<value>{i}</value>"))
                    .collect::<String>()
            ),
            "",
            10,
            0,
        ),
        "<function controlid=\"f\"><readByQuery><query></query></readByQuery></function>"
            .to_string(),
    ];
    for f in cases {
        let (status, doc) = post(&sim.endpoint(), envelope(&login(), &f)).await;
        assert_eq!(status, 200);
        assert_eq!(
            first(&doc, "errorno").as_deref(),
            Some("XL03000003"),
            "{f}\n{doc}"
        );
        assert!(
            first(&doc, "description2")
                .unwrap()
                .starts_with("XML Parse schema error"),
            "{doc}"
        );
        assert!(
            first(&doc, "description2")
                .unwrap()
                .contains("[Support ID: ")
        );
        assert!(!doc.contains("<operation>"));
        assert_eq!(
            first(&first(&doc, "control").unwrap(), "controlid").as_deref(),
            Some("ctl-42")
        );
    }
    // Control children out of order.
    let swapped = envelope(&login(), &get_api_session()).replace(
        "<senderid>ML_SIM_SENDER</senderid><password>sim-sender-secret</password>",
        "<password>sim-sender-secret</password><senderid>ML_SIM_SENDER</senderid>",
    );
    let (_, doc) = post(&sim.endpoint(), swapped).await;
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XL03000003"));
    // Malformed XML.
    let (_, doc) = post(&sim.endpoint(), "<request><control></request>".into()).await;
    assert_eq!(first(&doc, "errorno").as_deref(), Some("XL03000003"));
    sim.shutdown().await;
}

#[tokio::test]
async fn read_by_query_pages_with_read_more() {
    let sim = tiny().await;
    let sid = new_session(&sim).await;
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &session(&sid),
            &read_by_query("p1", "VENDOR", "RECORDNO,VENDORID", "", 10),
        ),
    )
    .await;
    assert_eq!(attr(&doc, "data", "count").as_deref(), Some("10"));
    assert_eq!(attr(&doc, "data", "totalcount").as_deref(), Some("25"));
    assert_eq!(attr(&doc, "data", "numremaining").as_deref(), Some("15"));
    let mut seen = all(&doc, "RECORDNO");
    let mut rid = attr(&doc, "data", "resultId").unwrap();
    assert!(!rid.is_empty());
    let mut pages = 1;
    while !rid.is_empty() {
        let (_, doc) = post(
            &sim.endpoint(),
            envelope(&session(&sid), &read_more("m", &rid)),
        )
        .await;
        assert_eq!(first(&doc, "function").as_deref(), Some("readMore"));
        assert_eq!(attr(&doc, "data", "listtype").as_deref(), Some("vendor"));
        seen.extend(all(&doc, "RECORDNO"));
        rid = attr(&doc, "data", "resultId").unwrap();
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = sim
        .records("VENDOR")
        .iter()
        .map(|r| r["RECORDNO"].clone())
        .collect();
    assert_eq!(seen, expected);
    // A spent resultId is refused.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(&session(&sid), &read_more("m", "nope")),
    )
    .await;
    assert_eq!(
        first(&first(&doc, "result").unwrap(), "status").as_deref(),
        Some("failure")
    );
    // Zero rows: an empty data element with all attributes.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &session(&sid),
            &read_by_query("z", "DEPARTMENT", "*", "RECORDNO = 99999", 10),
        ),
    )
    .await;
    assert!(doc.contains("<data listtype=\"department\" count=\"0\" totalcount=\"0\" numremaining=\"0\" resultId=\"\"/>"), "{doc}");
    sim.shutdown().await;
}

fn ts(s: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M:%S").ok()
}

#[tokio::test]
async fn query_orders_and_pages_with_offset() {
    let sim = tiny().await;
    let sid = new_session(&sim).await;
    let order = "<order><field>WHENMODIFIED</field><ascending/></order><order><field>RECORDNO</field><ascending/></order>";
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let (_, doc) = post(
            &sim.endpoint(),
            envelope(
                &session(&sid),
                &query(
                    "q",
                    "VENDOR",
                    &["RECORDNO", "WHENMODIFIED"],
                    "<isnotnull><field>WHENMODIFIED</field></isnotnull>",
                    order,
                    7,
                    offset,
                ),
            ),
        )
        .await;
        assert_eq!(
            attr(&doc, "data", "listtype").as_deref(),
            Some("VENDOR"),
            "{doc}"
        );
        assert_eq!(attr(&doc, "data", "offset"), Some(offset.to_string()));
        let n: u32 = attr(&doc, "data", "count").unwrap().parse().unwrap();
        got.extend(
            all(&doc, "RECORDNO")
                .into_iter()
                .zip(all(&doc, "WHENMODIFIED")),
        );
        assert_eq!(count_tag(&doc, "VENDOR") as u32, n);
        if attr(&doc, "data", "numremaining").as_deref() == Some("0") {
            break;
        }
        offset += n;
    }
    let mut expected: Vec<(String, String)> = sim
        .records("VENDOR")
        .into_iter()
        .filter(|r| !r["WHENMODIFIED"].is_empty())
        .map(|r| (r["RECORDNO"].clone(), r["WHENMODIFIED"].clone()))
        .collect();
    expected.sort_by_key(|(no, wm)| (ts(wm), no.parse::<u64>().unwrap()));
    assert_eq!(got, expected);
    assert!(expected.len() < 25, "some vendors were never modified");
    sim.shutdown().await;
}

#[tokio::test]
async fn filters_compare_typed_values() {
    let sim = tiny().await;
    let vendors = sim.records("VENDOR");
    // caseinsensitive: a lowercased name matches only with the option on.
    let name = vendors[0]["NAME"].to_lowercase();
    for (ci, n) in [(false, "0"), (true, "1")] {
        let f = format!(
            "<function controlid=\"c\"><query><object>VENDOR</object><select><field>RECORDNO</field></select>\
<filter><equalto><field>NAME</field><value>{name}</value></equalto></filter>\
<options><caseinsensitive>{ci}</caseinsensitive><showprivate>true</showprivate></options></query></function>"
        );
        let (_, doc) = post(&sim.endpoint(), envelope(&login(), &f)).await;
        assert_eq!(
            attr(&doc, "data", "totalcount").as_deref(),
            Some(n),
            "{doc}"
        );
    }
    // A cut-off whose string comparison differs from the date-time comparison.
    let cut = "02/01/2026 00:00:00";
    let cut_t = ts(cut).unwrap();
    let expected = vendors
        .iter()
        .filter(|r| ts(&r["WHENMODIFIED"]).is_some_and(|t| t > cut_t))
        .count();
    let by_string = vendors
        .iter()
        .filter(|r| !r["WHENMODIFIED"].is_empty() && r["WHENMODIFIED"].as_str() > cut)
        .count();
    assert_ne!(
        expected, by_string,
        "the fixture must tell the two comparisons apart"
    );
    let q = query(
        "q",
        "VENDOR",
        &["RECORDNO"],
        &format!("<greaterthan><field>WHENMODIFIED</field><value>{cut}</value></greaterthan>"),
        "",
        100,
        0,
    );
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &q)).await;
    assert_eq!(
        attr(&doc, "data", "totalcount"),
        Some(expected.to_string()),
        "{doc}"
    );

    // readByQuery string: DB characters for STATUS, AND/OR, IS NULL, IN, LIKE.
    let active = vendors.iter().filter(|r| r["STATUS"] == "active").count();
    let cases: Vec<(String, usize)> = vec![
        ("STATUS = 'T'".into(), active),
        ("STATUS != 'T'".into(), vendors.len() - active),
        (
            "WHENMODIFIED IS NULL".into(),
            vendors
                .iter()
                .filter(|r| r["WHENMODIFIED"].is_empty())
                .count(),
        ),
        ("RECORDNO IN (1,2,3) OR VENDORID = 'V00010'".into(), 4),
        (
            "NAME LIKE 'S%' AND STATUS = 'T'".into(),
            vendors
                .iter()
                .filter(|r| r["NAME"].starts_with('S') && r["STATUS"] == "active")
                .count(),
        ),
        (format!("WHENMODIFIED &gt; '{cut}'"), expected),
        ("RECORDNO &gt;= 5 AND RECORDNO &lt;= 9".into(), 5),
        ("NOT (RECORDNO &lt; 20)".into(), 6),
    ];
    for (q, n) in cases {
        let (_, doc) = post(
            &sim.endpoint(),
            envelope(&login(), &read_by_query("r", "VENDOR", "RECORDNO", &q, 100)),
        )
        .await;
        assert_eq!(
            attr(&doc, "data", "totalcount"),
            Some(n.to_string()),
            "{q}\n{doc}"
        );
    }

    // Structured operators: between, notin, like (case-insensitive option), isnull.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login(),
            &query("q", "VENDOR", &["RECORDNO"], "<and><between><field>RECORDNO</field><value>3</value><value>8</value></between><notin><field>RECORDNO</field><value>4</value><value>5</value></notin></and>", "<order><field>RECORDNO</field><descending/></order>", 100, 0),
        ),
    )
    .await;
    assert_eq!(all(&doc, "RECORDNO"), vec!["8", "7", "6", "3"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn function_errors_permissions_and_transactions() {
    let mut cfg = tiny_cfg();
    cfg.denied_objects.insert("CUSTOMER".into());
    cfg.audit_history_readable = false;
    let sim = Simulator::start(cfg).await.unwrap();
    let funcs = [
        read_by_query("a", "BADOBJECT", "*", "", 10),
        query("b", "VENDOR", &["RECORDNO", "NOPE"], "", "", 10, 0),
        read_by_query("c", "CUSTOMER", "*", "", 10),
        query("d", "AUDITHISTORY", &["OBJECTKEY"], "", "", 10, 0),
        read_by_query("e", "VENDOR", "RECORDNO", "", 1),
    ]
    .concat();
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &funcs)).await;
    let results = all(&doc, "result");
    assert_eq!(results.len(), 5);
    let status: Vec<String> = results
        .iter()
        .map(|r| first(r, "status").unwrap())
        .collect();
    assert_eq!(
        status,
        ["failure", "failure", "failure", "failure", "success"]
    );
    assert_eq!(
        first(&results[0], "errorno").as_deref(),
        Some("Query Failed")
    );
    assert!(
        first(&results[0], "description2")
            .unwrap()
            .starts_with("Object definition BADOBJECT not found")
    );
    assert!(
        first(&results[1], "errorno")
            .unwrap()
            .starts_with("Invalid fields list")
    );
    assert_eq!(
        count_tag(&results[1], "error"),
        2,
        "cause first, generic follow-up second"
    );
    assert_eq!(first(&results[2], "errorno").as_deref(), Some("PL04000005"));
    assert!(
        first(&results[2], "description2")
            .unwrap()
            .contains("You do not have permission for API operation READ_BY_QUERY")
    );
    assert!(first(&results[3], "errorno").is_none());
    assert!(
        first(&results[3], "description2")
            .unwrap()
            .contains("do not have permission to view audit history")
    );
    // Support IDs are URL-encoded.
    assert!(first(&results[0], "description2").unwrap().contains("%7E"));

    // transaction="true": failing function `failure`, the others `aborted`, all with XL03000009.
    let funcs = [
        read_by_query("ok", "VENDOR", "RECORDNO", "", 1),
        read_by_query("bad", "BADOBJECT", "*", "", 1),
    ]
    .concat();
    let (_, doc) = post(
        &sim.endpoint(),
        envelope_with("ML_SIM_SENDER", "sim-sender-secret", true, &login(), &funcs),
    )
    .await;
    let results = all(&doc, "result");
    assert_eq!(first(&results[0], "status").as_deref(), Some("aborted"));
    assert_eq!(first(&results[1], "status").as_deref(), Some("failure"));
    assert!(
        results
            .iter()
            .all(|r| all(r, "errorno").contains(&"XL03000009".to_string()))
    );
    assert!(!results[0].contains("<data"));
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrency_cap_answers_429() {
    let mut cfg = tiny_cfg();
    cfg.latency = Latency {
        per_request: Duration::from_secs(3),
        ..Latency::default()
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let body = envelope(&login(), &read_by_query("f", "CLASS", "RECORDNO", "", 1));
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(post_owned(sim.endpoint(), body.clone())))
        .collect();
    // Bounded poll on the server's own in-flight counter.
    let mut tries = 0;
    while sim.stats().in_flight < 2 {
        tries += 1;
        assert!(tries < 500, "two requests never got in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, doc) = post(&sim.endpoint(), body.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(first(&doc, "errorno").as_deref(), Some("GW-0010"));
    let stats = sim.stats();
    assert_eq!(stats.rejected_429, 1);
    assert_eq!(stats.peak_concurrency, 2);
    for h in slow {
        let (status, _) = h.await.unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(sim.stats().in_flight, 0);
    sim.shutdown().await;
}

async fn post_owned(url: String, body: String) -> (u16, String) {
    post(&url, body).await
}

#[tokio::test]
async fn same_seed_same_company_and_consistent_balances() {
    let a = tiny().await;
    let b = tiny().await;
    let mut other = tiny_cfg();
    other.seed = 7;
    let c = Simulator::start(other).await.unwrap();
    for obj in [
        "VENDOR",
        "APBILL",
        "APPYMT",
        "GLENTRY",
        "GLACCOUNTBALANCE",
        "AUDITHISTORY",
        "USERINFO",
    ] {
        assert_eq!(a.records(obj), b.records(obj), "{obj}");
    }
    assert_ne!(a.records("VENDOR"), c.records("VENDOR"));

    // ENDBAL = OPENBAL + TOTDEBIT - TOTCREDIT, and each period opens at the previous ending balance.
    use rust_decimal::Decimal;
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let bals = a.records("GLACCOUNTBALANCE");
    assert_eq!(bals.len(), 3 * 12 * 3 * 3);
    type Row = BTreeMap<String, String>;
    let mut by_key: BTreeMap<(String, String, String), Vec<&Row>> = BTreeMap::new();
    for r in &bals {
        assert_eq!(
            d(&r["ENDBAL"]),
            d(&r["OPENBAL"]) + d(&r["TOTDEBIT"]) - d(&r["TOTCREDIT"])
        );
        assert_eq!(r["BOOKID"], "ACCRUAL");
        assert!(r["PERIOD"].starts_with("Month Ended "));
        by_key
            .entry((
                r["ACCOUNTNO"].clone(),
                r["DEPARTMENTID"].clone(),
                r["LOCATIONID"].clone(),
            ))
            .or_default()
            .push(r);
    }
    for rows in by_key.values() {
        assert_eq!(rows.len(), 3);
        for w in rows.windows(2) {
            assert_eq!(w[1]["OPENBAL"], w[0]["ENDBAL"]);
        }
    }
    assert_eq!(bals[0]["PERIOD"], "Month Ended August 2026");
    assert_eq!(bals.last().unwrap()["PERIOD"], "Month Ended October 2026");

    // get_accountbalances sums the dimensions of one period.
    let acct = &bals[0]["ACCOUNTNO"];
    let f = format!(
        "<function controlid=\"b\"><get_accountbalances><reportingperiodname>Month Ended October 2026</reportingperiodname><glaccountno>{acct}</glaccountno><showzerobalances>true</showzerobalances><reportingbook>ACCRUAL</reportingbook></get_accountbalances></function>"
    );
    let (_, doc) = post(&a.endpoint(), envelope(&login(), &f)).await;
    let end: Decimal = bals
        .iter()
        .filter(|r| &r["ACCOUNTNO"] == acct && r["PERIOD"] == "Month Ended October 2026")
        .map(|r| d(&r["ENDBAL"]))
        .sum();
    assert_eq!(first(&doc, "endbalance").map(|s| d(&s)), Some(end), "{doc}");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn seeded_data_looks_like_a_real_company() {
    let sim = Simulator::start(SimConfig {
        size: ml_sim_intacct::CompanySize {
            vendors: 400,
            ..ml_sim_intacct::CompanySize::tiny()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let vendors = sim.records("VENDOR");
    let empty = vendors
        .iter()
        .filter(|r| r["WHENMODIFIED"].is_empty())
        .count();
    assert!(
        (20..=70).contains(&empty),
        "about 10% never modified, got {empty}"
    );
    let mut per_second: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &vendors {
        *per_second.entry(r["WHENMODIFIED"].as_str()).or_default() += 1;
    }
    assert!(
        per_second.iter().any(|(k, n)| !k.is_empty() && *n >= 5),
        "bulk updates share a second"
    );
    assert!(vendors.iter().all(|r| {
        r["TOTALDUE"]
            .split_once('.')
            .is_some_and(|(_, c)| c.len() == 2)
    }));
    assert_eq!(sim.records("LOCATION").len(), 3);
    let audit = sim.records("AUDITHISTORY");
    assert!(
        audit
            .iter()
            .all(|r| r["ACCESSMODE"] == "D" && r["OBJECTTYPE"] == r["OBJECTTYPE"].to_lowercase())
    );
    // OBJECTKEY is the object's unique name field: the business ID of a vendor or a customer,
    // `RECORDNO--REC` for a bill.
    for r in &audit {
        let key = &r["OBJECTKEY"];
        let ok = match r["OBJECTTYPE"].as_str() {
            "vendor" => key.starts_with('V') && !key.ends_with("--REC"),
            "customer" => key.starts_with('C') && !key.ends_with("--REC"),
            "apbill" => key
                .strip_suffix("--REC")
                .is_some_and(|n| n.parse::<u64>().is_ok()),
            other => panic!("unexpected seeded delete of {other}"),
        };
        assert!(ok, "{r:?}");
    }
    for kind in ["vendor", "customer", "apbill"] {
        assert!(audit.iter().any(|r| r["OBJECTTYPE"] == kind), "{kind}");
    }
    // lookup: types and a custom field.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login(),
            "<function controlid=\"l\"><lookup><object>VENDOR</object></lookup></function>",
        ),
    )
    .await;
    assert!(
        doc.contains("<Type Name=\"VENDOR\" DocumentType=\"\">"),
        "{doc}"
    );
    let fields = all(&doc, "Field");
    let tier = fields
        .iter()
        .find(|f| f.contains("<ID>VENDOR_TIER</ID>"))
        .expect("custom field listed");
    assert!(
        tier.contains("<ISCUSTOM>true</ISCUSTOM>")
            && tier.contains("<VALIDVALUE>Gold</VALIDVALUE>")
    );
    for t in [
        "INTEGER",
        "TEXT",
        "CURRENCY",
        "BOOLEAN",
        "TIMESTAMP",
        "ENUM",
    ] {
        assert!(doc.contains(&format!("<DATATYPE>{t}</DATATYPE>")), "{t}");
    }
    // readUserFormatting
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), "<function controlid=\"u\"><readUserFormatting><key>1</key></readUserFormatting></function>")).await;
    assert_eq!(first(&doc, "dateformat").as_deref(), Some("/mdY"));
    assert_eq!(first(&doc, "clock").as_deref(), Some("24"));
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_writes_move_whenmodified_and_record_deletes() {
    let sim = tiny().await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", sim.addr());
    let resp = http
        .post(format!("{base}/admin/records/VENDOR"))
        .json(&serde_json::json!({"VENDORID": "VNEW", "NAME": "New Vendor LLC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let v: serde_json::Value = resp.json().await.unwrap();
    let recno = v["recordno"].as_u64().unwrap();
    let created = sim
        .records("VENDOR")
        .into_iter()
        .find(|r| r["RECORDNO"] == recno.to_string())
        .unwrap();
    assert_eq!(created["WHENMODIFIED"], sim.now());

    sim.advance_clock(Duration::from_secs(3600));
    assert!(sim.update(
        "VENDOR",
        3,
        [("NAME".to_string(), "Renamed".to_string())].into()
    ));
    let r3 = sim
        .records("VENDOR")
        .into_iter()
        .find(|r| r["RECORDNO"] == "3")
        .unwrap();
    assert_eq!(r3["NAME"], "Renamed");
    assert_eq!(r3["WHENMODIFIED"], sim.now());
    assert!(ts(&r3["WHENMODIFIED"]).unwrap() > ts(&created["WHENMODIFIED"]).unwrap());

    let vendor_4_id = sim
        .records("VENDOR")
        .into_iter()
        .find(|r| r["RECORDNO"] == "4")
        .unwrap()["VENDORID"]
        .clone();
    let resp = http
        .delete(format!("{base}/admin/records/VENDOR/4"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(!sim.records("VENDOR").iter().any(|r| r["RECORDNO"] == "4"));
    assert!(!sim.delete("VENDOR", 4));
    let q = query(
        "a",
        "AUDITHISTORY",
        &["OBJECTKEY", "ACCESSTIME"],
        &format!(
            "<and><equalto><field>OBJECTTYPE</field><value>vendor</value></equalto><equalto><field>ACCESSMODE</field><value>D</value></equalto><equalto><field>OBJECTKEY</field><value>{vendor_4_id}</value></equalto></and>"
        ),
        "",
        10,
        0,
    );
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &q)).await;
    assert_eq!(attr(&doc, "data", "count").as_deref(), Some("1"), "{doc}");
    assert_eq!(first(&doc, "ACCESSTIME"), Some(sim.now()));

    // APBILL re-created from Purchasing: new RECORDNO, delete event for the old one.
    let old_bill = sim.records("APBILL")[0].clone();
    let old_no: u64 = old_bill["RECORDNO"].parse().unwrap();
    let new_no = sim.recreate("APBILL", old_no).unwrap();
    assert_ne!(new_no, old_no);
    let bills = sim.records("APBILL");
    assert!(!bills.iter().any(|r| r["RECORDNO"] == old_no.to_string()));
    let new_bill = bills
        .iter()
        .find(|r| r["RECORDNO"] == new_no.to_string())
        .unwrap();
    assert_eq!(new_bill["RECORDID"], old_bill["RECORDID"]);
    assert_eq!(new_bill["MODULEKEY"], "9.PO");
    assert!(
        sim.records("AUDITHISTORY")
            .iter()
            .any(|r| r["OBJECTTYPE"] == "apbill" && r["OBJECTKEY"] == format!("{old_no}--REC"))
    );

    let list: Vec<serde_json::Value> = http
        .get(format!("{base}/admin/records/VENDOR"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 25);
    let stats: serde_json::Value = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests_by_function"]["query"], 1);
    let plan = serde_json::json!({"seed": 1, "rules": [{"trigger": {"when": "on_request", "n": 1}, "fault": {"kind": "http502_html"}}]});
    let resp = http
        .post(format!("{base}/admin/faults"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, _) = post(&sim.endpoint(), envelope(&login(), &get_api_session())).await;
    assert_eq!(status, 502);
    let resp = http
        .post(format!("{base}/admin/clock/advance"))
        .json(&serde_json::json!({"seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_faults_by_request_number() {
    let sim = tiny().await;
    let body = || envelope(&login(), &read_by_query("f", "CLASS", "RECORDNO", "", 1));
    sim.set_faults(
        FaultPlan::on_request(2, Fault::Http503Html)
            .with(FaultTrigger::OnRequest { n: 3 }, Fault::CloudflareHtml)
            .with(FaultTrigger::OnRequest { n: 4 }, Fault::FunctionError)
            .with(FaultTrigger::OnRequest { n: 5 }, Fault::ServiceOffline)
            .with(FaultTrigger::OnRequest { n: 6 }, Fault::Http500Empty)
            .with(FaultTrigger::OnRequest { n: 7 }, Fault::TruncatedXml)
            .with(FaultTrigger::OnRequest { n: 8 }, Fault::AuthError)
            .with(FaultTrigger::OnRequest { n: 9 }, Fault::DropConnection),
    );
    let (s1, _) = post(&sim.endpoint(), body()).await;
    assert_eq!(s1, 200);
    let (s2, d2) = post(&sim.endpoint(), body()).await;
    assert_eq!(s2, 503);
    assert!(d2.contains("<html>"));
    let (s3, d3) = post(&sim.endpoint(), body()).await;
    assert_eq!(s3, 520);
    assert!(d3.contains("cf-error-details"));
    let (s4, d4) = post(&sim.endpoint(), body()).await;
    assert_eq!(s4, 200);
    assert_eq!(
        first(&first(&d4, "result").unwrap(), "status").as_deref(),
        Some("failure")
    );
    let (_, d5) = post(&sim.endpoint(), body()).await;
    assert!(d5.contains("The Service is Temporarily Off-line"));
    let (s6, d6) = post(&sim.endpoint(), body()).await;
    assert_eq!((s6, d6.as_str()), (500, ""));
    let (_, d7) = post(&sim.endpoint(), body()).await;
    assert!(!d7.contains("</response>"));
    let (_, d8) = post(&sim.endpoint(), body()).await;
    assert_eq!(
        first(&first(&d8, "authentication").unwrap(), "status").as_deref(),
        Some("failure")
    );
    let dropped = reqwest::Client::new()
        .post(sim.endpoint())
        .body(body())
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "a dropped connection never yields a complete body");
    let (s10, _) = post(&sim.endpoint(), body()).await;
    assert_eq!(s10, 200);
    assert_eq!(sim.stats().faults_injected, 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn entity_scoping_showprivate_and_key_reads() {
    let sim = tiny().await;
    let vendors = sim.records("VENDOR");
    let top_level = vendors
        .iter()
        .filter(|r| r["MEGAENTITYID"].is_empty())
        .count();
    let in_100 = vendors
        .iter()
        .filter(|r| r["MEGAENTITYID"].is_empty() || r["MEGAENTITYID"] == "100")
        .count();
    assert!(
        top_level < vendors.len(),
        "the fixture must have entity-private vendors"
    );
    let q = |showprivate: bool| {
        format!(
            "<function controlid=\"q\"><query><object>VENDOR</object><select><field>RECORDNO</field></select>\
<options><showprivate>{showprivate}</showprivate></options><pagesize>100</pagesize></query></function>"
        )
    };
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &q(false))).await;
    assert_eq!(
        attr(&doc, "data", "totalcount"),
        Some(top_level.to_string())
    );
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &q(true))).await;
    assert_eq!(
        attr(&doc, "data", "totalcount"),
        Some(vendors.len().to_string())
    );
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &login_as(DEFAULT_USER_ID, "MLDEMO|100", "sim-user-secret"),
            &q(false),
        ),
    )
    .await;
    assert_eq!(
        attr(&doc, "data", "totalcount"),
        Some(in_100.to_string()),
        "{doc}"
    );

    let f = "<function controlid=\"r\"><read><object>VENDOR</object><keys>1,2,999999</keys><fields>RECORDNO,NAME</fields></read></function>\
<function controlid=\"n\"><readByName><object>VENDOR</object><keys>V00003</keys></readByName></function>";
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), f)).await;
    let results = all(&doc, "result");
    assert_eq!(attr(&results[0], "data", "count").as_deref(), Some("2"));
    assert_eq!(
        attr(&results[0], "data", "listtype").as_deref(),
        Some("VENDOR")
    );
    assert_eq!(count_tag(&results[0], "VENDOR"), 2);
    assert_eq!(first(&results[1], "RECORDNO").as_deref(), Some("3"));
    assert_eq!(first(&results[1], "VENDORID").as_deref(), Some("V00003"));
    sim.shutdown().await;
}

#[tokio::test]
async fn query_returnformat_json_and_csv_are_bare_data() {
    let sim = tiny().await;
    let f = |fmt: &str| {
        format!(
            "<function controlid=\"q\"><query><object>CLASS</object><select><field>RECORDNO</field><field>NAME</field></select>\
<options><showprivate>true</showprivate><returnformat>{fmt}</returnformat></options></query></function>"
        )
    };
    let resp = reqwest::Client::new()
        .post(sim.endpoint())
        .body(envelope(&login(), &f("json")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let rows: Vec<BTreeMap<String, String>> = resp.json().await.unwrap();
    let expected: Vec<BTreeMap<String, String>> = sim
        .records("CLASS")
        .into_iter()
        .map(|r| {
            [
                ("RECORDNO".to_string(), r["RECORDNO"].clone()),
                ("NAME".to_string(), r["NAME"].clone()),
            ]
            .into()
        })
        .collect();
    assert_eq!(rows, expected);
    let (status, csv) = post(&sim.endpoint(), envelope(&login(), &f("csv"))).await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("RECORDNO,NAME\r\n1,Services\r\n"), "{csv}");
    // An error keeps the XML envelope.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(&login(), &f("json").replace("CLASS", "BADOBJECT")),
    )
    .await;
    assert_eq!(first(&doc, "errorno").as_deref(), Some("Query Failed"));
    sim.shutdown().await;
}

/// Latency knobs and the slow fault, measured on tokio's paused clock (no real waiting).
#[tokio::test(start_paused = true)]
async fn latency_knobs_and_slow_fault_delay_answers() {
    let mut cfg = tiny_cfg();
    cfg.latency = Latency {
        per_request: Duration::from_secs(2),
        per_function: Duration::from_secs(3),
        per_record: Duration::from_secs(1),
    };
    let sim = Simulator::start(cfg).await.unwrap();
    let body = envelope(&login(), &read_by_query("f", "VENDOR", "RECORDNO", "", 5));
    let t = tokio::time::Instant::now();
    let (status, doc) = post(&sim.endpoint(), body.clone()).await;
    assert_eq!(status, 200, "{doc}");
    let el = t.elapsed();
    assert!(el >= Duration::from_secs(2 + 3 + 5), "{el:?}");
    assert!(el < Duration::from_secs(60), "{el:?}");

    sim.set_faults(FaultPlan::on_request(1, Fault::Slow { millis: 120_000 }));
    let t = tokio::time::Instant::now();
    let (status, _) = post(&sim.endpoint(), body).await;
    assert_eq!(status, 200);
    assert!(
        t.elapsed() >= Duration::from_secs(120 + 10),
        "{:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn demo_firm_has_the_documented_volume() {
    let sim = Simulator::start(SimConfig {
        clock_follows_real_time: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let expected = [
        ("VENDOR", 2000),
        ("GLACCOUNT", 150),
        ("DEPARTMENT", 8),
        ("LOCATION", 3),
        ("CLASS", 5),
        ("PROJECT", 40),
        ("CUSTOMER", 300),
        ("EMPLOYEE", 60),
        ("ITEM", 100),
        ("APBILL", 6000),
        ("APPYMT", 4000),
        ("GLACCOUNTBALANCE", 12 * 150 * 8 * 3),
    ];
    let funcs: String = expected
        .iter()
        .map(|(o, _)| query(o, o, &["RECORDNO"], "", "", 1, 0))
        .collect();
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &funcs)).await;
    let results = all(&doc, "result");
    for ((object, n), r) in expected.iter().zip(&results) {
        assert_eq!(
            attr(r, "data", "totalcount"),
            Some(n.to_string()),
            "{object}"
        );
    }
    // A year of bills before the clock start.
    let f = query(
        "b",
        "APBILL",
        &["WHENCREATED"],
        "<lessthan><field>WHENCREATED</field><value>11/01/2025</value></lessthan>",
        "",
        1,
        0,
    );
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &f)).await;
    assert_eq!(
        attr(&doc, "data", "totalcount").as_deref(),
        Some("0"),
        "{doc}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn entity_sessions_and_wildcard_listener() {
    // start_on with a wildcard bind still advertises a callable loopback endpoint.
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sim = Simulator::start_on(listener, tiny_cfg()).await;
    assert_eq!(
        sim.endpoint(),
        format!("http://127.0.0.1:{port}/ia/xml/xmlgw.phtml")
    );

    let sid = new_session(&sim).await;
    let to_entity = "<function controlid=\"e\"><getAPISession><locationid>200</locationid></getAPISession></function>";
    let (_, doc) = post(&sim.endpoint(), envelope(&session(&sid), to_entity)).await;
    assert_eq!(
        first(&first(&doc, "api").unwrap(), "locationid").as_deref(),
        Some("200"),
        "{doc}"
    );
    let entity_sid = first(&doc, "sessionid").unwrap();
    assert_ne!(entity_sid, sid);
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &session(&entity_sid),
            &read_by_query("f", "CLASS", "RECORDNO", "", 1),
        ),
    )
    .await;
    assert_eq!(
        first(&first(&doc, "authentication").unwrap(), "locationid").as_deref(),
        Some("200")
    );

    // Balances seen from the entity are that location's only.
    let in_200 = sim
        .records("GLACCOUNTBALANCE")
        .iter()
        .filter(|r| r["LOCATIONID"] == "200")
        .count();
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &session(&entity_sid),
            &query("b", "GLACCOUNTBALANCE", &["RECORDNO"], "", "", 1, 0),
        ),
    )
    .await;
    assert_eq!(attr(&doc, "data", "totalcount"), Some(in_200.to_string()));

    let bad = "<function controlid=\"e\"><getAPISession><locationid>999</locationid></getAPISession></function>";
    let (_, doc) = post(&sim.endpoint(), envelope(&session(&sid), bad)).await;
    assert_eq!(
        first(&doc, "errorno").as_deref(),
        Some("Get API Session Failed")
    );

    // readMore by object continues the latest readByQuery on that object.
    let (_, doc) = post(
        &sim.endpoint(),
        envelope(
            &session(&sid),
            &read_by_query("f", "VENDOR", "RECORDNO", "", 20),
        ),
    )
    .await;
    assert_eq!(attr(&doc, "data", "numremaining").as_deref(), Some("5"));
    let more = "<function controlid=\"m\"><readMore><object>VENDOR</object></readMore></function>";
    let (_, doc) = post(&sim.endpoint(), envelope(&session(&sid), more)).await;
    assert_eq!(all(&doc, "RECORDNO"), ["21", "22", "23", "24", "25"]);
    assert_eq!(attr(&doc, "data", "resultId").as_deref(), Some(""));
    assert_eq!(
        sim.stats().logins,
        3,
        "one login, then two getAPISession calls over the session"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn whitespace_option_and_seeded_probability_faults() {
    let sim = tiny().await;
    let pretty = envelope(
        &login(),
        &read_by_query("f", "CLASS", "RECORDNO,NAME", "", 10),
    )
    .replace(
        "<includewhitespace>false</includewhitespace>",
        "<includewhitespace>true</includewhitespace>",
    );
    let (_, doc) = post(&sim.endpoint(), pretty).await;
    assert!(
        doc.contains("\n  <control>\n    <status>success</status>"),
        "{doc}"
    );
    assert_eq!(count_tag(&doc, "class"), 2);

    // The same seed gives the same faulted request numbers.
    let plan = FaultPlan {
        seed: 5,
        rules: vec![ml_sim_intacct::FaultRule {
            trigger: FaultTrigger::Probability { p: 0.5 },
            fault: Fault::Http502Html,
        }],
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        sim.set_faults(plan.clone());
        let mut statuses = Vec::new();
        for _ in 0..12 {
            let (s, _) = post(&sim.endpoint(), envelope(&login(), &get_api_session())).await;
            statuses.push(s);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&502) && runs[0].contains(&200),
        "{:?}",
        runs[0]
    );
    sim.shutdown().await;
}

/// The AUDITHISTORY delete event a deletion of `object`'s record `recordno` writes, read back
/// through the gateway.
async fn delete_event_key(sim: &Simulator, object: &str, recordno: u64) -> String {
    assert!(sim.delete(object, recordno), "{object} {recordno}");
    let q = query(
        "a",
        "AUDITHISTORY",
        &["OBJECTKEY", "ID"],
        &format!(
            "<and><equalto><field>OBJECTTYPE</field><value>{}</value></equalto>\
             <equalto><field>ACCESSMODE</field><value>D</value></equalto>\
             <equalto><field>ACCESSTIME</field><value>{}</value></equalto></and>",
            object.to_lowercase(),
            sim.now()
        ),
        "",
        10,
        0,
    );
    let (_, doc) = post(&sim.endpoint(), envelope(&login(), &q)).await;
    assert_eq!(attr(&doc, "data", "count").as_deref(), Some("1"), "{doc}");
    first(&doc, "OBJECTKEY").unwrap()
}

#[tokio::test]
async fn delete_events_name_master_data_by_its_business_id() {
    let sim = tiny().await;
    sim.advance_clock(Duration::from_secs(60));
    for (object, id_field) in [
        ("VENDOR", "VENDORID"),
        ("CUSTOMER", "CUSTOMERID"),
        ("DEPARTMENT", "DEPARTMENTID"),
        ("LOCATION", "LOCATIONID"),
        ("CLASS", "CLASSID"),
        ("PROJECT", "PROJECTID"),
        ("EMPLOYEE", "EMPLOYEEID"),
        ("ITEM", "ITEMID"),
        ("GLACCOUNT", "ACCOUNTNO"),
    ] {
        sim.advance_clock(Duration::from_secs(1));
        let record = sim.records(object).into_iter().next().unwrap();
        let recordno: u64 = record["RECORDNO"].parse().unwrap();
        assert!(!record[id_field].is_empty(), "{object}");
        let key = delete_event_key(&sim, object, recordno).await;
        assert_eq!(key, record[id_field], "{object}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_events_name_documents_by_recordno() {
    let sim = tiny().await;
    for object in ["APBILL", "APPYMT"] {
        sim.advance_clock(Duration::from_secs(1));
        let recordno: u64 = sim.records(object)[0]["RECORDNO"].parse().unwrap();
        let key = delete_event_key(&sim, object, recordno).await;
        assert_eq!(key, format!("{recordno}--REC"), "{object}");
    }
    sim.shutdown().await;
}
