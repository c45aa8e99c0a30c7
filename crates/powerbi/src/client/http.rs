//! The request plumbing every call goes through: the HTTP client, the bearer token, what may be resent, and the
//! reading of an error answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use url::Url;

use super::types::RequestInfo;
use crate::error::{ApiError, ErrorClass, PowerBiError, TransportError, strip_bom};
use crate::settings::PowerBiSettings;
use crate::token::{AccessToken, TokenSource};

/// Attempts for reads and idempotent writes when the service answers 429/5xx.
const IDEMPOTENT_ATTEMPTS: u32 = 3;
/// Longest Retry-After the client honours by itself before giving up on a non-push call.
const MAX_CLIENT_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A response with a status in 2xx.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub duration: Duration,
}

impl Answer {
    pub(crate) fn request_id(&self) -> Option<String> {
        self.headers
            .get("requestid")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }

    /// What a caller keeps of an answer whose body says nothing.
    pub(crate) fn info(&self) -> RequestInfo {
        RequestInfo {
            status: self.status.as_u16(),
            request_id: self.request_id(),
            duration: self.duration,
        }
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
    ) -> Result<T, PowerBiError> {
        serde_json::from_slice(strip_bom(&self.body)).map_err(|e| PowerBiError::Decode {
            operation: operation.to_string(),
            detail: e.to_string(),
            request_id: self.request_id(),
        })
    }
}

/// How [`PowerBiClient::execute`] may repeat a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Refresh the token once on TokenExpired/InvalidToken; nothing else.
    TokenOnly,
    /// Also retry 429/5xx (reads and idempotent writes).
    Idempotent,
    /// Never resend (the pusher handles tokens and retries itself).
    Never,
}

struct ClientInner {
    http: reqwest::Client,
    api_base: Url,
    tokens: TokenSource,
}

/// Power BI REST client for one tenant and service principal. Cheap to clone; clones share one token cache.
#[derive(Clone)]
pub struct PowerBiClient {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for PowerBiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerBiClient")
            .field("api_base", &self.inner.api_base.as_str())
            .finish_non_exhaustive()
    }
}

impl PowerBiClient {
    /// Validates the settings (https, loopback-only http when allowed, identity fields) and builds the client.
    pub fn new(s: PowerBiSettings) -> Result<Self, PowerBiError> {
        s.validate()?;
        let http = reqwest::Client::builder()
            .timeout(s.request_timeout)
            .connect_timeout(s.request_timeout.min(Duration::from_secs(30)))
            // A redirect could carry the bearer token or the secret to another host; none is expected here.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PowerBiError::Config(format!("building the HTTP client failed: {e}")))?;
        let tokens = TokenSource::new(
            http.clone(),
            s.token_url()?,
            s.client_id.clone(),
            s.cloud.scope(),
            &s.credential,
        )?;
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                api_base: s.api_base()?,
                tokens,
            }),
        })
    }

    /// The shared token source (to pre-flight credentials, or for diagnostics).
    pub fn tokens(&self) -> &TokenSource {
        &self.inner.tokens
    }

    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.inner.api_base.clone();
        {
            // `push` percent-encodes each segment (spaces, '#', '/', non-ASCII in table names).
            let mut p = u
                .path_segments_mut()
                .expect("api_base is a hierarchical URL");
            p.pop_if_empty();
            for s in segments {
                p.push(s);
            }
        }
        u
    }

    pub(super) fn group_url(&self, group: &str, rest: &[&str]) -> Url {
        let mut segs = vec!["groups", group];
        segs.extend_from_slice(rest);
        self.url(&segs)
    }

    /// Sends one request; see the module docs for what is resent.
    pub(crate) async fn execute(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        resend: Resend,
    ) -> Result<Answer, PowerBiError> {
        let mut token_refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.inner.tokens.token().await?;
            match self
                .send_once(operation, method.clone(), url.clone(), body.clone(), &token)
                .await
            {
                Ok(a) => return Ok(a),
                Err(PowerBiError::Api(e)) => {
                    match e.class() {
                        ErrorClass::Token if resend != Resend::Never && !token_refreshed => {
                            token_refreshed = true;
                            self.inner.tokens.invalidate(&token).await;
                            tracing::info!(
                                operation,
                                "Power BI rejected the access token; fetched a new one"
                            );
                            continue;
                        }
                        ErrorClass::Retryable
                            if resend == Resend::Idempotent && attempt < IDEMPOTENT_ATTEMPTS =>
                        {
                            let wait = e
                                .retry_after
                                .unwrap_or(Duration::from_millis(500 << attempt));
                            if wait <= MAX_CLIENT_RETRY_WAIT {
                                tracing::warn!(
                                    operation,
                                    status = e.status,
                                    ?wait,
                                    "retrying after a transient Power BI error"
                                );
                                tokio::time::sleep(wait).await;
                                continue;
                            }
                        }
                        _ => {}
                    }
                    return Err(PowerBiError::Api(e));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One HTTP exchange with a given token.
    pub(crate) async fn send_once(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        token: &AccessToken,
    ) -> Result<Answer, PowerBiError> {
        let started = tokio::time::Instant::now();
        let mut req = self
            .inner
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, token.bearer());
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TransportError::from_reqwest(operation, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let mut t = TransportError::from_reqwest(operation, &e);
                t.maybe_sent = true;
                t.status = Some(status.as_u16());
                return Err(t.into());
            }
        };
        let duration = started.elapsed();
        if status.is_success() {
            Ok(Answer {
                status,
                headers,
                body,
                duration,
            })
        } else {
            Err(ApiError::from_parts(operation, status.as_u16(), &headers, &body).into())
        }
    }
}
