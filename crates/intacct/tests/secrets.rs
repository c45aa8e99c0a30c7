//! No password or session id in any log line, error message or Debug output.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use ml_intacct::{ChangedSince, IntacctClient, IntacctSettings, Query, RetryPolicy};
use ml_sim_intacct::{Fault, FaultPlan, SimConfig, Simulator};
use secrecy::SecretString;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const WRONG_PASSWORD: &str = "wrong-Passw0rd-zz";

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
    s.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_elapsed: Duration::from_secs(10),
    };
    s
}

/// The simulator's session ids are two simple UUIDs followed by "..": 64 hex digits.
fn has_session_like_token(s: &str) -> bool {
    let b = s.as_bytes();
    let mut run = 0;
    for &c in b {
        if c.is_ascii_hexdigit() {
            run += 1;
            if run >= 64 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_or_debug() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sim = Simulator::start(SimConfig::tiny()).await.unwrap();
    let mut texts: Vec<String> = Vec::new();

    let client = IntacctClient::new(settings(&sim)).unwrap();
    texts.push(format!("{:?}", client.settings()));
    texts.push(format!("{client:?}"));
    let info = client.ping().await.unwrap();
    texts.push(format!("{info:?}"));
    client
        .query(Query::new("VENDOR", &["RECORDNO", "NAME"]))
        .await
        .unwrap();
    let mut s = std::pin::pin!(client.changed_since(ChangedSince {
        object: "VENDOR".into(),
        fields: vec!["NAME".into()],
        since: None,
        page_size: Some(10),
        created_since: None,
    }));
    while let Some(p) = s.next().await {
        p.unwrap();
    }
    // a rejected session (re-login), a retried fault, a permission error
    sim.set_faults(FaultPlan::on_request(1, Fault::AuthError));
    client
        .query(Query::new("DEPARTMENT", &["RECORDNO"]))
        .await
        .unwrap();
    sim.set_faults(FaultPlan::on_request(1, Fault::Http503Html));
    client
        .query(Query::new("DEPARTMENT", &["RECORDNO"]))
        .await
        .unwrap();
    let e = client
        .query(Query::new("NOSUCHOBJECT", &["RECORDNO"]))
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));

    // a wrong password, and an endpoint refusal
    let mut bad = settings(&sim);
    bad.user_password = SecretString::from(WRONG_PASSWORD);
    let bad_client = IntacctClient::new(bad.clone()).unwrap();
    let e = bad_client.ping().await.unwrap_err();
    texts.push(format!("{e} {e:?} {bad:?} {bad_client:?}"));
    let mut refused = bad.clone();
    refused.allow_loopback_http = false;
    let e = IntacctClient::new(refused).unwrap_err();
    texts.push(format!("{e} {e:?}"));
    sim.shutdown().await;

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("intacct session obtained"),
        "the capture works: {log}"
    );
    assert!(log.contains("intacct call failed"), "failures are logged");
    // ... at once, with what happens next (the 503 above is retried).
    assert!(
        log.contains("); retry 1 of "),
        "retries are announced: {log}"
    );
    texts.push(log);
    for t in &texts {
        for secret in [
            ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
            ml_sim_intacct::DEFAULT_USER_PASSWORD,
            WRONG_PASSWORD,
        ] {
            assert!(!t.contains(secret), "secret {secret:?} leaked in: {t}");
        }
        assert!(!has_session_like_token(t), "session id leaked in: {t}");
    }
}
