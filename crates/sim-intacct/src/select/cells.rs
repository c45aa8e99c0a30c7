//! Cutting the (WHENMODIFIED, RECORDNO) plane into cells at a [`KeyExpr`]'s literals.
//!
//! Between two consecutive literals of an axis (and at each literal) every comparison in the
//! expression has the same truth, so the expression's truth is constant on each cell and is found by
//! evaluating it at one representative point. The cells where it holds, merged along RECORDNO, are
//! the rectangles the index counts and walks. This works for any And/Or/Not tree, not only for the
//! keyset shapes the connector sends.

use std::ops::Range;

use chrono::{DateTime, NaiveDateTime, TimeDelta};

use crate::data::gen_index::{KeyRange, NULL_KEY, key_after, key_at_or_after};

use super::key_expr::KeyExpr;

/// A WHENMODIFIED interval: a gap between literals, one literal, or NULL.
#[derive(Clone, Debug)]
pub struct WmCell {
    /// A value inside the cell (None = NULL).
    pub rep: Option<NaiveDateTime>,
    /// The index's sort keys of the cell.
    pub keys: KeyRange,
    /// Every row of the cell has the same sort key (a literal or NULL), so the index holds its rows
    /// in RECORDNO order.
    pub single: bool,
}

/// Generated rows `rows` (indexes) of WHENMODIFIED cell `wm`, where the expression holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rect {
    pub wm: usize,
    pub rows: Range<u64>,
}

#[derive(Clone, Debug)]
pub struct Grid {
    pub wm: Vec<WmCell>,
    pub rects: Vec<Rect>,
}

/// The rectangles where `k` holds over `n` generated rows numbered from `recno_base`.
pub fn grid(k: &KeyExpr, recno_base: u64, n: u64) -> Grid {
    let (mut recnos, mut wms) = (Vec::new(), Vec::new());
    k.cuts(&mut recnos, &mut wms);
    let wm = wm_cells(wms);
    let recno = recno_cells(recnos, recno_base, n);
    let mut rects: Vec<Rect> = Vec::new();
    for (wi, w) in wm.iter().enumerate() {
        for rows in &recno {
            if !k.holds(w.rep, (recno_base + rows.start) as i64) {
                continue;
            }
            match rects.last_mut() {
                Some(last) if last.wm == wi && last.rows.end == rows.start => {
                    last.rows.end = rows.end
                }
                _ => rects.push(Rect {
                    wm: wi,
                    rows: rows.clone(),
                }),
            }
        }
    }
    Grid { wm, rects }
}

fn wm_cells(mut cuts: Vec<NaiveDateTime>) -> Vec<WmCell> {
    cuts.sort_unstable();
    cuts.dedup();
    let ns = TimeDelta::nanoseconds(1);
    let mut out = Vec::new();
    let mut gap = |rep: Option<NaiveDateTime>, lo: i64, hi: i64| {
        if let Some(rep) = rep {
            out.push(WmCell {
                rep: Some(rep),
                keys: KeyRange { lo, hi: Some(hi) },
                single: false,
            });
        }
    };
    match (cuts.first(), cuts.last()) {
        (Some(first), Some(last)) => {
            gap(
                first.checked_sub_signed(ns),
                i64::MIN,
                key_at_or_after(*first),
            );
            for w in cuts.windows(2) {
                let rep = w[0].checked_add_signed(ns).filter(|r| *r < w[1]);
                gap(rep, key_after(w[0]), key_at_or_after(w[1]));
            }
            gap(last.checked_add_signed(ns), key_after(*last), NULL_KEY);
        }
        _ => gap(Some(DateTime::UNIX_EPOCH.naive_utc()), i64::MIN, NULL_KEY),
    }
    // The literals themselves, after the gaps: order does not matter, each cell is counted alone.
    for t in &cuts {
        out.push(WmCell {
            rep: Some(*t),
            keys: KeyRange {
                lo: key_at_or_after(*t),
                hi: Some(key_after(*t)),
            },
            single: true,
        });
    }
    out.push(WmCell {
        rep: None,
        keys: KeyRange {
            lo: NULL_KEY,
            hi: None,
        },
        single: true,
    });
    out
}

/// RECORDNO cells as ranges of generated row indexes, in order; empty ones left out.
fn recno_cells(mut cuts: Vec<i64>, recno_base: u64, n: u64) -> Vec<Range<u64>> {
    cuts.sort_unstable();
    cuts.dedup();
    // Half-open RECORDNO intervals in i128, so the ends of the i64 range need no special case.
    let mut bounds: Vec<(i128, i128)> = Vec::new();
    let mut prev = i128::MIN;
    for c in cuts.iter().map(|c| i128::from(*c)) {
        bounds.push((prev, c));
        bounds.push((c, c + 1));
        prev = c + 1;
    }
    bounds.push((prev, i128::MAX));
    let base = i128::from(recno_base);
    let n = i128::from(n);
    bounds
        .into_iter()
        .filter_map(|(lo, hi)| {
            let (a, b) = (
                lo.saturating_sub(base).clamp(0, n),
                hi.saturating_sub(base).clamp(0, n),
            );
            (a < b).then_some(a as u64..b as u64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_eval::Op;

    fn ts(s: &str) -> NaiveDateTime {
        crate::clock::parse_ts(s).expect("timestamp")
    }

    #[test]
    fn keyset_cursor_with_a_recordno_range() {
        // (WM > t OR (WM = t AND RECORDNO > 50)) AND RECORDNO > 20 AND RECORDNO <= 80
        let t = ts("01/02/2024 03:04:05");
        let k = KeyExpr::All(vec![
            KeyExpr::Any(vec![
                KeyExpr::Wm {
                    op: Op::Gt,
                    lits: vec![t],
                },
                KeyExpr::All(vec![
                    KeyExpr::Wm {
                        op: Op::Eq,
                        lits: vec![t],
                    },
                    KeyExpr::Recno {
                        op: Op::Gt,
                        lits: vec![50],
                    },
                ]),
            ]),
            KeyExpr::Recno {
                op: Op::Gt,
                lits: vec![20],
            },
            KeyExpr::Recno {
                op: Op::Le,
                lits: vec![80],
            },
        ]);
        let g = grid(&k, 1, 100);
        let rects: Vec<(Option<NaiveDateTime>, Range<u64>)> = g
            .rects
            .iter()
            .map(|r| (g.wm[r.wm].rep, r.rows.clone()))
            .collect();
        // RECORDNO 21..=80 is rows 20..80 after t; RECORDNO 51..=80 at t; nothing at NULL.
        assert_eq!(rects.len(), 2, "{rects:?}");
        assert_eq!(rects[0].1, 20..80);
        assert!(rects[0].0.is_some_and(|r| r > t));
        assert_eq!(rects[1], (Some(t), 50..80));
    }

    #[test]
    fn null_only_and_empty_expressions() {
        let k = KeyExpr::Wm {
            op: Op::IsNull,
            lits: vec![],
        };
        let g = grid(&k, 1, 10);
        assert_eq!(g.rects.len(), 1);
        assert!(g.wm[g.rects[0].wm].rep.is_none() && g.wm[g.rects[0].wm].single);
        let all = grid(&KeyExpr::All(vec![]), 1, 10);
        assert_eq!(all.rects.len(), 2, "every timestamp, then NULL");
        assert!(all.rects.iter().all(|r| r.rows == (0..10)));
        let none = grid(&KeyExpr::Any(vec![]), 1, 10);
        assert!(none.rects.is_empty());
    }
}
