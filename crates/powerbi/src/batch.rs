//! Cuts encoded rows into `POST rows` bodies within the per-request limits (10,000 rows and 16 MB by default),
//! by concatenating the rows' JSON text: nothing is parsed or serialised again.
//!
//! Rows are numbered in the order they are pushed (0, 1, 2, ...); each [`Batch`] carries the contiguous range of
//! row numbers it holds, so the caller can mark exactly those rows as pushed once the batch is accepted.

use std::ops::Range;

use bytes::Bytes;
use uuid::Uuid;

use crate::limits::PushLimits;

const PREFIX: &str = "{\"rows\":[";
const SUFFIX: &str = "]}";

/// One request body and the rows in it.
#[derive(Clone, Debug)]
pub struct Batch {
    pub id: Uuid,
    body: Bytes,
    rows: Range<u64>,
}

impl Batch {
    /// The exact request body: `{"rows":[...]}`.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Row numbers (in push order) held by this batch.
    pub fn row_range(&self) -> Range<u64> {
        self.rows.clone()
    }

    pub fn row_count(&self) -> usize {
        (self.rows.end - self.rows.start) as usize
    }

    pub fn byte_len(&self) -> usize {
        self.body.len()
    }
}

/// A row that cannot fit in any request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "row {row} is {bytes} bytes of JSON, more than one Power BI request may carry ({max} bytes); \
     shorten its text fields"
)]
pub struct RowTooLarge {
    pub row: u64,
    pub bytes: usize,
    pub max: usize,
}

/// Accumulates row JSON into batches.
#[derive(Debug)]
pub struct Batcher {
    max_rows: usize,
    max_bytes: usize,
    buf: String,
    rows_in_buf: usize,
    first_row: u64,
    next_row: u64,
    /// Size of the previous body: the next buffer is allocated at that size once instead of regrowing.
    last_len: usize,
}

impl Batcher {
    pub fn new(limits: &PushLimits) -> Self {
        Self::with_limits(limits.max_rows_per_post, limits.max_bytes_per_post)
    }

    pub fn with_limits(max_rows: usize, max_bytes: usize) -> Self {
        Self {
            max_rows: max_rows.max(1),
            max_bytes,
            buf: String::new(),
            rows_in_buf: 0,
            first_row: 0,
            next_row: 0,
            last_len: 0,
        }
    }

    /// Number the next row will get.
    pub fn next_row(&self) -> u64 {
        self.next_row
    }

    /// Adds one row (a JSON object). Returns a finished batch when one is full; the row that did not fit starts the
    /// next batch. A row too large for any request is refused and gets no number.
    pub fn push(&mut self, row_json: &str) -> Result<Option<Batch>, RowTooLarge> {
        let alone = PREFIX.len() + row_json.len() + SUFFIX.len();
        if alone > self.max_bytes {
            return Err(RowTooLarge {
                row: self.next_row,
                bytes: alone,
                max: self.max_bytes,
            });
        }
        let mut done = None;
        if self.rows_in_buf > 0
            && self.buf.len() + 1 + row_json.len() + SUFFIX.len() > self.max_bytes
        {
            done = self.take();
        }
        if self.rows_in_buf == 0 {
            self.buf
                .reserve((PREFIX.len() + row_json.len() + SUFFIX.len()).max(self.last_len));
            self.buf.push_str(PREFIX);
            self.first_row = self.next_row;
        } else {
            self.buf.push(',');
        }
        self.buf.push_str(row_json);
        self.rows_in_buf += 1;
        self.next_row += 1;
        if done.is_none() && self.rows_in_buf >= self.max_rows {
            done = self.take();
        }
        Ok(done)
    }

    /// The last, partly filled batch.
    pub fn finish(&mut self) -> Option<Batch> {
        self.take()
    }

    fn take(&mut self) -> Option<Batch> {
        if self.rows_in_buf == 0 {
            return None;
        }
        let mut body = std::mem::take(&mut self.buf);
        body.push_str(SUFFIX);
        self.rows_in_buf = 0;
        self.last_len = body.len();
        Some(Batch {
            id: Uuid::new_v4(),
            body: Bytes::from(body),
            rows: self.first_row..self.next_row,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, width: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{{\"i\":{i},\"s\":\"{}\"}}", "x".repeat(width)))
            .collect()
    }

    fn run(b: &mut Batcher, input: &[String]) -> Vec<Batch> {
        let mut out: Vec<Batch> = input.iter().filter_map(|r| b.push(r).unwrap()).collect();
        out.extend(b.finish());
        out
    }

    #[test]
    fn cuts_at_the_row_limit_and_keeps_every_row_once_in_order() {
        let input = rows(25, 3);
        let batches = run(&mut Batcher::with_limits(10, 1 << 20), &input);
        assert_eq!(
            batches.iter().map(Batch::row_count).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        assert_eq!(batches[1].row_range(), 10..20);
        let mut all = Vec::new();
        for b in &batches {
            let v: serde_json::Value = serde_json::from_slice(b.body()).unwrap();
            let got = v["rows"].as_array().unwrap();
            assert_eq!(got.len(), b.row_count());
            all.extend(got.iter().map(|r| r.to_string()));
        }
        assert_eq!(all, input);
    }

    #[test]
    fn cuts_at_the_byte_limit_exactly() {
        let input = rows(7, 90);
        let one = input[0].len();
        // Room for exactly three rows: prefix + 3 rows + 2 commas + suffix.
        let max = PREFIX.len() + 3 * one + 2 + SUFFIX.len();
        let batches = run(&mut Batcher::with_limits(10_000, max), &input);
        assert_eq!(
            batches.iter().map(Batch::row_count).collect::<Vec<_>>(),
            vec![3, 3, 1]
        );
        assert!(batches.iter().all(|b| b.byte_len() <= max));
        assert_eq!(batches[0].byte_len(), max);
        let batches = run(&mut Batcher::with_limits(10_000, max - 1), &input);
        assert_eq!(
            batches.iter().map(Batch::row_count).collect::<Vec<_>>(),
            vec![2, 2, 2, 1]
        );
    }

    #[test]
    fn oversized_row_is_refused_without_losing_the_others() {
        let mut b = Batcher::with_limits(10, 64);
        assert!(b.push("{\"a\":1}").unwrap().is_none());
        let e = b
            .push(&format!("{{\"s\":\"{}\"}}", "y".repeat(100)))
            .unwrap_err();
        assert_eq!(e.row, 1);
        assert!(b.push("{\"a\":2}").unwrap().is_none());
        let last = b.finish().unwrap();
        assert_eq!(last.row_range(), 0..2);
        assert_eq!(&last.body()[..], b"{\"rows\":[{\"a\":1},{\"a\":2}]}");
        assert!(b.finish().is_none());
    }

    proptest::proptest! {
        #[test]
        fn batches_respect_both_limits(widths in proptest::collection::vec(0usize..200, 0..300), max_rows in 1usize..40, max_bytes in 230usize..3000) {
            let input: Vec<String> = widths.iter().enumerate().map(|(i, w)| format!("{{\"i\":{i},\"s\":\"{}\"}}", "z".repeat(*w))).collect();
            let mut b = Batcher::with_limits(max_rows, max_bytes);
            let mut batches = Vec::new();
            let mut expected_rows = Vec::new();
            for r in &input {
                match b.push(r) {
                    Ok(Some(batch)) => { batches.push(batch); expected_rows.push(r.clone()); }
                    Ok(None) => expected_rows.push(r.clone()),
                    Err(_) => proptest::prop_assert!(r.len() + 11 > max_bytes),
                }
            }
            batches.extend(b.finish());
            let mut next = 0;
            let mut seen = Vec::new();
            for batch in &batches {
                proptest::prop_assert!(batch.row_count() <= max_rows && batch.row_count() > 0);
                proptest::prop_assert!(batch.byte_len() <= max_bytes);
                proptest::prop_assert_eq!(batch.row_range().start, next);
                next = batch.row_range().end;
                let v: serde_json::Value = serde_json::from_slice(batch.body()).unwrap();
                seen.extend(v["rows"].as_array().unwrap().iter().map(|r| r.to_string()));
            }
            proptest::prop_assert_eq!(seen, expected_rows);
        }
    }
}
