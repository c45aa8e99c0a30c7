//! Workspaces (`GET /v1.0/myorg/groups` with its OData `$filter`, `$top`, `$skip`) and the
//! `/v1.0/myorg/...` paths without a group ("My workspace"), which service principals cannot use.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::access::{enter, finish};
use super::respond::{Answer, error, odata};
use crate::config::WorkspaceRole;
use crate::faults::Operation;
use crate::state::{Shared, lock};

#[derive(serde::Deserialize)]
pub(super) struct GroupsQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
    #[serde(rename = "$top")]
    top: Option<String>,
    #[serde(rename = "$skip")]
    skip: Option<String>,
}

/// The OData `$filter` forms the simulator understands on groups.
fn group_matches(filter: &str, name: &str, id: &str) -> Option<bool> {
    let f = filter.trim();
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim();
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        Some(inner.replace("''", "'"))
    };
    if let Some((field, value)) = f.split_once(" eq ") {
        let value = quoted(value)?;
        return match field.trim() {
            "name" => Some(name == value),
            "id" => Some(id.eq_ignore_ascii_case(&value)),
            _ => None,
        };
    }
    let lower = f.to_ascii_lowercase();
    for (func, test) in [
        (
            "contains(name,",
            (|n: &str, v: &str| n.to_lowercase().contains(&v.to_lowercase()))
                as fn(&str, &str) -> bool,
        ),
        ("startswith(name,", |n: &str, v: &str| {
            n.to_lowercase().starts_with(&v.to_lowercase())
        }),
    ] {
        if let Some(rest) = lower.strip_prefix(func) {
            // Use the original text for the value (case preserved), located by length.
            let original = &f[f.len() - rest.len()..];
            let value = quoted(original.strip_suffix(')')?)?;
            return Some(test(name, &value));
        }
    }
    None
}

pub(super) async fn get_groups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<GroupsQuery>,
) -> Answer {
    let (who, reset_after) = enter(&shared, &headers, Operation::GetGroups).await?;
    let parse = |v: &Option<String>, name: &str| -> Result<Option<usize>, _> {
        match v {
            None => Ok(None),
            Some(s) => s.trim().parse::<usize>().map(Some).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    &format!("The value '{s}' of {name} is not a non-negative integer."),
                )
            }),
        }
    };
    let top = parse(&q.top, "$top")?;
    let skip = parse(&q.skip, "$skip")?.unwrap_or(0);
    let world = lock(&shared.world);
    let mut value = Vec::new();
    for ws in &world.workspaces {
        if ws.tenant_id != who.tenant_id || ws.role_of(&who.client_id).is_none() {
            continue;
        }
        if let Some(f) = &q.filter {
            match group_matches(f, &ws.name, &ws.id) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequest",
                        &format!("The $filter expression '{f}' is not supported."),
                    ));
                }
            }
        }
        value.push(json!({
            "id": ws.id, "isReadOnly": ws.role_of(&who.client_id) == Some(WorkspaceRole::Viewer),
            "isOnDedicatedCapacity": false, "type": "Workspace", "name": ws.name,
        }));
    }
    drop(world);
    let count = value.len();
    let value: Vec<Value> = value
        .into_iter()
        .skip(skip)
        .take(top.unwrap_or(usize::MAX))
        .collect();
    let body = json!({
        "@odata.context": format!("{}/v1.0/myorg/$metadata#groups", shared.cfg.cloud.api_host),
        "@odata.count": count,
        "value": value,
    });
    Ok(finish(reset_after, odata(StatusCode::OK, body.to_string())))
}

/// `/v1.0/myorg/...` without a group: "My workspace", which service principals cannot use.
pub(super) async fn my_org(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    enter(&shared, &headers, Operation::MyOrg).await?;
    Ok(odata(
        StatusCode::FORBIDDEN,
        json!({"Message": "API is not accessible for application"}).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::group_matches;

    #[test]
    fn group_filters() {
        assert_eq!(
            group_matches("name eq 'Finance'", "Finance", "x"),
            Some(true)
        );
        assert_eq!(
            group_matches("name eq 'finance'", "Finance", "x"),
            Some(false)
        );
        assert_eq!(
            group_matches("name eq 'O''Brien'", "O'Brien", "x"),
            Some(true)
        );
        assert_eq!(group_matches("id eq 'ABC'", "n", "abc"), Some(true));
        assert_eq!(
            group_matches("contains(name,'fin')", "Finance", "x"),
            Some(true)
        );
        assert_eq!(
            group_matches("startswith(name,'Fo')", "Finance", "x"),
            Some(false)
        );
        assert_eq!(group_matches("type eq 'Workspace'", "Finance", "x"), None);
        assert_eq!(group_matches("name eq Finance", "Finance", "x"), None);
    }
}
