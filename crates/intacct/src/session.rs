//! The session cache: one `getAPISession` serves every read until the session nears its end.
//!
//! Sessions are cached per (company, entity, user). A session is used at most
//! `session_max_age` after its login and never past the last `sessiontimeout` seen minus a
//! margin; the expiry slides with every authenticated response, as the gateway's does. The
//! remaining lifetime is taken as `sessiontimeout - sessiontimestamp` of the same response and
//! counted on our own monotonic clock (tokio's, so tests can pause it), which makes clock skew
//! between us and Intacct irrelevant. Refresh is single-flight: the caller that finds the
//! session stale logs in while holding the slot's lock, and the others wait for its result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::protocol::Authentication;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    pub company: String,
    pub entity: Option<String>,
    pub user: String,
}

/// A live session. `id` is a secret: never logged, redacted in Debug.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub id: SecretString,
    pub endpoint: Url,
    pub location_id: Option<String>,
    pub company_id: String,
    pub user_id: String,
    /// Distinguishes logins so a stale failure cannot invalidate a newer session.
    pub generation: u64,
    pub obtained: Instant,
    pub deadline: Instant,
    pub expires_at: Option<DateTime<FixedOffset>>,
}

impl Session {
    pub(crate) fn usable(&self, now: Instant, max_age: Duration) -> bool {
        now < self.deadline && now < self.obtained + max_age
    }
}

/// When the session must be refreshed, from an authentication block seen at `now`.
pub(crate) fn deadline_from(
    auth: &Authentication,
    now: Instant,
    margin: Duration,
    fallback: Duration,
) -> Instant {
    match (auth.session_timestamp, auth.session_timeout) {
        (Some(ts), Some(to)) => {
            let left = (to - ts).to_std().unwrap_or(Duration::ZERO);
            now + left.saturating_sub(margin)
        }
        _ => now + fallback,
    }
}

pub(crate) type Slot = Arc<Mutex<Option<Session>>>;

#[derive(Default)]
pub(crate) struct SessionCache {
    // A std mutex: held only to find or insert a slot, never across an await.
    slots: StdMutex<HashMap<SessionKey, Slot>>,
}

impl SessionCache {
    pub(crate) fn slot(&self, key: &SessionKey) -> Slot {
        let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key.clone()).or_default().clone()
    }
}
