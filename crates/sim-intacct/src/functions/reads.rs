//! The read functions and their result data.

use super::pipeline::{bare_csv, bare_json, entity_exists};
use super::*;

// ------------------------------------------------------------------------------ functions ----

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

pub(super) fn get_api_session(
    state: &Arc<State>,
    p: &Principal,
    locationid: Option<String>,
) -> Outcome {
    if !p.via_login {
        state.with_stats(|s| s.logins += 1);
    }
    let location = match locationid {
        Some(l) if !l.trim().is_empty() => {
            if !entity_exists(state, l.trim()) {
                return Outcome::fail(vec![ErrorItem::new(
                    "Get API Session Failed",
                    "",
                    &format!("Invalid location ID {} {}", l.trim(), sid(state)),
                    "",
                )]);
            }
            l.trim().to_string()
        }
        Some(_) => String::new(),
        None => p.locationid.clone(),
    };
    let id = format!(
        "{}{}..",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = state.clock.now();
    let lifetime = chrono::Duration::from_std(state.cfg.session_lifetime)
        .unwrap_or(chrono::Duration::hours(2));
    let mut sessions = state.sessions.lock().expect("sessions lock");
    // Forget expired sessions so a long-running simulator does not accumulate them.
    sessions.retain(|_, s| s.expires >= now);
    sessions.insert(
        id.clone(),
        Session {
            user_id: p.userid.clone(),
            company_id: p.companyid.clone(),
            location_id: location.clone(),
            expires: now + lifetime,
        },
    );
    drop(sessions);
    let endpoint = state
        .cfg
        .advertised_endpoint
        .clone()
        .unwrap_or_else(|| state.endpoint.clone());
    Outcome::data(0, move |x| {
        x.open("data");
        x.open("api");
        x.leaf("sessionid", &id);
        x.leaf("endpoint", &endpoint);
        x.leaf("locationid", &location);
        x.close("api");
        x.close("data");
    })
}

pub(super) fn read_by_query(
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
pub(super) fn page_of(state: &Arc<State>, mut set: ResultSet) -> Outcome {
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

pub(super) fn read_more(
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

pub(super) fn run_query(state: &Arc<State>, p: &Principal, q: QueryCall) -> Outcome {
    let Some(def) = object_def(&q.object) else {
        return query_failed(state, q.object.trim());
    };
    if let Some(o) = check_readable(state, def, "READ_BY_QUERY") {
        return o;
    }
    // Plain fields and aggregates (`COUNT.RECORDNO`); unknown names fail the whole query.
    let mut plain = Vec::new();
    let mut aggs: Vec<(String, usize)> = Vec::new();
    let mut bad = Vec::new();
    for s in &q.select {
        let (agg, name) = match s.split_once('.') {
            Some((a, n))
                if matches!(a, "COUNT" | "SUM" | "AVG" | "MIN" | "MAX")
                    && q.select.iter().any(|x| x == s)
                    && def.field_index(s).is_none() =>
            {
                (Some(a), n)
            }
            _ => (None, s.as_str()),
        };
        match (agg, def.field_index(name)) {
            (Some(a), Some(i)) => aggs.push((a.to_string(), i)),
            (None, Some(i)) => plain.push(i),
            (_, None) => bad.push(name.to_string()),
        }
    }
    if !bad.is_empty() {
        return invalid_fields(state, def, &bad.join(","));
    }
    let filter = match q
        .filter
        .as_ref()
        .map(|f| filter_from_xml(def, f))
        .transpose()
    {
        Ok(mut f) => {
            if let Some(f) = f.as_mut() {
                crate::query_eval::prepare(f, def);
            }
            f
        }
        Err(e) => {
            return Outcome::fail(vec![ErrorItem::new(
                "Query Failed",
                "",
                &format!("{} {}", e.0, sid(state)),
                "",
            )]);
        }
    };
    let mut order = Vec::new();
    for (name, desc) in &q.order {
        match def.field_index(name) {
            Some(i) => order.push((i, *desc)),
            None => return invalid_fields(state, def, name),
        }
    }
    let store = state.store.read().expect("store lock");
    let all_visible = p.locationid.is_empty() && q.showprivate;
    let see = |r: &RowRef<'_>| visible(p, r, q.showprivate);
    let mut req = Criteria {
        def,
        filter: filter.as_ref(),
        order: &order,
        ci: q.caseinsensitive,
        offset: q.offset,
        limit: q.pagesize,
    };
    let (rows, total): (Vec<Vec<(String, String)>>, usize) = if aggs.is_empty() {
        let page = select(&store, &req, see, all_visible);
        let rows = render_rows(&store, def, &page.keys, &plain)
            .into_iter()
            .map(|r| r.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            .collect();
        (rows, page.total)
    } else {
        // Aggregates group every hit; the offset and page apply to the groups.
        req.offset = 0;
        req.limit = usize::MAX;
        let hits = scan_hits(&store, &req, see);
        let groups = aggregate(&store, def, &hits, &plain, &aggs);
        let total = groups.len();
        let groups = groups.into_iter().skip(q.offset).take(q.pagesize).collect();
        (groups, total)
    };
    drop(store);
    let count = rows.len();
    let remaining = total.saturating_sub(q.offset.saturating_add(count));
    let offset = q.offset;
    let tag = def.name;
    let bare = match q.returnformat.as_str() {
        "json" => Some(("application/json", bare_json(&rows))),
        "csv" => {
            let header: Vec<String> = plain
                .iter()
                .map(|i| def.fields[*i].id.to_string())
                .chain(
                    aggs.iter()
                        .map(|(a, i)| format!("{a}.{}", def.fields[*i].id)),
                )
                .collect();
            Some(("text/csv", bare_csv(&rows, &header)))
        }
        _ => None,
    };
    let mut out = Outcome::data(count, move |x| {
        let (c, t, o, r) = (
            count.to_string(),
            total.to_string(),
            offset.to_string(),
            remaining.to_string(),
        );
        let attrs = [
            ("listtype", tag),
            ("totalcount", t.as_str()),
            ("offset", o.as_str()),
            ("count", c.as_str()),
            ("numremaining", r.as_str()),
        ];
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            for row in &rows {
                x.open(tag);
                for (k, v) in row {
                    x.leaf(k, v);
                }
                x.close(tag);
            }
            x.close("data");
        }
    });
    out.bare = bare;
    out
}

/// `query` aggregates, grouped by the selected plain fields; elements named `COUNT.FIELD` etc.
pub(super) fn aggregate(
    store: &Store,
    def: &'static ObjectDef,
    keys: &[u64],
    plain: &[usize],
    aggs: &[(String, usize)],
) -> Vec<Vec<(String, String)>> {
    use rust_decimal::Decimal;
    // Per group and aggregate: (non-null count, min, max, sum).
    type Acc = (u64, Option<Decimal>, Option<Decimal>, Decimal);
    let mut groups: BTreeMap<Vec<String>, Vec<Acc>> = BTreeMap::new();
    for k in keys {
        let Some(r) = store.get(def, *k) else {
            continue;
        };
        let g: Vec<String> = plain.iter().map(|i| r.text(*i).to_string()).collect();
        let acc = groups
            .entry(g)
            .or_insert_with(|| vec![(0, None, None, Decimal::ZERO); aggs.len()]);
        for (slot, (_, fi)) in acc.iter_mut().zip(aggs) {
            let t = r.text(*fi);
            if t.is_empty() {
                continue;
            }
            slot.0 += 1;
            if let Ok(d) = t.parse::<Decimal>() {
                slot.1 = Some(slot.1.map_or(d, |m: Decimal| m.min(d)));
                slot.2 = Some(slot.2.map_or(d, |m: Decimal| m.max(d)));
                slot.3 += d;
            }
        }
    }
    groups
        .into_iter()
        .map(|(g, acc)| {
            let mut row: Vec<(String, String)> = plain
                .iter()
                .zip(g)
                .map(|(i, v)| (def.fields[*i].id.to_string(), v))
                .collect();
            for ((a, fi), (n, mn, mx, sum)) in aggs.iter().zip(acc) {
                let v = match a.as_str() {
                    "COUNT" => n.to_string(),
                    "SUM" => sum.to_string(),
                    "AVG" if n > 0 => (sum / Decimal::from(n))
                        .round_dp(10)
                        .normalize()
                        .to_string(),
                    "MIN" => mn.map(|d| d.to_string()).unwrap_or_default(),
                    "MAX" => mx.map(|d| d.to_string()).unwrap_or_default(),
                    _ => String::new(),
                };
                row.push((format!("{a}.{}", def.fields[*fi].id), v));
            }
            row
        })
        .collect()
}

pub(super) fn read_keys(
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

pub(super) fn lookup(state: &Arc<State>, object: &str) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    // lookup succeeds even without read permission (Estuary's observation).
    Outcome::data(0, move |x| {
        x.open_attrs("data", &[("listtype", "All"), ("count", "1")]);
        x.open_attrs("Type", &[("Name", def.name), ("DocumentType", "")]);
        x.open("Fields");
        for f in def.fields {
            x.open("Field");
            x.leaf("ID", f.id);
            x.leaf("LABEL", f.label);
            x.leaf("DESCRIPTION", f.label);
            x.leaf("REQUIRED", if f.required { "true" } else { "false" });
            x.leaf("READONLY", if f.readonly { "true" } else { "false" });
            x.leaf("DATATYPE", f.ty.lookup_name());
            x.leaf("ISCUSTOM", if f.custom { "true" } else { "false" });
            if !f.valid.is_empty() {
                x.open("VALIDVALUES");
                for (_, v) in f.valid {
                    x.leaf("VALIDVALUE", v);
                }
                x.close("VALIDVALUES");
            }
            x.close("Field");
        }
        x.close("Fields");
        x.open("Relationships");
        x.close("Relationships");
        x.close("Type");
        x.close("data");
    })
}

pub(super) fn user_formatting(state: &Arc<State>, key: &str) -> Outcome {
    let def = object_def("USERINFO").expect("USERINFO defined");
    let store = state.store.read().expect("store lock");
    let login_i = def.field_index("LOGINID").expect("field");
    let mut found = false;
    store.scan(def, |r| {
        found |= r.key.to_string() == key || r.text(login_i) == key
    });
    drop(store);
    if !found {
        return Outcome::fail(vec![ErrorItem::new(
            "BL01001973",
            "",
            &format!("User {key} not found {}", sid(state)),
            "",
        )]);
    }
    let gmt = state.clock.offset_hours();
    Outcome::data(1, move |x| {
        x.open("data");
        x.open("userformatting");
        x.leaf("locale", "en_US");
        x.leaf("dateformat", "/mdY");
        x.leaf("clock", "24");
        x.leaf("gmtoffset", &format!("{gmt}"));
        x.leaf("currencyformat", "USD");
        x.close("userformatting");
        x.close("data");
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn account_balances(
    state: &Arc<State>,
    period: Option<String>,
    enddate: Option<Element>,
    from_acct: Option<String>,
    to_acct: Option<String>,
    glaccountno: Option<String>,
    locationid: Option<String>,
    departmentid: Option<String>,
    showzero: bool,
    book: &str,
) -> Outcome {
    let store = state.store.read().expect("store lock");
    let generator = store.gen_ref().clone();
    drop(store);
    let p = match (&period, &enddate) {
        (Some(name), _) => generator.period_index(name),
        (None, Some(e)) => {
            let (y, m) = (
                e.child_text("year").unwrap_or("").trim().to_string(),
                e.child_text("month").unwrap_or("").trim().to_string(),
            );
            (0..generator.size.periods).find(|p| {
                let n = generator.period_name(*p);
                n.ends_with(&y)
                    && month_number(&n)
                        .is_some_and(|mm| mm.to_string() == m.trim_start_matches('0'))
            })
        }
        _ => None,
    };
    let Some(p) = p else {
        return Outcome::fail(vec![ErrorItem::new(
            "GL-0493",
            "",
            &format!(
                "Invalid reporting period {} {}",
                period.unwrap_or_default(),
                sid(state)
            ),
            "Use an existing reporting period name such as 'Month Ended January 2026'.",
        )]);
    };
    if !book.eq_ignore_ascii_case("ACCRUAL") {
        return Outcome::data(0, |x| {
            x.empty_attrs("data", &[("listtype", "accountbalance"), ("count", "0")]);
        });
    }
    let accts = generator.count(Kind::GlAccount);
    let nd = generator.count(Kind::Department).max(1);
    let nl = generator.count(Kind::Location).max(1);
    let mut rows = Vec::new();
    for a in 0..accts {
        let (no, ..) = generator.account(a);
        let n: u64 = no.parse().unwrap_or(0);
        if glaccountno.as_ref().is_some_and(|g| g.trim() != no)
            || from_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|f| n < f)
            || to_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|t| n > t)
        {
            continue;
        }
        let (mut open, mut dr, mut cr, mut end) = (0i64, 0i64, 0i64, 0i64);
        for d in 0..nd {
            if departmentid
                .as_ref()
                .is_some_and(|x| *x != generator.department(d).0)
            {
                continue;
            }
            for l in 0..nl {
                if locationid
                    .as_ref()
                    .is_some_and(|x| x != generator.location(l).0)
                {
                    continue;
                }
                let (o, dd, cc, e) = generator.balance(p, a, d, l);
                open += o;
                dr += dd;
                cr += cc;
                end += e;
            }
        }
        if !showzero && open == 0 && dr == 0 && cr == 0 {
            continue;
        }
        let m = |c: i64| rust_decimal::Decimal::new(c, 2).to_string();
        rows.push(vec![
            ("glaccountno", no),
            ("startbalance", m(open)),
            ("debits", m(dr)),
            ("credits", m(cr)),
            ("adjdebits", m(0)),
            ("adjcredits", m(0)),
            ("endbalance", m(end)),
            ("currency", "USD".to_string()),
            ("reportingbook", "ACCRUAL".to_string()),
        ]);
    }
    let count = rows.len();
    Outcome::data(count, move |x| {
        let c = count.to_string();
        x.open_attrs(
            "data",
            &[("listtype", "accountbalance"), ("count", c.as_str())],
        );
        for r in &rows {
            x.open("accountbalance");
            for (k, v) in r {
                x.leaf(k, v);
            }
            x.close("accountbalance");
        }
        x.close("data");
    })
}

pub(super) fn month_number(period_name: &str) -> Option<u32> {
    crate::data::generator::MONTHS
        .iter()
        .position(|m| period_name.contains(m))
        .map(|i| i as u32 + 1)
}
