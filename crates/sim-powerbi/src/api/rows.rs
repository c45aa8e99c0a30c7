//! POST rows (append) and DELETE rows (clear), with every documented push limit.
//!
//! Order inside POST rows: count the request in flight for its dataset, read the whole body (so a refusal never
//! races the client's upload), apply injected faults, authenticate, resolve workspace/dataset/table, then the
//! limits: body size (413), in-flight (429), [test hold], rows per request / value types / string length (400),
//! posts per minute, rows per hour, large-table posts per hour (429 + Retry-After), retention None cap (400).
//! Only accepted POSTs consume the minute/hour budgets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::Value;
use serde_json::value::RawValue;

use super::access::{Need, authenticate, enter, finish, pre_fault, push_table};
use super::respond::{
    Answer, REQUESTS_EXCEEDED, bad_request, dataset_not_found, error, table_not_found, too_many,
};
use crate::config::Retention;
use crate::faults::Operation;
use crate::limits::retry_after_secs;
use crate::schema::check_row;
use crate::state::{DatasetKind, Shared, lock};

/// Decrements the dataset's in-flight count when the request ends, however it ends.
struct InFlight {
    shared: Arc<Shared>,
    dataset_id: String,
    /// In-flight count including this request, at arrival.
    at_arrival: usize,
}

impl InFlight {
    /// Counts the request in flight if `group`/`dataset` name an existing dataset.
    fn enter(shared: &Arc<Shared>, group: &str, dataset: &str) -> Option<InFlight> {
        let now = shared.clock.now();
        let minute = shared.cfg.limits.minute;
        let mut world = lock(&shared.world);
        let d = world.workspace_mut(group)?.dataset_mut(dataset)?;
        d.pacing.in_flight += 1;
        let at_arrival = d.pacing.in_flight;
        d.pacing.observed.expire(now, minute);
        d.pacing.observed.push(now, 1);
        let observed = d.pacing.observed.count();
        let id = d.id.clone();
        let mut stats = lock(&shared.stats);
        let peak = stats.peak_in_flight_posts.entry(id.clone()).or_insert(0);
        *peak = (*peak).max(at_arrival);
        let max = stats
            .max_posts_in_minute_window
            .entry(id.clone())
            .or_insert(0);
        *max = (*max).max(observed);
        Some(InFlight {
            shared: shared.clone(),
            dataset_id: id,
            at_arrival,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut world = lock(&self.shared.world);
        if let Some(d) = world
            .workspaces
            .iter_mut()
            .flat_map(|w| w.datasets.iter_mut())
            .find(|d| d.id == self.dataset_id)
        {
            d.pacing.in_flight = d.pacing.in_flight.saturating_sub(1);
        }
    }
}

/// Reads the whole body, keeping at most `limit` bytes; `None` when it was larger (the rest is drained).
async fn read_limited(body: Body, limit: usize) -> Result<Option<Bytes>, axum::Error> {
    let mut body = body;
    let mut buf = Vec::new();
    let mut too_large = false;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            if !too_large && buf.len() + data.len() <= limit {
                buf.extend_from_slice(&data);
            } else {
                too_large = true;
                buf = Vec::new();
            }
        }
    }
    Ok((!too_large).then(|| Bytes::from(buf)))
}

pub(super) async fn post_rows(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset, table)): Path<(String, String, String)>,
    body: Body,
) -> Answer {
    let fault = shared.begin(Operation::PostRows);
    let guard = InFlight::enter(&shared, &group, &dataset);
    let limits = shared.cfg.limits.clone();
    let limit = if limits.enforce {
        limits.max_body_bytes
    } else {
        usize::MAX
    };
    let body = match read_limited(body, limit).await {
        Ok(b) => b,
        // The client went away mid-upload: nobody is listening for an answer.
        Err(_) => return Err(StatusCode::BAD_REQUEST.into_response()),
    };
    let reset_after = pre_fault(&shared, fault).await?;
    let who = authenticate(&shared, &headers)?;
    // Resolve and check everything that needs no row parsing.
    let columns = push_table(
        &mut lock(&shared.world),
        &who,
        &group,
        &dataset,
        &table,
        Need::Write,
    )?
    .columns
    .clone();
    let Some(body) = body else {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!(
                "The request body is larger than {} bytes; send fewer rows per request.",
                limits.max_body_bytes
            ),
        ));
    };
    if limits.enforce
        && guard
            .as_ref()
            .is_some_and(|g| g.at_arrival > limits.max_in_flight)
    {
        return Err(too_many(&shared, "in_flight", 1, REQUESTS_EXCEEDED));
    }
    // Test hook: requests that passed the in-flight check wait here while `hold_row_posts(true)`.
    let mut hold = shared.hold_posts.subscribe();
    // The sender lives in `shared`, so the channel cannot close; an error would just mean "released".
    let _ = hold.wait_for(|held| !*held).await;
    // Parse: the body must be exactly {"rows":[{...},...]}. Borrowed raw values keep this to one pass over the
    // body plus one parse per row (which `check_row` needs anyway).
    let top: BTreeMap<String, &RawValue> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return Err(bad_request(
                &format!("The request body must be a JSON object with a 'rows' array: {e}."),
                "rows",
            ));
        }
    };
    if let Some(k) = top.keys().find(|k| *k != "rows") {
        return Err(bad_request(
            &format!(
                "The property '{k}' does not exist on type 'Microsoft.PowerBI.ServiceContracts.Api.PostRowsRequest'. \
                 Make sure to only use property names that are defined by the type."
            ),
            "rows",
        ));
    }
    let Some(rows_json) = top.get("rows") else {
        return Err(bad_request(
            "The required property 'rows' is missing.",
            "rows",
        ));
    };
    let raw_rows: Vec<&RawValue> = match serde_json::from_str(rows_json.get()) {
        Ok(r) => r,
        Err(e) => {
            return Err(bad_request(
                &format!("'rows' must be an array of objects: {e}."),
                "rows",
            ));
        }
    };
    if limits.enforce && raw_rows.len() > limits.rows_per_post {
        return Err(bad_request(
            &format!(
                "The request contains {} rows; at most {} rows can be added in one POST rows request.",
                raw_rows.len(),
                limits.rows_per_post
            ),
            "rows",
        ));
    }
    let mut stored: Vec<Box<str>> = Vec::with_capacity(raw_rows.len());
    for (i, raw) in raw_rows.iter().enumerate() {
        let row: serde_json::Map<String, Value> = match serde_json::from_str(raw.get()) {
            Ok(r) => r,
            Err(_) => {
                return Err(bad_request(
                    &format!("Row {i} is not a JSON object."),
                    "rows",
                ));
            }
        };
        if let Err(why) = check_row(&row, &columns, limits.max_string_chars, limits.enforce) {
            return Err(bad_request(&format!("Row {i}: {why}"), "rows"));
        }
        stored.push(raw.get().into());
    }
    let n = stored.len() as u64;
    // Limits that depend on the dataset's history, then the append, under one lock so concurrent POSTs
    // cannot both squeeze into the last slot.
    let now = shared.clock.now();
    let mut world = lock(&shared.world);
    let Some(d) = world
        .workspace_mut(&group)
        .and_then(|w| w.dataset_mut(&dataset))
    else {
        return Err(dataset_not_found(&dataset));
    };
    let ds_id = d.id.clone();
    let retention = match d.kind {
        DatasetKind::Push { retention, .. } => retention,
        DatasetKind::Import => Retention::None,
    };
    let table_len = d.table(&table).map_or(0, |t| t.rows.len());
    let p = &mut d.pacing;
    p.minute_posts.expire(now, limits.minute);
    p.hour_posts.expire(now, limits.hour);
    p.hour_rows.expire(now, limits.hour);
    if limits.enforce {
        if let Some(wait) =
            p.minute_posts
                .wait_for(now, limits.minute, 1, limits.posts_per_minute as u64)
        {
            drop(world);
            return Err(too_many(
                &shared,
                "posts_per_minute",
                retry_after_secs(wait),
                REQUESTS_EXCEEDED,
            ));
        }
        if let Some(wait) = p
            .hour_rows
            .wait_for(now, limits.hour, n, limits.rows_per_hour)
        {
            drop(world);
            return Err(too_many(
                &shared,
                "rows_per_hour",
                retry_after_secs(wait),
                "Maximum number of rows exceeded in time window. Please retry later",
            ));
        }
        if table_len >= limits.large_table_rows
            && let Some(wait) = p.hour_posts.wait_for(
                now,
                limits.hour,
                1,
                limits.large_table_posts_per_hour as u64,
            )
        {
            drop(world);
            return Err(too_many(
                &shared,
                "large_table_posts_per_hour",
                retry_after_secs(wait),
                REQUESTS_EXCEEDED,
            ));
        }
        if retention == Retention::None && table_len + stored.len() > limits.none_max_rows {
            drop(world);
            return Err(bad_request(
                &format!(
                    "Table '{table}' holds {table_len} rows; adding {n} would exceed the maximum of {} rows of a push \
                     dataset table without retention policy. Delete rows first.",
                    limits.none_max_rows
                ),
                "rows",
            ));
        }
    }
    p.minute_posts.push(now, 1);
    p.hour_posts.push(now, 1);
    p.hour_rows.push(now, n);
    let Some(t) = d.table_mut(&table) else {
        return Err(table_not_found(&table, &ds_id));
    };
    t.rows.extend(stored);
    if retention == Retention::BasicFifo && t.rows.len() > limits.fifo_high_water {
        let excess = t.rows.len() - limits.fifo_max_rows;
        t.rows.drain(..excess);
    }
    drop(world);
    *lock(&shared.stats).rows_accepted.entry(ds_id).or_insert(0) += n;
    drop(guard);
    Ok(finish(reset_after, StatusCode::OK.into_response()))
}

pub(super) async fn delete_rows(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path((group, dataset, table)): Path<(String, String, String)>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::DeleteRows).await?;
    let mut world = lock(&shared.world);
    let t = push_table(&mut world, &who, &group, &dataset, &table, Need::Write)?;
    t.rows = Default::default();
    drop(world);
    Ok(finish(reset_after, StatusCode::OK.into_response()))
}
