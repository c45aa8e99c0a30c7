//! App-only access tokens: OAuth 2.0 client credentials against Entra ID's v2.0 endpoint (one form POST; the
//! `oauth2` crate would drag in a second reqwest).
//!
//! The token is cached until `expires_in` minus a margin (300 s, but at most half the lifetime so short-lived test
//! tokens still get reused). One caller refreshes while the others wait on the same lock (single flight), so a
//! burst of pushes never turns into a burst of token requests (AADSTS50196 "loop detected").
//! [`TokenSource::invalidate`] drops the cached token only if it is the one the caller was refused with, so when
//! five in-flight requests all get 403 TokenExpired the token is fetched once, not five times.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;

use crate::error::{TokenError, TokenErrorKind};
use crate::settings::ClientCredential;

/// Safety margin before expiry at which a cached token is renewed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Lifetime of a client-assertion JWT (Microsoft asks for 5–10 minutes).
const ASSERTION_LIFETIME_SECS: u64 = 600;
/// Pause before the single retry of a token request that Entra answered as temporarily unavailable.
const UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A bearer token; Debug and Display never show it.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    generation: u64,
}

impl AccessToken {
    /// The `Authorization` header value. Public for other Entra-protected APIs (OneLake) that
    /// share this token source; never log it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret.expose_secret())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken([redacted], generation {})", self.generation)
    }
}

/// Signature scheme of the client assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, header thumbprint `x5t#S256` (Microsoft's current documentation).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (the older documented form), also with `x5t#S256`.
    Rs256,
}

enum Credential {
    Secret(SecretString),
    Certificate {
        key: Box<rsa::RsaPrivateKey>,
        cert_sha256: [u8; 32],
    },
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

struct Inner {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    scope: String,
    credential: Credential,
    /// Held across the token request on purpose: waiting callers then find the fresh token (single flight).
    cache: tokio::sync::Mutex<Option<Cached>>,
    /// A credential Entra refused ([`TokenError::is_refusal`]): later calls fail with it without
    /// asking again. A token source lives for one run, or is built anew for each scheduled run.
    refused: std::sync::Mutex<Option<TokenError>>,
    generation: AtomicU64,
    fetches: AtomicU64,
}

/// Shared, cloneable source of access tokens for one (tenant, app, cloud).
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.inner.token_url.as_str())
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
}

/// v2 sends `expires_in` as a number, v1 (and some proxies) as a string.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        N(u64),
        F(f64),
        S(String),
    }
    Ok(match Option::<NumOrStr>::deserialize(d)? {
        None => None,
        Some(NumOrStr::N(n)) => Some(n),
        Some(NumOrStr::F(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(NumOrStr::F(_)) => None,
        Some(NumOrStr::S(s)) => Some(s.trim().parse().map_err(serde::de::Error::custom)?),
    })
}

/// How long to keep a token that lives `lifetime`: `lifetime - min(300 s, lifetime / 2)`.
pub fn cache_duration(lifetime: Duration) -> Duration {
    lifetime - REFRESH_MARGIN.min(lifetime / 2)
}

impl TokenSource {
    /// A token source for the same service principal and authority as `settings`, for another
    /// resource's `scope` (OneLake's `https://storage.azure.com/.default`): one credential, one
    /// refusal memory and one cache per scope.
    pub fn for_scope(
        settings: &crate::settings::PowerBiSettings,
        scope: impl Into<String>,
    ) -> Result<Self, crate::error::PowerBiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| crate::error::PowerBiError::Config(format!("HTTP client: {e}")))?;
        Self::new(
            http,
            settings.token_url()?,
            settings.client_id.clone(),
            scope.into(),
            &settings.credential,
        )
        .map_err(crate::error::PowerBiError::from)
    }

    pub(crate) fn new(
        http: reqwest::Client,
        token_url: Url,
        client_id: String,
        scope: String,
        credential: &ClientCredential,
    ) -> Result<Self, TokenError> {
        let credential = match credential {
            ClientCredential::Secret(s) => Credential::Secret(s.clone()),
            ClientCredential::Certificate {
                private_key_pem,
                certificate_pem,
            } => Credential::Certificate {
                key: Box::new(parse_private_key(private_key_pem.expose_secret())?),
                cert_sha256: certificate_sha256(certificate_pem)?,
            },
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                token_url,
                client_id,
                scope,
                credential,
                cache: tokio::sync::Mutex::new(None),
                refused: std::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// A valid token: the cached one, or a fresh one fetched by exactly one caller.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut cache = self.inner.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        // Entra refused this credential before: asking again cannot help, and repeated failures
        // are what sign-in protection watches for.
        if let Some(e) = self
            .inner
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(e);
        }
        let fetched = match self.fetch().await {
            // Entra 5xx/429/"temporarily_unavailable": one more try after a pause (other callers keep waiting on
            // the lock, so this stays a single request stream).
            Err(e) if e.kind == TokenErrorKind::Unavailable => {
                tracing::warn!(error = %e, "Entra ID unavailable; retrying the token request once");
                tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                self.fetch().await
            }
            other => other,
        };
        let (secret, lifetime) = match fetched {
            Ok(t) => t,
            Err(e) => {
                if e.is_refusal() {
                    *self.inner.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                }
                return Err(e);
            }
        };
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let token = AccessToken { secret, generation };
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + cache_duration(lifetime),
        });
        Ok(token)
    }

    /// Forgets `rejected` if it is still the cached token (the API answered TokenExpired/InvalidToken).
    pub async fn invalidate(&self, rejected: &AccessToken) {
        let mut cache = self.inner.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.generation == rejected.generation)
        {
            *cache = None;
        }
    }

    /// How many token requests were sent to Entra ID (for tests and the status page).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), TokenError> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let inner = &self.inner;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", inner.client_id.clone()),
            ("scope", inner.scope.clone()),
        ];
        match &inner.credential {
            Credential::Secret(s) => form.push(("client_secret", s.expose_secret().to_string())),
            Credential::Certificate { key, cert_sha256 } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let jwt = client_assertion(
                    key,
                    cert_sha256,
                    &inner.client_id,
                    inner.token_url.as_str(),
                    now,
                    &uuid::Uuid::new_v4().to_string(),
                    AssertionAlgorithm::Ps256,
                )?;
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", jwt));
            }
        }
        let resp = inner
            .http
            .post(inner.token_url.clone())
            .form(&form)
            .send()
            .await;
        drop(form); // holds the secret; gone as soon as the request is built and sent
        let resp = resp.map_err(|e| {
            TokenError::local(
                TokenErrorKind::Transport,
                format!(
                    "{} could not be reached: {}",
                    inner.token_url,
                    source_chain(&e)
                ),
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| {
            TokenError::local(
                TokenErrorKind::Transport,
                format!("reading the token response failed: {}", source_chain(&e)),
            )
        })?;
        if !(200..300).contains(&status) {
            return Err(TokenError::from_parts(status, &body));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            TokenError::local(
                TokenErrorKind::BadResponse,
                format!("the token response is not the expected JSON ({e})"),
            )
        })?;
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                TokenError::local(
                    TokenErrorKind::BadResponse,
                    "the token response has no access_token",
                )
            })?;
        if let Some(t) = &parsed.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(TokenError::local(
                TokenErrorKind::BadResponse,
                format!("token_type is '{t}', expected Bearer"),
            ));
        }
        // Missing expires_in: assume a short life rather than caching forever.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(300));
        Ok((SecretString::from(token), lifetime))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn parse_private_key(pem: &str) -> Result<rsa::RsaPrivateKey, TokenError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem)).map_err(|_| {
        TokenError::local(
            TokenErrorKind::LocalCredential,
            "the private key is not an unencrypted RSA key in PEM form ('PRIVATE KEY' or 'RSA PRIVATE KEY')",
        )
    })
}

/// SHA-256 of the certificate's DER bytes (the `x5t#S256` thumbprint before base64url).
pub fn certificate_sha256(certificate_pem: &str) -> Result<[u8; 32], TokenError> {
    let bad = |why: &str| {
        TokenError::local(
            TokenErrorKind::LocalCredential,
            format!("the certificate PEM is unusable: {why}"),
        )
    };
    // The file may hold a chain or a key too; the first CERTIFICATE block is the app's certificate.
    let start = certificate_pem
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or_else(|| bad("no CERTIFICATE block"))?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = certificate_pem[start..]
        .find(end_marker)
        .ok_or_else(|| bad("no END CERTIFICATE line"))?
        + start
        + end_marker.len();
    let (label, der) = pem_rfc7468::decode_vec(&certificate_pem.as_bytes()[start..end])
        .map_err(|e| bad(&e.to_string()))?;
    if label != "CERTIFICATE" {
        return Err(bad("the block is not a CERTIFICATE"));
    }
    Ok(Sha256::digest(&der).into())
}

/// Builds and signs the client-assertion JWT (reference §1.4). Pure apart from PSS's random salt.
pub fn client_assertion(
    key: &rsa::RsaPrivateKey,
    cert_sha256: &[u8; 32],
    client_id: &str,
    token_url: &str,
    now_unix: u64,
    jti: &str,
    alg: AssertionAlgorithm,
) -> Result<String, TokenError> {
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    let header = serde_json::json!({
        "alg": match alg { AssertionAlgorithm::Ps256 => "PS256", AssertionAlgorithm::Rs256 => "RS256" },
        "typ": "JWT",
        "x5t#S256": URL_SAFE_NO_PAD.encode(cert_sha256),
    });
    let claims = serde_json::json!({
        "aud": token_url, "iss": client_id, "sub": client_id, "jti": jti,
        "nbf": now_unix, "iat": now_unix, "exp": now_unix + ASSERTION_LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig_err = |e: rsa::signature::Error| {
        TokenError::local(
            TokenErrorKind::LocalCredential,
            format!("signing the client assertion failed: {e}"),
        )
    };
    let signature = match alg {
        AssertionAlgorithm::Ps256 => rsa::pss::BlindedSigningKey::<Sha256>::new(key.clone())
            .try_sign_with_rng(&mut rsa::rand_core::OsRng, signing_input.as_bytes())
            .map_err(sig_err)?
            .to_vec(),
        AssertionAlgorithm::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .try_sign(signing_input.as_bytes())
            .map_err(sig_err)?
            .to_vec(),
    };
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;

    #[test]
    fn cache_margin_is_300s_or_half_a_short_lifetime() {
        assert_eq!(
            cache_duration(Duration::from_secs(3599)),
            Duration::from_secs(3299)
        );
        assert_eq!(
            cache_duration(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            cache_duration(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(cache_duration(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn expires_in_accepts_number_or_string() {
        for body in [
            r#"{"access_token":"x","expires_in":3599}"#,
            r#"{"access_token":"x","expires_in":"3599"}"#,
        ] {
            let r: TokenResponse = serde_json::from_str(body).unwrap();
            assert_eq!(r.expires_in, Some(3599));
        }
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(r.expires_in, None);
        assert!(
            serde_json::from_str::<TokenResponse>(r#"{"access_token":"x","expires_in":"soon"}"#)
                .is_err()
        );
    }

    #[test]
    fn access_token_debug_is_redacted() {
        let t = AccessToken {
            secret: SecretString::from("eyJ.secret.token"),
            generation: 3,
        };
        assert!(!format!("{t:?}").contains("secret.token"));
    }

    #[test]
    fn client_assertion_is_signed_and_verifiable_with_both_algorithms() {
        // 1024 bits keeps debug-build key generation fast; real keys are 2048+ and take the same code path.
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let public = rsa::RsaPublicKey::from(&key);
        let der = b"not really a certificate, but the thumbprint only hashes the DER bytes";
        let cert_pem =
            pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).unwrap();
        let thumb = certificate_sha256(&format!("junk before\n{cert_pem}")).unwrap();
        assert_eq!(thumb, <[u8; 32]>::from(Sha256::digest(der)));
        let url = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
        for alg in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
            let jwt =
                client_assertion(&key, &thumb, "app-id", url, 1_700_000_000, "jti-1", alg).unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(header["x5t#S256"], URL_SAFE_NO_PAD.encode(thumb));
            assert_eq!(header["typ"], "JWT");
            assert_eq!(claims["aud"], url);
            assert_eq!(
                (claims["iss"].as_str(), claims["sub"].as_str()),
                (Some("app-id"), Some("app-id"))
            );
            assert_eq!(
                claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
                600
            );
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
            let input = format!("{}.{}", parts[0], parts[1]);
            match alg {
                AssertionAlgorithm::Ps256 => {
                    assert_eq!(header["alg"], "PS256");
                    let vk = rsa::pss::VerifyingKey::<Sha256>::new(public.clone());
                    vk.verify(
                        input.as_bytes(),
                        &rsa::pss::Signature::try_from(sig.as_slice()).unwrap(),
                    )
                    .unwrap();
                    let tampered = format!("{input}x");
                    assert!(
                        vk.verify(
                            tampered.as_bytes(),
                            &rsa::pss::Signature::try_from(sig.as_slice()).unwrap()
                        )
                        .is_err()
                    );
                }
                AssertionAlgorithm::Rs256 => {
                    assert_eq!(header["alg"], "RS256");
                    let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone());
                    vk.verify(
                        input.as_bytes(),
                        &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap(),
                    )
                    .unwrap();
                }
            }
        }
        // Keys load from both PEM flavours.
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        let p8 = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let p1 = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert_eq!(parse_private_key(&p8).unwrap(), key);
        assert_eq!(parse_private_key(&p1).unwrap(), key);
        assert_eq!(
            parse_private_key("nope").unwrap_err().kind,
            TokenErrorKind::LocalCredential
        );
        assert!(
            certificate_sha256("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")
                .is_err()
        );
    }
}
