//! Records of a `<data>` block, each flattened into a [`Record`] of dotted field names, and
//! kept in the result or handed to the streaming callback. Plain records go to the fast path;
//! this reader takes the ones it leaves.

use super::DecodeError;
use super::events::{Collect, Ev, Parser, Source};
use super::response::FunctionResult;
use crate::protocol::{Record, fast_records};

impl<S: Source> Parser<'_, S> {
    fn emit(&mut self, r: &mut FunctionResult, rec: Record) {
        deliver(&mut self.sink, self.result_index, r, rec);
    }

    pub(super) fn records(&mut self, r: &mut FunctionResult) -> Result<(), DecodeError> {
        // Plain records are read without quick-xml (fast_records says why and which); quick-xml
        // reads each record the fast path does not take, and the fast path goes on after it.
        self.scan_plain_records(r);
        loop {
            match self.next()? {
                Ev::Start => {
                    let rec = self.record()?;
                    self.emit(r, rec);
                    self.scan_plain_records(r);
                }
                Ev::Empty => {
                    self.emit(r, Record::default());
                    self.scan_plain_records(r);
                }
                Ev::End => return Ok(()),
                Ev::Text => {}
            }
        }
    }

    /// Hands on the plain records that come next in the input, read by the fast path.
    fn scan_plain_records(&mut self, r: &mut FunctionResult) {
        let Parser {
            reader,
            rb,
            sink,
            result_index,
            ..
        } = self;
        reader.scan_ahead(&mut |input| {
            fast_records::scan_records(input, rb, &mut |rec| deliver(sink, *result_index, r, rec))
        });
    }

    /// Reads the record element just opened, up to its end tag.
    pub(super) fn record(&mut self) -> Result<Record, DecodeError> {
        self.rb.start();
        loop {
            match self.next()? {
                Ev::Start => {
                    self.path.clear();
                    self.path.push_str(&self.name);
                    self.field()?;
                }
                Ev::Empty => self.rb.push(&self.name, ""),
                Ev::End => return Ok(self.rb.finish()),
                Ev::Text => {}
            }
        }
    }

    /// Reads one field named `self.path`, its text going straight into the record's value
    /// buffer; child elements become `PATH.CHILD` fields instead of a value.
    fn field(&mut self) -> Result<(), DecodeError> {
        let mark = self.rb.values.len();
        self.collect = Collect::Value;
        let mut nested = false;
        loop {
            match self.next() {
                Ok(Ev::Text) => {}
                Ok(Ev::Start) => {
                    if !nested {
                        // whitespace before the first child is not a value
                        self.rb.values.truncate(mark);
                        nested = true;
                    }
                    let len = self.path.len();
                    self.path.push('.');
                    self.path.push_str(&self.name);
                    self.field()?;
                    self.path.truncate(len);
                }
                Ok(Ev::Empty) => {
                    if !nested {
                        self.rb.values.truncate(mark);
                        nested = true;
                        self.collect = Collect::Nothing;
                    }
                    let len = self.path.len();
                    self.path.push('.');
                    self.path.push_str(&self.name);
                    self.rb.end_field(&self.path);
                    self.path.truncate(len);
                }
                Ok(Ev::End) => {
                    self.collect = Collect::Nothing;
                    if !nested {
                        self.rb.end_field(&self.path);
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.collect = Collect::Nothing;
                    return Err(e);
                }
            }
        }
    }
}

/// Counts a record of result `index` and keeps it in the result, or hands it to the streaming
/// callback when there is one. Both readers of records end here, so they count alike.
fn deliver(
    sink: &mut Option<&mut dyn FnMut(usize, Record)>,
    index: usize,
    r: &mut FunctionResult,
    rec: Record,
) {
    r.record_count += 1;
    match sink.as_mut() {
        Some(sink) => sink(index, rec),
        None => r.records.push(rec),
    }
}
