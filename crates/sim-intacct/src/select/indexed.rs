//! Executing a [`Plan`]: count the matches without visiting them, then walk the index from the first
//! possible match and stop as soon as the page is full.
//!
//! A table is generated rows (immutable, indexed by [`GenIndex`]) plus a small write overlay. So:
//!
//! - generated rows that no write touched: counted per rectangle by the index (when the plan has no
//!   residual), walked in order from the rectangles' lower bound, each tested with the full filter;
//! - generated rows replaced or deleted by a write: taken out of the count, skipped by the walk;
//! - stored rows (updated and inserted): few (admin writes), each tested with the full filter and
//!   merged into the walk in order. Testing them all keeps the count exact without an index to
//!   maintain on every write.

use std::ops::Range;

use chrono::NaiveDateTime;

use crate::data::{GenIndex, RowRef, Store, Val, wm_of};
use crate::query_eval::eval;

use super::cells::{Grid, grid};
use super::plan::{Order, Plan, plan};
use super::{Criteria, Page};

/// A row's place in the order: WHENMODIFIED with NULLs last (for [`Order::WmRecno`]), then the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct At {
    null: bool,
    wm: Option<NaiveDateTime>,
    key: u64,
}

/// The page, or None when the request is not one the index serves.
pub fn select(store: &Store, req: &Criteria<'_>) -> Option<Page> {
    let plan = plan(store, req)?;
    let def = req.def;
    let index = store.gen_index(def)?;
    let wm = store.wm_column(def)?;
    let grid = grid(&plan.key, def.recno_base, index.len() as u64);
    let stored = stored_hits(store, req, &plan)?;
    let at = |w: Option<NaiveDateTime>, key: u64| match plan.order {
        Order::Recno => At {
            null: false,
            wm: None,
            key,
        },
        Order::WmRecno => At {
            null: w.is_none(),
            wm: w,
            key,
        },
    };
    // Without a residual the recognised conjuncts are the whole filter: the index counts.
    let gen_total = (!plan.residual).then(|| generated_count(store, req, &plan, &grid, index, wm));
    let need = req.offset.saturating_add(req.limit);
    let mut out: Vec<u64> =
        Vec::with_capacity(need.min(gen_total.unwrap_or(0) as usize + stored.len()));
    let (mut si, mut gen_hits) = (0usize, 0u64);
    for idx in candidates(&plan, &grid, index) {
        if gen_total.is_some_and(|t| gen_hits == t || out.len() >= need) {
            break;
        }
        let key = def.recno_base + idx;
        let w = wm_of(wm[idx as usize]);
        if store.is_overlaid(def, key) || !plan.key.holds(w, key as i64) {
            continue;
        }
        if !req
            .filter
            .is_none_or(|f| eval(f, &store.generated_with(def, idx, Some(wm)), req.ci))
        {
            continue;
        }
        gen_hits += 1;
        let here = at(w, key);
        while out.len() < need && si < stored.len() && stored[si].0 < here {
            out.push(stored[si].1);
            si += 1;
        }
        if out.len() < need {
            out.push(key);
        }
    }
    while out.len() < need && si < stored.len() {
        out.push(stored[si].1);
        si += 1;
    }
    let total = gen_total.unwrap_or(gen_hits) as usize + stored.len();
    out.drain(..req.offset.min(out.len()));
    Some(Page { keys: out, total })
}

/// Stored rows that pass the full filter, in order; None if one has a WHENMODIFIED the order cannot
/// place the way the scan's sort does (text that is not a timestamp).
fn stored_hits(store: &Store, req: &Criteria<'_>, plan: &Plan) -> Option<Vec<(At, u64)>> {
    let mut hits = Vec::new();
    for r in store.stored_rows(req.def) {
        if !req.filter.is_none_or(|f| eval(f, &r, req.ci)) {
            continue;
        }
        let at = match plan.order {
            Order::Recno => At {
                null: false,
                wm: None,
                key: r.key,
            },
            Order::WmRecno => {
                let wm = stored_wm(&r, plan.wm_field)?;
                At {
                    null: wm.is_none(),
                    wm,
                    key: r.key,
                }
            }
        };
        hits.push((at, r.key));
    }
    hits.sort_unstable();
    Some(hits)
}

fn stored_wm(r: &RowRef<'_>, field: usize) -> Option<Option<NaiveDateTime>> {
    match r.val(field) {
        Val::Null => Some(None),
        Val::Ts(t) => Some(Some(t)),
        _ => None,
    }
}

/// Untouched generated rows where the plan holds: the index's count of each rectangle, less the
/// overlaid rows that matched before their write.
fn generated_count(
    store: &Store,
    req: &Criteria<'_>,
    plan: &Plan,
    grid: &Grid,
    index: &GenIndex,
    wm: &[i64],
) -> u64 {
    let def = req.def;
    let counted: u64 = grid
        .rects
        .iter()
        .map(|r| index.count(grid.wm[r.wm].keys, r.rows.clone(), wm))
        .sum();
    let n = index.len() as u64;
    let replaced = store
        .overlaid_keys(def)
        .filter(|k| {
            let idx = k - def.recno_base;
            idx < n && plan.key.holds(wm_of(wm[idx as usize]), *k as i64)
        })
        .count() as u64;
    counted - replaced
}

/// Generated row indexes in the plan's order, from the first that can match to the last.
fn candidates<'a>(
    plan: &Plan,
    grid: &'a Grid,
    index: &'a GenIndex,
) -> Box<dyn Iterator<Item = u64> + 'a> {
    if grid.rects.is_empty() {
        return Box::new(std::iter::empty());
    }
    let rows = |f: fn(&Range<u64>) -> u64| grid.rects.iter().map(move |r| f(&r.rows));
    let (lo, hi) = (
        rows(|r| r.start).min().unwrap_or(0),
        rows(|r| r.end).max().unwrap_or(0),
    );
    match plan.order {
        Order::Recno => {
            // One WHENMODIFIED value (a literal, or NULL: the never-modified pass) holds its rows in
            // RECORDNO order in the index, so only that value's rows are visited.
            let first = &grid.rects[0];
            let cell = &grid.wm[first.wm];
            if cell.single && grid.rects.iter().all(|r| r.wm == first.wm) {
                let slice = index.positions(cell.keys);
                let start = index.first_from(slice.clone(), lo);
                return Box::new(
                    (start..slice.end)
                        .map(|p| index.at(p))
                        .take_while(move |i| *i < hi),
                );
            }
            Box::new(lo..hi)
        }
        Order::WmRecno => {
            let (mut start, mut end) = (usize::MAX, 0);
            for r in &grid.rects {
                let cell = &grid.wm[r.wm];
                let slice = index.positions(cell.keys);
                // Within one WHENMODIFIED value rows run in RECORDNO order: skip to the rectangle's.
                let s = if cell.single {
                    index.first_from(slice.clone(), r.rows.start)
                } else {
                    slice.start
                };
                start = start.min(s);
                end = end.max(slice.end);
            }
            Box::new((start..end.max(start)).map(|p| index.at(p)))
        }
    }
}
