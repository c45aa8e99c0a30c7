//! The generic path: test every row, sort the hits. The reference the indexed path must equal.

use crate::data::{RowRef, Store, Val};
use crate::query_eval::{eval, order_cmp};

use super::{Criteria, Page};

/// Every hit; the first `offset + limit` of them in the requested order (the rest unordered).
pub fn hits(store: &Store, req: &Criteria<'_>, visible: impl Fn(&RowRef<'_>) -> bool) -> Vec<u64> {
    // Sort keys of all hits in one flat vector (stride = number of order fields), so a scan over a
    // million rows does not allocate per row; `hits` holds (position in `sort_vals`, key).
    let stride = req.order.len();
    let mut sort_vals: Vec<Val<'static>> = Vec::new();
    let mut hits: Vec<(usize, u64)> = Vec::new();
    store.scan(req.def, |r| {
        if visible(&r) && req.filter.is_none_or(|f| eval(f, &r, req.ci)) {
            hits.push((sort_vals.len(), r.key));
            sort_vals.extend(req.order.iter().map(|(i, _)| r.val(*i).into_owned()));
        }
    });
    if stride > 0 {
        let desc: Vec<bool> = req.order.iter().map(|(_, d)| *d).collect();
        let by = |a: &(usize, u64), b: &(usize, u64)| {
            order_cmp(
                &sort_vals[a.0..a.0 + stride],
                &sort_vals[b.0..b.0 + stride],
                &desc,
                req.ci,
            )
            .then(a.1.cmp(&b.1))
        };
        // Only the rows up to the end of the requested page need a full sort.
        let need = req.offset.saturating_add(req.limit);
        if need < hits.len() {
            hits.select_nth_unstable_by(need, by);
            hits[..need].sort_by(by);
        } else {
            hits.sort_by(by);
        }
    }
    hits.into_iter().map(|h| h.1).collect()
}

pub fn select(store: &Store, req: &Criteria<'_>, visible: impl Fn(&RowRef<'_>) -> bool) -> Page {
    let hits = hits(store, req, visible);
    let start = req.offset.min(hits.len());
    let end = req.offset.saturating_add(req.limit).min(hits.len());
    Page {
        keys: hits[start..end].to_vec(),
        total: hits.len(),
    }
}
