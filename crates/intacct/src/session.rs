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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::values::parse_session_time;

    fn auth(ts: &str, to: Option<&str>) -> Authentication {
        Authentication {
            session_timestamp: parse_session_time(ts),
            session_timeout: to.and_then(parse_session_time),
            ..Authentication::default()
        }
    }

    fn session(obtained: Instant, deadline: Instant) -> Session {
        Session {
            id: SecretString::from("x"),
            endpoint: Url::parse("https://api.intacct.com/ia/xml/xmlgw.phtml").unwrap(),
            location_id: None,
            company_id: String::new(),
            user_id: String::new(),
            generation: 1,
            obtained,
            deadline,
            expires_at: None,
        }
    }

    #[test]
    fn deadline_is_timeout_minus_margin_whatever_the_offset() {
        let now = Instant::now();
        let margin = Duration::from_secs(300);
        let a = auth(
            "2019-05-30T12:29:53-07:00",
            Some("2019-05-30T14:29:53-07:00"),
        );
        assert_eq!(
            deadline_from(&a, now, margin, Duration::from_secs(1)),
            now + Duration::from_secs(2 * 3600 - 300)
        );
        // a timeout already within the margin means: refresh now
        let a = auth(
            "2024-01-01T00:00:00+00:00",
            Some("2024-01-01T00:04:00+00:00"),
        );
        assert_eq!(deadline_from(&a, now, margin, Duration::from_secs(1)), now);
        // old responses without sessiontimeout fall back to the age cap
        let a = auth("2015-12-06T15:57:08-08:00", None);
        assert_eq!(
            deadline_from(&a, now, margin, Duration::from_secs(3000)),
            now + Duration::from_secs(3000)
        );
    }

    #[test]
    fn usable_until_the_deadline_and_the_age_cap() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(50 * 60);
        let s = session(t0, t0 + Duration::from_secs(6 * 3600));
        assert!(s.usable(t0 + Duration::from_secs(49 * 60), max_age));
        assert!(
            !s.usable(t0 + Duration::from_secs(50 * 60), max_age),
            "age cap"
        );
        let s = session(t0, t0 + Duration::from_secs(10 * 60));
        assert!(s.usable(t0 + Duration::from_secs(9 * 60), max_age));
        assert!(
            !s.usable(t0 + Duration::from_secs(10 * 60), max_age),
            "deadline"
        );
    }

    #[test]
    fn one_slot_per_company_entity_and_user() {
        let cache = SessionCache::default();
        let k = |e: Option<&str>, u: &str| SessionKey {
            company: "C".into(),
            entity: e.map(Into::into),
            user: u.into(),
        };
        assert!(Arc::ptr_eq(
            &cache.slot(&k(None, "u")),
            &cache.slot(&k(None, "u"))
        ));
        assert!(!Arc::ptr_eq(
            &cache.slot(&k(None, "u")),
            &cache.slot(&k(Some("E"), "u"))
        ));
        assert!(!Arc::ptr_eq(
            &cache.slot(&k(None, "u")),
            &cache.slot(&k(None, "v"))
        ));
    }
}
