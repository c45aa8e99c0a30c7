//! Who may use the console: the console token (its SHA-256 kept in a 0600 file in the data
//! directory, the token itself shown once), login sessions with their CSRF token, and the rate limit
//! on failed logins.
//!
//! Pure of HTTP: the request side (cookies, headers, redirects) is in `guard`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use ml_clock::SharedClock;

use crate::ConsoleError;

/// The file, in the data directory, that holds the console token's hash.
pub const TOKEN_FILE: &str = "console.token";

/// Marks a console token, so one pasted into the wrong place is recognisable.
const TOKEN_PREFIX: &str = "mlc_";

pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// SHA-256 of a token. The token is 256 random bits, so a plain hash is enough: there is nothing
/// to guess that a slow hash would protect.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Constant time: how much of a guess matched never shows in the answer's timing.
    pub fn matches(&self, token: &str) -> bool {
        bool::from(self.0.ct_eq(&TokenHash::of(token).0))
    }

    fn encode(&self) -> String {
        format!("sha256:{}\n", hex::encode(self.0))
    }

    fn decode(text: &str) -> Option<TokenHash> {
        let hex_text = text.trim().strip_prefix("sha256:")?;
        let bytes: [u8; 32] = hex::decode(hex_text).ok()?.try_into().ok()?;
        Some(TokenHash(bytes))
    }
}

/// A new random token (`mlc_` and 64 hex digits).
pub fn generate_token() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    format!("{TOKEN_PREFIX}{}", hex::encode(b))
}

/// Creates a token and writes its hash to `path` (mode 0600, through a temporary file renamed over
/// it, so a reader never sees half a file). Returns the token: the caller shows it once. Without
/// `replace`, an existing file is kept and `None` returned.
pub fn create_token(path: &Path, replace: bool) -> Result<Option<String>, ConsoleError> {
    if path.exists() && !replace {
        return Ok(None);
    }
    let token = generate_token();
    write_private(path, &TokenHash::of(&token).encode())?;
    Ok(Some(token))
}

/// Reads the token's hash; a missing file says how to create one.
pub fn load_token_hash(path: &Path) -> Result<TokenHash, ConsoleError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ConsoleError::NoToken(path.to_path_buf())
        } else {
            ConsoleError::Io(path.to_path_buf(), e)
        }
    })?;
    TokenHash::decode(&text).ok_or_else(|| ConsoleError::BadTokenFile(path.to_path_buf()))
}

/// The metrics token: a file holding the token itself (as Prometheus' `bearer_token_file` does).
pub fn load_metrics_token(path: &Path) -> Result<TokenHash, ConsoleError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConsoleError::Io(path.to_path_buf(), e))?;
    if text.trim().is_empty() {
        return Err(ConsoleError::BadTokenFile(path.to_path_buf()));
    }
    Ok(TokenHash::of(&text))
}

fn write_private(path: &Path, text: &str) -> Result<(), ConsoleError> {
    use std::io::Write as _;
    let io = |e| ConsoleError::Io(path.to_path_buf(), e);
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Where the console's token comes from: the file (read on every check, so `console token rotate`
/// takes effect at once, and every session of the old token ends), or a fixed hash (tests).
#[derive(Clone, Debug)]
pub enum TokenSource {
    File(PathBuf),
    Fixed(TokenHash),
}

impl TokenSource {
    pub fn current(&self) -> Result<TokenHash, ConsoleError> {
        match self {
            TokenSource::File(p) => load_token_hash(p),
            TokenSource::Fixed(h) => Ok(h.clone()),
        }
    }
}

/// A login: the session id is the cookie, the CSRF token goes into every form.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    /// The token it logged in with: a rotated token ends the session.
    token: TokenHash,
    expires: DateTime<Utc>,
}

/// How long a login lasts.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// Logins, in memory: a restart logs everyone out, which is the safe side.
pub struct Sessions {
    clock: SharedClock,
    // A std Mutex: held for a map lookup, never across an await.
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(clock: SharedClock) -> Sessions {
        Sessions {
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for a login with `token`; returns its id.
    pub fn create(&self, token: TokenHash) -> String {
        let now = self.clock.now();
        let id = random_hex();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        map.insert(
            id.clone(),
            Session {
                csrf: random_hex(),
                token,
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    /// The live session of this id, logged in with the current token.
    pub fn get(&self, id: &str, current: &TokenHash) -> Option<Session> {
        let now = self.clock.now();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|s| s.expires > now && &s.token == current)
            .cloned()
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Constant-time equality of two texts (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    hex::encode(b)
}

/// Failed logins per client address: after [`LoginLimiter::MAX_FAILURES`] within
/// [`LoginLimiter::WINDOW`], further attempts are refused until the oldest failure leaves the window.
pub struct LoginLimiter {
    clock: SharedClock,
    failures: Mutex<HashMap<IpAddr, Vec<DateTime<Utc>>>>,
}

impl LoginLimiter {
    pub const MAX_FAILURES: usize = 5;
    pub const WINDOW: chrono::Duration = chrono::Duration::minutes(15);

    pub fn new(clock: SharedClock) -> LoginLimiter {
        LoginLimiter {
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` while the address is locked out.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = self.clock.now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(ip).or_default();
        list.retain(|t| *t + Self::WINDOW > now);
        if list.len() >= Self::MAX_FAILURES {
            let free_at = list[0] + Self::WINDOW;
            return Err((free_at - now).num_seconds().max(1) as u64);
        }
        Ok(())
    }

    pub fn failed(&self, ip: IpAddr) {
        let now = self.clock.now();
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ip)
            .or_default()
            .push(now);
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_token_file_holds_only_a_hash_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = token_path(dir.path());
        let token = create_token(&p, false).unwrap().unwrap();
        assert!(token.starts_with("mlc_") && token.len() == 68);
        assert!(create_token(&p, false).unwrap().is_none(), "kept");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&token[4..]), "the token is not stored");
        let hash = load_token_hash(&p).unwrap();
        assert!(hash.matches(&token) && !hash.matches("mlc_nope"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let rotated = create_token(&p, true).unwrap().unwrap();
        let hash = load_token_hash(&p).unwrap();
        assert!(hash.matches(&rotated) && !hash.matches(&token));
    }

    #[test]
    fn failed_logins_lock_an_address_out_until_the_window_passes() {
        let clock = Arc::new(ml_clock::ManualClock::starting_at(
            "2026-12-06T10:00:00Z".parse().unwrap(),
        ));
        let limiter = LoginLimiter::new(clock.clone());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..LoginLimiter::MAX_FAILURES {
            assert!(limiter.check(ip).is_ok());
            limiter.failed(ip);
            clock.advance(std::time::Duration::from_secs(60));
        }
        let wait = limiter.check(ip).unwrap_err();
        assert_eq!(
            wait,
            10 * 60,
            "the first failure leaves the window at 10:15"
        );
        assert!(limiter.check(other).is_ok(), "per address");
        clock.advance(std::time::Duration::from_secs(wait));
        assert!(limiter.check(ip).is_ok());
    }

    #[test]
    fn a_rotated_token_ends_its_sessions() {
        let clock = Arc::new(ml_clock::ManualClock::starting_at(
            "2026-12-06T10:00:00Z".parse().unwrap(),
        ));
        let sessions = Sessions::new(clock.clone());
        let old = TokenHash::of("mlc_a");
        let id = sessions.create(old.clone());
        assert!(sessions.get(&id, &old).is_some());
        assert!(sessions.get(&id, &TokenHash::of("mlc_b")).is_none());
        clock.advance(std::time::Duration::from_secs(13 * 3600));
        assert!(sessions.get(&id, &old).is_none(), "expired");
    }
}
