//! The Intacct XML gateway codec: pure functions over bytes, no I/O, no async.
//!
//! This module (and only this module) touches quick-xml, whose API moves between minor versions.
//! [`encode`] writes request envelopes that validate against Sage's v3.0 XSD; [`decode`] reads
//! response documents leniently (stripped control blocks, absent elements, any record-tag case)
//! and streams records without building a tree of the whole document; [`values`] holds the
//! small text formats (Intacct timestamps, `[Support ID: ...]` suffixes).

use std::fmt;
use std::sync::{Arc, OnceLock};

pub mod decode;
pub mod encode;
mod fast_records;
pub mod values;

pub use decode::{
    Authentication, Control, DataAttrs, DecodeError, FieldDef, FunctionResult, ObjectDefinition,
    Operation, Response, Status, decode_response, decode_response_streaming,
};
pub use encode::{
    Auth, EncodeError, Envelope, Filter, Function, FunctionCall, Order, Query, SelectItem,
    encode_request,
};

/// One record of a result page: `(field, value)` pairs in document order.
///
/// Values are the strings Intacct rendered (dates `MM/DD/YYYY`, timestamps
/// `MM/DD/YYYY HH:MM:SS`, booleans `true`/`false`); an empty or self-closed element gives `""`.
/// A field absent from the document is absent here. Nested elements are flattened with dotted
/// names (`PARENT.CHILD`), which is also how `query` names related-object fields.
///
/// Stored compactly because decoding speed and memory are dominated by allocations: the values
/// of a record share one string, and the field names are shared (one `Arc`) by all records of a
/// page that have the same shape. [`Record::fields`] builds the `(String, String)` view on first
/// use only; [`Record::get`] and [`Record::iter`] never allocate.
#[derive(Clone, Default)]
pub struct Record {
    names: Arc<[Box<str>]>,
    values: String,
    ends: Vec<usize>,
    pairs: OnceLock<Vec<(String, String)>>,
}

impl Record {
    /// Builds a record from pairs (tests, callers that synthesise records).
    pub fn from_fields(fields: Vec<(String, String)>) -> Self {
        let mut b = RecordBuilder::default();
        b.start();
        for (k, v) in &fields {
            b.push(k, v);
        }
        b.finish()
    }

    /// The value of `name`: exact match first, then ASCII case-insensitive (field tags are
    /// normally upper case, but `readByQuery` has been seen to vary).
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = position(&self.names, name)?;
        Some(self.value(i))
    }

    /// The record's field names, to resolve names to positions once for every record of the
    /// same shape (see [`RecordShape`]).
    pub fn shape(&self) -> RecordShape {
        RecordShape(self.names.clone())
    }

    /// The value of the field at `i` (a position from [`RecordShape::position`]).
    pub fn value_at(&self, i: usize) -> Option<&str> {
        (i < self.ends.len()).then(|| self.value(i))
    }

    fn value(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.values[start..self.ends[i]]
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// `(field, value)` pairs in document order, without allocating.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| (&*self.names[i], self.value(i)))
    }

    /// All pairs in document order as owned strings (built on first call, then cached).
    pub fn fields(&self) -> &[(String, String)] {
        self.pairs.get_or_init(|| {
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
    }

    /// Consumes the record into its pairs.
    pub fn into_fields(self) -> Vec<(String, String)> {
        match self.pairs.into_inner() {
            Some(p) => p,
            None => (0..self.ends.len())
                .map(|i| {
                    let start = if i == 0 { 0 } else { self.ends[i - 1] };
                    (
                        self.names[i].to_string(),
                        self.values[start..self.ends[i]].to_owned(),
                    )
                })
                .collect(),
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Builds records while the decoder reads them, reusing the previous record's name table when
/// the shape repeats (it nearly always does within a page).
#[derive(Default)]
pub(crate) struct RecordBuilder {
    prev_names: Arc<[Box<str>]>,
    names: Vec<Box<str>>,
    matching: bool,
    count: usize,
    values: String,
    ends: Vec<usize>,
    value_hint: usize,
}

/// The field names of a record. The records of a page that have the same fields share one
/// shape, so a consumer reading many fields of many records resolves each name once per shape
/// (with [`RecordShape::position`], the lookup [`Record::get`] does) and then reads by position.
#[derive(Clone, Debug)]
pub struct RecordShape(Arc<[Box<str>]>);

impl RecordShape {
    /// Position of `name`, matched like [`Record::get`] matches it.
    pub fn position(&self, name: &str) -> Option<usize> {
        position(&self.0, name)
    }

    /// Whether `record` has exactly this shape (the same shared names).
    pub fn fits(&self, record: &Record) -> bool {
        Arc::ptr_eq(&self.0, &record.names)
    }
}

/// Exact match first, then ASCII case-insensitive.
fn position(names: &[Box<str>], name: &str) -> Option<usize> {
    names
        .iter()
        .position(|k| &**k == name)
        .or_else(|| names.iter().position(|k| k.eq_ignore_ascii_case(name)))
}

impl RecordBuilder {
    pub(crate) fn start(&mut self) {
        self.values = String::with_capacity(self.value_hint);
        self.ends = Vec::with_capacity(self.prev_names.len());
        self.names.clear();
        self.matching = true;
        self.count = 0;
    }

    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.values.push_str(value);
        self.end_field(name);
    }

    /// Ends the field whose value was appended to `values` since the previous field ended.
    pub(crate) fn end_field(&mut self, name: &str) {
        let i = self.count;
        if self.matching {
            if self.prev_names.get(i).is_none_or(|p| &**p != name) {
                self.matching = false;
                self.names.extend(self.prev_names[..i].iter().cloned());
                self.names.push(name.into());
            }
        } else {
            self.names.push(name.into());
        }
        self.ends.push(self.values.len());
        self.count += 1;
    }

    pub(crate) fn finish(&mut self) -> Record {
        let names = if self.matching && self.count == self.prev_names.len() {
            self.prev_names.clone()
        } else {
            let n: Arc<[Box<str>]> = if self.matching {
                self.prev_names[..self.count].into()
            } else {
                std::mem::take(&mut self.names).into()
            };
            self.prev_names = n.clone();
            n
        };
        self.value_hint = self.values.len();
        Record {
            names,
            values: std::mem::take(&mut self.values),
            ends: std::mem::take(&mut self.ends),
            pairs: OnceLock::new(),
        }
    }
}

/// One `<error>` of an `<errormessage>`, every child optional and possibly empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    /// A code such as `XL03000006`, or free text ("Query Failed"), or empty.
    pub errorno: String,
    pub description: String,
    pub description2: String,
    pub correction: String,
    /// The URL-decoded `[Support ID: ...]` found in any of the texts.
    pub support_id: Option<String>,
    /// The `[Request ID: ...]` gateway errors put in `description`.
    pub request_id: Option<String>,
}

impl ErrorDetail {
    /// The non-empty texts joined with spaces, as the PHP SDK shows them, with markup stripped.
    pub fn message(&self) -> String {
        let mut out = String::new();
        for part in [&self.description, &self.description2, &self.correction] {
            let t = values::strip_tags(part);
            let t = t.trim();
            if !t.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(t);
            }
        }
        out
    }

    /// Every text of the error, for case-insensitive classification.
    pub(crate) fn haystack(&self) -> String {
        format!(
            "{} {} {} {}",
            self.errorno, self.description, self.description2, self.correction
        )
        .to_ascii_lowercase()
    }
}
