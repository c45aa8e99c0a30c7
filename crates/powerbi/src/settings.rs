//! Connection settings: cloud (authority host, token scope, API host per reference §1.5), identity, credential,
//! and the endpoint overrides used for the simulator and proxies.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::PowerBiError;

/// The Microsoft cloud the tenant lives in; the token scope is derived from it (a public-cloud token is refused by
/// the government hosts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cloud {
    #[default]
    Public,
    /// US Government Community Cloud (GCC): commercial Entra, government Power BI.
    UsGov,
    /// US GCC High.
    UsGovHigh,
    /// US DoD.
    UsGovDod,
    /// China (21Vianet).
    China,
}

impl Cloud {
    /// Entra ID authority host.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public | Cloud::UsGov => "https://login.microsoftonline.com",
            Cloud::UsGovHigh | Cloud::UsGovDod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// Power BI resource App ID URI (scope base).
    pub fn resource(self) -> &'static str {
        match self {
            Cloud::Public => "https://analysis.windows.net/powerbi/api",
            Cloud::UsGov => "https://analysis.usgovcloudapi.net/powerbi/api",
            Cloud::UsGovHigh => "https://high.analysis.usgovcloudapi.net/powerbi/api",
            Cloud::UsGovDod => "https://mil.analysis.usgovcloudapi.net/powerbi/api",
            Cloud::China => "https://analysis.chinacloudapi.cn/powerbi/api",
        }
    }

    /// The v2.0 `scope` value for client credentials.
    pub fn scope(self) -> String {
        format!("{}/.default", self.resource())
    }

    /// Power BI REST host.
    pub fn api_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://api.powerbi.com",
            Cloud::UsGov => "https://api.powerbigov.us",
            Cloud::UsGovHigh => "https://api.high.powerbigov.us",
            Cloud::UsGovDod => "https://api.mil.powerbigov.us",
            Cloud::China => "https://api.powerbi.cn",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::UsGov => "usgov",
            Cloud::UsGovHigh => "usgovhigh",
            Cloud::UsGovDod => "usgovdod",
            Cloud::China => "china",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cloud {
    type Err = PowerBiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "public" | "commercial" => Cloud::Public,
            "usgov" | "gcc" => Cloud::UsGov,
            "usgovhigh" | "gcchigh" => Cloud::UsGovHigh,
            "usgovdod" | "dod" => Cloud::UsGovDod,
            "china" => Cloud::China,
            other => {
                return Err(PowerBiError::Config(format!(
                    "unknown cloud '{other}': use one of public, usgov, usgovhigh, usgovdod, china"
                )));
            }
        })
    }
}

/// How the app proves its identity to Entra ID.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret VALUE.
    Secret(SecretString),
    /// An RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` PEM) and its X.509 certificate (PEM); the
    /// certificate's public part must be uploaded to the app registration.
    Certificate {
        private_key_pem: SecretString,
        certificate_pem: String,
    },
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret([redacted])"),
            ClientCredential::Certificate { .. } => {
                f.write_str("Certificate { private_key_pem: [redacted], .. }")
            }
        }
    }
}

/// Everything needed to talk to one tenant's Power BI as one service principal.
#[derive(Clone, Debug)]
pub struct PowerBiSettings {
    pub cloud: Cloud,
    /// Tenant GUID or verified domain (`contoso.onmicrosoft.com`); never `common`/`organizations`.
    pub tenant_id: String,
    /// The app registration's Application (client) ID.
    pub client_id: String,
    pub credential: ClientCredential,
    /// Overrides the cloud's authority host (simulator, proxies); the token URL is `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority_url: Option<Url>,
    /// Overrides the cloud's API host; REST calls go to `{api}/v1.0/myorg/...`.
    pub api_url: Option<Url>,
    /// Permits plain `http://` overrides, and only for loopback hosts (the simulator).
    pub allow_loopback_http: bool,
    pub request_timeout: Duration,
}

impl PowerBiSettings {
    /// Settings for a cloud's real endpoints with a 120 s request timeout.
    pub fn new(
        cloud: Cloud,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: ClientCredential,
    ) -> Self {
        Self {
            cloud,
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            authority_url: None,
            api_url: None,
            allow_loopback_http: false,
            request_timeout: Duration::from_secs(120),
        }
    }

    /// The token endpoint, validated.
    pub fn token_url(&self) -> Result<Url, PowerBiError> {
        let base = match &self.authority_url {
            Some(u) => {
                check_endpoint("authority_url", u, self.allow_loopback_http)?;
                u.clone()
            }
            None => Url::parse(self.cloud.authority_host()).expect("static URL"),
        };
        join(&base, &[&self.tenant_id, "oauth2", "v2.0", "token"])
    }

    /// The REST base `{api}/v1.0/myorg/` (with trailing slash), validated.
    pub fn api_base(&self) -> Result<Url, PowerBiError> {
        let base = match &self.api_url {
            Some(u) => {
                check_endpoint("api_url", u, self.allow_loopback_http)?;
                u.clone()
            }
            None => Url::parse(self.cloud.api_host()).expect("static URL"),
        };
        let mut u = join(&base, &["v1.0", "myorg"])?;
        u.path_segments_mut()
            .map_err(|_| PowerBiError::Config("api_url cannot be a base URL".into()))?
            .push("");
        Ok(u)
    }

    pub(crate) fn validate(&self) -> Result<(), PowerBiError> {
        let t = self.tenant_id.trim();
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(PowerBiError::Config(format!(
                "tenant_id '{}' is not a tenant GUID or domain: copy the 'Directory (tenant) ID' from the app registration",
                self.tenant_id
            )));
        }
        if ["common", "organizations", "consumers"].contains(&t.to_ascii_lowercase().as_str()) {
            return Err(PowerBiError::Config(format!(
                "tenant_id '{t}' is a multi-tenant alias; app-only tokens need the tenant's GUID or domain"
            )));
        }
        if self.client_id.trim().is_empty() {
            return Err(PowerBiError::Config(
                "client_id is empty: copy the 'Application (client) ID' from the app registration"
                    .into(),
            ));
        }
        if let ClientCredential::Secret(s) = &self.credential
            && secrecy::ExposeSecret::expose_secret(s).is_empty()
        {
            return Err(PowerBiError::Config(
                "the client secret is empty: store it with `credentials set powerbi`".into(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(PowerBiError::Config(
                "request_timeout must be above zero".into(),
            ));
        }
        self.token_url()?;
        self.api_base()?;
        Ok(())
    }
}

fn join(base: &Url, segments: &[&str]) -> Result<Url, PowerBiError> {
    let mut u = base.clone();
    u.set_query(None);
    u.set_fragment(None);
    {
        let mut p = u
            .path_segments_mut()
            .map_err(|_| PowerBiError::Config(format!("{base} cannot be a base URL")))?;
        p.pop_if_empty();
        p.extend(segments);
    }
    Ok(u)
}

/// https only, except plain http to a loopback host when explicitly allowed (credentials never cross a network in
/// clear text).
fn check_endpoint(what: &str, u: &Url, allow_loopback_http: bool) -> Result<(), PowerBiError> {
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback {
                Err(PowerBiError::Config(format!(
                    "{what} {u} uses plain http: real endpoints must use https (http is only allowed for a loopback simulator)"
                )))
            } else if !allow_loopback_http {
                Err(PowerBiError::Config(format!(
                    "{what} {u} uses plain http: set allow_loopback_http = true to talk to a local simulator"
                )))
            } else {
                Ok(())
            }
        }
        other => Err(PowerBiError::Config(format!(
            "{what} {u} has scheme '{other}': use https"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PowerBiSettings {
        PowerBiSettings::new(
            Cloud::Public,
            "contoso.onmicrosoft.com",
            "app",
            ClientCredential::Secret("s".into()),
        )
    }

    #[test]
    fn clouds_have_documented_hosts_and_scopes() {
        let cases = [
            (
                "public",
                "https://login.microsoftonline.com",
                "https://analysis.windows.net/powerbi/api/.default",
                "https://api.powerbi.com",
            ),
            (
                "usgov",
                "https://login.microsoftonline.com",
                "https://analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://api.powerbigov.us",
            ),
            (
                "usgovhigh",
                "https://login.microsoftonline.us",
                "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://api.high.powerbigov.us",
            ),
            (
                "usgovdod",
                "https://login.microsoftonline.us",
                "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default",
                "https://api.mil.powerbigov.us",
            ),
            (
                "china",
                "https://login.chinacloudapi.cn",
                "https://analysis.chinacloudapi.cn/powerbi/api/.default",
                "https://api.powerbi.cn",
            ),
        ];
        for (name, auth, scope, api) in cases {
            let c: Cloud = name.parse().unwrap();
            assert_eq!(c.to_string(), name);
            assert_eq!(
                (c.authority_host(), c.scope().as_str(), c.api_host()),
                (auth, scope, api)
            );
            let mut s = settings();
            s.cloud = c;
            assert_eq!(
                s.token_url().unwrap().as_str(),
                format!("{auth}/contoso.onmicrosoft.com/oauth2/v2.0/token")
            );
            assert_eq!(s.api_base().unwrap().as_str(), format!("{api}/v1.0/myorg/"));
        }
        assert!("germany".parse::<Cloud>().is_err());
    }

    #[test]
    fn http_only_for_loopback_and_only_when_allowed() {
        let mut s = settings();
        s.api_url = Some(Url::parse("http://127.0.0.1:8080").unwrap());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("allow_loopback_http")
        );
        s.allow_loopback_http = true;
        s.validate().unwrap();
        assert_eq!(
            s.api_base().unwrap().as_str(),
            "http://127.0.0.1:8080/v1.0/myorg/"
        );
        s.authority_url = Some(Url::parse("http://[::1]:9/prefix/").unwrap());
        assert_eq!(
            s.token_url().unwrap().as_str(),
            "http://[::1]:9/prefix/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        s.api_url = Some(Url::parse("http://example.com").unwrap());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("must use https")
        );
        s.api_url = Some(Url::parse("https://proxy.example.com/pbi").unwrap());
        s.validate().unwrap();
        assert_eq!(
            s.api_base().unwrap().as_str(),
            "https://proxy.example.com/pbi/v1.0/myorg/"
        );
        s.api_url = Some(Url::parse("ftp://x").unwrap());
        assert!(s.validate().is_err());
    }

    #[test]
    fn identity_fields_are_checked_and_secrets_redacted() {
        let mut s = settings();
        s.tenant_id = "common".into();
        assert!(s.validate().is_err());
        s.tenant_id = "a/b".into();
        assert!(s.validate().is_err());
        let mut s = settings();
        s.client_id = " ".into();
        assert!(s.validate().is_err());
        let s = PowerBiSettings::new(
            Cloud::Public,
            "t",
            "c",
            ClientCredential::Secret("hunter2".into()),
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
