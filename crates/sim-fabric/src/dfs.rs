//! The ADLS Gen2 (DFS) subset a landing zone is written with, on plain files:
//!
//! | request | operation |
//! |---|---|
//! | `PUT /{fs}/{path}?resource=file` (`If-None-Match: *` refuses an existing path) | create (empty) |
//! | `PUT /{fs}/{path}?resource=directory` | create a directory |
//! | `PUT /{fs}/{path}` with `x-ms-rename-source: /{fs}/{source}` | rename |
//! | `PATCH /{fs}/{path}?action=append&position=N` | append (uncommitted until flushed) |
//! | `PATCH /{fs}/{path}?action=flush&position=N` | commit the appended data |
//! | `GET /{fs}?resource=filesystem&directory=D&recursive=B` | list |
//! | `GET /{fs}/{path}` | read |
//! | `DELETE /{fs}/{path}[?recursive=true]` | delete |
//!
//! Errors are `DataLakeStorageError` bodies, `{"error":{"code":"...","message":"..."}}`, with the
//! `x-ms-request-id` and `x-ms-error-code` headers and the codes and messages Microsoft's
//! Data Lake Storage Gen2 REST reference lists (docs/fabric-open-mirroring.md).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::{FaultKind, Operation};
use crate::state::{Shared, lock};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// An ADLS Gen2 error answer.
pub(crate) struct DfsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl DfsError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        DfsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
        }
    }
    fn path_not_found() -> Self {
        DfsError::new(404, "PathNotFound", "The specified path does not exist.")
    }
    fn path_exists() -> Self {
        DfsError::new(
            409,
            "PathAlreadyExists",
            "The specified path already exists.",
        )
    }
    fn bad_position() -> Self {
        DfsError::new(
            400,
            "InvalidFlushPosition",
            "The uploaded data is not contiguous or the position query parameter value is not equal to the length of the file after appending the uploaded data.",
        )
    }
    fn bad_query() -> Self {
        DfsError::new(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
        )
    }
    fn injected(status: u16) -> Self {
        match status {
            503 => DfsError::new(
                503,
                "ServerBusy",
                "The server is currently unable to receive requests. Please retry your request.",
            ),
            _ => DfsError::new(
                status,
                "InternalError",
                "The server encountered an internal error. Please retry the request.",
            ),
        }
    }

    fn render(self, shared: &Shared, head: bool) -> Response {
        shared.count_error(self.code);
        let request_id = uuid::Uuid::new_v4().to_string();
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let body = if head {
            String::new()
        } else {
            json!({"error": {"code": self.code, "message": format!("{}\nRequestId:{request_id}\nTime:{time}", self.message)}})
                .to_string()
        };
        let mut r = (self.status, body).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-ms-request-id", v);
        }
        h.insert("x-ms-error-code", HeaderValue::from_static(self.code));
        h.insert("x-ms-version", HeaderValue::from_static("2023-11-03"));
        r
    }
}

fn ok(status: StatusCode) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        r.headers_mut().insert("x-ms-request-id", v);
    }
    r
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Splits `/{fs}/{path...}` (percent-decoded) into the filesystem and the path segments; `..` and
/// empty segments are refused.
fn split(raw: &str) -> Result<(String, Vec<String>), DfsError> {
    let mut segs = Vec::new();
    for s in raw.trim_start_matches('/').split('/') {
        if s.is_empty() {
            continue;
        }
        let d = percent_decode(s);
        if d == ".." || d == "." || d.contains('\\') {
            return Err(DfsError::new(
                400,
                "InvalidResourceName",
                "The specified resource name contains invalid characters.",
            ));
        }
        segs.push(d);
    }
    if segs.is_empty() {
        return Err(DfsError::new(
            400,
            "InvalidUri",
            "The request URI is invalid.",
        ));
    }
    let fs = segs.remove(0);
    Ok((fs, segs))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let head = method == Method::HEAD;
    match serve(&shared, &method, &uri, &headers, body) {
        Ok(r) => r,
        Err(e) => e.render(&shared, head),
    }
}

fn serve(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, DfsError> {
    let q = query(uri);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let rename_source = headers
        .get("x-ms-rename-source")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let op = match (method.as_str(), get("resource"), get("action")) {
        ("PUT", _, _) if rename_source.is_some() => Operation::Rename,
        ("PUT", Some("file" | "directory"), _) => Operation::Create,
        ("PATCH", _, Some("append")) => Operation::Append,
        ("PATCH", _, Some("flush")) => Operation::Flush,
        ("GET", Some("filesystem"), _) => Operation::List,
        ("GET", _, _) => Operation::Read,
        ("HEAD", _, _) => Operation::Properties,
        ("DELETE", _, _) => Operation::Delete,
        _ => {
            return Err(DfsError::new(
                400,
                "InvalidHttpVerb",
                "The HTTP verb specified is invalid - it is not recognized by the server.",
            ));
        }
    };
    authorize(shared, headers)?;
    let mut fail_after = None;
    match shared.begin(op) {
        Some(FaultKind::Status { status }) => return Err(DfsError::injected(status)),
        Some(FaultKind::Throttle { retry_after_secs }) => {
            shared.count_error("TooManyRequests");
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": {"code": "TooManyRequests", "message": "The request was throttled. Retry after the time in the Retry-After header."}}).to_string(),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Ok(r);
        }
        Some(FaultKind::StatusAfterApply { status }) => fail_after = Some(status),
        None => {}
    }
    let (fs, segs) = split(uri.path())?;
    if fs != shared.cfg.workspace_id {
        return Err(DfsError::new(
            404,
            "FilesystemNotFound",
            "The specified filesystem does not exist.",
        ));
    }
    let result = match op {
        Operation::Create => create(
            shared,
            &fs,
            &segs,
            get("resource") == Some("directory"),
            headers,
        ),
        Operation::Rename => rename(
            shared,
            &fs,
            &segs,
            rename_source.as_deref().unwrap_or_default(),
            headers,
        ),
        Operation::Append => {
            let pos = get("position")
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(DfsError::bad_query)?;
            append(shared, &segs, pos, &body)
        }
        Operation::Flush => {
            let pos = get("position")
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(DfsError::bad_query)?;
            flush(shared, &segs, pos)
        }
        Operation::List => list(
            shared,
            &fs,
            get("directory").unwrap_or(""),
            get("recursive") == Some("true"),
        ),
        Operation::Read => read(shared, &fs, &segs),
        Operation::Properties => properties(shared, &fs, &segs),
        Operation::Delete => delete(shared, &fs, &segs, get("recursive") == Some("true")),
        Operation::Token => unreachable!("the token endpoint has its own route"),
    }?;
    match fail_after {
        Some(status) => Err(DfsError::injected(status)),
        None => Ok(result),
    }
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), DfsError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(auth) = auth else {
        return Err(DfsError::new(
            401,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        ));
    };
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    match shared.check_token(token) {
        Some(true) => {}
        Some(false) => {
            return Err(DfsError::new(
                401,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header. Lifetime validation failed. The token is expired.",
            ));
        }
        None => {
            return Err(DfsError::new(
                401,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            ));
        }
    }
    if !shared.cfg.can_write {
        return Err(DfsError::new(
            403,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        ));
    }
    Ok(())
}

fn disk(shared: &Shared, fs: &str, segs: &[String]) -> PathBuf {
    let mut p = shared.cfg.root.join(fs);
    for s in segs {
        p.push(s);
    }
    p
}

fn key(segs: &[String]) -> String {
    segs.join("/")
}

fn io(e: std::io::Error) -> DfsError {
    DfsError::new(
        500,
        "InternalError",
        format!("The server encountered an internal error: {e}"),
    )
}

fn create(
    shared: &Shared,
    fs: &str,
    segs: &[String],
    directory: bool,
    headers: &HeaderMap,
) -> Result<Response, DfsError> {
    let path = disk(shared, fs, segs);
    if path.exists() && headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        return Err(DfsError::path_exists());
    }
    if directory {
        std::fs::create_dir_all(&path).map_err(io)?;
    } else {
        if path.is_dir() {
            return Err(DfsError::new(
                409,
                "PathConflict",
                "The specified path, or an element of the path, exists and its resource type is invalid for this operation.",
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, b"").map_err(io)?;
        lock(&shared.uncommitted).remove(&key(segs));
    }
    Ok(ok(StatusCode::CREATED))
}

fn rename(
    shared: &Shared,
    fs: &str,
    segs: &[String],
    source: &str,
    headers: &HeaderMap,
) -> Result<Response, DfsError> {
    // The source is `/{filesystem}/{path}`, optionally with a SAS query after `?`.
    let source = source.split('?').next().unwrap_or_default();
    let (src_fs, src_segs) = split(source)
        .map_err(|_| DfsError::new(400, "InvalidSourceUri", "The source URI is invalid."))?;
    if src_fs != fs {
        return Err(DfsError::new(
            400,
            "InvalidSourceUri",
            "The source URI is invalid.",
        ));
    }
    let from = disk(shared, fs, &src_segs);
    let to = disk(shared, fs, segs);
    if !from.exists() {
        return Err(DfsError::new(
            404,
            "SourcePathNotFound",
            "The source path for a rename operation does not exist.",
        ));
    }
    if to.exists() && headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        return Err(DfsError::path_exists());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::rename(&from, &to).map_err(io)?;
    let mut pending = lock(&shared.uncommitted);
    if let Some(data) = pending.remove(&key(&src_segs)) {
        pending.insert(key(segs), data);
    }
    drop(pending);
    shared.count_rename();
    Ok(ok(StatusCode::CREATED))
}

fn committed_len(path: &std::path::Path) -> Result<u64, DfsError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m.len()),
        _ => Err(DfsError::path_not_found()),
    }
}

fn append(
    shared: &Shared,
    segs: &[String],
    position: u64,
    body: &[u8],
) -> Result<Response, DfsError> {
    let path = disk(shared, &shared.cfg.workspace_id, segs);
    let committed = committed_len(&path)?;
    let mut pending = lock(&shared.uncommitted);
    let buf = pending.entry(key(segs)).or_default();
    if position != committed + buf.len() as u64 {
        return Err(DfsError::bad_position());
    }
    buf.extend_from_slice(body);
    Ok(ok(StatusCode::ACCEPTED))
}

fn flush(shared: &Shared, segs: &[String], position: u64) -> Result<Response, DfsError> {
    use std::io::Write;
    let path = disk(shared, &shared.cfg.workspace_id, segs);
    let committed = committed_len(&path)?;
    let mut pending = lock(&shared.uncommitted);
    let len = pending.get(&key(segs)).map_or(0, Vec::len) as u64;
    if position != committed + len {
        return Err(DfsError::bad_position());
    }
    if let Some(data) = pending.remove(&key(segs)) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(&data).map_err(io)?;
        f.sync_all().map_err(io)?;
        shared.count_flush(data.len() as u64);
    }
    Ok(ok(StatusCode::OK))
}

fn list(shared: &Shared, fs: &str, directory: &str, recursive: bool) -> Result<Response, DfsError> {
    let segs: Vec<String> = directory
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if segs.iter().any(|s| s == ".." || s == ".") {
        return Err(DfsError::bad_query());
    }
    let dir = disk(shared, fs, &segs);
    if !dir.is_dir() {
        return Err(DfsError::path_not_found());
    }
    let mut paths = Vec::new();
    let mut stack = vec![(dir, segs)];
    while let Some((d, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(io)?;
            let mut segs = prefix.clone();
            segs.push(name);
            let modified: chrono::DateTime<chrono::Utc> = meta.modified().map_err(io)?.into();
            let mut p = json!({
                "name": segs.join("/"),
                "contentLength": if meta.is_dir() { "0".to_string() } else { meta.len().to_string() },
                "lastModified": modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                "etag": format!("0x{:X}", modified.timestamp_nanos_opt().unwrap_or_default()),
            });
            if meta.is_dir() {
                p["isDirectory"] = json!("true");
                if recursive {
                    stack.push((entry.path(), segs));
                }
            }
            paths.push(p);
        }
    }
    paths.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut r = (StatusCode::OK, json!({ "paths": paths }).to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    Ok(r)
}

fn read(shared: &Shared, fs: &str, segs: &[String]) -> Result<Response, DfsError> {
    let path = disk(shared, fs, segs);
    if !path.is_file() {
        return Err(DfsError::path_not_found());
    }
    let data = std::fs::read(&path).map_err(io)?;
    Ok((StatusCode::OK, data).into_response())
}

fn properties(shared: &Shared, fs: &str, segs: &[String]) -> Result<Response, DfsError> {
    let path = disk(shared, fs, segs);
    let meta = std::fs::metadata(&path).map_err(|_| DfsError::path_not_found())?;
    let mut r = ok(StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        "x-ms-resource-type",
        HeaderValue::from_static(if meta.is_dir() { "directory" } else { "file" }),
    );
    h.insert("x-ms-content-length", HeaderValue::from(meta.len()));
    Ok(r)
}

fn delete(
    shared: &Shared,
    fs: &str,
    segs: &[String],
    recursive: bool,
) -> Result<Response, DfsError> {
    let path = disk(shared, fs, segs);
    let meta = std::fs::metadata(&path).map_err(|_| DfsError::path_not_found())?;
    if meta.is_dir() {
        if !recursive && std::fs::read_dir(&path).map_err(io)?.next().is_some() {
            return Err(DfsError::new(
                409,
                "DirectoryNotEmpty",
                "The recursive query parameter value must be true to delete a non-empty directory.",
            ));
        }
        std::fs::remove_dir_all(&path).map_err(io)?;
    } else {
        std::fs::remove_file(&path).map_err(io)?;
    }
    lock(&shared.uncommitted).remove(&key(segs));
    Ok(ok(StatusCode::OK))
}
