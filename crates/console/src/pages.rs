//! The HTML pages, rendered on the server with maud (every interpolated value is escaped). The
//! figures come from the same functions the JSON API answers with (`api`), so the two agree.

use std::net::SocketAddr;

use axum::Extension;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use ml_connector::status::{ConnectionStatus, Health};
use ml_store::{RunRecord, RunStatus};

use crate::Shared;
use crate::api::{self, ApiError, AuditQuery, RunsQuery};
use crate::guard::{self, Csrf};

fn page(title: &str, csrf: Option<&Csrf>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · ml-connector" }
                    link rel="stylesheet" href="/assets/style.css";
                    script src="/assets/console.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" { "ml-connector" }
                        @if let Some(csrf) = csrf {
                            nav {
                                a href="/" { "Overview" }
                                a href="/runs" { "Runs" }
                                a href="/audit" { "Audit" }
                                form.inline method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf.0);
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A time in the connection's own time zone (what its cron means).
fn local_time(t: DateTime<Utc>, tz: Option<&str>) -> String {
    match tz.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(z) => t.with_timezone(&z).format("%Y-%m-%d %H:%M %Z").to_string(),
        None => time(t),
    }
}

fn health_badge(h: Health) -> Markup {
    html! { span class={ "badge " (h.as_str()) } { (h.as_str()) } }
}

fn status_badge(s: RunStatus) -> Markup {
    html! { span class={ "badge run-" (s.as_str()) } { (s.as_str()) } }
}

fn seconds(r: &RunRecord) -> String {
    r.finished_at
        .map(|f| {
            format!(
                "{:.1}",
                (f - r.started_at).num_milliseconds() as f64 / 1000.0
            )
        })
        .unwrap_or_default()
}

fn error_page(csrf: &Csrf, e: ApiError) -> Response {
    let (code, msg) = e.parts();
    (
        code,
        page(
            "Something went wrong",
            Some(csrf),
            html! { p.error { (msg) } },
        ),
    )
        .into_response()
}

// ---- login ----

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_page(next: &str, message: Option<&str>) -> Html<String> {
    page(
        "Log in",
        None,
        html! {
            @if let Some(m) = message { p.error role="alert" { (m) } }
            form.login method="post" action="/login" {
                label for="token" { "Console token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                input type="hidden" name="next" value=(next);
                button type="submit" { "Log in" }
            }
            p.hint { "The token was shown once by " code { "ml-connector init" } "; "
                code { "ml-connector console token rotate" } " makes a new one." }
        },
    )
}

pub async fn login_form(Query(q): Query<LoginQuery>) -> Html<String> {
    login_page(q.next.as_deref().unwrap_or("/"), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(
    State(c): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = f
        .next
        .as_deref()
        .and_then(guard::local_path)
        .unwrap_or("/")
        .to_string();
    if let Err(wait) = c.limiter.check(peer.ip()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            login_page(
                &next,
                Some(&format!("Too many failed logins: try again in {wait} s.")),
            ),
        )
            .into_response();
    }
    let current = match c.token.current() {
        Ok(t) => t,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    if !current.matches(&f.token) {
        c.limiter.failed(peer.ip());
        tracing::warn!(peer = %peer.ip(), "console: a login with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            login_page(&next, Some("That is not the console token.")),
        )
            .into_response();
    }
    c.limiter.succeeded(peer.ip());
    let id = c.sessions.create(current);
    let cookie = format!(
        "{}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        guard::SESSION_COOKIE,
        crate::auth::SESSION_TTL.num_seconds()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

pub async fn logout(State(c): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    if let Some(id) = guard::session_id(&headers) {
        c.sessions.remove(&id);
    }
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        guard::SESSION_COOKIE
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

// ---- overview and connection ----

fn tables_of(s: &ConnectionStatus, detail: bool) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr {
                    th { "Table" } th { "Mode" } th { "Data as of" } th.num { "Rows in Power BI" } th { "Last run" }
                    @if detail { th { "Error" } }
                } }
                tbody {
                    @for t in &s.tables {
                        tr {
                            td { (t.table) " " small.muted { (t.object) } }
                            td { (t.mode) @if t.dirty { " " span.badge.partial { "rebuild due" } } }
                            td { (t.data_as_of.as_deref().unwrap_or("—")) }
                            td.num { (t.rows_in_powerbi) }
                            td { (t.last_status.map(|s| s.as_str()).unwrap_or("—")) }
                            @if detail { td.error-text { (t.last_error.as_deref().unwrap_or("")) } }
                        }
                    }
                }
            }
        }
    }
}

fn connection_card(s: &ConnectionStatus) -> Markup {
    html! {
        section.card {
            h2 { a href={ "/connections/" (s.name) } { (s.name) } " " (health_badge(s.health)) }
            dl {
                dt { "Last run" }
                dd {
                    @if let Some(r) = &s.last_run {
                        a href={ "/runs/" (r.id) } { "#" (r.id) } " " (status_badge(r.status)) " " (time(r.started_at))
                    } @else { "none yet" }
                }
                dt { "Next run" }
                dd {
                    @if let Some(n) = s.next_run {
                        (local_time(n, s.time_zone.as_deref()))
                        " " small.muted { "(" (s.schedule.as_deref().unwrap_or("")) ")" }
                    } @else { "no schedule (runs by " code { "sync" } " or Run now)" }
                }
            }
            (tables_of(s, false))
        }
    }
}

pub async fn overview(State(c): State<Shared>, Extension(csrf): Extension<Csrf>) -> Response {
    match api::all_statuses(&c).await {
        Ok(all) => page(
            "Overview",
            Some(&csrf),
            html! {
                @if all.is_empty() { p { "No connection is configured." } }
                @for s in &all { (connection_card(s)) }
            },
        )
        .into_response(),
        Err(e) => error_page(&csrf, e),
    }
}

#[derive(Deserialize, Default)]
pub struct ConnectionQuery {
    started: Option<String>,
}

pub async fn connection(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
    Query(q): Query<ConnectionQuery>,
) -> Response {
    let s = match api::one_status(&c, &name).await {
        Ok(s) => s,
        Err(e) => return error_page(&csrf, e),
    };
    connection_page(
        &c,
        &csrf,
        &s,
        q.started
            .is_some()
            .then_some("Run started: it shows under Runs when it finishes."),
    )
    .into_response()
}

fn connection_page(
    c: &Shared,
    csrf: &Csrf,
    s: &ConnectionStatus,
    note: Option<&str>,
) -> Html<String> {
    page(
        &s.name,
        Some(csrf),
        html! {
            @if let Some(n) = note { p.note role="status" { (n) } }
            p { "Health " (health_badge(s.health))
                @if s.failing_streak > 0 { " · last " (s.failing_streak) " run(s) failed" } }
            @if c.runner.is_some() {
                form method="post" action={ "/connections/" (s.name) "/run" } {
                    input type="hidden" name="csrf" value=(csrf.0);
                    button type="submit" { "Run now" }
                }
            }
            (tables_of(s, true))
            p {
                a href={ "/runs?connection=" (s.name) } { "Runs of " (s.name) }
                @if c.runner.is_some() {
                    " · " a href={ "/connections/" (s.name) "/preview" } { "Preview next run" }
                }
            }
        },
    )
}

pub async fn run_now(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
) -> Response {
    match crate::actions::start_run(&c, &name).await {
        Ok(()) => Redirect::to(&format!(
            "/connections/{}?started=1",
            url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        ))
        .into_response(),
        Err(e) => error_page(&csrf, e.into()),
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".into(), |n| n.to_string())
}

/// What the next run would read and push (`sync --dry-run`): reads Intacct and the store only.
pub async fn preview(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Path(name): Path<String>,
) -> Response {
    let p = match api::preview_of(&c, &name).await {
        Ok(p) => p,
        Err(e) => return error_page(&csrf, e),
    };
    page(
        &format!("Next run of {}", p.connection),
        Some(&csrf),
        html! {
            p.note role="status" { "A dry run: nothing was staged, pushed or recorded, and no cursor moved." }
            dl {
                dt { "Destination" } dd { (p.target.as_deref().unwrap_or("cannot say what it would push")) }
                dt { "Rows to push" } dd { (p.rows_to_push) " at most" }
                @if let Some(b) = &p.budget {
                    dt { "Budget this hour" }
                    dd { (b.rows_used) " of " (b.rows_per_hour) " rows used in the last hour ("
                        (b.posts_used) " POSTs), " strong { (b.rows_left) } " left" }
                }
            }
            div.scroll { table {
                thead { tr {
                    th { "Stream" } th { "Mode" } th { "Read from" } th.num { "To read" } th.num { "Changed" }
                    th.num { "Never modified" } th.num { "Push rows" } th { "Delivery" } th { "Budget" }
                } }
                tbody {
                    @for st in &p.streams {
                        tr {
                            td { (st.table) " " small.muted { (st.object) } }
                            td { (st.mode) }
                            td { (st.since.as_deref().unwrap_or("everything")) }
                            td.num { (count(st.to_read)) }
                            td.num { (count(st.changed)) }
                            td.num { (count(st.never_modified)) }
                            @if let Some(push) = &st.push {
                                td.num { (push.rows) }
                                td { (push.how) ": " (push.why)
                                    @if let Some(r) = push.rebuild_rows { " " small.muted { "(table: " (r) " rows)" } }
                                    @if push.dirty { " " span.badge.partial { "rebuild due" } } }
                                td { @if push.postponed { span.badge.partial { "postponed" } " " } (push.budget) }
                            } @else {
                                td.num { "?" } td { "the destination cannot say" } td { "" }
                            }
                        }
                    }
                }
            } }
            @for st in p.streams.iter().filter(|st| st.note.is_some()) {
                p.muted { (st.object) ": " (st.note.as_deref().unwrap_or("")) }
            }
            p.hint { "To read counts the records Intacct would return (those never modified are read again every run); "
                "deletes are found during the run and not counted here. A replace table pushes all its rows again whenever "
                "anything in it changed. The same as " code { "ml-connector sync --dry-run" } "; JSON at "
                a href={ "/api/connections/" (p.connection) "/preview" } { "/api/connections/" (p.connection) "/preview" } "." }
            p { a href={ "/connections/" (p.connection) } { "Back to " (p.connection) } }
        },
    )
    .into_response()
}

// ---- runs ----

pub async fn runs(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<RunsQuery>,
) -> Response {
    let list = match api::list_runs(&c, &q).await {
        Ok(l) => l,
        Err(e) => return error_page(&csrf, e),
    };
    let chosen = q.status.clone().unwrap_or_default();
    let chosen_conn = q.connection.clone().unwrap_or_default();
    page(
        "Runs",
        Some(&csrf),
        html! {
            form.filters method="get" action="/runs" {
                label { "Status "
                    select name="status" {
                        option value="" { "any" }
                        @for s in RunStatus::ALL {
                            option value=(s.as_str()) selected[chosen == s.as_str()] { (s.as_str()) }
                        }
                    }
                }
                label { "Connection "
                    select name="connection" {
                        option value="" { "any" }
                        @for cfg in &c.connections {
                            option value=(cfg.name) selected[chosen_conn == cfg.name] { (cfg.name) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            div.scroll { table {
                thead { tr { th { "Run" } th { "Connection" } th { "Trigger" } th { "Status" } th { "Started" } th.num { "Seconds" } th { "Note" } } }
                tbody {
                    @for r in &list {
                        tr {
                            td { a href={ "/runs/" (r.id) } { "#" (r.id) } }
                            td { (r.connection) }
                            td { (r.trigger) }
                            td { (status_badge(r.status)) }
                            td { (time(r.started_at)) }
                            td.num { (seconds(r)) }
                            td { (r.summary.get("skipped").and_then(|v| v.as_str()).unwrap_or("")) }
                        }
                    }
                }
            } }
            @if list.is_empty() { p { "No run matches." } }
        },
    )
    .into_response()
}

pub async fn run(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Path(id): Path<i64>,
) -> Response {
    let detail = match c.store.get_run(ml_store::RunId(id)).await {
        Ok(Some(d)) => d,
        Ok(None) => return error_page(&csrf, ApiError::not_found(format!("no run {id}"))),
        Err(e) => return error_page(&csrf, e.into()),
    };
    let r = &detail.run;
    page(
        &format!("Run #{}", r.id),
        Some(&csrf),
        html! {
            dl {
                dt { "Connection" } dd { a href={ "/connections/" (r.connection) } { (r.connection) } }
                dt { "Status" } dd { (status_badge(r.status)) }
                dt { "Trigger" } dd { (r.trigger) }
                dt { "Started" } dd { (time(r.started_at)) }
                dt { "Finished" } dd { (r.finished_at.map(time).unwrap_or_else(|| "still running".into())) }
            }
            div.scroll { table {
                thead { tr {
                    th { "Stream" } th { "Status" } th.num { "Read" } th.num { "Staged" } th.num { "New" }
                    th.num { "Changed" } th.num { "Deleted" } th.num { "Unchanged" } th.num { "Pushed" }
                } }
                tbody {
                    @for s in &detail.streams {
                        tr {
                            td { a href={ "/audit?run=" (r.id) "&stream=" (s.stream) } { (s.stream) } }
                            td { (s.result.status.map(|s| s.as_str()).unwrap_or("—")) }
                            td.num { (s.result.extracted) } td.num { (s.result.staged) }
                            td.num { (s.result.inserted) } td.num { (s.result.updated) }
                            td.num { (s.result.deleted) } td.num { (s.result.unchanged) }
                            td.num { (s.result.pushed) }
                        }
                    }
                }
            } }
            @for s in detail.streams.iter().filter(|s| s.result.error.is_some()) {
                section.card.failed {
                    h2 { (s.stream) " failed" }
                    pre.error-text { (s.result.error.as_deref().unwrap_or("")) }
                }
            }
            details {
                summary { "Summary as stored" }
                pre { (serde_json::to_string_pretty(&r.summary).unwrap_or_default()) }
            }
        },
    )
    .into_response()
}

// ---- audit ----

pub async fn audit(
    State(c): State<Shared>,
    Extension(csrf): Extension<Csrf>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let searched = q.key.is_some() || q.stream.is_some() || q.run.is_some();
    let entries = if searched {
        match api::search_audit(&c, &q).await {
            Ok(e) => e,
            Err(e) => return error_page(&csrf, e),
        }
    } else {
        Vec::new()
    };
    page(
        "Audit trail",
        Some(&csrf),
        html! {
            form.filters method="get" action="/audit" {
                label { "Record key " input type="text" name="key" value=(q.key.as_deref().unwrap_or("")); }
                label { "Stream " input type="text" name="stream" placeholder="VENDOR or Vendors" value=(q.stream.as_deref().unwrap_or("")); }
                label { "Run " input type="number" name="run" value=(q.run.map(|r| r.to_string()).unwrap_or_default()); }
                button type="submit" { "Search" }
            }
            @if searched {
                div.scroll { table {
                    thead { tr { th { "Seq" } th { "When" } th { "Run" } th { "Stream" } th { "Key" } th { "Action" } th { "Outcome" } th { "Error" } } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td.num { (e.seq) }
                                td { (time(e.created_at)) }
                                td { @if let Some(r) = e.run { a href={ "/runs/" (r) } { "#" (r) } } }
                                td { (e.stream.as_deref().unwrap_or("")) }
                                td { (e.record_key.as_deref().unwrap_or("")) }
                                td { (e.action.as_str()) }
                                td { (e.outcome.as_deref().unwrap_or("")) }
                                td.error-text { (e.error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                } }
                p.muted { (entries.len()) " entries (at most 200; the CLI's " code { "audit search" } " exports all)" }
            }
        },
    )
    .into_response()
}
