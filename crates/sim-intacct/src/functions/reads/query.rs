//! The `query` function: a filter tree, ordering, offset paging, aggregates, and the bare json/csv
//! answers of `returnformat`.

use super::*;

pub(in crate::functions) fn run_query(state: &Arc<State>, p: &Principal, q: QueryCall) -> Outcome {
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
fn aggregate(
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

/// `returnformat` json: an array of objects whose values are all strings.
fn bare_json(rows: &[Vec<(String, String)>]) -> String {
    let arr: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        })
        .collect();
    serde_json::to_string(&arr).unwrap_or_else(|_| "[]".into())
}

/// `returnformat` csv: a header row, then one row per record (RFC 4180 quoting).
fn bare_csv(rows: &[Vec<(String, String)>], header: &[String]) -> String {
    let q = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut out = header.iter().map(|h| q(h)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|(_, v)| q(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}
