//! Over-HTTP tests against the Power BI simulator (`ml-sim-powerbi`) on 127.0.0.1:0: token flow, REST calls,
//! error mapping, and the paced pusher under shortened limits. No sleeps: real waits only where the real protocol
//! waits (pacing windows of one second, Retry-After of one second).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use ml_powerbi::{
    ApiErrorKind, Batch, BatchOutcome, BatchReport, Batcher, ClientCredential, Cloud, Column,
    DataType, DatasetSchema, PowerBiClient, PowerBiError, PowerBiSettings, PushEvent, PushLimits,
    Pusher, Retention, RowEncoder, TableSchema, TableTarget, TokenErrorKind, Value,
};
use ml_sim_powerbi as sim;
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json};
use url::Url;

fn settings(s: &sim::Simulator, tenant: &str, client: &str, secret: &str) -> PowerBiSettings {
    PowerBiSettings {
        cloud: Cloud::Public,
        tenant_id: tenant.into(),
        client_id: client.into(),
        credential: ClientCredential::Secret(secret.to_string().into()),
        authority_url: Some(Url::parse(&s.authority_url()).unwrap()),
        api_url: Some(Url::parse(&s.api_url()).unwrap()),
        allow_loopback_http: true,
        request_timeout: Duration::from_secs(30),
    }
}

fn client(s: &sim::Simulator) -> PowerBiClient {
    PowerBiClient::new(settings(
        s,
        sim::DEFAULT_TENANT_ID,
        sim::DEFAULT_CLIENT_ID,
        sim::DEFAULT_CLIENT_SECRET,
    ))
    .unwrap()
}

fn table(name: &str) -> TableSchema {
    TableSchema::new(
        name,
        vec![
            Column::new("RecordNo", DataType::Int64),
            Column::new("Amount", DataType::Decimal),
            Column::new("Rate", DataType::Double),
            Column::new("Posted", DataType::Boolean),
            Column::new("EntryDate", DataType::DateTime),
            Column::new("Memo", DataType::String),
        ],
    )
}

fn row(i: i64) -> Vec<Value> {
    vec![
        Value::Int64(i),
        Value::Decimal(Decimal::new(i * 137 - 5_000, 2)),
        Value::Double(i as f64 / 8.0),
        Value::Boolean(i % 3 == 0),
        Value::DateTime(
            NaiveDate::from_ymd_opt(2024, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                .unwrap()
                .and_hms_opt(1, 2, 3)
                .unwrap(),
        ),
        if i % 5 == 0 {
            Value::Null
        } else {
            Value::String(format!("memo {i} \"q\" ü"))
        },
    ]
}

/// Encodes rows `0..n` and cuts them into batches; returns the batches and the expected stored rows.
fn batches(t: &TableSchema, n: i64, rows_per_post: usize) -> (Vec<Batch>, Vec<Map<String, Json>>) {
    let enc = RowEncoder::new(t);
    let mut b = Batcher::with_limits(rows_per_post, 16_000_000);
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let r = enc.encode(&row(i)).unwrap();
        expected.push(serde_json::from_str(&r.json).unwrap());
        out.extend(b.push(&r.json).unwrap());
    }
    out.extend(b.finish());
    (out, expected)
}

/// Sorted by RecordNo so concurrent pushes compare regardless of arrival order.
fn sorted(mut rows: Vec<Map<String, Json>>) -> Vec<Map<String, Json>> {
    rows.sort_by_key(|r| r["RecordNo"].as_i64().unwrap());
    rows
}

async fn setup(s: &sim::Simulator, c: &PowerBiClient, t: &TableSchema) -> TableTarget {
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    let ds = c
        .create_push_dataset(
            &g.id,
            &DatasetSchema {
                name: "Sage Intacct".into(),
                tables: vec![t.clone()],
                relationships: vec![],
            },
            Retention::None,
        )
        .await
        .unwrap();
    let _ = s;
    TableTarget {
        group_id: g.id,
        dataset_id: ds.id,
        table: t.name.clone(),
    }
}

async fn push_all(
    p: &Pusher,
    target: &TableTarget,
    batches: Vec<Batch>,
    concurrency: usize,
) -> Vec<BatchReport> {
    futures::stream::iter(batches)
        .map(|b| p.send(target, b, 0))
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// A simulator on a free port and a client of it with the default identity.
async fn start(config: sim::SimConfig) -> (sim::Simulator, PowerBiClient) {
    let s = sim::Simulator::start(config).await.unwrap();
    let c = client(&s);
    (s, c)
}

fn sim_with_limits(limits: sim::SimLimits) -> sim::SimConfig {
    sim::SimConfig {
        limits,
        ..sim::SimConfig::default()
    }
}

#[tokio::test]
async fn create_push_and_read_back_exactly() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    assert_eq!(g.id, sim::DEFAULT_WORKSPACE_ID);
    // By id too (GUID accepted directly).
    assert_eq!(
        c.find_workspace(sim::DEFAULT_WORKSPACE_ID)
            .await
            .unwrap()
            .name,
        sim::DEFAULT_WORKSPACE
    );

    let t = table("GL Entry #1");
    let target = setup(&s, &c, &t).await;
    let listed = c.list_datasets(&target.group_id).await.unwrap();
    let ds = listed
        .iter()
        .find(|d| d.id == target.dataset_id)
        .expect("created dataset is listed");
    assert_eq!(ds.name, "Sage Intacct");
    assert_eq!(ds.add_rows_api_enabled, Some(true));
    let tables = c
        .list_tables(&target.group_id, &target.dataset_id)
        .await
        .unwrap();
    assert_eq!(
        tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["GL Entry #1"]
    );

    let (bs, expected) = batches(&t, 2_500, 1_000);
    assert_eq!(bs.len(), 3);
    let p = Pusher::new(c.clone(), PushLimits::default());
    for b in bs {
        let r = p.send(&target, b, 0).await;
        assert!(matches!(r.outcome, BatchOutcome::Accepted), "{r:?}");
        assert_eq!(r.attempts, 1);
        assert!(r.request_id.is_some(), "RequestId is captured");
    }
    let stored = s
        .table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "GL Entry #1")
        .unwrap();
    assert_eq!(stored, expected, "rows arrive exactly, in order");

    let q = c
        .execute_query(
            &target.group_id,
            &target.dataset_id,
            "EVALUATE ROW(\"n\", COUNTROWS('GL Entry #1'))",
        )
        .await
        .unwrap();
    assert_eq!(q.rows.len(), 1);
    assert_eq!(
        q.rows[0].values().next().and_then(Json::as_i64),
        Some(2_500),
        "{:?}",
        q.rows
    );

    // Schema change, then clear.
    let mut t2 = t.clone();
    t2.columns.push(Column::new("Extra", DataType::String));
    c.put_table(&target.group_id, &target.dataset_id, &t2)
        .await
        .unwrap();
    c.delete_rows(&target.group_id, &target.dataset_id, &t.name)
        .await
        .unwrap();
    assert_eq!(
        s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "GL Entry #1")
            .unwrap()
            .len(),
        0
    );
    s.shutdown().await;
}

/// Issue #3's acceptance run: 1,000,000 rows in real-size batches (10,000 rows), with the per-minute window
/// shortened to one second so it runs in seconds; every row arrives exactly, with no 429, never more than
/// 5 requests in flight and never more POSTs in a window than the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_arrive_exactly_within_every_limit() {
    let limits = sim::SimLimits {
        posts_per_minute: 120,
        minute: Duration::from_secs(1),
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let t = table("Million");
    let target = setup(&s, &c, &t).await;
    let (bs, expected) = batches(&t, 1_000_000, 10_000);
    assert_eq!(bs.len(), 100);
    let push_limits = PushLimits {
        window: Duration::from_secs(1),
        ..PushLimits::default()
    };
    let p = Pusher::new(c.clone(), push_limits);
    let reports = push_all(&p, &target, bs, 8).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "a batch failed"
    );
    assert_eq!(reports.iter().map(|r| r.rows).sum::<usize>(), 1_000_000);
    let stored = s
        .table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Million")
        .unwrap();
    assert_eq!(stored.len(), 1_000_000);
    assert!(
        sorted(stored) == expected,
        "the stored rows differ from the rows sent"
    );
    let stats = s.stats();
    assert_eq!(stats.throttled_429, 0, "{stats:?}");
    assert!(
        stats.peak_in_flight_posts[&target.dataset_id] <= 5,
        "{stats:?}"
    );
    assert!(
        stats.max_posts_in_minute_window[&target.dataset_id] <= 120,
        "{stats:?}"
    );
}

#[tokio::test]
async fn paced_push_stays_inside_every_limit_and_arrives_exactly() {
    let limits = sim::SimLimits {
        posts_per_minute: 20,
        minute: Duration::from_secs(1),
        max_in_flight: 5,
        rows_per_post: 1_000,
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let t = table("Ledger");
    let target = setup(&s, &c, &t).await;
    let (bs, expected) = batches(&t, 50_000, 1_000);
    assert_eq!(bs.len(), 50);
    let push_limits = PushLimits {
        max_rows_per_post: 1_000,
        posts_per_window: 20,
        window: Duration::from_secs(1),
        max_in_flight: 5,
        ..PushLimits::default()
    };
    let p = Pusher::new(c.clone(), push_limits);
    let mut events = p.events();
    // More concurrent callers than slots: the pacer, not the caller, must hold the line.
    let reports = push_all(&p, &target, bs, 16).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted) && r.attempts == 1),
        "{reports:?}"
    );
    assert_eq!(reports.iter().map(|r| r.rows).sum::<usize>(), 50_000);

    let stored = s
        .table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Ledger")
        .unwrap();
    assert_eq!(sorted(stored), expected);
    let stats = s.stats();
    assert_eq!(stats.throttled_429, 0, "{stats:?}");
    assert!(
        stats.peak_in_flight_posts[&target.dataset_id] <= 5,
        "{stats:?}"
    );
    assert!(
        stats.peak_in_flight_posts[&target.dataset_id] >= 2,
        "pushes overlap: {stats:?}"
    );
    assert!(
        stats.max_posts_in_minute_window[&target.dataset_id] <= 20,
        "{stats:?}"
    );
    let mut saw_wait = false;
    while let Ok(e) = events.try_recv() {
        if let PushEvent::Waiting {
            reason, dataset, ..
        } = e
        {
            assert_eq!(dataset, target.dataset_id);
            saw_wait |= reason == "per-minute POST budget";
        }
    }
    assert!(
        saw_wait,
        "50 POSTs at 20 per second must wait for the window"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn hourly_row_budget_is_respected() {
    let limits = sim::SimLimits {
        rows_per_hour: 4_000,
        hour: Duration::from_secs(1),
        rows_per_post: 1_000,
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let t = table("Hourly");
    let target = setup(&s, &c, &t).await;
    let (bs, expected) = batches(&t, 10_000, 1_000);
    let p = Pusher::new(
        c.clone(),
        PushLimits {
            rows_per_hour: 4_000,
            hour: Duration::from_secs(1),
            ..PushLimits::default()
        },
    );
    let mut events = p.events();
    let reports = push_all(&p, &target, bs, 10).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{reports:?}"
    );
    assert_eq!(
        sorted(
            s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Hourly")
                .unwrap()
        ),
        expected
    );
    assert_eq!(s.stats().throttled_429, 0, "{:?}", s.stats());
    let mut reasons = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let PushEvent::Waiting { reason, .. } = e {
            reasons.push(reason);
        }
    }
    assert!(reasons.contains(&"hourly row budget"), "{reasons:?}");
    s.shutdown().await;
}

/// A new process (here a second `Pusher`) pushing into a dataset within the hour after another one:
/// seeded with the first one's recorded POSTs, it waits for the budget instead of drawing 429s;
/// without the history it draws them (which is what the seeding is for).
#[tokio::test]
async fn a_new_pusher_seeded_with_earlier_posts_stays_inside_the_hourly_budget() {
    let limits = sim::SimLimits {
        rows_per_hour: 4_000,
        hour: Duration::from_secs(2),
        rows_per_post: 1_000,
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let t = table("Carried");
    let target = setup(&s, &c, &t).await;
    let push_limits = PushLimits {
        rows_per_hour: 4_000,
        hour: Duration::from_secs(2),
        // One attempt: a 429 is then visible as a failed batch, not hidden by a retry.
        max_attempts: 1,
        ..PushLimits::default()
    };
    let (bs, expected) = batches(&t, 8_000, 1_000);
    let (first, second) = {
        let mut bs = bs;
        let second = bs.split_off(4);
        (bs, second)
    };
    let earlier = Pusher::new(c.clone(), push_limits.clone());
    let reports = push_all(&earlier, &target, first, 4).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted))
    );
    let history: Vec<_> = reports
        .iter()
        .flat_map(|r| r.posts.iter().copied())
        .collect();
    assert_eq!(history.len(), 4, "one POST per batch");
    assert_eq!(history.iter().map(|p| p.rows).sum::<u64>(), 4_000);

    // Unseeded, a new process believes the hour is empty: its first POST is refused.
    let (probe, _) = batches(&t, 1_000, 1_000);
    let unseeded = Pusher::new(c.clone(), push_limits.clone());
    let refused = push_all(&unseeded, &target, probe, 1).await;
    assert!(
        matches!(refused[0].outcome, BatchOutcome::Failed(_)),
        "{refused:?}"
    );
    assert_eq!(s.stats().throttled_429, 1);
    assert_eq!(refused[0].posts.len(), 1, "a refused POST still counts");
    assert_eq!(refused[0].posts[0].rows, 0, "but adds no rows");

    let seeded = Pusher::new(c.clone(), push_limits);
    assert!(!seeded.paces(&target.dataset_id));
    assert!(seeded.seed_history(&target.dataset_id, &history));
    assert!(seeded.paces(&target.dataset_id));
    assert!(
        !seeded.seed_history(&target.dataset_id, &history),
        "a dataset is seeded once"
    );
    let mut events = seeded.events();
    let reports = push_all(&seeded, &target, second, 4).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{reports:?}"
    );
    assert_eq!(
        s.stats().throttled_429,
        1,
        "no 429 once seeded: {:?}",
        s.stats()
    );
    let mut waited_for_hour = false;
    while let Ok(e) = events.try_recv() {
        waited_for_hour |= matches!(
            e,
            PushEvent::Waiting {
                reason: "hourly row budget",
                ..
            }
        );
    }
    assert!(
        waited_for_hour,
        "the seeded pusher waited for the hourly budget"
    );
    let stored = s
        .table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Carried")
        .unwrap();
    assert_eq!(sorted(stored), sorted(expected), "every row arrived once");
    s.shutdown().await;
}

#[tokio::test]
async fn expired_token_mid_push_costs_one_refresh_and_no_failed_batch() {
    let clock = sim::SimClock::manual();
    let cfg = sim::SimConfig {
        clock: clock.clone(),
        token_lifetime: Duration::from_secs(3599),
        limits: sim::SimLimits {
            enforce: false,
            ..sim::SimLimits::default()
        },
        ..sim::SimConfig::default()
    };
    let (s, c) = start(cfg).await;
    let t = table("Tokens");
    let target = setup(&s, &c, &t).await;
    assert_eq!(c.tokens().fetch_count(), 1);
    let (mut bs, expected) = batches(&t, 3_000, 300);
    let p = Pusher::new(c.clone(), PushLimits::default());
    let first: Vec<Batch> = bs.drain(..3).collect();
    let mut reports = push_all(&p, &target, first, 1).await;
    // The service's clock passes the token's expiry; our cache still believes in it.
    s.advance_clock(Duration::from_secs(3700));
    reports.extend(push_all(&p, &target, bs, 5).await);
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{reports:?}"
    );
    assert_eq!(
        c.tokens().fetch_count(),
        2,
        "exactly one refresh for all concurrent callers"
    );
    let refreshes: u32 = reports.iter().map(|r| r.token_refreshes).sum();
    assert!(
        (1..=5).contains(&refreshes),
        "each rejected in-flight batch resent once: {refreshes}"
    );
    assert_eq!(
        sorted(
            s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Tokens")
                .unwrap()
        ),
        expected
    );
    s.shutdown().await;
}

#[tokio::test]
async fn ambiguous_batch_is_reported_and_never_resent() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let t = table("Ambiguous");
    let target = setup(&s, &c, &t).await;
    s.set_faults(sim::FaultPlan::none().with(
        Some(sim::Operation::PostRows),
        sim::Trigger::Nth { requests: vec![3] },
        sim::FaultKind::ResetAfterApply,
    ));
    let (bs, expected) = batches(&t, 500, 100);
    let p = Pusher::new(c.clone(), PushLimits::default());
    let mut reports = Vec::new();
    for b in bs {
        reports.push(p.send(&target, b, 0).await);
    }
    let outcomes: Vec<&str> = reports.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        vec!["accepted", "accepted", "ambiguous", "accepted", "accepted"]
    );
    assert_eq!(reports[2].attempts, 1);
    assert_eq!(reports[2].row_range, 200..300);
    assert_eq!(
        s.stats().requests_by_operation["post_rows"],
        5,
        "the ambiguous batch was not resent"
    );
    // The simulator applied it before dropping the connection: every row is there exactly once.
    assert_eq!(
        s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Ambiguous")
            .unwrap(),
        expected
    );
    s.shutdown().await;
}

#[tokio::test]
async fn refused_batches_are_retried_and_429_honoured() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let t = table("Retry");
    let target = setup(&s, &c, &t).await;
    s.set_faults(
        sim::FaultPlan::none()
            .with(
                Some(sim::Operation::PostRows),
                sim::Trigger::Nth { requests: vec![1] },
                sim::FaultKind::Status { status: 503 },
            )
            .with(
                Some(sim::Operation::PostRows),
                sim::Trigger::Nth { requests: vec![3] },
                sim::FaultKind::Throttle {
                    retry_after_secs: 1,
                },
            ),
    );
    let (bs, expected) = batches(&t, 200, 100);
    let p = Pusher::new(
        c.clone(),
        PushLimits {
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            ..PushLimits::default()
        },
    );
    let mut events = p.events();
    let mut reports = Vec::new();
    for b in bs {
        reports.push(p.send(&target, b, 0).await);
    }
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{reports:?}"
    );
    assert_eq!((reports[0].attempts, reports[0].throttled), (2, 0));
    assert_eq!((reports[1].attempts, reports[1].throttled), (2, 1));
    assert!(
        reports[1].waited >= Duration::from_secs(1),
        "Retry-After honoured: {:?}",
        reports[1].waited
    );
    assert_eq!(
        s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Retry")
            .unwrap(),
        expected
    );
    let mut statuses = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let PushEvent::Retrying { status, .. } = e {
            statuses.push(status);
        }
    }
    assert_eq!(statuses, vec![Some(503), Some(429)]);
    s.shutdown().await;
}

#[tokio::test]
async fn aadsts_errors_are_typed() {
    let s = sim::Simulator::start(sim::SimConfig::default())
        .await
        .unwrap();
    let cases = [
        (
            sim::DEFAULT_TENANT_ID,
            sim::DEFAULT_CLIENT_ID,
            "wrong-secret",
            TokenErrorKind::InvalidSecret,
        ),
        (
            sim::DEFAULT_TENANT_ID,
            sim::DEFAULT_CLIENT_ID,
            sim::DEFAULT_CLIENT_SECRET_ID,
            TokenErrorKind::InvalidSecret,
        ),
        (
            "99999999-2222-3333-4444-555555555555",
            sim::DEFAULT_CLIENT_ID,
            sim::DEFAULT_CLIENT_SECRET,
            TokenErrorKind::TenantNotFound,
        ),
        (
            sim::DEFAULT_TENANT_ID,
            "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee",
            sim::DEFAULT_CLIENT_SECRET,
            TokenErrorKind::UnknownApplication,
        ),
    ];
    for (tenant, client_id, secret, kind) in cases {
        let c = PowerBiClient::new(settings(&s, tenant, client_id, secret)).unwrap();
        let e = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap_err();
        let PowerBiError::Token(te) = &e else {
            panic!("{tenant}/{client_id}: {e}")
        };
        assert_eq!(te.kind, kind, "{e}");
        assert!(te.trace_id.is_some(), "{e}");
        let text = e.to_string();
        assert!(
            !text.contains(secret) || kind == TokenErrorKind::TenantNotFound,
            "secret leaked: {text}"
        );
    }
    // Domain names work as tenant ids.
    let c = PowerBiClient::new(settings(
        &s,
        sim::DEFAULT_TENANT_DOMAIN,
        sim::DEFAULT_CLIENT_ID,
        sim::DEFAULT_CLIENT_SECRET,
    ))
    .unwrap();
    c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    s.shutdown().await;
}

#[tokio::test]
async fn certificate_credential_gets_a_token() {
    let s = sim::Simulator::start(sim::SimConfig::default())
        .await
        .unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    use rsa::pkcs8::EncodePrivateKey;
    let key_pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let cert_pem =
        pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, b"der bytes")
            .unwrap();
    let mut st = settings(&s, sim::DEFAULT_TENANT_ID, sim::DEFAULT_CLIENT_ID, "unused");
    st.credential = ClientCredential::Certificate {
        private_key_pem: key_pem.into(),
        certificate_pem: cert_pem,
    };
    let c = PowerBiClient::new(st).unwrap();
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    assert_eq!(g.id, sim::DEFAULT_WORKSPACE_ID);
    assert_eq!(s.stats().tokens_issued, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn workspace_and_permission_errors_are_actionable() {
    let mut cfg = sim::SimConfig::default();
    let other_id = "0b0b0b0b-0000-4000-8000-000000000001";
    cfg.workspaces.push(sim::WorkspaceConfig {
        id: other_id.into(),
        name: "Locked".into(),
        tenant_id: sim::DEFAULT_TENANT_ID.into(),
        members: vec![],
        datasets: vec![],
    });
    let import_id = "0c0c0c0c-0000-4000-8000-000000000002";
    cfg.workspaces[0].datasets.push(sim::PresetDataset {
        id: import_id.into(),
        name: "Desktop report".into(),
        kind: sim::PresetKind::Import,
        tables: vec![sim::PresetTable {
            name: "T".into(),
            columns: vec![("a".into(), "Int64".into())],
        }],
    });
    let (s, c) = start(cfg).await;

    let e = c.find_workspace("Locked").await.unwrap_err();
    assert!(matches!(e, PowerBiError::WorkspaceNotFound { .. }), "{e}");
    assert!(e.to_string().contains("Member or Contributor"), "{e}");
    let e = c.find_workspace(other_id).await.unwrap_err();
    let api = e.api().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(api.kind, ApiErrorKind::GroupNotAccessible, "{e}");
    assert!(e.to_string().contains("add the service principal"), "{e}");
    assert!(api.request_id.is_some(), "{e}");

    let e = c
        .post_rows(
            sim::DEFAULT_WORKSPACE_ID,
            import_id,
            "T",
            r#"{"rows":[{"a":1}]}"#.into(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.api().map(|a| a.kind),
        Some(ApiErrorKind::NotPushDataset),
        "{e}"
    );

    let e = c
        .list_tables(
            sim::DEFAULT_WORKSPACE_ID,
            "0d0d0d0d-0000-4000-8000-000000000003",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.api().map(|a| a.kind),
            Some(ApiErrorKind::ItemNotFound | ApiErrorKind::EntityNotFound)
        ),
        "{e}"
    );
    s.shutdown().await;

    // Tenant switch off for the app.
    let mut cfg = sim::SimConfig::default();
    cfg.tenants[0].apps[0].allowed_by_tenant_switch = false;
    let s = sim::Simulator::start(cfg).await.unwrap();
    let e = client(&s)
        .find_workspace(sim::DEFAULT_WORKSPACE)
        .await
        .unwrap_err();
    assert_eq!(
        e.api().map(|a| a.kind),
        Some(ApiErrorKind::TenantSwitchOff),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("Service principals can use Fabric APIs"),
        "{e}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn bad_schema_is_refused_before_sending() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    let before: BTreeMap<String, u64> = s.stats().requests_by_operation;
    let bad = DatasetSchema {
        name: "D".into(),
        tables: vec![table("Bad.Name")],
        relationships: vec![],
    };
    let e = c
        .create_push_dataset(&g.id, &bad, Retention::None)
        .await
        .unwrap_err();
    assert!(matches!(e, PowerBiError::Schema(_)), "{e}");
    assert_eq!(s.stats().requests_by_operation, before, "nothing was sent");
    s.shutdown().await;
}

#[tokio::test]
async fn token_is_fetched_once_for_concurrent_callers_and_invalidated_once() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let tokens = c.tokens().clone();
    let got = futures::future::join_all((0..20).map(|_| {
        let t = tokens.clone();
        async move { t.token().await.unwrap() }
    }))
    .await;
    assert_eq!(tokens.fetch_count(), 1, "single flight");
    assert_eq!(s.stats().tokens_issued, 1);
    // Five callers refused with the same token: one refresh, not five.
    for _ in 0..5 {
        tokens.invalidate(&got[0]).await;
    }
    let fresh = tokens.token().await.unwrap();
    tokens.invalidate(&got[3]).await; // stale: must not throw away the fresh token
    tokens.token().await.unwrap();
    assert_eq!(tokens.fetch_count(), 2);
    assert!(
        !format!("{fresh:?}").contains("ey"),
        "token redacted in Debug"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn timed_out_batch_is_ambiguous_and_not_resent() {
    let s = sim::Simulator::start(sim::SimConfig::default())
        .await
        .unwrap();
    let mut st = settings(
        &s,
        sim::DEFAULT_TENANT_ID,
        sim::DEFAULT_CLIENT_ID,
        sim::DEFAULT_CLIENT_SECRET,
    );
    st.request_timeout = Duration::from_millis(500);
    let c = PowerBiClient::new(st).unwrap();
    let t = table("Slow");
    let target = setup(&s, &c, &t).await;
    s.set_faults(sim::FaultPlan::none().with(
        Some(sim::Operation::PostRows),
        sim::Trigger::Nth { requests: vec![1] },
        sim::FaultKind::Delay { millis: 5_000 },
    ));
    let (mut bs, _) = batches(&t, 10, 10);
    let p = Pusher::new(c, PushLimits::default());
    let r = p.send(&target, bs.remove(0), 0).await;
    let BatchOutcome::Ambiguous { why } = &r.outcome else {
        panic!("{r:?}")
    };
    assert!(why.contains("outcome is unknown"), "{why}");
    assert_eq!(r.attempts, 1);
    assert_eq!(
        s.stats().requests_by_operation["post_rows"],
        1,
        "not resent"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn unreachable_api_is_retried_then_failed_not_ambiguous() {
    let s = sim::Simulator::start(sim::SimConfig::default())
        .await
        .unwrap();
    // A port with nothing listening: the connection is refused, so nothing can have been applied.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut st = settings(
        &s,
        sim::DEFAULT_TENANT_ID,
        sim::DEFAULT_CLIENT_ID,
        sim::DEFAULT_CLIENT_SECRET,
    );
    st.api_url = Some(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    let c = PowerBiClient::new(st).unwrap();
    let t = table("Nowhere");
    let (mut bs, _) = batches(&t, 10, 10);
    let p = Pusher::new(
        c,
        PushLimits {
            max_attempts: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            ..PushLimits::default()
        },
    );
    let target = TableTarget {
        group_id: "g".into(),
        dataset_id: "d".into(),
        table: "Nowhere".into(),
    };
    let r = p.send(&target, bs.remove(0), 0).await;
    let BatchOutcome::Failed(PowerBiError::Transport(te)) = &r.outcome else {
        panic!("{r:?}")
    };
    assert!(!te.maybe_sent, "{te}");
    assert_eq!(r.attempts, 3);
    s.shutdown().await;
}

#[tokio::test]
async fn large_table_gets_the_hourly_post_cap() {
    let limits = sim::SimLimits {
        large_table_rows: 2_000,
        large_table_posts_per_hour: 4,
        hour: Duration::from_secs(1),
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let t = table("Big");
    let target = setup(&s, &c, &t).await;
    let (bs, expected) = batches(&t, 5_000, 500);
    let p = Pusher::new(
        c.clone(),
        PushLimits {
            large_table_rows: 2_000,
            large_table_posts_per_hour: 4,
            hour: Duration::from_secs(1),
            ..PushLimits::default()
        },
    );
    let mut events = p.events();
    // Sequential, passing the rows already in the table, as the pipeline does.
    let mut reports = Vec::new();
    for b in bs {
        let before = b.row_range().start;
        reports.push(p.send(&target, b, before).await);
    }
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{reports:?}"
    );
    assert_eq!(s.stats().throttled_429, 0, "{:?}", s.stats());
    assert_eq!(
        s.table_rows(sim::DEFAULT_WORKSPACE, "Sage Intacct", "Big")
            .unwrap(),
        expected
    );
    let mut reasons = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let PushEvent::Waiting { reason, .. } = e {
            reasons.push(reason);
        }
    }
    assert!(
        reasons.iter().any(|r| r.contains("over 250,000 rows")),
        "{reasons:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn reads_retry_throttling_but_dataset_creation_is_never_resent() {
    let (s, c) = start(sim::SimConfig::default()).await;
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    s.set_faults(
        sim::FaultPlan::none()
            .with(
                Some(sim::Operation::GetDatasets),
                sim::Trigger::Nth { requests: vec![1] },
                sim::FaultKind::Throttle {
                    retry_after_secs: 0,
                },
            )
            .with(
                Some(sim::Operation::PostDataset),
                sim::Trigger::Nth { requests: vec![1] },
                sim::FaultKind::Status { status: 503 },
            ),
    );
    c.list_datasets(&g.id).await.unwrap();
    assert_eq!(
        s.stats().requests_by_operation["get_datasets"],
        2,
        "429 on a read is retried"
    );
    let ds = DatasetSchema {
        name: "Once".into(),
        tables: vec![table("T")],
        relationships: vec![],
    };
    let e = c
        .create_push_dataset(&g.id, &ds, Retention::BasicFifo)
        .await
        .unwrap_err();
    assert_eq!(
        e.api().map(|a| a.kind),
        Some(ApiErrorKind::ServerError),
        "{e}"
    );
    assert_eq!(
        s.stats().requests_by_operation["post_dataset"],
        1,
        "a create is never resent"
    );
    let created = c
        .create_push_dataset(&g.id, &ds, Retention::BasicFifo)
        .await
        .unwrap();
    assert_eq!(
        created.default_retention_policy.as_deref(),
        Some("basicFIFO")
    );
    s.shutdown().await;
}

#[tokio::test]
async fn tables_of_one_dataset_share_its_budget() {
    let limits = sim::SimLimits {
        posts_per_minute: 10,
        minute: Duration::from_secs(1),
        rows_per_post: 500,
        ..sim::SimLimits::default()
    };
    let (s, c) = start(sim_with_limits(limits)).await;
    let g = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    let (a, b) = (table("A"), table("B"));
    let ds = c
        .create_push_dataset(
            &g.id,
            &DatasetSchema {
                name: "Shared".into(),
                tables: vec![a.clone(), b.clone()],
                relationships: vec![],
            },
            Retention::None,
        )
        .await
        .unwrap();
    let p = Pusher::new(
        c.clone(),
        PushLimits {
            posts_per_window: 10,
            window: Duration::from_secs(1),
            ..PushLimits::default()
        },
    );
    let ta = TableTarget {
        group_id: g.id.clone(),
        dataset_id: ds.id.clone(),
        table: "A".into(),
    };
    let tb = TableTarget {
        group_id: g.id.clone(),
        dataset_id: ds.id.clone(),
        table: "B".into(),
    };
    let (ba, ea) = batches(&a, 6_000, 500);
    let (bb, eb) = batches(&b, 6_000, 500);
    // Two independent callers (e.g. two streams), one Pusher: 24 POSTs against a 10-per-second budget.
    let (ra, rb) = tokio::join!(push_all(&p, &ta, ba, 4), push_all(&p, &tb, bb, 4));
    assert!(
        ra.iter()
            .chain(&rb)
            .all(|r| matches!(r.outcome, BatchOutcome::Accepted)),
        "{ra:?} {rb:?}"
    );
    let stats = s.stats();
    assert_eq!(stats.throttled_429, 0, "{stats:?}");
    assert!(stats.max_posts_in_minute_window[&ds.id] <= 10, "{stats:?}");
    assert!(stats.peak_in_flight_posts[&ds.id] <= 5, "{stats:?}");
    assert_eq!(
        sorted(s.table_rows(sim::DEFAULT_WORKSPACE, "Shared", "A").unwrap()),
        ea
    );
    assert_eq!(
        sorted(s.table_rows(sim::DEFAULT_WORKSPACE, "Shared", "B").unwrap()),
        eb
    );
    s.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_outage_is_retried_once() {
    let s = sim::Simulator::start(sim::SimConfig::default())
        .await
        .unwrap();
    s.set_faults(sim::FaultPlan::none().with(
        Some(sim::Operation::Token),
        sim::Trigger::Nth { requests: vec![1] },
        sim::FaultKind::Status { status: 503 },
    ));
    let c = client(&s);
    c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap();
    assert_eq!(s.stats().requests_by_operation["token"], 2);
    assert_eq!(s.stats().tokens_issued, 1);
    // Two outages in a row surface as a typed, retryable error.
    s.set_faults(sim::FaultPlan::none().with(
        Some(sim::Operation::Token),
        sim::Trigger::Always,
        sim::FaultKind::Status { status: 503 },
    ));
    let c = client(&s);
    let e = c.find_workspace(sim::DEFAULT_WORKSPACE).await.unwrap_err();
    let PowerBiError::Token(te) = &e else {
        panic!("{e}")
    };
    assert_eq!(te.kind, TokenErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    s.shutdown().await;
}
