//! The HTTP server: accept loop, per-connection hyper HTTP/1 service, and the one thing axum alone cannot do —
//! dropping a connection without an answer after the request was read (and maybe applied).
//!
//! A handler that wants the connection dropped returns a response carrying the [`AbortConnection`] extension.
//! The per-connection service below turns that response into an error; hyper's HTTP/1 dispatcher then closes the
//! socket without writing anything, and the client sees "connection closed before message completed" — exactly
//! the ambiguous failure of a real load balancer resetting a connection. `axum::serve` insists on infallible
//! services, hence the hand-written accept loop (small, and it also gives tests an owned shutdown).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::state::{Shared, lock};

/// Response extension: close the connection instead of sending this response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AbortConnection;

/// The error a connection's service returns to make hyper drop the connection.
#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection aborted by fault injection")
    }
}

impl std::error::Error for Aborted {}

/// A response that makes the server drop the connection.
pub(crate) fn abort_connection() -> Response {
    let mut r = Response::new(Body::empty());
    r.extensions_mut().insert(AbortConnection);
    r
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let Ok((stream, _peer)) = accepted else {
            // Accept errors (EMFILE and the like) are transient for a test server; keep serving.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shared = shared.clone();
        let mut conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let router = router.clone();
                let shared = shared.clone();
                async move {
                    lock(&shared.stats).http_requests += 1;
                    let latency = shared.cfg.latency;
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    let resp = router
                        .oneshot(req.map(Body::new))
                        .await
                        .unwrap_or_else(|e: Infallible| match e {});
                    if resp.extensions().get::<AbortConnection>().is_some() {
                        return Err(Aborted);
                    }
                    Ok::<_, Aborted>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    // Open connections were told to shut down gracefully (idle ones close, busy ones finish their request);
    // give them a moment, then abort whatever is left (e.g. a request parked by `hold_row_posts`).
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
    connections.shutdown().await;
}

/// Adds a fresh `RequestId` header (as Power BI does on every answer) unless the handler set one.
pub(crate) async fn request_id(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key("requestid") {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("RequestId", v);
        }
    }
    resp.headers_mut().insert(
        "Access-Control-Expose-Headers",
        HeaderValue::from_static("RequestId"),
    );
    resp
}
