//! The client and change files against the Fabric simulator over real HTTP: upload, rename,
//! replicate, markers merged by key, a type change refused, faults retried; and every file read
//! back by pyarrow (skipped without it, failing instead when CI=true).

use std::time::Duration;

use ml_onelake::{ChangeFile, ColumnKind, LandingZone, OneLakeClient, RowMarker, Value};
use ml_powerbi::{ClientCredential, Cloud, PowerBiSettings, TokenSource};
use ml_sim_fabric::{
    FabricSim, FaultKind, FaultPlan, FaultRule, Operation, SimConfig, TableStatus,
};

async fn client(sim: &FabricSim) -> OneLakeClient {
    let cfg = sim.config();
    let mut s = PowerBiSettings::new(
        Cloud::Public,
        cfg.tenant_id.clone(),
        cfg.client_id.clone(),
        ClientCredential::Secret(cfg.client_secret.clone().into()),
    );
    s.authority_url = Some(sim.base_url().parse().unwrap());
    s.allow_loopback_http = true;
    let token = TokenSource::for_scope(&s, ml_onelake::STORAGE_SCOPE).unwrap();
    let lz = LandingZone::parse(&sim.landing_zone_url(), true).unwrap();
    OneLakeClient::new(lz, token, Duration::from_secs(10))
        .unwrap()
        .with_backoff(Duration::from_millis(10))
}

fn file(rows: &[(i64, Option<&str>, Option<f64>, RowMarker)]) -> Vec<u8> {
    let mut f = ChangeFile::new(vec![
        ("RECORDNO".into(), ColumnKind::Int64),
        ("NAME".into(), ColumnKind::String),
        ("AMOUNT".into(), ColumnKind::Double),
        ("WHENMODIFIED".into(), ColumnKind::Timestamp),
        ("ACTIVE".into(), ColumnKind::Boolean),
    ]);
    for (k, name, amt, m) in rows {
        f.push(
            vec![
                Value::Int64(*k),
                name.map_or(Value::Null, |n| Value::String(n.into())),
                amt.map_or(Value::Null, Value::Double),
                Value::Timestamp(1_700_000_000_000_000),
                Value::Boolean(true),
            ],
            *m,
        )
        .unwrap();
    }
    f.finish().unwrap()
}

async fn publish(c: &OneLakeClient, n: u64, bytes: &[u8]) {
    let tmp = format!("Vendors/_{n:020}.parquet");
    c.upload(&tmp, bytes).await.unwrap();
    c.rename(&tmp, &format!("Vendors/{n:020}.parquet"), true)
        .await
        .unwrap();
}

#[tokio::test]
async fn files_in_sequence_merge_by_key_and_a_type_change_stops_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let sim = FabricSim::start(SimConfig::new(dir.path())).await.unwrap();
    let c = client(&sim).await;
    c.upload("Vendors/_metadata.json", br#"{"keyColumns":["RECORDNO"]}"#)
        .await
        .unwrap();
    // Faults on the way: a 503 on the first append, a 429 on the first flush: both retried.
    sim.set_faults(FaultPlan {
        rules: vec![
            FaultRule {
                operation: Operation::Append,
                requests: vec![2],
                fault: FaultKind::Status { status: 503 },
            },
            FaultRule {
                operation: Operation::Flush,
                requests: vec![2],
                fault: FaultKind::Throttle {
                    retry_after_secs: 0,
                },
            },
        ],
    });
    publish(
        &c,
        1,
        &file(&[
            (1, Some("A"), Some(1.5), RowMarker::Upsert),
            (2, Some("B"), None, RowMarker::Upsert),
            (3, Some("C"), Some(3.0), RowMarker::Insert),
        ]),
    )
    .await;
    // File 3 before file 2: the gap holds it back.
    publish(&c, 3, &file(&[(3, None, None, RowMarker::Delete)])).await;
    sim.replicate_now();
    let t = sim.table("Vendors").unwrap();
    assert_eq!(t.rows.len(), 3);
    assert!(t.blocked.is_some(), "{t:?}");
    publish(
        &c,
        2,
        &file(&[(2, Some("B2"), Some(2.25), RowMarker::Update)]),
    )
    .await;
    // A second publish under a used number is refused, never replaces the file.
    c.upload(
        "Vendors/_00000000000000000002.parquet",
        &file(&[(9, Some("X"), None, RowMarker::Upsert)]),
    )
    .await
    .unwrap();
    let again = c
        .rename(
            "Vendors/_00000000000000000002.parquet",
            "Vendors/00000000000000000002.parquet",
            true,
        )
        .await;
    assert_eq!(again.unwrap_err().code(), Some("PathAlreadyExists"));
    c.delete("Vendors/_00000000000000000002.parquet", false)
        .await
        .unwrap();
    sim.replicate_now();
    let t = sim.table("Vendors").unwrap();
    assert_eq!(t.status, TableStatus::Running, "{t:?}");
    assert_eq!(t.next_file, 4);
    assert_eq!(t.rows.len(), 2, "{:?}", t.rows);
    assert_eq!(t.rows["2"]["NAME"], "B2");
    assert_eq!(t.rows["2"]["AMOUNT"], 2.25);
    assert_eq!((t.duplicate_inserts, t.updates_of_missing), (0, 0));
    let listed = c.list("Vendors", false).await.unwrap().unwrap();
    assert!(listed.iter().all(|e| !e.name.contains("/_0")), "{listed:?}");
    assert!(c.list("Nope", false).await.unwrap().is_none());

    // A column changing type (AMOUNT Double -> String) stops the table with the error.
    let mut f = ChangeFile::new(vec![
        ("RECORDNO".into(), ColumnKind::Int64),
        ("AMOUNT".into(), ColumnKind::String),
    ]);
    f.push(
        vec![Value::Int64(1), Value::String("1.50".into())],
        RowMarker::Upsert,
    )
    .unwrap();
    publish(&c, 4, &f.finish().unwrap()).await;
    sim.replicate_now();
    let t = sim.table("Vendors").unwrap();
    assert_eq!(t.status, TableStatus::Failed);
    assert!(
        t.error
            .as_deref()
            .unwrap_or_default()
            .contains("changed type"),
        "{t:?}"
    );

    pyarrow_check(&sim.landing_zone_dir().join("Vendors"));
    sim.shutdown().await;
}

/// Opens every published data file with pyarrow and checks the marker is last and the types.
fn pyarrow_check(dir: &std::path::Path) {
    let script = r#"
import sys, glob, os
try:
    import pyarrow.parquet as pq
except ImportError:
    print("skipped: pyarrow not found"); sys.exit(3)
files = sorted(f for f in glob.glob(os.path.join(sys.argv[1], '*.parquet')) if not os.path.basename(f).startswith('_'))
assert files, 'no data files'
for f in files:
    s = pq.read_schema(f)
    assert s.names[-1] == '__rowMarker__', (f, s.names)
    assert str(s.field('__rowMarker__').type) == 'int32', f
    for name, want in [('RECORDNO', 'int64'), ('NAME', 'string'), ('AMOUNT', 'double'), ('WHENMODIFIED', 'timestamp[us, tz=UTC]'), ('ACTIVE', 'bool')]:
        if name in s.names and not (name == 'AMOUNT' and str(s.field(name).type) == 'string'):
            assert str(s.field(name).type) == want, (f, name, str(s.field(name).type))
    pq.read_table(f)
print("pyarrow read", len(files), "files")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) if o.status.code() == Some(3) && !ci => println!("skipped: pyarrow not found"),
        Ok(o) => panic!(
            "pyarrow check failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) if !ci => println!("skipped: python3 not found ({e})"),
        Err(e) => panic!("python3: {e}"),
    }
}
