//! ml-console: the operations console of ml-connector. Server-rendered pages, a JSON API behind
//! them, Prometheus metrics, health and readiness, over the same state store the CLI reads. A thin
//! shell: every figure comes from `ml_store::Store` or a computed view of the library
//! (`ml_connector::status`); a *Run now* starts a run through the library's `Connection::run`.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | this file | [`Console`] (what the handlers share), [`router`], [`serve`], [`ConsoleError`] |
//! | [`auth`] | the console token (hashed in a 0600 file), login sessions and CSRF tokens, the failed-login limit |
//! | `guard` | the request side of auth: bearer header or session cookie, CSRF on every POST, 401 or a redirect to the login |
//! | `pages` | the HTML pages (maud): login, overview, connection, preview of the next run, runs, run, audit |
//! | `api` | the JSON API and its OpenAPI document (`assets/openapi.json`) |
//! | `metrics` | `/metrics` (Prometheus text), `/healthz`, `/readyz` |
//! | `actions` | what a button starts: a run of a connection, or its dry run (the preview) |
//!
//! `serve` takes a bound listener and a shutdown future (tests bind 127.0.0.1:0). Every answer
//! carries a Content-Security-Policy that allows scripts and styles only from the console itself
//! (`/assets`, embedded in the binary), so no inline script can run.

pub mod auth;

mod actions;
mod api;
mod guard;
mod metrics;
mod pages;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use ml_clock::SharedClock;
use ml_connector::config::ConnectionConfig;
use ml_store::Store;
use ml_store::crypto::MasterKey;

pub use api::{API_ROUTES, OPENAPI};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(
        "no console token at {0}: create one with `ml-connector console token rotate` (or `ml-connector init`)"
    )]
    NoToken(PathBuf),
    #[error("{0} is not a console token file; replace it with `ml-connector console token rotate`")]
    BadTokenFile(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Store(#[from] ml_store::StoreError),
}

/// What the console needs to start runs: the master key that opens the credentials.
pub struct Runner {
    pub key: MasterKey,
    pub audit_retention: Option<std::time::Duration>,
}

/// Everything the console's handlers share.
pub struct Console {
    pub store: Arc<dyn Store>,
    pub connections: Vec<ConnectionConfig>,
    pub clock: SharedClock,
    pub token: auth::TokenSource,
    /// `/metrics` requires this bearer token when set.
    pub metrics_token: Option<auth::TokenHash>,
    /// `/readyz` fails while a connection's last this many runs all failed.
    pub ready_failed_runs: u32,
    /// `None`: *Run now* is not offered (no master key).
    pub runner: Option<Runner>,
    pub sessions: auth::Sessions,
    pub limiter: auth::LoginLimiter,
}

impl Console {
    pub fn new(
        store: Arc<dyn Store>,
        connections: Vec<ConnectionConfig>,
        clock: SharedClock,
        token: auth::TokenSource,
    ) -> Console {
        Console {
            store,
            connections,
            sessions: auth::Sessions::new(clock.clone()),
            limiter: auth::LoginLimiter::new(clock.clone()),
            clock,
            token,
            metrics_token: None,
            ready_failed_runs: 3,
            runner: None,
        }
    }

    /// The console of a configuration: its store and connections, the token file in its data
    /// directory, its `[console]` settings, and *Run now* when the master key can be read.
    pub fn from_app(app: &ml_connector::app::App) -> Result<Console, ConsoleError> {
        let path = auth::token_path(&app.config.data_dir);
        // Fails at start, not at the first login, when there is no token.
        auth::load_token_hash(&path)?;
        let mut c = Console::new(
            app.store.clone(),
            app.config.connections.clone(),
            app.clock.clone(),
            auth::TokenSource::File(path),
        );
        c.ready_failed_runs = app.config.console.ready_failed_runs;
        if let Some(f) = &app.config.console.metrics_token_file {
            c.metrics_token = Some(auth::load_metrics_token(f)?);
        }
        match app.master_key() {
            Ok(key) => {
                c.runner = Some(Runner {
                    key,
                    audit_retention: app.config.audit_retention,
                })
            }
            Err(e) => tracing::warn!(error = %e, "the console cannot start runs: no master key"),
        }
        Ok(c)
    }

    pub(crate) fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }
}

pub type Shared = Arc<Console>;

/// Every route. `/healthz`, `/readyz`, `/metrics` (unless a metrics token is set), `/login` and
/// `/assets` answer without a login; everything else goes through `guard`.
pub fn router(console: Shared) -> Router {
    let mut protected = Router::new()
        .route("/", get(pages::overview))
        .route("/connections/{name}", get(pages::connection))
        .route("/connections/{name}/run", post(pages::run_now))
        .route("/connections/{name}/preview", get(pages::preview))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/audit", get(pages::audit))
        .route("/logout", post(pages::logout));
    for (_, path, route) in api::routes() {
        protected = protected.route(path, route);
    }
    let protected = protected.layer(axum::middleware::from_fn_with_state(
        console.clone(),
        guard::require_login,
    ));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/assets/style.css", get(style))
        .route("/assets/console.js", get(script))
        .merge(protected)
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

/// Serves until `shutdown` resolves. The listener is bound by the caller.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(console).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Binds the configured address; beyond loopback it warns: the console has no TLS of its own.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ConsoleError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ConsoleError::Bind(addr, e))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the console listens beyond this machine without TLS: put it behind a reverse proxy that terminates TLS, or bind 127.0.0.1"
        );
    }
    Ok(listener)
}

/// Scripts and styles only from the console itself: no inline script, no other origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

const STYLE: &str = include_str!("../assets/style.css");
const SCRIPT: &str = include_str!("../assets/console.js");

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

async fn not_found() -> impl IntoResponse {
    (axum::http::StatusCode::NOT_FOUND, "not found")
}
