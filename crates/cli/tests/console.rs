//! The operations console over real HTTP: both simulators, a real SQLite store after a sync, the
//! console served on 127.0.0.1:0 exactly as `ml-connector console` serves it (auth, CSRF, every API
//! route, metrics, readiness), and no secret in anything it answers.

mod common;

use std::sync::Arc;

use common::{World, tiny_intacct};
use ml_connector::pipeline::{Events, RunOptions, RunStatus};
use ml_console::auth::{TokenHash, TokenSource};
use ml_console::{Console, Runner};
use ml_store::crypto::MasterKey;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};

const TOKEN: &str = "mlc_test_token_0123456789abcdef0123456789abcdef0123456789abcdef";

struct Served {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    http: reqwest::Client,
    /// Every body and header value answered, for the secret scan.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Served {
    async fn start(console: Console) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ml_console::serve(listener, Arc::new(console), async move {
            let _ = rx.await;
        }));
        Served {
            base,
            stop: Some(tx),
            // Redirects are what we check, so none is followed.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            seen: Default::default(),
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap();
        let mut seen = self.seen.lock().unwrap();
        for v in headers.values() {
            seen.push(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        seen.push(body.clone());
        (status, headers, body)
    }

    async fn get(
        &self,
        path: &str,
        auth: Auth<'_>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(auth.apply(self.http.get(format!("{}{path}", self.base))))
            .await
    }

    async fn post_form(
        &self,
        path: &str,
        auth: Auth<'_>,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        self.send(auth.apply(self.http.post(format!("{}{path}", self.base)).form(form)))
            .await
    }

    async fn api(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = self.get(path, Auth::Bearer(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// Logs in with the form; returns the session cookie.
    async fn login(&self) -> String {
        let (status, headers, body) = self
            .post_form("/login", Auth::None, &[("token", TOKEN), ("next", "/runs")])
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(headers[LOCATION], "/runs");
        let cookie = headers[SET_COOKIE].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_string()
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
}

impl Auth<'_> {
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Cookie(c) => req.header(COOKIE, c),
        }
    }
}

/// The CSRF token a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token")
        + 19;
    html[at..at + 64].to_string()
}

/// A world with its credentials sealed under a key the console can also open, and one sync done.
async fn synced_world() -> (World, MasterKey) {
    let w = World::start(tiny_intacct()).await;
    let key_path = w.dir.path().join("master.key");
    let key = MasterKey::create_file(&key_path).unwrap();
    let conn = ml_connector_cli::demo::connect_demo(w.cfg.clone(), w.store.clone(), &key)
        .await
        .unwrap();
    let report = conn
        .run(
            &RunOptions {
                trigger: "manual".into(),
                ..Default::default()
            },
            &Events::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    (w, MasterKey::load_file(&key_path).unwrap())
}

fn console_of(w: &World, key: Option<MasterKey>) -> Console {
    let mut c = Console::new(
        w.store.clone(),
        vec![w.cfg.clone()],
        ml_clock::system(),
        TokenSource::Fixed(TokenHash::of(TOKEN)),
    );
    c.runner = key.map(|key| Runner {
        key,
        audit_retention: None,
    });
    c
}

/// Polls the API until the connection has `n` finished runs (a run started from the console).
async fn wait_for_runs(s: &Served, name: &str, n: usize) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let runs = s.api(&format!("/api/runs?connection={name}")).await;
        let list = runs.as_array().unwrap();
        if list.len() >= n && list.iter().all(|r| r["status"] != "running") {
            return runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished run: {runs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_auth_csrf_every_api_route_metrics_and_no_secret_shown() {
    let (w, key) = synced_world().await;
    let name = w.cfg.name.clone();
    let s = Served::start(console_of(&w, Some(key))).await;

    // ---- without the token ----
    let (status, headers, _) = s.get("/api/connections", Auth::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, headers, _) = s.get("/runs?status=failed", Auth::None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/login?next=%2Fruns%3Fstatus%3Dfailed");
    let (status, _, _) = s.get("/api/runs", Auth::Bearer("mlc_wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = s
        .post_form("/login", Auth::None, &[("token", "mlc_wrong")])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("not the console token"));
    let (status, _, _) = s.get("/", Auth::Cookie("mlc_session=forged")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Open without a login: health, readiness, metrics (no metrics token set), the login, assets.
    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/login",
        "/assets/style.css",
        "/assets/console.js",
    ] {
        let (status, headers, _) = s.get(open, Auth::None).await;
        assert_eq!(status, StatusCode::OK, "{open}");
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }

    // ---- a login: pages, and CSRF on every POST ----
    let cookie = s.login().await;
    let (status, _, overview) = s.get("/", Auth::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        overview.contains("Vendors") && overview.contains("badge ok"),
        "{overview}"
    );
    assert!(!overview.contains("<script>"), "no inline script");
    let (_, _, page) = s
        .get(&format!("/connections/{name}"), Auth::Cookie(&cookie))
        .await;
    assert!(page.contains("Run now"), "{page}");
    let csrf = csrf_of(&page);
    let (status, _, _) = s
        .post_form(
            &format!("/connections/{name}/run"),
            Auth::Cookie(&cookie),
            &[],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a POST without the CSRF token"
    );
    let (status, _, _) = s
        .post_form(
            &format!("/connections/{name}/run"),
            Auth::Cookie(&cookie),
            &[("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong CSRF token");
    let (status, _, _) = s
        .send(
            s.http
                .post(format!("{}/api/connections/{name}/run", s.base))
                .header(COOKIE, &cookie),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the API on a session needs X-CSRF-Token"
    );
    let (status, headers, _) = s
        .post_form(
            &format!("/connections/{name}/run"),
            Auth::Cookie(&cookie),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/connections/{name}?started=1"));
    let runs = wait_for_runs(&s, &name, 2).await;
    assert_eq!(runs[0]["trigger"], "console");
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    for page in [
        "/runs",
        "/runs?status=succeeded",
        &format!("/runs/{}", runs[0]["id"]),
        "/audit?stream=Vendors",
        "/audit",
    ] {
        let (status, _, body) = s.get(page, Auth::Cookie(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
    }

    // ---- every API route ----
    let conns = s.api("/api/connections").await;
    let c0 = &conns[0];
    assert_eq!(c0["name"], name.as_str());
    assert_eq!(c0["health"], "ok");
    assert_eq!(c0["last_run"]["id"], runs[0]["id"]);
    let vendors = c0["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "Vendors")
        .unwrap();
    assert_eq!(
        vendors["rows_in_powerbi"].as_u64().unwrap() as usize,
        w.table("Vendors").len()
    );
    assert!(vendors["data_as_of"].is_string(), "{vendors}");
    assert_eq!(
        s.api(&format!("/api/connections/{name}")).await["name"],
        name.as_str()
    );
    let (status, _, _) = s.get("/api/connections/nope", Auth::Bearer(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.api("/api/runs?status=succeeded&limit=1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, _, _) = s.get("/api/runs?status=bogus", Auth::Bearer(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let first = runs.as_array().unwrap().last().unwrap()["id"]
        .as_i64()
        .unwrap();
    let detail = s.api(&format!("/api/runs/{first}")).await;
    let read: u64 = detail["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["result"]["extracted"].as_u64().unwrap())
        .sum();
    assert!(read > 0, "{detail}");
    let (status, _, _) = s.get("/api/runs/999999", Auth::Bearer(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = s.api("/api/audit?stream=Vendors&limit=5").await;
    assert_eq!(audit.as_array().unwrap().len(), 5);
    let key = audit[0]["record_key"].as_str().unwrap().to_string();
    let by_key = s.api(&format!("/api/audit?stream=VENDOR&key={key}")).await;
    assert!(
        by_key
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["record_key"] == key.as_str())
    );
    let doc = s.api("/api/openapi.json").await;
    assert!(doc["paths"]["/api/runs/{id}"].is_object());
    // Every documented route answers (the OpenAPI test in ml-console holds the list to the router).
    for (method, path) in ml_console::API_ROUTES {
        let url = format!(
            "{}{}",
            s.base,
            path.replace("{name}", &name)
                .replace("{id}", &first.to_string())
        );
        let req = match *method {
            "get" => s.http.get(url),
            _ => s.http.post(url),
        };
        let (status, _, body) = s.send(req.bearer_auth(TOKEN)).await;
        assert!(
            status.is_success() || status == StatusCode::CONFLICT,
            "{method} {path}: {status} {body}"
        );
    }
    wait_for_runs(&s, &name, 3).await;

    // ---- metrics after the runs: figures from the store ----
    let (_, _, metrics) = s.get("/metrics", Auth::None).await;
    let totals = w.store.run_totals().await.unwrap();
    let vendor = totals
        .streams
        .iter()
        .find(|t| t.stream == "VENDOR")
        .unwrap();
    for line in [
        format!("ml_connector_runs_total{{connection=\"{name}\",outcome=\"succeeded\"}} 3\n"),
        format!(
            "ml_connector_rows_read_total{{connection=\"{name}\",stream=\"VENDOR\"}} {}\n",
            vendor.extracted
        ),
        format!(
            "ml_connector_rows_pushed_total{{connection=\"{name}\",stream=\"VENDOR\"}} {}\n",
            vendor.pushed
        ),
        format!(
            "ml_connector_stream_failures_total{{connection=\"{name}\",stream=\"VENDOR\"}} 0\n"
        ),
    ] {
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(vendor.extracted > 0 && vendor.pushed > 0);
    assert!(metrics.contains(&format!("ml_connector_table_last_success_age_seconds{{connection=\"{name}\",stream=\"VENDOR\",table=\"Vendors\"}} ")));

    // ---- logging out ends the session ----
    let (_, _, page) = s.get("/", Auth::Cookie(&cookie)).await;
    let (status, _, _) = s
        .post_form(
            "/logout",
            Auth::Cookie(&cookie),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = s.get("/api/runs", Auth::Cookie(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // ---- no secret in anything answered ----
    let secrets = [
        ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
        ml_sim_intacct::DEFAULT_USER_PASSWORD,
        ml_sim_powerbi::DEFAULT_CLIENT_SECRET,
        TOKEN,
    ];
    let seen = s.seen.lock().unwrap();
    assert!(seen.len() > 40, "scanned {} answers", seen.len());
    for text in seen.iter() {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in an answer: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_after_the_last_n_runs_failed_and_recovers() {
    let (w, key) = synced_world().await;
    let name = w.cfg.name.clone();
    let mut console = console_of(&w, Some(key));
    console.ready_failed_runs = 2;
    let s = Served::start(console).await;
    let ready = |s: &Served| {
        let url = format!("{}/readyz", s.base);
        let http = s.http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(ready(&s).await, StatusCode::OK);

    // Intacct refuses the credentials from now on: each run fails.
    w.intacct.set_faults(ml_sim_intacct::FaultPlan::none().with(
        ml_sim_intacct::FaultTrigger::FromRequest { n: 1 },
        ml_sim_intacct::Fault::AuthError,
    ));
    for n in 2..=3 {
        let (status, _, body) = s
            .send(
                s.http
                    .post(format!("{}/api/connections/{name}/run", s.base))
                    .bearer_auth(TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let runs = wait_for_runs(&s, &name, n).await;
        assert_eq!(runs[0]["status"], "failed", "{runs}");
        let expected = if n == 2 {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        assert_eq!(ready(&s).await, expected, "after {} failed run(s)", n - 1);
    }
    let body = s
        .http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(&format!("connection {name}: its last 2 runs failed")),
        "{body}"
    );
    let conns = s.api("/api/connections").await;
    assert_eq!(conns[0]["health"], "failing");
    let (_, _, metrics) = s.get("/metrics", Auth::None).await;
    assert!(
        metrics.contains(&format!(
            "ml_connector_runs_total{{connection=\"{name}\",outcome=\"failed\"}} 2\n"
        )),
        "{metrics}"
    );

    // Intacct accepts again: one good run makes the connection ready.
    w.intacct.set_faults(ml_sim_intacct::FaultPlan::none());
    s.send(
        s.http
            .post(format!("{}/api/connections/{name}/run", s.base))
            .bearer_auth(TOKEN),
    )
    .await;
    let runs = wait_for_runs(&s, &name, 4).await;
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    assert_eq!(ready(&s).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_token_closes_metrics_and_failed_logins_are_limited() {
    let w = World::start(tiny_intacct()).await;
    let mut console = console_of(&w, None);
    console.metrics_token = Some(TokenHash::of("prom-secret"));
    let s = Served::start(console).await;
    let (status, _, _) = s.get("/metrics", Auth::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = s.get("/metrics", Auth::Bearer("prom-secret")).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..ml_console::auth::LoginLimiter::MAX_FAILURES {
        let (status, _, _) = s
            .post_form("/login", Auth::None, &[("token", "mlc_guess")])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Locked out: even the right token waits.
    let (status, headers, _) = s.post_form("/login", Auth::None, &[("token", TOKEN)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    // Without a master key the console offers no Run now, and the API says why.
    let (status, _, body) = s
        .send(
            s.http
                .post(format!("{}/api/connections/{}/run", s.base, w.cfg.name))
                .bearer_auth(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_what_the_next_run_would_read_and_push_and_changes_nothing() {
    let (w, key) = synced_world().await;
    let name = w.cfg.name.clone();
    let s = Served::start(console_of(&w, Some(key))).await;

    // A vendor changes in Intacct after the sync.
    w.intacct
        .advance_clock(std::time::Duration::from_secs(3600));
    let vendor = &w.intacct.records("VENDOR")[0];
    let n: u64 = vendor["RECORDNO"].parse().unwrap();
    assert!(w.intacct.update(
        "VENDOR",
        n,
        std::collections::BTreeMap::from([("NAME".to_string(), format!("Renamed {n}"))])
    ));
    let runs_before = w.store.list_runs(None, 100).await.unwrap().len();
    let powerbi_before = w.powerbi.stats().requests_by_operation;

    // Without the token: refused like every page.
    let path = format!("/api/connections/{name}/preview");
    let (status, _, _) = s.get(&path, Auth::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, _) = s
        .get(&format!("/connections/{name}/preview"), Auth::None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers[LOCATION].to_str().unwrap().starts_with("/login"));

    let p = s.api(&path).await;
    assert_eq!(p["connection"], name.as_str());
    let streams = p["streams"].as_array().unwrap();
    assert_eq!(streams.len(), w.cfg.streams.len(), "{p}");
    let v = streams.iter().find(|st| st["object"] == "VENDOR").unwrap();
    assert_eq!(v["table"], "Vendors");
    assert!(v["since"].is_string(), "an incremental read: {v}");
    assert!(v["changed"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["to_read"].as_u64().unwrap() >= 1, "{v}");
    let mirror = w.store.mirror_count(&name, "VENDOR").await.unwrap();
    assert!(mirror > 0);
    assert_eq!(v["push"]["how"], "rebuild", "{v}");
    assert_eq!(
        v["push"]["rows"].as_u64(),
        Some(mirror),
        "a replace table pushes all its rows: {v}"
    );
    assert_eq!(v["push"]["postponed"], false);
    assert_eq!(v["push"]["budget"], "fits");
    let budget = &p["budget"];
    assert!(
        budget["rows_left"].as_u64().unwrap() < budget["rows_per_hour"].as_u64().unwrap(),
        "the first sync's rows are the hour's use: {budget}"
    );
    assert!(p["rows_to_push"].as_u64().unwrap() >= mirror);
    let (status, _, _) = s
        .get("/api/connections/nope/preview", Auth::Bearer(TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The page: a link from the connection, the same figures in a table, no inline script.
    let cookie = s.login().await;
    let (_, _, conn_page) = s
        .get(&format!("/connections/{name}"), Auth::Cookie(&cookie))
        .await;
    assert!(
        conn_page.contains(&format!("href=\"/connections/{name}/preview\"")),
        "{conn_page}"
    );
    let (status, _, page) = s
        .get(
            &format!("/connections/{name}/preview"),
            Auth::Cookie(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Vendors") && page.contains("rebuild"),
        "{page}"
    );
    assert!(page.contains(&format!(">{mirror}<")), "{page}");
    assert!(!page.contains("<script>"), "no inline script");

    // Nothing changed: no run recorded, not one request to Power BI.
    assert_eq!(
        w.store.list_runs(None, 100).await.unwrap().len(),
        runs_before
    );
    assert_eq!(w.powerbi.stats().requests_by_operation, powerbi_before);

    // No secret in anything answered.
    let secrets = [
        ml_sim_intacct::DEFAULT_SENDER_PASSWORD,
        ml_sim_intacct::DEFAULT_USER_PASSWORD,
        ml_sim_powerbi::DEFAULT_CLIENT_SECRET,
        TOKEN,
    ];
    for text in s.seen.lock().unwrap().iter() {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in an answer: {text}");
        }
    }
}
