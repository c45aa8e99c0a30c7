//! HTTP front: the axum router that puts the gateway and the admin endpoints on one server.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::State;

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/ia/xml/xmlgw.phtml", post(crate::functions::gateway))
        .route("/stats", get(crate::admin::stats))
        .merge(crate::admin::routes())
        .with_state(state)
}
