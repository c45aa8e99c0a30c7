//! The event reader under the decoder: quick-xml events boiled down to start, empty, end and
//! text, with depth and DOCTYPE guards, entity resolution, and text collected into reusable
//! buffers. The element readers (envelope, records, lookup) build on its few primitives.

use std::io::BufRead;

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::sniff::html_error;
use super::{DecodeError, MAX_DEPTH};
use crate::protocol::{Record, RecordBuilder};

/// Where events come from: a slice (events borrow the input, no copy) or a buffered reader
/// (events are copied into a reused buffer; memory bounded by the largest event).
pub(super) trait Source {
    fn read<'b>(&'b mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError>;

    /// Lets `scan` read ahead in the input, which then goes on after the bytes `scan` says it
    /// took. Only a slice can: a buffered reader holds no more than the current event.
    fn scan_ahead(&mut self, _scan: &mut dyn FnMut(&[u8]) -> usize) {}
}

pub(super) struct SliceSource<'i>(pub(super) Reader<&'i [u8]>);

impl Source for SliceSource<'_> {
    fn read<'b>(&'b mut self, _buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        self.0.read_event()
    }

    fn scan_ahead(&mut self, scan: &mut dyn FnMut(&[u8]) -> usize) {
        // Right after a start tag quick-xml looks for text or markup next, so it reads on from
        // wherever the slice now starts (its byte position, for messages only, stays behind).
        let rest: &[u8] = self.0.get_ref();
        let took = scan(rest).min(rest.len());
        *self.0.get_mut() = &rest[took..];
    }
}

pub(super) struct BufferedSource<R>(pub(super) Reader<R>);

impl<R: BufRead> Source for BufferedSource<R> {
    fn read<'b>(&'b mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        self.0.read_event_into(buf)
    }
}

/// What the element readers see of an event.
pub(super) enum Ev {
    Start,
    Empty,
    End,
    Text,
}

/// The decoder's state: the event source and the reused buffers. Its methods are spread over
/// this module's siblings, one per part of the document they read.
pub(super) struct Parser<'s, S: Source> {
    pub(super) reader: S,
    pub(super) buf: Vec<u8>,
    /// Name of the last start or empty tag (reused buffer).
    pub(super) name: String,
    /// Raw attribute text of the last start or empty tag, parsed only for `<data>` and `<Type>`.
    pub(super) attrs_raw: String,
    /// Text collected while `collect` is set (reused buffer).
    pub(super) text: String,
    pub(super) collect: Collect,
    pub(super) depth: usize,
    pub(super) sink: Option<&'s mut dyn FnMut(usize, Record)>,
    pub(super) result_index: usize,
    /// Builds the record being read.
    pub(super) rb: RecordBuilder,
    /// Dotted name of the field being read (reused buffer).
    pub(super) path: String,
}

pub(super) fn map_xml_error(e: XmlError) -> DecodeError {
    match e {
        XmlError::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedPI
            | SyntaxError::UnclosedXmlDecl
            | SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue,
        ) => DecodeError::Truncated,
        XmlError::Syntax(SyntaxError::UnclosedDoctype) => DecodeError::Doctype,
        other => DecodeError::Malformed(other.to_string()),
    }
}

impl<'s, S: Source> Parser<'s, S> {
    pub(super) fn new(reader: S, sink: Option<&'s mut dyn FnMut(usize, Record)>) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            name: String::new(),
            attrs_raw: String::new(),
            text: String::new(),
            collect: Collect::Nothing,
            depth: 0,
            sink,
            result_index: 0,
            rb: RecordBuilder::default(),
            path: String::new(),
        }
    }

    /// The next event that matters; text is appended to `self.text` while `collect` is set.
    pub(super) fn next(&mut self) -> Result<Ev, DecodeError> {
        loop {
            self.buf.clear();
            let ev = self.reader.read(&mut self.buf).map_err(map_xml_error)?;
            match ev {
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(DecodeError::TooDeep);
                    }
                    set_tag(&mut self.name, &mut self.attrs_raw, &e);
                    return Ok(Ev::Start);
                }
                Event::Empty(e) => {
                    set_tag(&mut self.name, &mut self.attrs_raw, &e);
                    return Ok(Ev::Empty);
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Ev::End);
                }
                Event::Text(t) => {
                    if let Some(out) = self.collect.target(&mut self.text, &mut self.rb.values) {
                        out.push_str(&t.xml10_content());
                    }
                    return Ok(Ev::Text);
                }
                Event::CData(t) => {
                    if let Some(out) = self.collect.target(&mut self.text, &mut self.rb.values) {
                        out.push_str(&t.xml10_content());
                    }
                    return Ok(Ev::Text);
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        Ok(None) => None,
                        Err(e) => return Err(DecodeError::Malformed(e.to_string())),
                    };
                    let resolved = match ch {
                        Some(c) => c,
                        None => match r.xml10_content().as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => {
                                // Never expanded: only the five predefined entities exist here.
                                return Err(DecodeError::Malformed(format!(
                                    "unknown entity reference &{other};"
                                )));
                            }
                        },
                    };
                    if let Some(out) = self.collect.target(&mut self.text, &mut self.rb.values) {
                        out.push(resolved);
                    }
                    return Ok(Ev::Text);
                }
                Event::DocType(d) => {
                    let content = d.xml10_content();
                    if content
                        .trim_start()
                        .to_ascii_lowercase()
                        .starts_with("html")
                    {
                        return Err(html_error());
                    }
                    return Err(DecodeError::Doctype);
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
                Event::Eof => {
                    return Err(if self.depth > 0 {
                        DecodeError::Truncated
                    } else {
                        DecodeError::Malformed("unexpected end of document".into())
                    });
                }
            }
        }
    }

    pub(super) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// Skips the rest of the element whose start was just read.
    pub(super) fn skip(&mut self) -> Result<(), DecodeError> {
        let mut d = 0usize;
        loop {
            match self.next()? {
                Ev::Start => d += 1,
                Ev::End if d == 0 => return Ok(()),
                Ev::End => d -= 1,
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    /// The text of the element whose start was just read (text of nested elements included).
    pub(super) fn read_text(&mut self) -> Result<String, DecodeError> {
        self.text.clear();
        self.collect = Collect::Text;
        let r = self.skip();
        self.collect = Collect::Nothing;
        r.map(|()| self.text.clone())
    }

    /// Reads the children of the current element as `(name, text)` leaves.
    pub(super) fn leaves(&mut self, mut f: impl FnMut(&str, String)) -> Result<(), DecodeError> {
        loop {
            match self.next()? {
                Ev::Start => {
                    let name = self.name.clone();
                    let text = self.read_text()?;
                    f(&name, text);
                }
                Ev::Empty => {
                    let name = self.name.clone();
                    f(&name, String::new());
                }
                Ev::End => return Ok(()),
                Ev::Text => {}
            }
        }
    }

    /// The attributes of the last start or empty tag (kept only for `<data>` and `<Type>`).
    pub(super) fn attrs(&self) -> Vec<(String, String)> {
        let content = format!("x {}", self.attrs_raw);
        let start = BytesStart::from_content(content.as_str(), 1);
        start
            .attributes()
            .filter_map(Result::ok)
            .map(|a| {
                let key = a.key.0.to_owned();
                let value = a
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map(|v| v.into_owned())
                    .unwrap_or_else(|_| a.value.clone().into_owned());
                (key, value)
            })
            .collect()
    }
}

fn set_tag(name: &mut String, attrs: &mut String, e: &BytesStart<'_>) {
    let n = e.name().0;
    name.clear();
    name.push_str(n);
    attrs.clear();
    // Only `<data>` and lookup's `<Type>` have attributes we read; skip the copy elsewhere.
    if n.len() == 4 && (n.eq_ignore_ascii_case("data") || n.eq_ignore_ascii_case("type")) {
        attrs.push_str(e.attributes_raw());
    }
}

/// Where text events go.
#[derive(Clone, Copy)]
pub(super) enum Collect {
    Nothing,
    /// Into the scratch `text` (envelope leaves, error texts).
    Text,
    /// Straight into the value buffer of the record being built.
    Value,
}

impl Collect {
    /// The buffer text goes to, given the scratch text and the record's value buffer (passed
    /// apart because the event being read still borrows the rest of the parser).
    fn target<'a>(self, text: &'a mut String, value: &'a mut String) -> Option<&'a mut String> {
        match self {
            Collect::Nothing => None,
            Collect::Text => Some(text),
            Collect::Value => Some(value),
        }
    }
}
