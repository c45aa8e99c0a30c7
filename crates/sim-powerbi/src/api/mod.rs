//! The Power BI REST surface under `/v1.0/myorg`: the routes, and one module per job.
//!
//! - `access`: injected faults, bearer tokens, workspace roles and item lookup, in the service's order
//! - `respond`: the answer and error document shapes the handlers share
//! - `groups`: workspaces, and the group-less paths service principals cannot use
//! - `datasets`: datasets and their refresh history
//! - `tables`: tables of a push dataset
//! - `rows`: POST and DELETE rows, with every documented push limit
//! - `query`: executeQueries
//! - `reports`: list reports, rebind one to another dataset
//! - `dashboards`: dashboards and their tiles

// Handlers' early exits are ready-made `Response`s; boxing them would buy nothing on these cold paths.
#![allow(clippy::result_large_err)]

mod access;
mod dashboards;
mod datasets;
mod groups;
mod query;
mod reports;
mod respond;
mod rows;
mod tables;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post, put};

use crate::server::request_id;
use crate::state::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let g = "/v1.0/myorg/groups/{group}";
    Router::new()
        .route("/v1.0/myorg/groups", get(groups::get_groups))
        .route(
            &format!("{g}/datasets"),
            get(datasets::get_datasets).post(datasets::post_dataset),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}"),
            get(datasets::get_dataset).delete(datasets::delete_dataset),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/tables"),
            get(tables::get_tables),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/tables/{{table}}"),
            put(tables::put_table),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/tables/{{table}}/rows"),
            post(rows::post_rows).delete(rows::delete_rows),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/executeQueries"),
            post(query::execute_queries),
        )
        .route(
            &format!("{g}/datasets/{{dataset}}/refreshes"),
            get(datasets::get_refreshes),
        )
        .route(&format!("{g}/reports"), get(reports::get_reports))
        .route(
            &format!("{g}/reports/{{report}}/Rebind"),
            post(reports::rebind_report),
        )
        .route(&format!("{g}/dashboards"), get(dashboards::get_dashboards))
        .route(
            &format!("{g}/dashboards/{{dashboard}}/tiles"),
            get(dashboards::get_tiles),
        )
        .route("/v1.0/myorg/datasets", any(groups::my_org))
        .route("/v1.0/myorg/datasets/{*rest}", any(groups::my_org))
        .route("/v1.0/myorg/reports", any(groups::my_org))
        .route("/v1.0/myorg/dashboards", any(groups::my_org))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(shared)
}
