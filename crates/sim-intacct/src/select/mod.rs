//! Which rows a `query` page (or a readByQuery result set) holds: the rows that match, in the
//! requested order, from the offset, and how many match in all (`totalcount`).
//!
//! Two paths answer the same [`Criteria`] with the same [`Page`]:
//!
//! - [`scan`]: the generic path. Every row is tested and the hits sorted: always right, and it costs
//!   the whole table per page (tens of milliseconds at 100,000 rows, far more at 1,000,000).
//! - the indexed path, for the shapes the connector sends page after page: filters built from range
//!   predicates on RECORDNO and WHENMODIFIED (keyset cursors, RECORDNO ranges of parallel chains,
//!   WHENMODIFIED IS NULL), PERIOD of GLACCOUNTBALANCE, ordered by RECORDNO or by (WHENMODIFIED,
//!   RECORDNO). [`plan`] recognises them as a [`key_expr::KeyExpr`]; [`cells`] cuts the
//!   (WHENMODIFIED, RECORDNO) plane at the filter's literals into rectangles where it holds;
//!   [`indexed`] counts the generated rows in those rectangles with the store's
//!   [`crate::data::GenIndex`], and walks the index from the lower bound until the page is full.
//!
//! The indexed path tests every row it returns with the full filter, corrects for rows that writes
//! replaced, and answers `None` for anything it does not recognise, which then takes the scan.
//! `tests/select_equivalence.rs` holds the two paths to the same answers.

pub mod cells;
pub mod indexed;
pub mod key_expr;
pub mod plan;
pub mod scan;

use crate::data::{ObjectDef, RowRef, Store};
use crate::query_eval::Filter;

/// What to select.
#[derive(Clone, Copy, Debug)]
pub struct Criteria<'a> {
    pub def: &'static ObjectDef,
    pub filter: Option<&'a Filter>,
    /// (field index, descending) in priority order; ties are broken by the key, ascending.
    pub order: &'a [(usize, bool)],
    /// `caseinsensitive` of `query`.
    pub ci: bool,
    pub offset: usize,
    /// Rows wanted from `offset` (the page size; `usize::MAX` for every row).
    pub limit: usize,
}

/// The keys of the selected rows and how many rows match in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub keys: Vec<u64>,
    pub total: usize,
}

/// Selects with the index when it can, else with the scan. `all_visible` says `visible` is true of
/// every row (a top-level session showing private rows); the index serves only those requests.
pub fn select(
    store: &Store,
    req: &Criteria<'_>,
    visible: impl Fn(&RowRef<'_>) -> bool,
    all_visible: bool,
) -> Page {
    if all_visible && let Some(page) = indexed::select(store, req) {
        return page;
    }
    scan::select(store, req, visible)
}
