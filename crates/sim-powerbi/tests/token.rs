//! The Entra token endpoint over real HTTP: success shapes and every AADSTS failure the connector maps.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{SCOPE, config, start};
use ml_sim_powerbi::{
    ClientSecretConfig, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CLIENT_SECRET_ID,
    DEFAULT_TENANT_DOMAIN, DEFAULT_TENANT_ID, SimConfig, SimSecret, Simulator,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn post_form(sim: &Simulator, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = Client::new()
        .post(sim.token_url(tenant))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

fn secret_form(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", DEFAULT_CLIENT_ID.to_owned()),
        ("client_secret", secret.to_owned()),
        ("grant_type", "client_credentials".to_owned()),
        ("scope", SCOPE.to_owned()),
    ]
}

fn borrowed<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Checks the AADSTS document shape of reference §1.3 and returns it.
fn assert_aadsts(status: StatusCode, body: &Value, error: &str, code: u64) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    let trace = body["trace_id"].as_str().unwrap();
    let correlation = body["correlation_id"].as_str().unwrap();
    assert!(
        desc.contains(&format!(
            "\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: "
        )),
        "{desc}"
    );
    assert_eq!(trace.len(), 36);
    let ts = body["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

#[tokio::test]
async fn v2_success_with_form_secret_and_basic_auth() {
    let h = start(config()).await;
    let (status, body) = post_form(
        &h.sim,
        DEFAULT_TENANT_ID,
        &borrowed(&secret_form(DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 40);
    // The tenant may be named by domain; the secret may travel as HTTP Basic.
    let basic = STANDARD.encode(format!("{DEFAULT_CLIENT_ID}:{}", "sim~client~secret"));
    let resp = Client::new()
        .post(h.sim.token_url(DEFAULT_TENANT_DOMAIN))
        .header("authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let other: Value = resp.json().await.unwrap();
    assert_ne!(other["access_token"], body["access_token"]);
    // One token from the harness plus these two.
    assert_eq!(h.sim.stats().tokens_issued, 3);
}

#[tokio::test]
async fn expires_in_as_string_and_v1_endpoint() {
    let h = start(SimConfig {
        expires_in_as_string: true,
        token_lifetime: Duration::from_secs(600),
        ..config()
    })
    .await;
    let (status, body) = post_form(
        &h.sim,
        DEFAULT_TENANT_ID,
        &borrowed(&secret_form(DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], "600");
    let url = format!("{}/{DEFAULT_TENANT_ID}/oauth2/token", h.sim.authority_url());
    let resp = Client::new()
        .post(url)
        .form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("resource", "https://analysis.windows.net/powerbi/api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v1: Value = resp.json().await.unwrap();
    assert_eq!(v1["expires_in"], "600");
    let on: i64 = v1["expires_on"].as_str().unwrap().parse().unwrap();
    let nb: i64 = v1["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(on - nb, 600);
    assert_eq!(v1["resource"], "https://analysis.windows.net/powerbi/api");
}

#[tokio::test]
async fn each_aadsts_error() {
    let expired_secret = "old~secret";
    let mut cfg = config();
    cfg.tenants[0].apps[0].secrets.push(ClientSecretConfig {
        id: "0ld5ec7e-0000-4000-8000-000000000000".into(),
        value: SimSecret::new(expired_secret),
        expires_at: Some(chrono::Utc::now() - chrono::Duration::days(1)),
    });
    let h = start(cfg).await;
    let sim = &h.sim;

    let (s, b) = post_form(sim, DEFAULT_TENANT_ID, &borrowed(&secret_form("wrong"))).await;
    assert_aadsts(s, &b, "invalid_client", 7000215);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("not the client secret ID")
    );

    let (s, b) = post_form(
        sim,
        DEFAULT_TENANT_ID,
        &borrowed(&secret_form(DEFAULT_CLIENT_SECRET_ID)),
    )
    .await;
    assert_aadsts(s, &b, "invalid_client", 7000215);

    let (s, b) = post_form(
        sim,
        DEFAULT_TENANT_ID,
        &borrowed(&secret_form(expired_secret)),
    )
    .await;
    assert_aadsts(s, &b, "invalid_client", 7000222);

    let (s, b) = post_form(
        sim,
        DEFAULT_TENANT_ID,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_aadsts(s, &b, "invalid_client", 7000218);

    let mut f = secret_form(DEFAULT_CLIENT_SECRET);
    f[0].1 = "99999999-9999-9999-9999-999999999999".into();
    let (s, b) = post_form(sim, DEFAULT_TENANT_ID, &borrowed(&f)).await;
    assert_aadsts(s, &b, "unauthorized_client", 700016);

    let (s, b) = post_form(
        sim,
        "nosuch.onmicrosoft.com",
        &borrowed(&secret_form(DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_aadsts(s, &b, "invalid_request", 90002);

    let mut f = secret_form(DEFAULT_CLIENT_SECRET);
    f[3].1 = "https://analysis.windows.net/powerbi/api/Dataset.ReadWrite.All".into();
    let (s, b) = post_form(sim, DEFAULT_TENANT_ID, &borrowed(&f)).await;
    assert_aadsts(s, &b, "invalid_scope", 70011);

    let f = secret_form(DEFAULT_CLIENT_SECRET);
    let (s, b) = post_form(sim, DEFAULT_TENANT_ID, &borrowed(&f[..2])).await;
    assert_aadsts(s, &b, "invalid_request", 900144);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    let mut f = secret_form(DEFAULT_CLIENT_SECRET);
    f.push((
        "resource",
        "https://analysis.windows.net/powerbi/api".into(),
    ));
    let (s, b) = post_form(sim, DEFAULT_TENANT_ID, &borrowed(&f)).await;
    assert_aadsts(s, &b, "invalid_request", 901002);

    let stats = sim.stats();
    assert_eq!(stats.token_errors.get("7000215"), Some(&1));
    assert_eq!(stats.token_errors.get("7000215-secret-id"), Some(&1));
    for code in [
        "7000222", "7000218", "700016", "90002", "70011", "900144", "901002",
    ] {
        assert_eq!(stats.token_errors.get(code), Some(&1), "{code}");
    }
}

#[tokio::test]
async fn invalid_client_status_is_configurable() {
    let h = start(SimConfig {
        invalid_client_status: 401,
        ..config()
    })
    .await;
    let (s, b) = post_form(&h.sim, DEFAULT_TENANT_ID, &borrowed(&secret_form("wrong"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b["error_codes"], json!([7000215]));
}

fn assertion(header: Value, claims: Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        enc(&header),
        enc(&claims),
        URL_SAFE_NO_PAD.encode(b"not-a-real-signature")
    )
}

#[tokio::test]
async fn client_assertion_claims_are_checked() {
    let h = start(config()).await;
    let now = h.clock.wall().timestamp();
    let aud = h.sim.token_url(DEFAULT_TENANT_ID);
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": "abc"});
    let claims = |aud: &str, exp: i64| json!({"aud": aud, "iss": DEFAULT_CLIENT_ID, "sub": DEFAULT_CLIENT_ID, "jti": "1", "nbf": now, "exp": exp});
    let send = |jwt: String| {
        let sim = &h.sim;
        async move {
            post_form(
                sim,
                DEFAULT_TENANT_ID,
                &[
                    ("client_id", DEFAULT_CLIENT_ID),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", jwt.as_str()),
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPE),
                ],
            )
            .await
        }
    };
    let (s, b) = send(assertion(header.clone(), claims(&aud, now + 300))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["access_token"].is_string());

    let (s, b) = send(assertion(header.clone(), claims(&aud, now - 1))).await;
    assert_aadsts(s, &b, "invalid_client", 700024);

    let (s, b) = send(assertion(
        header.clone(),
        claims(
            "https://login.microsoftonline.com/x/oauth2/v2.0/token",
            now + 300,
        ),
    ))
    .await;
    assert_aadsts(s, &b, "invalid_request", 50027);

    let mut wrong_iss = claims(&aud, now + 300);
    wrong_iss["iss"] = json!("someone-else");
    let (s, b) = send(assertion(header.clone(), wrong_iss)).await;
    assert_aadsts(s, &b, "invalid_client", 700021);

    let (s, b) = send("not.a.jwt!".to_owned()).await;
    assert_aadsts(s, &b, "invalid_request", 50027);
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_refused() {
    let h = start(config()).await;
    let resp = Client::new()
        .get(h.sim.token_url(DEFAULT_TENANT_ID))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_aadsts(status, &body, "invalid_request", 900561);
}

#[tokio::test]
async fn scope_follows_the_simulated_cloud() {
    let gov = Simulator::start(SimConfig {
        cloud: ml_sim_powerbi::SimCloud::us_gov(),
        ..config()
    })
    .await
    .unwrap();
    // The public-cloud scope is refused by a government cloud...
    let (s, b) = post_form(
        &gov,
        DEFAULT_TENANT_ID,
        &borrowed(&secret_form(DEFAULT_CLIENT_SECRET)),
    )
    .await;
    assert_aadsts(s, &b, "invalid_scope", 70011);
    // ...which wants its own resource.
    let mut f = secret_form(DEFAULT_CLIENT_SECRET);
    f[3].1 = "https://analysis.usgovcloudapi.net/powerbi/api/.default".into();
    let (s, b) = post_form(&gov, DEFAULT_TENANT_ID, &borrowed(&f)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    gov.shutdown().await;
}
