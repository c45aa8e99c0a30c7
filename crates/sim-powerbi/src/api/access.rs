//! What every group-scoped handler does before its own work, in the service's order: the injected
//! fault, the bearer token (403), the tenant admin switch (401), workspace membership (401
//! `GroupNotAccessible`), the role (401 `PowerBINotAuthorizedException`), then the item (404
//! `ItemNotFound`). Each step answers with the refusal the service gives, so handlers chain them with `?`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::respond::{
    REQUESTS_EXCEEDED, dataset_not_found, error, error_info, not_authorized, not_push_dataset,
    pbi_error, table_not_found, too_many,
};
use crate::faults::{FaultKind, Operation};
use crate::server::abort_connection;
use crate::state::{Dataset, DatasetKind, Shared, Table, Workspace, World, lock};

/// Applies the pre-processing part of an injected fault (the request body has already been read):
/// `Ok(reset_after)` to go on, or the fault's answer.
pub(super) async fn pre_fault(shared: &Shared, fault: Option<FaultKind>) -> Result<bool, Response> {
    match fault {
        None => Ok(false),
        Some(FaultKind::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(if status == StatusCode::INTERNAL_SERVER_ERROR {
                error(
                    status,
                    "InternalServerError",
                    "An internal error occurred; retry the request later.",
                )
            } else {
                // 502/503/504 come from the front end with no Power BI body.
                status.into_response()
            })
        }
        Some(FaultKind::Throttle { retry_after_secs }) => Err(too_many(
            shared,
            "injected",
            retry_after_secs,
            REQUESTS_EXCEEDED,
        )),
        Some(FaultKind::ResetBeforeApply) => Err(abort_connection()),
        Some(FaultKind::ResetAfterApply) => Ok(true),
        Some(FaultKind::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            Ok(false)
        }
    }
}

/// A successful answer becomes a dropped connection when the fault said so (rows already applied).
pub(super) fn finish(reset_after: bool, resp: Response) -> Response {
    if reset_after && resp.status().is_success() {
        abort_connection()
    } else {
        resp
    }
}

/// Everything a group-scoped handler starts with: the fault plan, then the bearer token.
/// `Ok((principal, reset_after))`.
pub(super) async fn enter(
    shared: &Shared,
    headers: &HeaderMap,
    op: Operation,
) -> Result<(Principal, bool), Response> {
    let fault = shared.begin(op);
    let reset_after = pre_fault(shared, fault).await?;
    let who = authenticate(shared, headers)?;
    Ok((who, reset_after))
}

/// The calling service principal.
#[derive(Clone, Debug)]
pub(super) struct Principal {
    pub(super) tenant_id: String,
    pub(super) client_id: String,
}

/// Bearer token → principal, or the service's 403/401 answer.
pub(super) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(error_info(StatusCode::FORBIDDEN, "Unknown"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(error_info(StatusCode::FORBIDDEN, "InvalidToken"));
    };
    let issued = lock(&shared.tokens).get(token).cloned();
    let Some(issued) = issued else {
        return Err(error_info(StatusCode::FORBIDDEN, "InvalidToken"));
    };
    if issued.expires <= shared.clock.now() {
        let mut r = error(
            StatusCode::FORBIDDEN,
            "TokenExpired",
            "Access token has expired, resubmit with a new access token",
        );
        r.headers_mut().insert(
            "X-PowerBI-Error-Info",
            HeaderValue::from_static("TokenExpired"),
        );
        return Err(r);
    }
    let allowed = shared
        .cfg
        .tenants
        .iter()
        .find(|t| t.id == issued.tenant_id)
        .and_then(|t| t.apps.iter().find(|a| a.client_id == issued.client_id))
        .is_some_and(|a| a.allowed_by_tenant_switch);
    if !allowed {
        return Err(error_info(
            StatusCode::UNAUTHORIZED,
            "ServicePrincipalIsNotAllowedByTenantAdminSwitch",
        ));
    }
    Ok(Principal {
        tenant_id: issued.tenant_id,
        client_id: issued.client_id,
    })
}

/// What a handler needs of the principal's role in the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Need {
    /// Any member.
    Read,
    /// Contributor or above; a Viewer gets 401 `PowerBINotAuthorizedException`.
    Write,
    /// Build permission (Contributor or above); a Viewer is answered as if the dataset did not exist.
    Build,
}

/// The workspace if the principal may use it as `need` asks.
pub(super) fn workspace<'w>(
    world: &'w mut World,
    who: &Principal,
    group: &str,
    need: Need,
) -> Result<&'w mut Workspace, Response> {
    let ws = world
        .workspace_mut(group)
        .filter(|w| w.tenant_id == who.tenant_id)
        .ok_or_else(|| error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible"))?;
    let role = ws
        .role_of(&who.client_id)
        .ok_or_else(|| error_info(StatusCode::UNAUTHORIZED, "GroupNotAccessible"))?;
    if !role.can_write() {
        match need {
            Need::Read => {}
            Need::Write => return Err(not_authorized()),
            Need::Build => {
                return Err(pbi_error(
                    StatusCode::NOT_FOUND,
                    "PowerBIEntityNotFound",
                    json!([]),
                ));
            }
        }
    }
    Ok(ws)
}

/// A dataset of a workspace the principal may use, with that workspace's id (answers name it).
pub(super) fn dataset<'w>(
    world: &'w mut World,
    who: &Principal,
    group: &str,
    dataset: &str,
    need: Need,
) -> Result<(String, &'w mut Dataset), Response> {
    let ws = workspace(world, who, group, need)?;
    let ws_id = ws.id.clone();
    let d = ws
        .dataset_mut(dataset)
        .ok_or_else(|| dataset_not_found(dataset))?;
    Ok((ws_id, d))
}

/// As [`dataset`], for the operations that exist only on push datasets (tables, rows).
pub(super) fn push_dataset<'w>(
    world: &'w mut World,
    who: &Principal,
    group: &str,
    id: &str,
    need: Need,
) -> Result<(String, &'w mut Dataset), Response> {
    let (ws_id, d) = dataset(world, who, group, id, need)?;
    if !matches!(d.kind, DatasetKind::Push { .. }) {
        return Err(not_push_dataset(&d.id));
    }
    Ok((ws_id, d))
}

/// A table of a push dataset the principal may use.
pub(super) fn push_table<'w>(
    world: &'w mut World,
    who: &Principal,
    group: &str,
    dataset: &str,
    table: &str,
    need: Need,
) -> Result<&'w mut Table, Response> {
    let (_, d) = push_dataset(world, who, group, dataset, need)?;
    let ds_id = d.id.clone();
    d.table_mut(table)
        .ok_or_else(|| table_not_found(table, &ds_id))
}
