//! An ordered index over one table's generated rows: their order by (WHENMODIFIED, RECORDNO), and
//! per-block summaries that count the rows in a RECORDNO range x WHENMODIFIED range without visiting
//! them (keyset pages must report `totalcount`, which would otherwise cost a scan per page).
//!
//! Generated rows never change (writes go to the store's overlay), so the index is built once, on the
//! first query that needs it, and never maintained; the query planner corrects for overlaid rows.
//! Rows are named by their generated index (RECORDNO - recno_base), WHENMODIFIED by a sort key:
//! the seconds of [`super::wm_of`], or [`NULL_KEY`] for NULL (NULLs sort last, as Oracle orders
//! ascending).

use std::ops::Range;

use chrono::NaiveDateTime;

/// The sort key of a NULL WHENMODIFIED: after every timestamp.
pub const NULL_KEY: i64 = i64::MAX;

/// Rows per counting block: full blocks are counted by two binary searches, the (at most two)
/// partial ones row by row, so a count costs about rows/BLOCK x log2(BLOCK) + 2 x BLOCK steps.
const BLOCK: usize = 1024;

/// Seconds chrono can represent: [`super::wm_of`] is NULL outside them. Kept as bounds because
/// sorting and counting call [`sort_key`] millions of times, and building the date-time each time
/// dominated.
static VALID_SECS: std::sync::LazyLock<std::ops::RangeInclusive<i64>> =
    std::sync::LazyLock::new(|| {
        chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp()
            ..=chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp()
    });

/// The sort key of a generated row's cached WHENMODIFIED: the seconds, or NULL_KEY where
/// [`super::wm_of`] is NULL.
pub fn sort_key(secs: i64) -> i64 {
    if secs != i64::MIN && VALID_SECS.contains(&secs) {
        secs
    } else {
        NULL_KEY
    }
}

/// The first sort key of a timestamp at or after `t` (generated timestamps are whole seconds).
pub fn key_at_or_after(t: NaiveDateTime) -> i64 {
    let secs = t.and_utc().timestamp();
    if t.and_utc().timestamp_subsec_nanos() == 0 {
        secs
    } else {
        secs.saturating_add(1)
    }
}

/// The first sort key of a timestamp strictly after `t`.
pub fn key_after(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().saturating_add(1)
}

/// Sort keys `lo <= k < hi`; `hi: None` runs to the end and so includes NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub lo: i64,
    pub hi: Option<i64>,
}

impl KeyRange {
    pub fn contains(&self, k: i64) -> bool {
        k >= self.lo && self.hi.is_none_or(|h| k < h)
    }
}

#[derive(Debug)]
pub struct GenIndex {
    /// Generated row indexes sorted by (sort key, index).
    by_wm: Vec<u32>,
    /// `sort_key` of `by_wm[i]`, for binary searches without indirection.
    keys: Vec<i64>,
    /// For each block of BLOCK consecutive row indexes, the sort keys of its rows, sorted.
    block_keys: Vec<i64>,
}

impl GenIndex {
    /// Builds the index from the WHENMODIFIED column; None past u32 row indexes (the scan serves
    /// those).
    pub fn build(wm: &[i64]) -> Option<GenIndex> {
        let n = u32::try_from(wm.len()).ok()?;
        let mut by_wm: Vec<u32> = (0..n).collect();
        by_wm.sort_unstable_by_key(|&i| (sort_key(wm[i as usize]), i));
        let keys = by_wm.iter().map(|&i| sort_key(wm[i as usize])).collect();
        let mut block_keys: Vec<i64> = wm.iter().map(|&s| sort_key(s)).collect();
        for block in block_keys.chunks_mut(BLOCK) {
            block.sort_unstable();
        }
        Some(GenIndex {
            by_wm,
            keys,
            block_keys,
        })
    }

    pub fn len(&self) -> usize {
        self.by_wm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_wm.is_empty()
    }

    /// The generated row index at a position of the (WHENMODIFIED, RECORDNO) order.
    pub fn at(&self, pos: usize) -> u64 {
        u64::from(self.by_wm[pos])
    }

    /// Positions of the rows whose sort key lies in `r`.
    pub fn positions(&self, r: KeyRange) -> Range<usize> {
        let start = self.keys.partition_point(|&k| k < r.lo);
        let end = match r.hi {
            Some(h) => self.keys.partition_point(|&k| k < h),
            None => self.keys.len(),
        };
        start..end.max(start)
    }

    /// The first position in `slice` holding a row index >= `idx`. Only meaningful when every row of
    /// `slice` has the same sort key, where rows are in index order.
    pub fn first_from(&self, slice: Range<usize>, idx: u64) -> usize {
        slice.start + self.by_wm[slice.clone()].partition_point(|&i| u64::from(i) < idx)
    }

    /// Rows with an index in `idx` and a sort key in `r`; `wm` is the column the index was built
    /// from.
    pub fn count(&self, r: KeyRange, idx: Range<u64>, wm: &[i64]) -> u64 {
        let n = self.by_wm.len() as u64;
        let (a, b) = (idx.start.min(n) as usize, idx.end.min(n) as usize);
        if a >= b {
            return 0;
        }
        if a == 0 && b as u64 == n {
            return self.positions(r).len() as u64;
        }
        let by_row = |rows: Range<usize>| {
            wm[rows]
                .iter()
                .filter(|&&s| r.contains(sort_key(s)))
                .count() as u64
        };
        let (first_full, last_full) = (a.div_ceil(BLOCK), b / BLOCK);
        if first_full >= last_full {
            return by_row(a..b);
        }
        let mut total = by_row(a..first_full * BLOCK) + by_row(last_full * BLOCK..b);
        for block in self.block_keys[first_full * BLOCK..last_full * BLOCK].chunks(BLOCK) {
            let lo = block.partition_point(|&k| k < r.lo);
            let hi = match r.hi {
                Some(h) => block.partition_point(|&k| k < h),
                None => block.len(),
            };
            total += hi.saturating_sub(lo) as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::super::wm_of;
    use super::*;

    #[test]
    fn sort_key_is_null_exactly_where_wm_of_is() {
        let (lo, hi) = (*VALID_SECS.start(), *VALID_SECS.end());
        for s in [
            i64::MIN,
            i64::MIN + 1,
            lo - 1,
            lo,
            lo + 1,
            -1,
            0,
            1,
            hi - 1,
            hi,
            hi + 1,
        ]
        .into_iter()
        .chain([i64::MAX - 1, i64::MAX])
        {
            assert_eq!(sort_key(s) == NULL_KEY, wm_of(s).is_none(), "{s}");
        }
    }

    #[test]
    fn counts_agree_with_a_row_by_row_count() {
        // A column with NULLs and many ties, longer than a few blocks.
        let wm: Vec<i64> = (0..5000i64)
            .map(|i| if i % 7 == 0 { i64::MIN } else { (i * 37) % 101 })
            .collect();
        let ix = GenIndex::build(&wm).expect("small");
        let ranges = [
            KeyRange {
                lo: 10,
                hi: Some(50),
            },
            KeyRange { lo: 0, hi: None },
            KeyRange {
                lo: NULL_KEY,
                hi: None,
            },
            KeyRange {
                lo: 100,
                hi: Some(NULL_KEY),
            },
        ];
        for r in ranges {
            for idx in [0..5000, 3..4000, 1023..1025, 1024..3072, 4999..6000, 7..7] {
                let want = (idx.start..idx.end.min(5000))
                    .filter(|&i| r.contains(sort_key(wm[i as usize])))
                    .count() as u64;
                assert_eq!(ix.count(r, idx.clone(), &wm), want, "{r:?} {idx:?}");
            }
        }
        // Ties are in index order, NULLs last.
        let p = ix.positions(KeyRange { lo: 5, hi: Some(6) });
        let rows: Vec<u64> = p.clone().map(|i| ix.at(i)).collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ix.at(ix.first_from(p.clone(), rows[2])), rows[2]);
        assert_eq!(ix.at(ix.len() - 1), 4998 / 7 * 7);
    }
}
