//! Where to cut a pass into RECORDNO ranges for parallel chains, guessed from its first page
//! alone: a probe for the real distribution would cost requests, and a poor guess only makes
//! one chain longer than the others.

use super::keyset::recordno;
use super::page::Page;

/// RECORDNOs that cut the rest of the modified pass into `width` ranges of about equal size:
/// quantiles of the RECORDNOs on the first page, a sample of the pass (its oldest changes).
/// Empty when the page has too few records to go by.
pub(super) fn modified_split_points(first: &Page, width: usize) -> Vec<i64> {
    let mut keys = recordnos(first);
    if width < 2 || keys.len() < width * 2 {
        return Vec::new();
    }
    keys.sort_unstable();
    let mut out: Vec<i64> = Vec::new();
    for k in 1..width {
        let b = keys[keys.len() * k / width];
        if out.last().is_none_or(|l| b > *l) {
            out.push(b);
        }
    }
    out
}

/// RECORDNOs cutting the never-modified records after the first page into `width` ranges,
/// extrapolating the page's RECORDNO span over `numremaining` records.
pub(super) fn never_modified_split_points(first: &Page, width: usize) -> Vec<i64> {
    let keys = recordnos(first);
    let (Some(&r0), Some(&r1), Some(rest)) = (keys.first(), keys.last(), first.num_remaining)
    else {
        return Vec::new();
    };
    if width < 2 || r1 <= r0 || (rest as usize) < keys.len() {
        return Vec::new();
    }
    let per_record = (r1 - r0) as f64 / keys.len() as f64;
    let end = r1 as f64 + per_record * rest as f64;
    let mut out: Vec<i64> = Vec::new();
    for k in 1..width {
        let b = (r1 as f64 + (end - r1 as f64) * k as f64 / width as f64) as i64;
        if b > r1 && out.last().is_none_or(|l| b > *l) {
            out.push(b);
        }
    }
    out
}

/// The RECORDNO ranges `(lower, upper]` the cut points make of what lies above `from`: one a
/// chain, the last unbounded above.
pub(super) fn ranges(from: Option<i64>, points: &[i64]) -> Vec<(Option<i64>, Option<i64>)> {
    let mut lower = from;
    let mut out = Vec::with_capacity(points.len() + 1);
    for upper in points.iter().copied().map(Some).chain([None]) {
        out.push((lower, upper));
        lower = upper;
    }
    out
}

/// The page's RECORDNOs in page order; a record without one is left out, since the cut is
/// only a guess and need not fail for it.
fn recordnos(page: &Page) -> Vec<i64> {
    page.records
        .iter()
        .filter_map(|r| recordno(r).ok())
        .collect()
}
