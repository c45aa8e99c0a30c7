//! Recognising what the index can serve: the order (RECORDNO, or WHENMODIFIED then RECORDNO, both
//! ascending) and the filter's top-level conjuncts that are [`KeyExpr`]s. Conjuncts it cannot
//! translate are kept as a residual: the index still bounds the walk, but the count comes from
//! testing every row in the bounded region instead of from the index.

use crate::data::{FieldType, Kind, Store};
use crate::query_eval::Filter;

use super::Criteria;
use super::key_expr::{Context, KeyExpr, translate};

/// The orders the index holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// RECORDNO ascending; also no order at all (rows are scanned in RECORDNO order).
    Recno,
    /// WHENMODIFIED ascending (NULLs last), then RECORDNO.
    WmRecno,
}

#[derive(Debug)]
pub struct Plan {
    pub order: Order,
    /// Holds of exactly the generated rows the recognised conjuncts select.
    pub key: KeyExpr,
    /// Some conjuncts were not recognised: rows in `key`'s region must still pass the full filter.
    pub residual: bool,
    /// Field indexes of RECORDNO and WHENMODIFIED.
    pub key_field: usize,
    pub wm_field: usize,
}

pub fn plan(store: &Store, req: &Criteria<'_>) -> Option<Plan> {
    let def = req.def;
    let key_field = def.key_index();
    let wm_field = def.field_index("WHENMODIFIED")?;
    if def.fields[key_field].ty != FieldType::Integer
        || def.fields[wm_field].ty != FieldType::Timestamp
    {
        return None;
    }
    let order = recognise_order(req.order, key_field, wm_field)?;
    let base = store.table(def).base;
    let periods = store.generator.size.periods;
    let period = (def.kind == Kind::GlAccountBalance && periods > 0 && base > 0)
        .then(|| def.field_index("PERIOD").map(|f| (f, base / periods)))
        .flatten()
        .filter(|(_, rows)| *rows > 0 && rows * periods == base);
    let cx = Context {
        store,
        def,
        key: key_field,
        wm: wm_field,
        ci: req.ci,
        period,
    };
    let mut conjuncts = Vec::new();
    flatten_and(req.filter, &mut conjuncts);
    let mut keys = Vec::new();
    let mut residual = false;
    for c in conjuncts {
        match translate(c, &cx) {
            Some(k) => keys.push(k),
            None => residual = true,
        }
    }
    // Nothing bounds the walk and every row must be tested (a residual) or returned (readByQuery's
    // whole result set): the scan reads the table in order and is no slower.
    if keys.is_empty() && (residual || req.limit == usize::MAX) {
        return None;
    }
    Some(Plan {
        order,
        key: KeyExpr::All(keys),
        residual,
        key_field,
        wm_field,
    })
}

fn recognise_order(order: &[(usize, bool)], key: usize, wm: usize) -> Option<Order> {
    // Keys are unique, so fields after the key never decide anything.
    match order {
        [] => Some(Order::Recno),
        [(k, false), ..] if *k == key => Some(Order::Recno),
        [(w, false)] if *w == wm => Some(Order::WmRecno),
        [(w, false), (k, false), ..] if *w == wm && *k == key => Some(Order::WmRecno),
        _ => None,
    }
}

fn flatten_and<'f>(f: Option<&'f Filter>, out: &mut Vec<&'f Filter>) {
    match f {
        None => {}
        Some(Filter::And(xs)) => xs.iter().for_each(|x| flatten_and(Some(x), out)),
        Some(other) => out.push(other),
    }
}
