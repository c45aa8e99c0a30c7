//! What one page of a read is, and what it tells about the rest: the types every read hands
//! back, kept apart from the reads so that each of them can name them without naming the others.

use chrono::NaiveDateTime;

use crate::protocol::Record;

/// One page of records of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub object: String,
    pub records: Vec<Record>,
    pub total_count: Option<u64>,
    pub num_remaining: Option<u64>,
    /// Which pass of a `changed_since` stream produced the page.
    pub pass: Pass,
    /// After a [`Pass::Modified`] page: the keyset position of its last record, which is the
    /// watermark to resume from once the page is staged.
    pub cursor: Option<Cursor>,
}

/// The two passes of `changed_since`, or a plain query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pass {
    /// Records whose WHENMODIFIED is empty (never modified since creation).
    NeverModified,
    /// Records with WHENMODIFIED, in (WHENMODIFIED, RECORDNO) order.
    Modified,
    #[default]
    Query,
}

/// A position in (WHENMODIFIED, RECORDNO) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub when_modified: NaiveDateTime,
    pub recordno: i64,
}

/// Where a pass goes on after a page: `None` = the pass is finished; `Some(after)` = the next
/// page starts after `after` (which is `None` only when the pass has not read a record yet).
pub(super) type Next<P> = Option<Option<P>>;

/// Whether nothing follows `page`: the gateway says so, or the page came back short.
pub(super) fn is_last(page: &Page, page_size: u32) -> bool {
    page.num_remaining == Some(0) || (page.records.len() as u32) < page_size
}
