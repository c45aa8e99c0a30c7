//! The read functions, one module per family, and what they share: permission checks, field lists,
//! row visibility and the rendering of rows into result data.
//!
//! - `by_query`: readByQuery and readMore (result sets kept between pages)
//! - `query`: the `query` function (filter trees, ordering, aggregates, json/csv answers)
//! - `keys`: read and readByName
//! - `meta`: lookup and readUserFormatting
//! - `balances`: get_accountbalances

mod balances;
mod by_query;
mod keys;
mod meta;
mod query;

pub(super) use balances::account_balances;
pub(super) use by_query::{read_by_query, read_more};
pub(super) use keys::read_keys;
pub(super) use meta::{lookup, user_formatting};
pub(super) use query::run_query;

use super::*;

pub(super) fn query_failed(state: &State, object: &str) -> Outcome {
    Outcome::fail(vec![ErrorItem::new(
        "Query Failed",
        "",
        &format!("Object definition {object} not found {}", sid(state)),
        "",
    )])
}

/// Permission checks shared by the read functions.
pub(super) fn check_readable(state: &State, def: &ObjectDef, api_op: &str) -> Option<Outcome> {
    if def.kind == Kind::AuditHistory && !state.cfg.audit_history_readable {
        return Some(Outcome::fail(vec![ErrorItem {
            errorno: None,
            description: String::new(),
            description2: "You do not have permission to view audit history. Ask your administrator for View permission on Custom reports.".into(),
            correction: String::new(),
        }]));
    }
    if state
        .cfg
        .denied_objects
        .iter()
        .any(|o| o.eq_ignore_ascii_case(def.name))
    {
        return Some(Outcome::fail(vec![ErrorItem::new(
            "PL04000005",
            "",
            &format!(
                "You do not have permission for API operation {api_op} on objects of type {} {}",
                def.name.to_ascii_lowercase(),
                sid(state)
            ),
            "",
        )]));
    }
    None
}

/// Resolves a comma-separated field list (`*` or empty = all); unknown names fail like the gateway.
pub(super) fn resolve_fields(def: &ObjectDef, list: &str) -> Result<Vec<usize>, String> {
    let list = list.trim();
    if list.is_empty() || list == "*" {
        return Ok((0..def.fields.len()).collect());
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match def.field_index(name) {
            Some(i) => out.push(i),
            None => bad.push(name.to_string()),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(bad.join(","))
    }
}

pub(super) fn invalid_fields(state: &State, def: &ObjectDef, bad: &str) -> Outcome {
    Outcome::fail(vec![
        ErrorItem::new(
            &format!("Invalid fields list {bad}"),
            "",
            &format!(
                "Invalid field(s) {bad} for object {} {}",
                def.name,
                sid(state)
            ),
            "Check the field names with the lookup function.",
        ),
        // Real failures often add a generic follow-up error after the cause.
        ErrorItem::new(
            "BL01001973",
            "",
            &format!("Could not read {} records.", def.name.to_ascii_lowercase()),
            "",
        ),
    ])
}

/// Rows visible to the principal: at the top level, entity-private rows only with showprivate.
pub(super) fn visible(p: &Principal, row: &RowRef<'_>, showprivate: bool) -> bool {
    if p.locationid.is_empty() && showprivate {
        return true;
    }
    let Some(fi) = row.def.field_index("MEGAENTITYID") else {
        // Balances carry no owner; an entity session sees its own location's rows only.
        if row.def.kind == Kind::GlAccountBalance && !p.locationid.is_empty() {
            return row
                .def
                .field_index("LOCATIONID")
                .is_some_and(|li| row.text(li) == p.locationid);
        }
        return true;
    };
    match row.val(fi) {
        Val::Null => true,
        Val::Str(owner) => !p.locationid.is_empty() && owner == p.locationid.as_str(),
        _ => false,
    }
}

/// A page of rows rendered to owned values (the store lock is released before writing XML).
pub(super) fn render_rows(
    store: &Store,
    def: &'static ObjectDef,
    keys: &[u64],
    fields: &[usize],
) -> Vec<Vec<(&'static str, String)>> {
    keys.iter()
        .filter_map(|k| store.get(def, *k))
        .map(|r| {
            fields
                .iter()
                .map(|fi| (def.fields[*fi].id, r.text(*fi).to_string()))
                .collect()
        })
        .collect()
}

pub(super) fn write_rows(x: &mut Xml, tag: &str, rows: &[Vec<(&'static str, String)>]) {
    for r in rows {
        x.open(tag);
        for (k, v) in r {
            x.leaf(k, v);
        }
        x.close(tag);
    }
}
