//! [`IntacctSettings`] and [`RetryPolicy`], and the endpoint rule that guards credentials.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::{ErrorKind, ErrorLevel, IntacctError};

/// The public gateway.
pub const DEFAULT_ENDPOINT: &str = "https://api.intacct.com/ia/xml/xmlgw.phtml";

/// How often and how long retryable failures are tried again (exponential backoff with jitter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No new attempt starts once this much time has passed since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 1 s doubling to at most 60 s, 10 minutes in all (the reference's advice, §8.4).
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (attempt counts from 1): full jitter over the upper
    /// half of the exponential step, so concurrent callers do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1).min(30))
                .unwrap_or(u32::MAX),
        );
        let cap = exp.min(self.max_delay);
        let half = cap / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        half + jitter
    }
}

/// Everything one client needs for one company (and optionally one entity).
#[derive(Clone, Debug)]
pub struct IntacctSettings {
    pub endpoint: Url,
    pub sender_id: String,
    pub sender_password: SecretString,
    pub company_id: String,
    pub user_id: String,
    pub user_password: SecretString,
    /// Entity (location) id for an entity-level session; `None` = top level.
    pub entity: Option<String>,
    /// Concurrent HTTP requests to this company, logins included (Intacct's default tier: 2).
    pub max_concurrent_requests: usize,
    /// A session is never used longer than this after its login.
    pub session_max_age: Duration,
    /// A session is refreshed this long before the last `sessiontimeout` seen.
    pub session_refresh_margin: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Allows `http://` endpoints on loopback addresses (the simulator); never for real hosts.
    pub allow_loopback_http: bool,
    /// `query` page size, 1..=2000.
    pub page_size: u32,
}

impl IntacctSettings {
    /// Settings with the defaults: public endpoint, 2 concurrent requests, 50-minute sessions,
    /// 5-minute refresh margin, 300 s request timeout, 2000-record pages.
    pub fn new(
        sender_id: impl Into<String>,
        sender_password: SecretString,
        company_id: impl Into<String>,
        user_id: impl Into<String>,
        user_password: SecretString,
    ) -> Self {
        Self {
            endpoint: Url::parse(DEFAULT_ENDPOINT).expect("constant URL"),
            sender_id: sender_id.into(),
            sender_password,
            company_id: company_id.into(),
            user_id: user_id.into(),
            user_password,
            entity: None,
            max_concurrent_requests: 2,
            session_max_age: Duration::from_secs(50 * 60),
            session_refresh_margin: Duration::from_secs(5 * 60),
            request_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            allow_loopback_http: false,
            page_size: 2000,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), IntacctError> {
        check_endpoint(&self.endpoint, self.allow_loopback_http)?;
        if self.max_concurrent_requests == 0 {
            return Err(IntacctError::config(
                "max_concurrent_requests must be at least 1",
            ));
        }
        if !(1..=2000).contains(&self.page_size) {
            return Err(IntacctError::config(format!(
                "page_size {} is outside 1..=2000",
                self.page_size
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(IntacctError::config(
                "retry.max_attempts must be at least 1",
            ));
        }
        for (name, v) in [
            ("sender_id", &self.sender_id),
            ("company_id", &self.company_id),
            ("user_id", &self.user_id),
        ] {
            if v.trim().is_empty() {
                return Err(IntacctError::config(format!("{name} is empty")));
            }
        }
        Ok(())
    }
}

/// Credentials only go to `https://*.intacct.com` (trailing dot allowed), as every SDK insists;
/// plain http only to a loopback address and only when the settings allow it (simulator).
pub fn check_endpoint(url: &Url, allow_loopback_http: bool) -> Result<(), IntacctError> {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let intacct = url.scheme() == "https"
        && (host.ends_with(".intacct.com") || host.ends_with(".intacct.com."));
    let loopback =
        allow_loopback_http && matches!(url.scheme(), "http" | "https") && is_loopback(url);
    if intacct || loopback {
        Ok(())
    } else {
        Err(IntacctError::new(
            ErrorKind::EndpointRefused,
            ErrorLevel::Config,
            format!("refusing to send credentials to {}://{host}", url.scheme()),
        ))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str, lb: bool) -> bool {
        check_endpoint(&Url::parse(u).unwrap(), lb).is_ok()
    }

    #[test]
    fn endpoint_rule() {
        assert!(ok("https://api.intacct.com/ia/xml/xmlgw.phtml", false));
        assert!(ok("https://na12.intacct.com./ia/xml/xmlgw.phtml", false));
        assert!(!ok("http://api.intacct.com/ia/xml/xmlgw.phtml", false));
        assert!(!ok("https://intacct.com.evil.example/x", false));
        assert!(!ok("https://evilintacct.com/x", false));
        assert!(!ok("http://127.0.0.1:8080/x", false));
        assert!(ok("http://127.0.0.1:8080/x", true));
        assert!(ok("http://[::1]:8080/x", true));
        assert!(!ok("http://10.0.0.1:8080/x", true));
        assert!(!ok("http://example.com/x", true));
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_elapsed: Duration::from_secs(10),
        };
        for attempt in 1..12 {
            let d = p.delay(attempt);
            let step = (100u64 << (attempt - 1).min(20)).min(1000);
            assert!(
                d >= Duration::from_millis(step / 2) && d <= Duration::from_millis(step),
                "{attempt}: {d:?}"
            );
        }
    }
}
