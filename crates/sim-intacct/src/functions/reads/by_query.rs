//! readByQuery and readMore: the whole match list is kept as a result set and served page by page.

use super::*;

pub(in crate::functions) fn read_by_query(
    state: &Arc<State>,
    p: &Principal,
    object: &str,
    fields: &str,
    query: &str,
    pagesize: usize,
) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    if let Some(o) = check_readable(state, def, "READ_BY_QUERY") {
        return o;
    }
    let fields = match resolve_fields(def, fields) {
        Ok(f) => f,
        Err(bad) => return invalid_fields(state, def, &bad),
    };
    let filter = match parse_query_string(def, query) {
        Ok(f) => f,
        Err(e) => {
            return Outcome::fail(vec![ErrorItem::new(
                "Query Failed",
                "",
                &format!("{} {}", e.0, sid(state)),
                "Check the query string syntax.",
            )]);
        }
    };
    let keys = {
        let store = state.store.read().expect("store lock");
        // Every match in RECORDNO order: the result set readMore pages through.
        let req = Criteria {
            def,
            filter: filter.as_ref(),
            order: &[],
            ci: false,
            offset: 0,
            limit: usize::MAX,
        };
        // Whether readByQuery hides entity-private rows from the top level is unconfirmed: it shows them.
        let see = |r: &RowRef<'_>| visible(p, r, true);
        select(&store, &req, see, p.locationid.is_empty()).keys
    };
    let set = ResultSet {
        object: def,
        keys,
        next: 0,
        fields,
        page_size: pagesize,
    };
    page_of(state, set)
}

/// Serves the next page of a result set, keeping it for readMore while rows remain.
fn page_of(state: &Arc<State>, mut set: ResultSet) -> Outcome {
    let total = set.keys.len();
    let end = (set.next + set.page_size).min(total);
    let page_keys = set.keys[set.next..end].to_vec();
    set.next = end;
    let remaining = total - end;
    let rows = {
        let store = state.store.read().expect("store lock");
        render_rows(&store, set.object, &page_keys, &set.fields)
    };
    let tag = set.object.lower_tag();
    let result_id = if remaining > 0 {
        let n = state
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!(
            "{}W-{}",
            7_765_623_000u64 + n,
            &uuid::Uuid::new_v4().simple().to_string()[..22]
        );
        let mut rs = state.results.lock().expect("results lock");
        rs.0.insert(id.clone(), set);
        rs.1.push_back(id.clone());
        // Bounded memory: the oldest result sets expire first (at most 64 sets and 16M keys, 128 MB).
        loop {
            let keys: usize = rs.0.values().map(|s| s.keys.len()).sum();
            if rs.1.len() <= 64 && keys <= 16_000_000 {
                break;
            }
            match rs.1.pop_front() {
                Some(old) => {
                    rs.0.remove(&old);
                }
                None => break,
            }
        }
        id
    } else {
        String::new()
    };
    let count = rows.len();
    Outcome::data(count, move |x| {
        let attrs = [
            ("listtype", tag.as_str()),
            ("count", &count.to_string()),
            ("totalcount", &total.to_string()),
            ("numremaining", &remaining.to_string()),
            ("resultId", result_id.as_str()),
        ];
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, *v)).collect();
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            write_rows(x, &tag, &rows);
            x.close("data");
        }
    })
}

pub(in crate::functions) fn read_more(
    state: &Arc<State>,
    result_id: Option<String>,
    object: Option<String>,
) -> Outcome {
    let set = {
        let mut rs = state.results.lock().expect("results lock");
        let id = match (&result_id, &object) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(obj)) => {
                rs.1.iter()
                    .rev()
                    .find(|id| {
                        rs.0.get(*id)
                            .is_some_and(|s| s.object.name.eq_ignore_ascii_case(obj))
                    })
                    .cloned()
            }
            _ => None,
        };
        id.and_then(|id| {
            rs.1.retain(|x| *x != id);
            rs.0.remove(&id)
        })
    };
    match set {
        Some(set) => page_of(state, set),
        None => Outcome::fail(vec![ErrorItem::new(
            "Invalid resultId",
            "",
            &format!(
                "Attempt to readMore with an invalid or expired resultId {} {}",
                result_id.or(object).unwrap_or_default(),
                sid(state)
            ),
            "Run the readByQuery again.",
        )]),
    }
}
