//! A filter the index can answer: a boolean tree over comparisons of RECORDNO and WHENMODIFIED (and,
//! for GLACCOUNTBALANCE, of PERIOD, which is constant over each period's block of generated rows, so
//! it is a RECORDNO range predicate in disguise). It is evaluated on (WHENMODIFIED, RECORDNO) alone.
//!
//! Comparisons keep [`eval`]'s meaning exactly: the operators go through the same
//! [`compare_holds`], NULL satisfies only IS NULL, and PERIOD predicates are evaluated by `eval`
//! itself on one generated row of each period.

use chrono::NaiveDateTime;

use crate::data::Val;
use crate::query_eval::{Filter, Op, compare_holds, eval};

#[derive(Clone, Debug, PartialEq)]
pub enum KeyExpr {
    All(Vec<KeyExpr>),
    Any(Vec<KeyExpr>),
    Not(Box<KeyExpr>),
    Recno {
        op: Op,
        lits: Vec<i64>,
    },
    Wm {
        op: Op,
        lits: Vec<NaiveDateTime>,
    },
    /// Truth for each period; generated GLACCOUNTBALANCE rows run period by period, `rows` a period.
    Period {
        by_period: Vec<bool>,
        recno_base: i64,
        rows: i64,
    },
}

/// What translation needs to know about the object.
pub struct Context<'a> {
    pub store: &'a crate::data::Store,
    pub def: &'static crate::data::ObjectDef,
    pub key: usize,
    pub wm: usize,
    pub ci: bool,
    /// GLACCOUNTBALANCE's PERIOD field and rows per period, when its generated rows are laid out so.
    pub period: Option<(usize, u64)>,
}

impl KeyExpr {
    /// The truth for a row with this WHENMODIFIED (None = NULL) and RECORDNO.
    pub fn holds(&self, wm: Option<NaiveDateTime>, recno: i64) -> bool {
        match self {
            KeyExpr::All(xs) => xs.iter().all(|x| x.holds(wm, recno)),
            KeyExpr::Any(xs) => xs.iter().any(|x| x.holds(wm, recno)),
            KeyExpr::Not(x) => !x.holds(wm, recno),
            KeyExpr::Recno { op, lits } => match op {
                Op::IsNull => false,
                Op::IsNotNull => true,
                _ => compare_holds(*op, lits.len(), |i| lits.get(i).map(|l| recno.cmp(l))),
            },
            KeyExpr::Wm { op, lits } => match (op, wm) {
                (Op::IsNull, w) => w.is_none(),
                (Op::IsNotNull, w) => w.is_some(),
                (_, None) => false,
                (_, Some(t)) => compare_holds(*op, lits.len(), |i| lits.get(i).map(|l| t.cmp(l))),
            },
            KeyExpr::Period {
                by_period,
                recno_base,
                rows,
            } => {
                let idx = recno - recno_base;
                idx >= 0 && by_period.get((idx / rows) as usize) == Some(&true)
            }
        }
    }

    /// The literals where the truth can change along each axis: RECORDNOs and WHENMODIFIEDs.
    pub fn cuts(&self, recnos: &mut Vec<i64>, wms: &mut Vec<NaiveDateTime>) {
        match self {
            KeyExpr::All(xs) | KeyExpr::Any(xs) => xs.iter().for_each(|x| x.cuts(recnos, wms)),
            KeyExpr::Not(x) => x.cuts(recnos, wms),
            KeyExpr::Recno { lits, .. } => recnos.extend(lits),
            KeyExpr::Wm { lits, .. } => wms.extend(lits),
            KeyExpr::Period {
                by_period,
                recno_base,
                rows,
            } => recnos.extend((0..=by_period.len() as i64).map(|p| recno_base + p * rows)),
        }
    }
}

/// The KeyExpr equal to `f` on every generated row, or None if `f` mentions anything else.
pub fn translate(f: &Filter, cx: &Context<'_>) -> Option<KeyExpr> {
    match f {
        Filter::And(xs) => xs
            .iter()
            .map(|x| translate(x, cx))
            .collect::<Option<_>>()
            .map(KeyExpr::All),
        Filter::Or(xs) => xs
            .iter()
            .map(|x| translate(x, cx))
            .collect::<Option<_>>()
            .map(KeyExpr::Any),
        Filter::Not(x) => translate(x, cx).map(|k| KeyExpr::Not(Box::new(k))),
        Filter::Cmp {
            field,
            op,
            values,
            lits,
        } => {
            // Literals not parsed by `prepare`, or fewer than the operator reads, make `eval` fall
            // back to comparing text: leave those to the scan.
            let arity = match op {
                Op::Between => 2,
                Op::IsNull | Op::IsNotNull | Op::In | Op::NotIn => 0,
                _ => 1,
            };
            if lits.len() != values.len() || values.len() < arity {
                return None;
            }
            if let Some((pf, rows)) = cx.period
                && *field == pf
            {
                return Some(period(f, cx, rows));
            }
            if matches!(op, Op::Like | Op::NotLike) {
                return None;
            }
            if *field == cx.key {
                let lits = lits
                    .iter()
                    .map(|l| match l {
                        Val::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                return Some(KeyExpr::Recno { op: *op, lits });
            }
            if *field == cx.wm {
                let lits = lits
                    .iter()
                    .map(|l| match l {
                        Val::Ts(t) => Some(*t),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                return Some(KeyExpr::Wm { op: *op, lits });
            }
            None
        }
    }
}

/// A PERIOD comparison, decided by `eval` on the first generated row of each period.
fn period(f: &Filter, cx: &Context<'_>, rows: u64) -> KeyExpr {
    let periods = cx.store.table(cx.def).base / rows;
    KeyExpr::Period {
        by_period: (0..periods)
            .map(|p| eval(f, &cx.store.generated(cx.def, p * rows), cx.ci))
            .collect(),
        recno_base: cx.def.recno_base as i64,
        rows: rows as i64,
    }
}
