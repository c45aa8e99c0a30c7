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
//!
//! One module per part of the job: `events` turns quick-xml events into the few the readers
//! need and guards depth, entities and DOCTYPE; `envelope`, `records` and `lookup` read the
//! parts of the document; `sniff` names bodies that are not responses at all; `response` holds
//! the decoded types.

mod envelope;
mod events;
mod lookup;
mod records;
mod response;
mod sniff;

use std::io::BufRead;

use quick_xml::Reader;
use thiserror::Error;

pub use response::{
    Authentication, Control, DataAttrs, FieldDef, FunctionResult, ObjectDefinition, Operation,
    Response, Status,
};

use super::Record;
use events::{BufferedSource, Parser, SliceSource};
use sniff::{describe_html, peek};

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

/// Decodes a whole response held in memory; records are kept in their results.
pub fn decode_response(body: &[u8]) -> Result<Response, DecodeError> {
    let decoded = peek(body).and_then(|()| {
        let mut reader = Reader::from_reader(body);
        configure(&mut reader);
        Parser::new(SliceSource(reader), None).document()
    });
    match decoded {
        Err(DecodeError::Html { cloudflare, .. }) => Err(describe_html(body, cloudflare)),
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
