//! Response documents, decoded leniently and by streaming.
//!
//! The decoder walks quick-xml events with a handful of reusable buffers: no tree of the whole
//! document is built, and records can be handed to a callback one by one
//! ([`decode_response_streaming`]) so memory does not grow with the document. The envelope is
//! read the way the reference (§3) says real replies look: `control` may be stripped to its
//! `status`, any element may be empty or absent, record tags come in any case, an
//! `errormessage` may sit under `response`, `operation` or `result`, and texts may carry
//! character and predefined entity references. A `DOCTYPE` is refused before anything is
//! expanded; HTML, plain text and truncated documents become typed errors, never panics.

use std::io::BufRead;

use chrono::{DateTime, FixedOffset};
use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use thiserror::Error;

use super::fast_records;
use super::values::{bracketed, parse_session_time};
use super::{ErrorDetail, Record, RecordBuilder};

/// Elements nested deeper than this are refused: protects the recursive field reader.
const MAX_DEPTH: usize = 64;

/// Why a body could not be read as a gateway response.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the response body is empty")]
    Empty,
    #[error("the response is not XML (it starts with {start:?})")]
    NotXml { start: String },
    #[error("the response is an HTML page{}{}", title.as_ref().map(|t| format!(" titled {t:?}")).unwrap_or_default(), if *cloudflare { " from the Cloudflare CDN" } else { "" })]
    Html {
        title: Option<String>,
        cloudflare: bool,
    },
    #[error("the response XML ends before the document is complete (truncated)")]
    Truncated,
    #[error("the response declares a DOCTYPE; DTDs and entity declarations are refused")]
    Doctype,
    #[error("the response XML is malformed: {0}")]
    Malformed(String),
    #[error("the response XML has root element <{0}>, not <response>")]
    NotEnvelope(String),
    #[error("the response XML nests elements more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// A status value; anything other than `success` is not success (§3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Aborted,
    Other(String),
    #[default]
    Missing,
}

impl Status {
    fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "aborted" => Self::Aborted,
            "" => Self::Missing,
            _ => Self::Other(s.trim().to_owned()),
        }
    }
    pub fn is_success(&self) -> bool {
        *self == Self::Success
    }
}

/// The response `control` block; every child but `status` may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    pub status: Status,
    pub sender_id: String,
    pub control_id: String,
    pub unique_id: String,
    pub dtd_version: String,
}

/// `operation/authentication`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authentication {
    pub status: Status,
    pub user_id: String,
    pub company_id: String,
    pub location_id: Option<String>,
    pub session_timestamp: Option<DateTime<FixedOffset>>,
    pub session_timeout: Option<DateTime<FixedOffset>>,
}

/// Attributes of `<data>`; each is optional because each function sends a different set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataAttrs {
    pub list_type: Option<String>,
    pub count: Option<u64>,
    pub total_count: Option<u64>,
    pub num_remaining: Option<u64>,
    /// `readByQuery` paging handle; empty when nothing remains.
    pub result_id: Option<String>,
    pub offset: Option<u64>,
}

/// A field of a `lookup` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldDef {
    pub id: String,
    pub label: String,
    pub description: String,
    pub data_type: String,
    pub required: bool,
    pub read_only: bool,
    pub is_custom: bool,
    pub valid_values: Vec<String>,
}

/// The `lookup` answer: an object's fields and relationships.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectDefinition {
    pub name: String,
    pub document_type: String,
    pub fields: Vec<FieldDef>,
    /// One record per `<Relationship>` (OBJECTPATH, OBJECTNAME, RELATIONSHIPTYPE, ...).
    pub relationships: Vec<Record>,
}

/// One `<result>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionResult {
    pub status: Status,
    pub function: String,
    pub control_id: String,
    /// `None` when the result had no `<data>`.
    pub data: Option<DataAttrs>,
    /// Records of `<data>`; empty when they went to a streaming callback.
    pub records: Vec<Record>,
    /// Records seen in `<data>`, whether kept or streamed.
    pub record_count: u64,
    pub errors: Vec<ErrorDetail>,
    /// Filled for `lookup`.
    pub definition: Option<ObjectDefinition>,
}

/// `<operation>`: the authentication outcome, then errors or results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operation {
    pub authentication: Authentication,
    /// Authentication-level errors (a sibling `errormessage` after `authentication`).
    pub errors: Vec<ErrorDetail>,
    pub results: Vec<FunctionResult>,
}

/// A decoded response document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub control: Control,
    /// Control-level errors (`errormessage` directly under `response`).
    pub errors: Vec<ErrorDetail>,
    pub operation: Option<Operation>,
    /// Set for the asynchronous acknowledgement form.
    pub acknowledgement: Option<Status>,
}

/// Decodes a whole response held in memory; records are kept in their results.
pub fn decode_response(body: &[u8]) -> Result<Response, DecodeError> {
    let start = first_significant(body);
    let decoded = peek(body).and_then(|()| {
        let mut reader = Reader::from_reader(body);
        configure(&mut reader);
        Parser::new(SliceSource(reader), None).document()
    });
    match decoded {
        Err(DecodeError::Html { cloudflare, .. }) => Err(DecodeError::Html {
            title: html_title(&body[start..]),
            cloudflare: cloudflare
                || contains(body, b"cf-error-details")
                || contains_ci(body, b"cloudflare"),
        }),
        other => other,
    }
}

/// Decodes a response from a reader, handing every record of every result to `on_record`
/// (with the index of its result) instead of keeping it: memory stays bounded by the largest
/// single record, whatever the size of the document.
pub fn decode_response_streaming<R: BufRead>(
    src: R,
    on_record: &mut dyn FnMut(usize, Record),
) -> Result<Response, DecodeError> {
    let mut src = src;
    peek(
        src.fill_buf()
            .map_err(|e| DecodeError::Malformed(e.to_string()))?,
    )?;
    let mut reader = Reader::from_reader(src);
    configure(&mut reader);
    Parser::new(BufferedSource(reader), Some(on_record)).document()
}

fn configure<R>(reader: &mut Reader<R>) {
    // Defaults kept on purpose: no trim_text (it eats spaces around `&amp;`), end names checked.
    reader.config_mut().check_end_names = true;
}

/// Plain text (a 5xx "Service Unavailable", JSON) is not XML at all and deserves that name
/// rather than a parser message.
fn peek(head: &[u8]) -> Result<(), DecodeError> {
    let i = first_significant(head);
    if i >= head.len() {
        if head.is_empty() {
            return Err(DecodeError::Empty);
        }
    } else if head[i] != b'<' {
        let end = (i + 40).min(head.len());
        return Err(DecodeError::NotXml {
            start: String::from_utf8_lossy(&head[i..end]).into_owned(),
        });
    }
    Ok(())
}

/// Where events come from: a slice (events borrow the input, no copy) or a buffered reader
/// (events are copied into a reused buffer; memory bounded by the largest event).
trait Source {
    fn read<'b>(&'b mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError>;

    /// Lets `scan` read ahead in the input, which then goes on after the bytes `scan` says it
    /// took. Only a slice can: a buffered reader holds no more than the current event.
    fn scan_ahead(&mut self, _scan: &mut dyn FnMut(&[u8]) -> usize) {}
}

struct SliceSource<'i>(Reader<&'i [u8]>);

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

struct BufferedSource<R>(Reader<R>);

impl<R: BufRead> Source for BufferedSource<R> {
    fn read<'b>(&'b mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        self.0.read_event_into(buf)
    }
}

fn first_significant(b: &[u8]) -> usize {
    let mut i = 0;
    if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        i = 3;
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn html_title(body: &[u8]) -> Option<String> {
    let lower: Vec<u8> = body
        .iter()
        .take(64 * 1024)
        .map(u8::to_ascii_lowercase)
        .collect();
    let start = lower.windows(7).position(|w| w == b"<title>")? + 7;
    let len = lower[start..].windows(8).position(|w| w == b"</title>")?;
    let t = String::from_utf8_lossy(&body[start..start + len])
        .trim()
        .to_owned();
    (!t.is_empty()).then_some(t)
}

enum Ev {
    Start,
    Empty,
    End,
    Text,
}

struct Parser<'s, S: Source> {
    reader: S,
    buf: Vec<u8>,
    /// Name of the last start or empty tag (reused buffer).
    name: String,
    /// Raw attribute text of the last start or empty tag, parsed only for `<data>` and `<Type>`.
    attrs_raw: String,
    /// Text collected while `collect` is set (reused buffer).
    text: String,
    collect: Collect,
    depth: usize,
    sink: Option<&'s mut dyn FnMut(usize, Record)>,
    result_index: usize,
    /// Builds the record being read.
    rb: RecordBuilder,
    /// Dotted name of the field being read (reused buffer).
    path: String,
}

fn map_xml_error(e: XmlError) -> DecodeError {
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
    fn new(reader: S, sink: Option<&'s mut dyn FnMut(usize, Record)>) -> Self {
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
    fn next(&mut self) -> Result<Ev, DecodeError> {
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
                    match self.collect {
                        Collect::Nothing => {}
                        Collect::Text => self.text.push_str(&t.xml10_content()),
                        Collect::Value => self.rb.values.push_str(&t.xml10_content()),
                    }
                    return Ok(Ev::Text);
                }
                Event::CData(t) => {
                    match self.collect {
                        Collect::Nothing => {}
                        Collect::Text => self.text.push_str(&t.xml10_content()),
                        Collect::Value => self.rb.values.push_str(&t.xml10_content()),
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
                    match self.collect {
                        Collect::Nothing => {}
                        Collect::Text => self.text.push(resolved),
                        Collect::Value => self.rb.values.push(resolved),
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
                        return Err(DecodeError::Html {
                            title: None,
                            cloudflare: false,
                        });
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

    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// Skips the rest of the element whose start was just read.
    fn skip(&mut self) -> Result<(), DecodeError> {
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
    fn read_text(&mut self) -> Result<String, DecodeError> {
        self.text.clear();
        self.collect = Collect::Text;
        let mut d = 0usize;
        let r = loop {
            match self.next() {
                Ok(Ev::Start) => d += 1,
                Ok(Ev::End) if d == 0 => break Ok(()),
                Ok(Ev::End) => d -= 1,
                Ok(Ev::Empty | Ev::Text) => {}
                Err(e) => break Err(e),
            }
        };
        self.collect = Collect::Nothing;
        r.map(|()| self.text.clone())
    }

    fn document(&mut self) -> Result<Response, DecodeError> {
        // Find the root element; text before it is only whitespace.
        loop {
            match self.next() {
                Ok(Ev::Start) => break,
                Ok(Ev::Empty) => {
                    return Err(if self.is("html") {
                        html_error()
                    } else {
                        DecodeError::NotEnvelope(self.name.clone())
                    });
                }
                Ok(Ev::Text) => {}
                Ok(Ev::End) => return Err(DecodeError::Malformed("end tag before root".into())),
                Err(DecodeError::Malformed(m)) if m == "unexpected end of document" => {
                    return Err(DecodeError::Empty);
                }
                Err(e) => return Err(e),
            }
        }
        if self.is("html") {
            return Err(html_error());
        }
        if !self.is("response") {
            return Err(DecodeError::NotEnvelope(self.name.clone()));
        }
        let mut resp = Response::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("control") => resp.control = self.control()?,
                Ev::Start if self.is("operation") => {
                    let op = self.operation()?;
                    // Every client seen sends one operation; keep the first, read the others.
                    if resp.operation.is_none() {
                        resp.operation = Some(op);
                    }
                }
                Ev::Start if self.is("errormessage") => {
                    let mut errs = self.errormessage()?;
                    resp.errors.append(&mut errs);
                }
                Ev::Start if self.is("acknowledgement") => {
                    let mut status = Status::Missing;
                    self.leaves(|name, text| {
                        if name.eq_ignore_ascii_case("status") {
                            status = Status::parse(&text);
                        }
                    })?;
                    resp.acknowledgement = Some(status);
                }
                Ev::Start => self.skip()?,
                Ev::End => break,
                Ev::Empty | Ev::Text => {}
            }
        }
        // Anything after the root other than comments/whitespace is malformed; quick-xml checks
        // the rest, so read to the end to notice trailing garbage.
        loop {
            self.buf.clear();
            match self.reader.read(&mut self.buf).map_err(map_xml_error)? {
                Event::Eof => break,
                Event::Text(_) | Event::Comment(_) | Event::PI(_) => {}
                _ => {
                    return Err(DecodeError::Malformed(
                        "content after the root element".into(),
                    ));
                }
            }
        }
        Ok(resp)
    }

    /// Reads the children of the current element as `(name, text)` leaves.
    fn leaves(&mut self, mut f: impl FnMut(&str, String)) -> Result<(), DecodeError> {
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

    fn control(&mut self) -> Result<Control, DecodeError> {
        let mut c = Control::default();
        self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
            "status" => c.status = Status::parse(&text),
            "senderid" => c.sender_id = text,
            "controlid" => c.control_id = text,
            "uniqueid" => c.unique_id = text,
            "dtdversion" => c.dtd_version = text,
            _ => {}
        })?;
        Ok(c)
    }

    fn authentication(&mut self) -> Result<Authentication, DecodeError> {
        let mut a = Authentication::default();
        self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
            "status" => a.status = Status::parse(&text),
            "userid" => a.user_id = text,
            "companyid" => a.company_id = text,
            "locationid" => a.location_id = Some(text),
            "sessiontimestamp" => a.session_timestamp = parse_session_time(&text),
            "sessiontimeout" => a.session_timeout = parse_session_time(&text),
            _ => {}
        })?;
        Ok(a)
    }

    fn errormessage(&mut self) -> Result<Vec<ErrorDetail>, DecodeError> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                Ev::Start if self.is("error") => {
                    let mut e = ErrorDetail::default();
                    self.leaves(|name, text| match name.to_ascii_lowercase().as_str() {
                        "errorno" => e.errorno = text.trim().to_owned(),
                        "description" => e.description = text,
                        "description2" => e.description2 = text,
                        "correction" => e.correction = text,
                        _ => {}
                    })?;
                    for t in [&e.description2, &e.description, &e.correction] {
                        if e.support_id.is_none() {
                            e.support_id = bracketed(t, "Support ID");
                        }
                        if e.request_id.is_none() {
                            e.request_id = bracketed(t, "Request ID");
                        }
                    }
                    out.push(e);
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(out),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn operation(&mut self) -> Result<Operation, DecodeError> {
        let mut op = Operation::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("authentication") => {
                    op.authentication = self.authentication()?
                }
                Ev::Start if self.is("errormessage") => {
                    let mut errs = self.errormessage()?;
                    op.errors.append(&mut errs);
                }
                Ev::Start if self.is("result") => {
                    let r = self.result()?;
                    op.results.push(r);
                    self.result_index += 1;
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(op),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn result(&mut self) -> Result<FunctionResult, DecodeError> {
        let mut r = FunctionResult::default();
        loop {
            match self.next()? {
                Ev::Start if self.is("status") => r.status = Status::parse(&self.read_text()?),
                Ev::Start if self.is("function") => {
                    r.function = self.read_text()?.trim().to_owned()
                }
                Ev::Start if self.is("controlid") => r.control_id = self.read_text()?,
                Ev::Start if self.is("errormessage") => {
                    let mut errs = self.errormessage()?;
                    r.errors.append(&mut errs);
                }
                Ev::Start if self.is("data") => {
                    r.data = Some(self.data_attrs());
                    if r.function.eq_ignore_ascii_case("lookup") {
                        r.definition = self.lookup_data()?;
                    } else {
                        self.records(&mut r)?;
                    }
                }
                Ev::Empty if self.is("data") => r.data = Some(self.data_attrs()),
                Ev::Start => self.skip()?,
                Ev::End => return Ok(r),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn attrs(&self) -> Vec<(String, String)> {
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

    fn data_attrs(&self) -> DataAttrs {
        let mut d = DataAttrs::default();
        for (k, v) in self.attrs() {
            let num = || v.trim().parse::<u64>().ok();
            match k.to_ascii_lowercase().as_str() {
                "listtype" => d.list_type = Some(v.clone()),
                "count" => d.count = num(),
                "totalcount" => d.total_count = num(),
                "numremaining" => d.num_remaining = num(),
                "resultid" => d.result_id = Some(v.clone()),
                "offset" => d.offset = num(),
                _ => {}
            }
        }
        d
    }

    fn emit(&mut self, r: &mut FunctionResult, rec: Record) {
        r.record_count += 1;
        match self.sink.as_mut() {
            Some(sink) => sink(self.result_index, rec),
            None => r.records.push(rec),
        }
    }

    fn records(&mut self, r: &mut FunctionResult) -> Result<(), DecodeError> {
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
            fast_records::scan_records(input, rb, &mut |rec| {
                r.record_count += 1;
                match sink.as_mut() {
                    Some(sink) => sink(*result_index, rec),
                    None => r.records.push(rec),
                }
            })
        });
    }

    /// Reads the record element just opened, up to its end tag.
    fn record(&mut self) -> Result<Record, DecodeError> {
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

    fn lookup_data(&mut self) -> Result<Option<ObjectDefinition>, DecodeError> {
        let mut def = None;
        loop {
            match self.next()? {
                Ev::Start if self.is("Type") => {
                    let mut d = ObjectDefinition::default();
                    for (k, v) in self.attrs() {
                        if k.eq_ignore_ascii_case("Name") {
                            d.name = v;
                        } else if k.eq_ignore_ascii_case("DocumentType") {
                            d.document_type = v;
                        }
                    }
                    self.type_body(&mut d)?;
                    def.get_or_insert(d);
                }
                Ev::Start => self.skip()?,
                Ev::End => return Ok(def),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn type_body(&mut self, d: &mut ObjectDefinition) -> Result<(), DecodeError> {
        loop {
            match self.next()? {
                Ev::Start if self.is("Fields") => loop {
                    match self.next()? {
                        Ev::Start if self.is("Field") => {
                            let f = self.field_def()?;
                            d.fields.push(f);
                        }
                        Ev::Start => self.skip()?,
                        Ev::End => break,
                        Ev::Empty | Ev::Text => {}
                    }
                },
                Ev::Start if self.is("Relationships") => loop {
                    match self.next()? {
                        Ev::Start => {
                            let rec = self.record()?;
                            d.relationships.push(rec);
                        }
                        Ev::End => break,
                        Ev::Empty | Ev::Text => {}
                    }
                },
                Ev::Start => self.skip()?,
                Ev::End => return Ok(()),
                Ev::Empty | Ev::Text => {}
            }
        }
    }

    fn field_def(&mut self) -> Result<FieldDef, DecodeError> {
        let mut f = FieldDef::default();
        let truthy = |t: &str| t.trim().eq_ignore_ascii_case("true");
        loop {
            match self.next()? {
                Ev::Start if self.is("VALIDVALUES") => {
                    let mut vals = Vec::new();
                    self.leaves(|_, text| vals.push(text))?;
                    f.valid_values = vals;
                }
                Ev::Start => {
                    let name = self.name.to_ascii_uppercase();
                    let text = self.read_text()?;
                    match name.as_str() {
                        "ID" => f.id = text,
                        "LABEL" => f.label = text,
                        "DESCRIPTION" => f.description = text,
                        "DATATYPE" => f.data_type = text,
                        "REQUIRED" => f.required = truthy(&text),
                        "READONLY" => f.read_only = truthy(&text),
                        "ISCUSTOM" => f.is_custom = truthy(&text),
                        _ => {}
                    }
                }
                Ev::End => return Ok(f),
                Ev::Empty | Ev::Text => {}
            }
        }
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
enum Collect {
    Nothing,
    /// Into the scratch `text` (envelope leaves, error texts).
    Text,
    /// Straight into the value buffer of the record being built.
    Value,
}

fn html_error() -> DecodeError {
    DecodeError::Html {
        title: None,
        cloudflare: false,
    }
}
