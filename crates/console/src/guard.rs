//! The request side of auth, in front of every page and API route but the open ones: a request
//! passes with `Authorization: Bearer <console token>` (scripts, curl) or with the session cookie
//! of a login; a POST on a session also needs the session's CSRF token (the `csrf` form field or
//! the `X-CSRF-Token` header), because a browser sends the cookie with any site's form. Refused: the
//! API answers 401 (403 for a missing CSRF token), a page redirects to the login.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::Shared;
use crate::auth;

pub const SESSION_COOKIE: &str = "mlc_session";

/// The CSRF token the page's forms must carry (empty for a bearer request, which needs none).
#[derive(Clone)]
pub struct Csrf(pub String);

/// Forms are small; a larger body is refused rather than buffered.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}

pub fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

pub async fn require_login(State(c): State<Shared>, req: Request, next: Next) -> Response {
    let current = match c.token.current() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "the console token cannot be read");
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
        }
    };
    if let Some(token) = bearer(req.headers()) {
        if !current.matches(token) {
            return unauthorized("the bearer token is not the console token");
        }
        let mut req = req;
        req.extensions_mut().insert(Csrf(String::new()));
        return next.run(req).await;
    }
    let session = session_id(req.headers()).and_then(|id| c.sessions.get(&id, &current));
    let Some(session) = session else {
        if is_api(&req) {
            return unauthorized("log in at /login or send Authorization: Bearer <console token>");
        }
        let next_path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let target = if req.method() == Method::GET {
            format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
            )
        } else {
            "/login".into()
        };
        return Redirect::to(&target).into_response();
    };
    let mut req = req;
    if req.method() == Method::POST {
        let from_header = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
        };
        let sent = from_header.or_else(|| {
            url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
        });
        match sent {
            Some(s) if auth::same(&s, &session.csrf) => {}
            _ => return forbidden("missing or wrong CSRF token: reload the page and try again"),
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(Csrf(session.csrf.clone()));
    next.run(req).await
}

/// Whether `next` may be followed after a login: a path of this site only (never `//host`).
pub fn local_path(next: &str) -> Option<&str> {
    (next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(
            local_path("/runs?status=failed"),
            Some("/runs?status=failed")
        );
        assert_eq!(local_path("//evil.example/"), None);
        assert_eq!(local_path("https://evil.example/"), None);
        assert_eq!(local_path("/\\evil.example"), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; mlc_session=abc; b=2".parse().unwrap());
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
    }
}
