//! The DFS calls a landing zone needs, over reqwest, with a service-principal token for the
//! storage scope from `ml_powerbi`'s token source (same app, same authority, same refusal memory;
//! only the scope differs).
//!
//! Retries: 500, 502, 503, 504 and 429 (honouring `Retry-After`) and transport errors, up to
//! [`MAX_ATTEMPTS`] tries with a doubling pause from 500 ms. Each call used here is safe to send
//! again: an upload is re-done whole on any failure (the `_` file is ours alone), and a rename whose
//! first try may have been applied is settled by the caller from a listing.

use std::time::Duration;

use bytes::Bytes;
use ml_powerbi::TokenSource;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::error::OneLakeError;

/// The scope of a OneLake (Azure Storage) token.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const MAX_ATTEMPTS: u32 = 5;
const API_VERSION: &str = "2023-11-03";
/// Appends are cut into pieces of this size (the DFS API takes up to 100 MiB; smaller pieces
/// keep a retried piece cheap).
const APPEND_CHUNK: usize = 4 * 1024 * 1024;

/// Where a mirrored database's landing zone is: `https://onelake.dfs.fabric.microsoft.com/<workspace
/// id>/<mirrored database id>/Files/LandingZone`, as its home page in Fabric shows it.
#[derive(Clone, Debug)]
pub struct LandingZone {
    /// `scheme://host[:port]`.
    base: Url,
    /// The DFS filesystem: the workspace.
    filesystem: String,
    /// The path of the landing zone inside the filesystem (`<item>/Files/LandingZone`).
    root: Vec<String>,
}

impl LandingZone {
    /// Parses a landing zone URL; plain `http://` only for a loopback host and when allowed (the simulator).
    pub fn parse(url: &str, allow_loopback_http: bool) -> Result<Self, OneLakeError> {
        let u = Url::parse(url.trim())
            .map_err(|e| OneLakeError::Config(format!("landing_zone_url {url:?}: {e}")))?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match u.scheme() {
            "https" => {}
            "http" if allow_loopback_http && loopback => {}
            _ => {
                return Err(OneLakeError::Config(format!(
                    "landing_zone_url {url:?} must be https (plain http only for the simulator on 127.0.0.1 with allow_loopback_http = true)"
                )));
            }
        }
        let segs: Vec<String> = u
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).map(|p| p.to_string()).collect())
            .unwrap_or_default();
        if segs.len() < 2 {
            return Err(OneLakeError::Config(format!(
                "landing_zone_url {url:?} must name the workspace and the mirrored database: https://onelake.dfs.fabric.microsoft.com/<workspace id>/<mirrored database id>/Files/LandingZone"
            )));
        }
        let mut base = u.clone();
        base.set_path("/");
        base.set_query(None);
        Ok(LandingZone {
            base,
            filesystem: segs[0].clone(),
            root: segs[1..].to_vec(),
        })
    }

    /// The landing zone built from the cloud's OneLake host and the ids.
    pub fn from_ids(workspace_id: &str, mirrored_database_id: &str) -> Result<Self, OneLakeError> {
        Self::parse(
            &format!(
                "https://onelake.dfs.fabric.microsoft.com/{workspace_id}/{mirrored_database_id}/Files/LandingZone"
            ),
            false,
        )
    }

    fn url(&self, rel: &str) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().push(&self.filesystem);
            for s in self
                .root
                .iter()
                .map(String::as_str)
                .chain(rel.split('/').filter(|s| !s.is_empty()))
            {
                p.push(s);
            }
        }
        u
    }

    fn fs_url(&self) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty().push(&self.filesystem);
        }
        u
    }

    /// `/{filesystem}/{root}/{rel}`, percent-encoded: the rename source.
    fn source(&self, rel: &str) -> String {
        let u = self.url(rel);
        u.path().to_string()
    }

    fn root_path(&self, rel: &str) -> String {
        self.root
            .iter()
            .map(String::as_str)
            .chain(rel.split('/').filter(|s| !s.is_empty()))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// One entry of a listing; `name` relative to the landing zone (`Vendors/00000000000000000001.parquet`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathEntry {
    pub name: String,
    pub is_directory: bool,
    pub content_length: u64,
}

#[derive(Deserialize)]
struct ListAnswer {
    #[serde(default)]
    paths: Vec<RawPath>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPath {
    name: String,
    #[serde(default)]
    is_directory: Option<String>,
    #[serde(default)]
    content_length: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorDoc {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A client for one landing zone.
#[derive(Clone)]
pub struct OneLakeClient {
    http: reqwest::Client,
    token: TokenSource,
    lz: LandingZone,
    /// The first pause between tries (tests shorten it).
    backoff: Duration,
}

impl OneLakeClient {
    pub fn new(
        lz: LandingZone,
        token: TokenSource,
        timeout: Duration,
    ) -> Result<Self, OneLakeError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| OneLakeError::Config(format!("HTTP client: {e}")))?;
        Ok(OneLakeClient {
            http,
            token,
            lz,
            backoff: Duration::from_millis(500),
        })
    }

    /// The first pause between retries (doubling each try).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    pub fn landing_zone(&self) -> &LandingZone {
        &self.lz
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<reqwest::Response, OneLakeError> {
        let mut pause = self.backoff;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self
                .token
                .token()
                .await
                .map_err(|e| OneLakeError::from(ml_powerbi::PowerBiError::from(e)))?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header("Authorization", token.bearer())
                .header("x-ms-version", API_VERSION)
                .body(body.clone());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "OneLake not reached; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    continue;
                }
                Err(e) => return Err(OneLakeError::Transport(e.to_string())),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let request_id = resp
                .headers()
                .get("x-ms-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let header_code = resp
                .headers()
                .get("x-ms-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await.unwrap_or_default();
            let (code, message) = match serde_json::from_str::<ErrorDoc>(&text) {
                Ok(d) => (d.error.code, d.error.message),
                Err(_) => (
                    header_code.unwrap_or_default(),
                    text.chars().take(300).collect(),
                ),
            };
            let transient = matches!(status.as_u16(), 500 | 502 | 503 | 504 | 429);
            if transient && attempt < MAX_ATTEMPTS {
                let wait = retry_after.unwrap_or(pause);
                tracing::warn!(status = status.as_u16(), %code, attempt, wait_ms = wait.as_millis() as u64, "OneLake busy; trying again");
                tokio::time::sleep(wait).await;
                pause *= 2;
                continue;
            }
            // An expired token: forget it and try once with a fresh one.
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                self.token.invalidate(&token).await;
                continue;
            }
            return Err(match status.as_u16() {
                401 | 403 => OneLakeError::Denied {
                    status: status.as_u16(),
                    code,
                    message,
                },
                s => OneLakeError::Remote {
                    status: s,
                    code,
                    message,
                    request_id,
                },
            });
        }
    }

    /// Creates (or empties) a file; with `if_none_match`, an existing path fails with 409 `PathAlreadyExists`.
    pub async fn create_file(&self, rel: &str, if_none_match: bool) -> Result<(), OneLakeError> {
        let mut url = self.lz.url(rel);
        url.query_pairs_mut().append_pair("resource", "file");
        let h: Vec<(&'static str, String)> = if if_none_match {
            vec![("If-None-Match", "*".into())]
        } else {
            vec![]
        };
        self.send(Method::PUT, url, &h, Bytes::new())
            .await
            .map(drop)
    }

    pub async fn create_directory(&self, rel: &str) -> Result<(), OneLakeError> {
        let mut url = self.lz.url(rel);
        url.query_pairs_mut().append_pair("resource", "directory");
        self.send(Method::PUT, url, &[], Bytes::new())
            .await
            .map(drop)
    }

    pub async fn append(&self, rel: &str, position: u64, data: Bytes) -> Result<(), OneLakeError> {
        let mut url = self.lz.url(rel);
        url.query_pairs_mut()
            .append_pair("action", "append")
            .append_pair("position", &position.to_string());
        self.send(Method::PATCH, url, &[], data).await.map(drop)
    }

    pub async fn flush(&self, rel: &str, position: u64) -> Result<(), OneLakeError> {
        let mut url = self.lz.url(rel);
        url.query_pairs_mut()
            .append_pair("action", "flush")
            .append_pair("position", &position.to_string())
            .append_pair("close", "true");
        self.send(Method::PATCH, url, &[], Bytes::new())
            .await
            .map(drop)
    }

    /// Create, append (in pieces), flush: the whole file, replacing what the path held.
    pub async fn upload(&self, rel: &str, data: &[u8]) -> Result<(), OneLakeError> {
        self.create_file(rel, false).await?;
        let mut pos = 0usize;
        for piece in data.chunks(APPEND_CHUNK) {
            self.append(rel, pos as u64, Bytes::copy_from_slice(piece))
                .await?;
            pos += piece.len();
        }
        self.flush(rel, pos as u64).await
    }

    /// Renames `from` to `to` (both relative to the landing zone); with `if_none_match`, an existing
    /// `to` fails with 409 `PathAlreadyExists` instead of being replaced.
    pub async fn rename(
        &self,
        from: &str,
        to: &str,
        if_none_match: bool,
    ) -> Result<(), OneLakeError> {
        let url = self.lz.url(to);
        let mut h: Vec<(&'static str, String)> = vec![("x-ms-rename-source", self.lz.source(from))];
        if if_none_match {
            h.push(("If-None-Match", "*".into()));
        }
        self.send(Method::PUT, url, &h, Bytes::new())
            .await
            .map(drop)
    }

    /// The entries of a directory (relative to the landing zone); `None` when it does not exist.
    pub async fn list(
        &self,
        dir: &str,
        recursive: bool,
    ) -> Result<Option<Vec<PathEntry>>, OneLakeError> {
        let mut url = self.lz.fs_url();
        url.query_pairs_mut()
            .append_pair("resource", "filesystem")
            .append_pair("directory", &self.lz.root_path(dir))
            .append_pair("recursive", if recursive { "true" } else { "false" });
        let resp = match self.send(Method::GET, url, &[], Bytes::new()).await {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let answer: ListAnswer = resp
            .json()
            .await
            .map_err(|e| OneLakeError::Transport(format!("listing: {e}")))?;
        let prefix = format!("{}/", self.lz.root_path(""));
        Ok(Some(
            answer
                .paths
                .into_iter()
                .map(|p| PathEntry {
                    name: p.name.strip_prefix(&prefix).unwrap_or(&p.name).to_string(),
                    is_directory: p.is_directory.as_deref() == Some("true"),
                    content_length: match p.content_length {
                        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
                        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
                        _ => 0,
                    },
                })
                .collect(),
        ))
    }

    pub async fn delete(&self, rel: &str, recursive: bool) -> Result<(), OneLakeError> {
        let mut url = self.lz.url(rel);
        if recursive {
            url.query_pairs_mut().append_pair("recursive", "true");
        }
        self.send(Method::DELETE, url, &[], Bytes::new())
            .await
            .map(drop)
    }
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}
