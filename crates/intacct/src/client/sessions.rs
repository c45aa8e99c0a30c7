//! The session every call runs under: logging in, reusing the cached session, sliding its expiry
//! on each answer, and logging in once more when the gateway calls it invalid. Kept apart from
//! the reads so none of them has to think about authentication.

use std::sync::atomic::Ordering;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::{debug, info};
use url::Url;

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{Auth, Envelope, Function, FunctionCall, Response, encode_request};
use crate::session::{Session, deadline_from};
use crate::settings::check_endpoint;
use crate::transport::Results;

use super::IntacctClient;
use super::results::single_result;

impl IntacctClient {
    /// The request body: `functions` under `auth`, with a control id of its own. Built anew on
    /// each attempt, so a retry never resends a stale envelope.
    fn build(&self, auth: Auth<'_>, functions: &[Function]) -> Result<String, IntacctError> {
        let s = &self.inner.settings;
        let control_id = self.control_id("req");
        encode_request(&Envelope {
            sender_id: &s.sender_id,
            sender_password: s.sender_password.expose_secret(),
            control_id: &control_id,
            unique_id: false,
            transaction: false,
            auth,
            functions,
        })
        .map_err(|e| IntacctError::config(e.to_string()))
    }

    /// Logs in with `getAPISession`, sent alone with the login credentials.
    async fn login(&self) -> Result<Session, IntacctError> {
        let s = &self.inner.settings;
        let functions = [Function {
            control_id: "sessionProvider".into(),
            call: FunctionCall::GetApiSession { location_id: None },
        }];
        let body = || {
            self.build(
                Auth::Login {
                    user_id: &s.user_id,
                    company_id: &s.company_id,
                    password: s.user_password.expose_secret(),
                    location_id: s.entity.as_deref(),
                },
                &functions,
            )
        };
        let resp = self
            .inner
            .transport
            .exchange(&s.endpoint, "getAPISession", Results::Whole, body)
            .await?;
        let now = Instant::now();
        let op = resp
            .operation
            .as_ref()
            .expect("checked by classify_exchange");
        let result = single_result(&resp, "getAPISession")?;
        let rec = result.records.first().ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "getAPISession returned no <api> block",
            )
            .with_function("getAPISession")
        })?;
        let id = rec.get("sessionid").unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "getAPISession returned an empty session id",
            ));
        }
        let endpoint = match rec.get("endpoint").map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => Url::parse(e).map_err(|_| {
                IntacctError::new(
                    ErrorKind::EndpointRefused,
                    ErrorLevel::Function,
                    "getAPISession returned an endpoint that is not a URL",
                )
            })?,
            None => s.endpoint.clone(),
        };
        check_endpoint(&endpoint, s.allow_loopback_http)?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        info!(
            company_id = %s.company_id,
            entity = s.entity.as_deref().unwrap_or(""),
            endpoint = %endpoint,
            generation,
            "intacct session obtained"
        );
        Ok(Session {
            id: SecretString::from(id),
            endpoint,
            location_id: rec.get("locationid").map(str::to_owned),
            company_id: op.authentication.company_id.clone(),
            user_id: op.authentication.user_id.clone(),
            generation,
            obtained: now,
            deadline: deadline_from(
                &op.authentication,
                now,
                s.session_refresh_margin,
                s.session_max_age,
            ),
            expires_at: op.authentication.session_timeout,
        })
    }

    /// A usable session: the cached one, or a fresh login by exactly one caller.
    pub(super) async fn session(&self) -> Result<Session, IntacctError> {
        let slot = self.inner.sessions.slot(&self.inner.key);
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref()
            && s.usable(Instant::now(), self.inner.settings.session_max_age)
        {
            return Ok(s.clone());
        }
        *guard = None;
        let refused = |inner: &super::Inner| {
            inner
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        if let Some(e) = refused(&self.inner) {
            return Err(e);
        }
        let s = match self.login().await {
            Ok(s) => s,
            Err(e) => {
                if e.is_refused_sign_in() {
                    *self.inner.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                }
                return Err(e);
            }
        };
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn invalidate(&self, generation: u64) {
        let slot = self.inner.sessions.slot(&self.inner.key);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|s| s.generation == generation) {
            *guard = None;
        }
    }

    /// Slides the cached session's expiry from an authenticated response.
    fn touch(&self, generation: u64, resp: &Response) {
        let Some(op) = resp.operation.as_ref() else {
            return;
        };
        if op.authentication.session_timeout.is_none() {
            return;
        }
        let slot = self.inner.sessions.slot(&self.inner.key);
        // If the slot is busy, a login is under way and will replace this session anyway:
        // do not make the caller wait for it just to slide an expiry.
        let Ok(mut guard) = slot.try_lock() else {
            return;
        };
        if let Some(s) = guard.as_mut().filter(|s| s.generation == generation) {
            let st = &self.inner.settings;
            s.deadline = deadline_from(
                &op.authentication,
                Instant::now(),
                st.session_refresh_margin,
                st.session_max_age,
            );
            s.expires_at = op.authentication.session_timeout;
        }
    }

    /// Sends functions with the session; on "Invalid session" logs in once more and retries once.
    pub(crate) async fn call(
        &self,
        what: &str,
        functions: &[Function],
    ) -> Result<Response, IntacctError> {
        let mut relogged = false;
        loop {
            let s = self.session().await?;
            let body = || self.build(Auth::Session(s.id.expose_secret()), functions);
            // One function: its retryable failure is retried with the request. Several: each
            // result is the caller's (see `call_each`), so the ones that worked are not repeated.
            let results = if functions.len() == 1 {
                Results::Whole
            } else {
                Results::Each
            };
            match self
                .inner
                .transport
                .exchange(&s.endpoint, what, results, body)
                .await
            {
                Ok(resp) => {
                    self.touch(s.generation, &resp);
                    return Ok(resp);
                }
                Err(e) if e.is_invalid_session() && !relogged => {
                    debug!(
                        function = what,
                        "intacct session rejected; logging in again"
                    );
                    self.invalidate(s.generation).await;
                    relogged = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
