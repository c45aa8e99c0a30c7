//! HTTP exchange with the gateway: the per-company concurrency limit, status and body
//! classification (§3.5), and retries with backoff for the retryable classes only (§8.4).
//!
//! Three questions, three places: *what to send* is the codec, *how to send* is
//! [`Transport::post`], *whether to try again* is [`IntacctError::retryable`] as decided by
//! [`classify_exchange`], which also looks inside HTTP 200 bodies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{Response, decode_response};
use crate::settings::RetryPolicy;

/// Largest response body accepted. A 2,000-record page of a wide object is a few MB; 256 MB
/// means something is wrong, and refusing it keeps memory bounded.
const MAX_BODY_BYTES: usize = 256_000_000;

/// Bodies larger than this are not kept for the next response.
const MAX_KEPT_BODY_BYTES: usize = 32_000_000;

/// The only way to reach the network: every request, logins included, takes a permit first.
pub(crate) struct Transport {
    http: reqwest::Client,
    limit: Arc<Semaphore>,
    pub(crate) retry: RetryPolicy,
    /// Response buffers kept for the next responses, at most one per permit. A page's body is a
    /// few MB, which the process maps on its own (see the binary's `map_large_buffers`); a fresh
    /// buffer per page cost a page fault per 4 KiB of it, ~0.5 µs a record.
    bodies: std::sync::Mutex<Vec<Vec<u8>>>,
    max_kept_bodies: usize,
}

impl Transport {
    pub(crate) fn new(
        max_concurrent: usize,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, IntacctError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("ml-connector/", env!("CARGO_PKG_VERSION")))
            // Credentials must never follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| IntacctError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            limit: Arc::new(Semaphore::new(max_concurrent)),
            retry,
            bodies: std::sync::Mutex::new(Vec::new()),
            max_kept_bodies: max_concurrent,
        })
    }

    fn take_body_buffer(&self) -> Vec<u8> {
        self.bodies
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default()
    }

    fn keep_body_buffer(&self, mut body: Vec<u8>) {
        if body.capacity() > MAX_KEPT_BODY_BYTES {
            return;
        }
        body.clear();
        if let Ok(mut kept) = self.bodies.lock()
            && kept.len() < self.max_kept_bodies
        {
            kept.push(body);
        }
    }

    /// One POST under a concurrency permit; the permit is released before any backoff sleep.
    async fn post(
        &self,
        url: &Url,
        body: String,
    ) -> Result<(u16, Option<Duration>, Vec<u8>), IntacctError> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| IntacctError::config("the client is shut down"))?;
        let resp = self
            .http
            .post(url.clone())
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await
            .map_err(request_error)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read in chunks with a cap: a runaway body must not take the process's memory.
        let mut resp = resp;
        let mut body = self.take_body_buffer();
        body.reserve(
            resp.content_length()
                .unwrap_or(0)
                .min(MAX_BODY_BYTES as u64) as usize,
        );
        while let Some(chunk) = resp.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                self.keep_body_buffer(body);
                return Err(IntacctError::new(
                    ErrorKind::BadResponse,
                    ErrorLevel::Transport,
                    format!(
                        "the response exceeds {} MB; select fewer fields or use a smaller page_size",
                        MAX_BODY_BYTES / 1_000_000
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, retry_after, body))
    }

    /// Sends the body built by `body` (rebuilt per attempt) until it gets a usable envelope, a
    /// non-retryable error, or the retry budget runs out.
    ///
    /// `results` says how the functions' own failures count: for one function a retryable failure
    /// fails the exchange (so it is retried here); for several, each result is left to the caller,
    /// which sends a failed function again alone instead of repeating the functions that worked.
    pub(crate) async fn exchange(
        &self,
        url: &Url,
        what: &str,
        results: Results,
        body: impl Fn() -> Result<String, IntacctError>,
    ) -> Result<Response, IntacctError> {
        let started = Instant::now();
        let mut attempt = 1u32;
        loop {
            let t0 = Instant::now();
            let mut retry_after = None;
            let outcome = match self.post(url, body()?).await {
                Ok((status, after, body)) => {
                    retry_after = after;
                    let outcome = classify(status, &body, results);
                    self.keep_body_buffer(body);
                    outcome
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(r) => {
                    debug!(
                        function = what,
                        attempt,
                        elapsed_ms = t0.elapsed().as_millis() as u64,
                        "intacct call ok"
                    );
                    return Ok(r);
                }
                Err(e) => {
                    // Intacct is not known to send Retry-After (§8.4, unconfirmed); honour it
                    // when present, within the policy's cap.
                    let delay = self
                        .retry
                        .delay(attempt)
                        .max(retry_after.unwrap_or_default().min(self.retry.max_delay));
                    let may_retry = e.retryable
                        && attempt < self.retry.max_attempts
                        && started.elapsed() + delay <= self.retry.max_elapsed;
                    // Said at once, with what happens next: a user watching a sync sees "retry 3 of
                    // 8 in 20 s" instead of minutes of silence.
                    if may_retry {
                        warn!(
                            function = what,
                            attempt,
                            kind = ?e.kind,
                            http_status = e.http_status,
                            errorno = e.errorno().unwrap_or(""),
                            "intacct call failed ({}); retry {} of {} in {:.0?}",
                            brief(&e),
                            attempt,
                            self.retry.max_attempts - 1,
                            delay
                        );
                    } else {
                        warn!(
                            function = what,
                            attempt,
                            kind = ?e.kind,
                            http_status = e.http_status,
                            errorno = e.errorno().unwrap_or(""),
                            "intacct call failed ({}); not retried",
                            brief(&e)
                        );
                    }
                    if !may_retry {
                        let mut e = e;
                        if e.retryable && attempt > 1 {
                            let gave_up = format!(
                                "gave up after {attempt} attempts in {:.0?}",
                                started.elapsed()
                            );
                            e.context = Some(match e.context.take() {
                                Some(c) => format!("{c}; {gave_up}"),
                                None => gave_up,
                            });
                        }
                        return Err(e);
                    }
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// What failed, in a few words, for the retry log line.
fn brief(e: &IntacctError) -> String {
    match (&e.kind, e.http_status) {
        (ErrorKind::Connect, _) => "Intacct unreachable".into(),
        (ErrorKind::Timeout, _) => "no answer in time".into(),
        (ErrorKind::RateLimited, _) => "throttled".into(),
        (kind, Some(status)) => format!("{kind:?}, HTTP {status}"),
        (kind, None) => format!("{kind:?}"),
    }
}

fn request_error(e: reqwest::Error) -> IntacctError {
    // reqwest's Display can include the URL but never the body; the URL holds no secret.
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else {
        // Dropped connections and body read failures: the outcome is unknown, reads are safe
        // to repeat.
        ErrorKind::Unavailable
    };
    IntacctError::new(kind, ErrorLevel::Transport, e.to_string())
}

/// How an exchange judges its functions' results (see [`Transport::exchange`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Results {
    /// A retryable function failure fails the whole exchange, which is then retried.
    Whole,
    /// Every result is the caller's to judge, one by one.
    Each,
}

/// Turns one HTTP answer into an envelope or a classified error. Control and authentication
/// failures become errors here; function results are left to the caller, except retryable
/// ones (throttling, "temporarily off-line"), which fail the exchange so it is retried.
pub fn classify_exchange(status: u16, body: &[u8]) -> Result<Response, IntacctError> {
    classify(status, body, Results::Whole)
}

fn classify(status: u16, body: &[u8], results: Results) -> Result<Response, IntacctError> {
    let http = (status >= 300).then_some(status);
    let resp = match decode_response(body) {
        Ok(r) => r,
        Err(e) => {
            let mut err = IntacctError::from_decode(&e, Some(status));
            if http.is_none() {
                err.http_status = None;
            }
            if (300..400).contains(&status) {
                // Redirects are not followed (credentials must not move to another host).
                err.kind = ErrorKind::EndpointRefused;
                err.level = ErrorLevel::Http;
                err.retryable = false;
                err.context = Some(format!(
                    "the gateway answered HTTP {status} (a redirect), which is not followed; check the endpoint URL"
                ));
            } else if (400..500).contains(&status) && status != 429 && status != 408 {
                // A 4xx with a non-XML body is a request we should not repeat.
                err.kind = ErrorKind::Other;
                err.level = ErrorLevel::Http;
                err.retryable = false;
            } else if status >= 500 || status == 408 {
                err.kind = ErrorKind::Unavailable;
                err.level = ErrorLevel::Http;
                err.retryable = true;
            }
            return Err(err);
        }
    };
    if resp.acknowledgement.is_some() && resp.operation.is_none() {
        return Err(IntacctError::new(
            ErrorKind::BadResponse,
            ErrorLevel::Control,
            "the gateway answered with an asynchronous acknowledgement; requests must not carry a policyid",
        ));
    }
    if !resp.control.status.is_success() {
        return Err(IntacctError::from_gateway(
            ErrorLevel::Control,
            resp.errors,
            http,
        ));
    }
    let Some(op) = resp.operation.as_ref() else {
        return Err(with_status(
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Control,
                "the response has no <operation>",
            ),
            http,
        ));
    };
    if !op.authentication.status.is_success() {
        return Err(IntacctError::from_gateway(
            ErrorLevel::Authentication,
            op.errors.clone(),
            http,
        ));
    }
    if let Some(s) = http.filter(|s| *s >= 400) {
        // An envelope that says success inside an HTTP error: trust the status code.
        return Err(with_status(
            IntacctError::new(
                ErrorKind::Unavailable,
                ErrorLevel::Http,
                "HTTP error with a success envelope",
            ),
            Some(s),
        ));
    }
    for r in op.results.iter().filter(|_| results == Results::Whole) {
        if !r.status.is_success() {
            let e = IntacctError::from_gateway(ErrorLevel::Function, r.errors.clone(), None);
            if e.retryable {
                return Err(e.with_function(&r.function));
            }
        }
    }
    Ok(resp)
}

fn with_status(mut e: IntacctError, s: Option<u16>) -> IntacctError {
    e.http_status = s;
    e
}
