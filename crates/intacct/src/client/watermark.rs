//! The watermark of a parallel full read. Its chains end at different places and at different
//! times, so no single page says how far the read got: each chain reports what it knows it
//! covered, and the read resumes next time from the lowest of those.

use std::sync::Mutex;

use chrono::NaiveDateTime;

use super::keyset::last_cursor;
use super::page::{Cursor, Page};

/// What the modified chains of a full read have seen, for the watermark.
#[derive(Default)]
pub(super) struct Marks(Mutex<MarksInner>);

#[derive(Default)]
struct MarksInner {
    /// Newest WHENMODIFIED in any response received so far.
    newest: Option<NaiveDateTime>,
    /// Per finished chain: how far it is known to have read.
    finals: Vec<Cursor>,
}

impl Marks {
    pub(super) fn newest(&self) -> Option<NaiveDateTime> {
        self.0.lock().expect("marks lock").newest
    }

    pub(super) fn saw(&self, page: &Page) {
        // Modified pages are in WHENMODIFIED order: the last record has the newest.
        if let Some(c) = last_cursor(page).ok().flatten() {
            let mut m = self.0.lock().expect("marks lock");
            m.newest = m.newest.max(Some(c.when_modified));
        }
    }

    pub(super) fn finished(&self, mark: Cursor) {
        self.0.lock().expect("marks lock").finals.push(mark);
    }

    pub(super) fn watermark(&self) -> Option<Cursor> {
        self.0
            .lock()
            .expect("marks lock")
            .finals
            .iter()
            .min()
            .copied()
    }
}
