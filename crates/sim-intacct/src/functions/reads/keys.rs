//! read and readByName: records by RECORDNO or by name, in one answer without paging.

use super::*;

pub(in crate::functions) fn read_keys(
    state: &Arc<State>,
    object: &str,
    keys: &str,
    fields: &str,
    by_name: bool,
) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    if let Some(o) = check_readable(state, def, if by_name { "READ_BY_NAME" } else { "READ" }) {
        return o;
    }
    let fields = match resolve_fields(def, fields) {
        Ok(f) => f,
        Err(bad) => return invalid_fields(state, def, &bad),
    };
    let wanted: Vec<String> = keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let store = state.store.read().expect("store lock");
    let found: Vec<u64> = if by_name {
        let ni = def.field_index(def.name_field).unwrap_or(0);
        let mut out = Vec::new();
        store.scan(def, |r| {
            if wanted.iter().any(|w| w == r.text(ni)) {
                out.push(r.key);
            }
        });
        out
    } else {
        wanted
            .iter()
            .filter_map(|k| k.parse::<u64>().ok())
            .filter(|k| store.get(def, *k).is_some())
            .collect()
    };
    let rows = render_rows(&store, def, &found, &fields);
    drop(store);
    let count = rows.len();
    let tag = def.name;
    Outcome::data(count, move |x| {
        let c = count.to_string();
        let attrs = [("listtype", tag), ("count", c.as_str())];
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            write_rows(x, tag, &rows);
            x.close("data");
        }
    })
}
