//! The Intacct XML gateway codec: pure functions over bytes, no I/O, no async.
//!
//! This module (and only this module) touches quick-xml, whose API moves between minor versions.
//! [`encode`] writes request envelopes that validate against Sage's v3.0 XSD; [`decode`] reads
//! response documents leniently (stripped control blocks, absent elements, any record-tag case)
//! and streams records without building a tree of the whole document; [`values`] holds the
//! small text formats (Intacct timestamps, `[Support ID: ...]` suffixes).

pub mod decode;
pub mod encode;
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    fields: Vec<(String, String)>,
}

impl Record {
    /// Builds a record from pairs (tests, simulators of our own callers).
    pub fn from_fields(fields: Vec<(String, String)>) -> Self {
        Self { fields }
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            fields: Vec::with_capacity(n),
        }
    }

    /// The value of `name`: exact match first, then ASCII case-insensitive (field tags are
    /// normally upper case, but `readByQuery` has been seen to vary).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in document order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// Consumes the record into its pairs.
    pub fn into_fields(self) -> Vec<(String, String)> {
        self.fields
    }

    pub(crate) fn push(&mut self, name: String, value: String) {
        self.fields.push((name, value));
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
