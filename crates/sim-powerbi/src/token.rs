//! Microsoft Entra token endpoint, client-credentials grant only: v2 `POST /{tenant}/oauth2/v2.0/token` (scope)
//! and legacy v1 `POST /{tenant}/oauth2/token` (resource, numbers as strings).
//!
//! Failures are the AADSTS document of reference §1.3: `error`, `error_description` ending in
//! `\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …`, `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`, `error_uri`. AADSTS codes for client-assertion problems (50027, 700021, 700024, 700027)
//! follow Microsoft's error-code reference but their exact selection by Entra is not documented: approximate.
//! Assertion signatures are not verified (no certificate store); structure and claims are.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::{Value, json};

use crate::config::{AppConfig, TenantConfig};
use crate::faults::{FaultKind, Operation};
use crate::server::abort_connection;
use crate::state::{IssuedToken, Shared, lock};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2).get(token_get))
        .route("/{tenant}/oauth2/token", post(token_v1).get(token_get))
        .with_state(shared)
}

/// An AADSTS failure before it is rendered.
struct AadError {
    error: &'static str,
    code: u32,
    text: String,
    /// Stats key, normally the code; distinguishes "secret id sent" from "wrong secret".
    stats_key: String,
}

impl AadError {
    fn new(error: &'static str, code: u32, text: impl Into<String>) -> Self {
        AadError {
            error,
            code,
            text: text.into(),
            stats_key: code.to_string(),
        }
    }
}

fn aad_response(shared: &Shared, e: AadError) -> Response {
    shared.count_token_error(&e.stats_key);
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let now = shared.clock.wall();
    let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let description = format!(
        "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
        e.code, e.text
    );
    let body = json!({
        "error": e.error,
        "error_description": description,
        "error_codes": [e.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={}", shared.cfg.cloud.login_host, e.code),
    });
    let status = if e.error == "invalid_client" {
        StatusCode::from_u16(shared.cfg.invalid_client_status).unwrap_or(StatusCode::BAD_REQUEST)
    } else {
        StatusCode::BAD_REQUEST
    };
    token_json(status, &body, &trace_id)
}

fn token_json(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-ms-request-id", v);
    }
    resp
}

/// Which endpoint version is being served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Entra answers a GET on the token endpoint with AADSTS900561.
async fn token_get(State(shared): State<Arc<Shared>>) -> Response {
    shared.begin(Operation::Token);
    aad_response(
        &shared,
        AadError::new(
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests. Received a GET request.",
        ),
    )
}

async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(shared, tenant, headers, body, Version::V2).await
}

async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(shared, tenant, headers, body, Version::V1).await
}

async fn token(
    shared: Arc<Shared>,
    tenant: String,
    headers: HeaderMap,
    body: Bytes,
    version: Version,
) -> Response {
    let mut reset_after = false;
    match shared.begin(Operation::Token) {
        Some(FaultKind::Status { status }) => {
            return StatusCode::from_u16(status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(FaultKind::Throttle { retry_after_secs }) => {
            shared.count_429("injected");
            let mut r = StatusCode::TOO_MANY_REQUESTS.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return r;
        }
        Some(FaultKind::ResetBeforeApply) => return abort_connection(),
        Some(FaultKind::ResetAfterApply) => reset_after = true,
        Some(FaultKind::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await
        }
        None => {}
    }
    let resp = match issue(&shared, &tenant, &headers, &body, version) {
        Ok(resp) => resp,
        Err(e) => aad_response(&shared, e),
    };
    if reset_after {
        abort_connection()
    } else {
        resp
    }
}

/// Form parameters; a repeated parameter is an error in Entra too, but the first value is good enough here.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn issue(
    shared: &Shared,
    tenant_key: &str,
    headers: &HeaderMap,
    body: &[u8],
    version: Version,
) -> Result<Response, AadError> {
    let cfg = &shared.cfg;
    let tenant = find_tenant(&cfg.tenants, tenant_key).ok_or_else(|| {
        AadError::new(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID and are signing \
                 into the correct cloud. Check with your subscription administrator, this may happen if there are no \
                 active subscriptions for the tenant."
            ),
        )
    })?;
    let form = Form(
        url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    let missing = |p: &str| {
        AadError::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{p}'."),
        )
    };
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    if version == Version::V2 && form.get("resource").is_some() {
        return Err(AadError::new(
            "invalid_request",
            901002,
            "The 'resource' request parameter is not supported.",
        ));
    }
    // Credentials may come as HTTP Basic (RFC 6749 §2.3.1): url-encoded id and secret.
    let basic = basic_credentials(headers);
    let client_id = form
        .get("client_id")
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| missing("client_id"))?;
    if grant_type != "client_credentials" {
        return Err(AadError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    match version {
        Version::V2 => {
            let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
            if scope.trim() != cfg.cloud.scope() {
                return Err(AadError::new(
                    "invalid_scope",
                    70011,
                    format!(
                        "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                    ),
                ));
            }
        }
        Version::V1 => {
            let resource = form.get("resource").ok_or_else(|| missing("resource"))?;
            if resource.trim_end_matches('/') != cfg.cloud.powerbi_resource {
                return Err(AadError::new(
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {resource} was not found in the tenant named {}. This can \
                         happen if the application has not been installed by the administrator of the tenant or \
                         consented to by any user in the tenant. You might have sent your authentication request to \
                         the wrong tenant.",
                        tenant.id
                    ),
                ));
            }
        }
    }
    let app = tenant
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&client_id))
        .ok_or_else(|| {
            AadError::new(
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen \
                     if the application has not been installed by the administrator of the tenant or consented to by \
                     any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    tenant.domains.first().unwrap_or(&tenant.id)
                ),
            )
        })?;
    let secret = form
        .get("client_secret")
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, s)| s));
    match (secret, form.get("client_assertion")) {
        (Some(secret), _) => check_secret(shared, app, &secret)?,
        (None, Some(assertion)) => {
            if form.get("client_assertion_type") != Some(JWT_BEARER) {
                return Err(AadError::new(
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed. The client_assertion_type must be \
                     'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
                ));
            }
            let token_url = format!(
                "{}/{tenant_key}/oauth2/{}token",
                authority_from_headers(headers),
                if version == Version::V2 { "v2.0/" } else { "" }
            );
            check_assertion(shared, app, assertion, &token_url)?;
        }
        (None, None) => {
            return Err(AadError::new(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    }
    Ok(grant(shared, tenant, app, version))
}

fn find_tenant<'a>(tenants: &'a [TenantConfig], key: &str) -> Option<&'a TenantConfig> {
    tenants.iter().find(|t| {
        t.id.eq_ignore_ascii_case(key) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(key))
    })
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `http://host:port` as the client addressed us, for the assertion audience check.
fn authority_from_headers(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn invalid_secret(app: &AppConfig) -> AadError {
    AadError::new(
        "invalid_client",
        7000215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, \
             not the client secret ID, for a secret added to app '{}'.",
            app.client_id
        ),
    )
}

fn check_secret(shared: &Shared, app: &AppConfig, sent: &str) -> Result<(), AadError> {
    let now = shared.clock.wall();
    if let Some(s) = app.secrets.iter().find(|s| s.value.expose() == sent) {
        if s.expires_at.is_some_and(|exp| exp <= now) {
            return Err(AadError::new(
                "invalid_client",
                7000222,
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new \
                     keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for \
                     added security: https://aka.ms/certCreds.",
                    app.client_id
                ),
            ));
        }
        return Ok(());
    }
    let mut e = invalid_secret(app);
    if app.secrets.iter().any(|s| s.id.eq_ignore_ascii_case(sent)) {
        e.stats_key = "7000215-secret-id".to_owned();
    }
    Err(e)
}

fn malformed(why: &str) -> AadError {
    AadError::new(
        "invalid_request",
        50027,
        format!("JWT token is invalid or malformed. {why}"),
    )
}

/// Checks a client assertion's structure and claims. The signature is NOT verified (documented).
fn check_assertion(
    shared: &Shared,
    app: &AppConfig,
    jwt: &str,
    token_url: &str,
) -> Result<(), AadError> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(malformed("A JWT has three non-empty dot-separated parts."));
    }
    let decode = |p: &str| -> Result<Value, AadError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .map_err(|_| malformed("A part is not base64url."))?;
        serde_json::from_slice(&bytes).map_err(|_| malformed("A part is not JSON."))
    };
    let header = decode(parts[0])?;
    let claims = decode(parts[1])?;
    URL_SAFE_NO_PAD
        .decode(parts[2].trim_end_matches('='))
        .map_err(|_| malformed("The signature is not base64url."))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !matches!(alg, "RS256" | "PS256") {
        return Err(malformed("The header 'alg' must be RS256 or PS256."));
    }
    if header.get("x5t").is_none() && header.get("x5t#S256").is_none() {
        return Err(malformed(
            "The header carries no certificate thumbprint ('x5t' or 'x5t#S256').",
        ));
    }
    if !app.certificate {
        return Err(AadError::new(
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. \
                 [Reason - The key was not found., Thumbprint of key used by client: '{}'] app '{}'.",
                header
                    .get("x5t#S256")
                    .or_else(|| header.get("x5t"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                app.client_id
            ),
        ));
    }
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    if !claim("iss").eq_ignore_ascii_case(&app.client_id)
        || !claim("sub").eq_ignore_ascii_case(&app.client_id)
    {
        return Err(AadError::new(
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == token_url,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(token_url)),
        _ => false,
    };
    if !aud_ok {
        return Err(malformed(&format!(
            "Client assertion audience claim does not match Realm issuer. Expected '{token_url}'."
        )));
    }
    let now = shared.clock.wall().timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims
        .get("nbf")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN);
    match exp {
        None => Err(malformed("The 'exp' claim is missing.")),
        // Entra allows a few minutes of clock skew; the simulator allows none beyond nbf's 5 minutes.
        Some(exp) if exp <= now || nbf > now + 300 => Err(AadError::new(
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, assertion valid from \
                 {nbf}, expiry time of assertion {exp}."
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn grant(shared: &Shared, tenant: &TenantConfig, app: &AppConfig, version: Version) -> Response {
    let mut raw = [0u8; 48];
    rand::rng().fill_bytes(&mut raw);
    let access_token = URL_SAFE_NO_PAD.encode(raw);
    let lifetime = shared.cfg.token_lifetime;
    lock(&shared.tokens).insert(
        access_token.clone(),
        IssuedToken {
            tenant_id: tenant.id.clone(),
            client_id: app.client_id.clone(),
            expires: shared.clock.now() + lifetime,
        },
    );
    lock(&shared.stats).tokens_issued += 1;
    let secs = lifetime.as_secs();
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match version {
        Version::V2 if !shared.cfg.expires_in_as_string => json!({
            "token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": access_token,
        }),
        Version::V2 => json!({
            "token_type": "Bearer", "expires_in": secs.to_string(), "ext_expires_in": secs.to_string(),
            "access_token": access_token,
        }),
        Version::V1 => {
            let now = shared.clock.wall().timestamp();
            json!({
                "token_type": "Bearer", "expires_in": secs.to_string(), "ext_expires_in": secs.to_string(),
                "expires_on": (now + secs as i64).to_string(), "not_before": now.to_string(),
                "resource": shared.cfg.cloud.powerbi_resource, "access_token": access_token,
            })
        }
    };
    token_json(StatusCode::OK, &body, &request_id)
}
