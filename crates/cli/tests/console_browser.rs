//! The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
//! driven through WebDriver. After a sync against the simulators it logs in with the console token
//! and sees the overview, at a phone's width, and saves a screenshot under the target directory.
//! Without Chromium it prints `skipped: chromium not found`; with `CI=true` it fails instead.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{World, tiny_intacct};
use fantoccini::{ClientBuilder, Locator};
use ml_connector::pipeline::{Events, RunOptions, RunStatus};
use ml_console::Console;
use ml_console::auth::{TokenHash, TokenSource};

const TOKEN: &str = "mlc_browser_test_token_0123456789abcdef0123456789abcdef012345678";

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Kills the chromedriver this test started when the test ends, however it ends.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_and_sees_the_overview_after_a_sync() {
    let (Some(chromium), Some(chromedriver)) = (
        find_on_path(&["chromium", "chromium-browser", "google-chrome"]),
        find_on_path(&["chromedriver"]),
    ) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are required when CI=true (apt-get install chromium chromium-driver)"
        );
        println!("skipped: chromium not found (apt-get install chromium chromium-driver)");
        return;
    };

    let w = World::start(tiny_intacct()).await;
    let conn = w.connection().await;
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
    assert_eq!(report.status, RunStatus::Succeeded);
    let console = Console::new(
        w.store.clone(),
        vec![w.cfg.clone()],
        ml_clock::system(),
        TokenSource::Fixed(TokenHash::of(TOKEN)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ml_console::serve(
        listener,
        Arc::new(console),
        std::future::pending(),
    ));

    // chromedriver on a free port: the port is found by binding 0, then handed over.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        std::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            // A phone's width: the overview must be readable there.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=412,915"]
        }),
    );
    // chromedriver takes a moment to listen: connect until it answers (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let client = loop {
        match ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver did not answer: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let result = async {
        client.goto(&format!("{base}/")).await?;
        // Not logged in: the login form.
        let token = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("input#token"))
            .await?;
        token.send_keys(TOKEN).await?;
        client
            .find(Locator::Css("form.login button[type=submit]"))
            .await?
            .click()
            .await?;
        let card = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("section.card"))
            .await?;
        let text = card.text().await?;
        let url = client.current_url().await?;
        let shot = client.screenshot().await?;
        Ok::<_, fantoccini::error::CmdError>((text, url, shot))
    }
    .await;
    let _ = client.close().await;
    let (text, url, shot) = result.expect("the browser session");
    assert_eq!(url.path(), "/");
    assert!(text.contains(&w.cfg.name), "{text}");
    assert!(text.contains("Vendors") && text.contains("ok"), "{text}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-overview.png");
    std::fs::write(&out, shot).unwrap();
    println!("screenshot: {}", out.display());
}
