//! Entra ID token failures: the AADSTS codes of a token-endpoint refusal read into what the user must change.

use std::fmt;

/// Why Entra refused to issue a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// AADSTS7000215.
    InvalidSecret,
    /// AADSTS7000222.
    ExpiredSecret,
    /// AADSTS7000218.
    MissingCredential,
    /// AADSTS700016.
    UnknownApplication,
    /// AADSTS90002.
    TenantNotFound,
    /// AADSTS90038.
    WrongCloud,
    /// AADSTS70011 / 700022.
    InvalidScope,
    /// AADSTS500011.
    ResourceNotInTenant,
    /// AADSTS700027.
    CertificateRejected,
    /// AADSTS50196 or `temporarily_unavailable` / 5xx / 429: try again later.
    Unavailable,
    /// The local certificate or private key could not be used.
    LocalCredential,
    /// The token endpoint could not be reached.
    Transport,
    /// 200 OK without a usable token.
    BadResponse,
    Other,
}

/// An Entra ID token failure, with the AADSTS code, trace and correlation ids for support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    pub kind: TokenErrorKind,
    pub status: Option<u16>,
    /// OAuth `error` (e.g. `invalid_client`).
    pub error: Option<String>,
    pub codes: Vec<u32>,
    /// First line of `error_description` (Entra's own text; it never contains the secret).
    pub description: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl TokenError {
    /// Entra refused the credential itself (secret, certificate, app, tenant, cloud, scope):
    /// asking again with the same one cannot succeed. Outages, unreachable endpoints and odd
    /// answers are not refusals.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self.kind,
            TokenErrorKind::Unavailable
                | TokenErrorKind::Transport
                | TokenErrorKind::BadResponse
                | TokenErrorKind::Other
        )
    }

    pub(crate) fn local(kind: TokenErrorKind, description: impl Into<String>) -> Self {
        TokenError {
            kind,
            status: None,
            error: None,
            codes: Vec::new(),
            description: Some(description.into()),
            trace_id: None,
            correlation_id: None,
        }
    }

    /// Classifies a token-endpoint error response (pure).
    pub fn from_parts(status: u16, body: &[u8]) -> TokenError {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
        let mut codes: Vec<u32> = v
            .get("error_codes")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect()
            })
            .unwrap_or_default();
        let description =
            s("error_description").map(|d| d.lines().next().unwrap_or_default().trim().to_string());
        if codes.is_empty()
            && let Some(code) = description
                .as_deref()
                .and_then(|d| d.strip_prefix("AADSTS"))
        {
            // Some proxies keep only the description; its prefix carries the same code.
            let digits: String = code.chars().take_while(char::is_ascii_digit).collect();
            codes.extend(digits.parse::<u32>().ok());
        }
        let error = s("error");
        let kind = codes
            .iter()
            .find_map(|c| match c {
                7000215 => Some(TokenErrorKind::InvalidSecret),
                7000222 => Some(TokenErrorKind::ExpiredSecret),
                7000218 => Some(TokenErrorKind::MissingCredential),
                700016 => Some(TokenErrorKind::UnknownApplication),
                90002 => Some(TokenErrorKind::TenantNotFound),
                90038 => Some(TokenErrorKind::WrongCloud),
                70011 | 700022 => Some(TokenErrorKind::InvalidScope),
                500011 => Some(TokenErrorKind::ResourceNotInTenant),
                700027 => Some(TokenErrorKind::CertificateRejected),
                50196 => Some(TokenErrorKind::Unavailable),
                _ => None,
            })
            .unwrap_or(
                if status >= 500
                    || status == 429
                    || error.as_deref() == Some("temporarily_unavailable")
                {
                    TokenErrorKind::Unavailable
                } else {
                    TokenErrorKind::Other
                },
            );
        TokenError {
            kind,
            status: Some(status),
            error,
            codes,
            description,
            trace_id: s("trace_id"),
            correlation_id: s("correlation_id"),
        }
    }

    pub fn advice(&self) -> &'static str {
        match self.kind {
            TokenErrorKind::InvalidSecret => {
                "the client secret is wrong: paste the secret's VALUE (shown once when it was created), not its \
                 Secret ID, with `credentials set powerbi`"
            }
            TokenErrorKind::ExpiredSecret => {
                "the client secret has expired: create a new secret under the app registration's 'Certificates & \
                 secrets' and store it with `credentials set powerbi`"
            }
            TokenErrorKind::MissingCredential => {
                "no client secret or certificate was sent: store one with `credentials set powerbi`"
            }
            TokenErrorKind::UnknownApplication => {
                "no application with this client_id exists in the tenant: check client_id (the app's 'Application \
                 (client) ID') and that tenant_id is the tenant where the app is registered"
            }
            TokenErrorKind::TenantNotFound => {
                "the tenant was not found: check tenant_id (GUID or verified domain), and the `cloud` setting — a \
                 government or China tenant does not exist on the public login host"
            }
            TokenErrorKind::WrongCloud => {
                "the tenant belongs to another national cloud: set `cloud` (usgov, usgovhigh, usgovdod, china) to match it"
            }
            TokenErrorKind::InvalidScope => {
                "the token scope was refused: the scope is derived from `cloud`; check that `cloud` matches the tenant \
                 and that no authority_url override points at the wrong service"
            }
            TokenErrorKind::ResourceNotInTenant => {
                "Power BI is not provisioned in this tenant: sign in to Power BI once with a tenant account, or check \
                 the `cloud` setting"
            }
            TokenErrorKind::CertificateRejected => {
                "Entra rejected the certificate signature: upload this certificate's public part to the app \
                 registration ('Certificates & secrets') and check the private key matches it"
            }
            TokenErrorKind::Unavailable => {
                "Entra ID is temporarily unavailable or throttling; the connector retries later"
            }
            TokenErrorKind::LocalCredential => {
                "the configured certificate or private key cannot be used: store a PEM certificate and its RSA private key"
            }
            TokenErrorKind::Transport => {
                "the token endpoint could not be reached: check the network, proxy and the `cloud`/authority_url setting"
            }
            TokenErrorKind::BadResponse => {
                "the token endpoint answered without a usable token: check authority_url points at Entra ID"
            }
            TokenErrorKind::Other => {
                "Entra ID refused the token request; see the AADSTS code at https://login.microsoftonline.com/error"
            }
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("getting a Power BI access token failed")?;
        if let Some(s) = self.status {
            write!(f, ": HTTP {s}")?;
        }
        if let Some(e) = &self.error {
            write!(f, " {e}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        } else if let Some(c) = self.codes.first() {
            write!(f, ": AADSTS{c}")?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, " [trace {t}")?;
            if let Some(c) = &self.correlation_id {
                write!(f, ", correlation {c}")?;
            }
            f.write_str("]")?;
        }
        write!(f, ". {}", self.advice())
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_map_to_actionable_errors() {
        use TokenErrorKind as K;
        let cases: &[(u32, &str, K, &str)] = &[
            (
                7000215,
                "invalid_client",
                K::InvalidSecret,
                "not its Secret ID",
            ),
            (7000222, "invalid_client", K::ExpiredSecret, "has expired"),
            (
                7000218,
                "invalid_request",
                K::MissingCredential,
                "no client secret or certificate",
            ),
            (
                700016,
                "unauthorized_client",
                K::UnknownApplication,
                "client_id",
            ),
            (90002, "invalid_request", K::TenantNotFound, "tenant_id"),
            (90038, "invalid_request", K::WrongCloud, "national cloud"),
            (70011, "invalid_scope", K::InvalidScope, "scope"),
            (
                500011,
                "invalid_resource",
                K::ResourceNotInTenant,
                "not provisioned",
            ),
            (
                700027,
                "invalid_client",
                K::CertificateRejected,
                "certificate",
            ),
            (
                50196,
                "temporarily_unavailable",
                K::Unavailable,
                "retries later",
            ),
            (12345, "invalid_request", K::Other, "AADSTS code"),
        ];
        for (code, err, kind, fragment) in cases {
            let body = serde_json::json!({
                "error": err,
                "error_description": format!("AADSTS{code}: Something.\r\nTrace ID: t\r\nCorrelation ID: c"),
                "error_codes": [code], "trace_id": "trace-1", "correlation_id": "corr-1",
            });
            let e = TokenError::from_parts(400, body.to_string().as_bytes());
            assert_eq!(e.kind, *kind, "{code}");
            let text = e.to_string();
            assert!(text.contains(fragment), "{code}: {text}");
            assert!(
                text.contains(&format!("AADSTS{code}: Something.")),
                "{text}"
            );
            assert!(
                text.contains("trace-1") && text.contains("corr-1"),
                "{text}"
            );
            assert!(
                !text.contains("Trace ID: t\r"),
                "only the first description line: {text}"
            );
        }
        // Code only in the description; and a 5xx without a body.
        let e = TokenError::from_parts(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#);
        assert_eq!(e.kind, K::InvalidSecret);
        assert_eq!(TokenError::from_parts(503, b"").kind, K::Unavailable);
    }
}
