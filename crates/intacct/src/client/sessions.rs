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

/// A session kept between processes (a `sync` from cron reuses the last one's instead of logging
/// in): what is needed to send with it and to know until when it may be used. `id` is a secret:
/// the caller seals it; `Debug` leaves it out.
#[derive(Clone)]
pub struct SavedSession {
    pub id: SecretString,
    pub endpoint: Url,
    pub sender_id: String,
    pub company_id: String,
    pub user_id: String,
    pub entity: Option<String>,
    /// When it was obtained: the age cap (`session_max_age`, 50 minutes) counts from here, across
    /// processes.
    pub obtained_at: chrono::DateTime<chrono::Utc>,
    /// The earlier of the last `sessiontimeout` seen (less the refresh margin) and the age cap.
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for SavedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedSession")
            .field("endpoint", &self.endpoint.as_str())
            .field("company_id", &self.company_id)
            .field("user_id", &self.user_id)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl IntacctClient {
    /// The session this client holds, if still usable, to keep for the next process.
    pub async fn saved_session(&self) -> Option<SavedSession> {
        let slot = self.inner.sessions.slot(&self.inner.key);
        let guard = slot.lock().await;
        let s = guard.as_ref()?;
        let now = Instant::now();
        let max_age = self.inner.settings.session_max_age;
        if !s.usable(now, max_age) {
            return None;
        }
        let left = s
            .deadline
            .min(s.obtained + max_age)
            .saturating_duration_since(now);
        let wall = chrono::Utc::now();
        let age = now.saturating_duration_since(s.obtained);
        let st = &self.inner.settings;
        Some(SavedSession {
            id: s.id.clone(),
            endpoint: s.endpoint.clone(),
            sender_id: st.sender_id.clone(),
            company_id: st.company_id.clone(),
            user_id: st.user_id.clone(),
            entity: st.entity.clone(),
            obtained_at: wall - chrono::Duration::from_std(age).unwrap_or_default(),
            valid_until: wall + chrono::Duration::from_std(left).unwrap_or_default(),
        })
    }

    /// Starts from a session an earlier process saved, when it belongs to this client's sender,
    /// company, entity and user and is still within its time; true if it was taken. Should Intacct
    /// refuse it all the same (ended early, or another login replaced it), the first call logs in
    /// once and carries on: a refused session is not a refused sign-in.
    pub async fn resume_session(&self, saved: SavedSession) -> bool {
        let st = &self.inner.settings;
        let same = saved.sender_id == st.sender_id
            && saved.company_id.eq_ignore_ascii_case(&st.company_id)
            && saved.user_id.eq_ignore_ascii_case(&st.user_id)
            && saved.entity == st.entity
            && check_endpoint(&saved.endpoint, st.allow_loopback_http).is_ok();
        let wall = chrono::Utc::now();
        let (Ok(left), Ok(age)) = (
            (saved.valid_until - wall).to_std(),
            (wall - saved.obtained_at).to_std(),
        ) else {
            return false;
        };
        if !same || left.is_zero() || age >= st.session_max_age {
            return false;
        }
        let now = Instant::now();
        let Some(obtained) = now.checked_sub(age) else {
            return false;
        };
        let slot = self.inner.sessions.slot(&self.inner.key);
        let mut guard = slot.lock().await;
        if guard.is_some() {
            return false;
        }
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        debug!(generation, "intacct session resumed from the store");
        *guard = Some(Session {
            id: saved.id,
            endpoint: saved.endpoint,
            location_id: saved.entity,
            company_id: saved.company_id,
            user_id: saved.user_id,
            generation,
            obtained,
            deadline: now + left,
            expires_at: None,
        });
        true
    }
}
