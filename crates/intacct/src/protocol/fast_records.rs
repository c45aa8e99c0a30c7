//! A fast path for the records of a `<data>` element, used before quick-xml reads them.
//!
//! Why our own scanner: a page of 2,000 query records is ~1.2 MB of one shape of XML
//! (`<VENDOR><NAME>text</NAME><PARENTID/>...</VENDOR>`), and quick-xml, general by design,
//! validates UTF-8 per event, normalises line ends per text, and hands out an event per tag:
//! 17 % of a sync's CPU went to decoding (BENCHMARKS.md, "Session 8"). This scanner takes only
//! that plain shape: tags without attributes, one level of fields, texts whose only references
//! are the five predefined entities (`&amp;` ...), without CDATA or carriage returns, end tags
//! that match. Anything else — and any byte sequence that is not UTF-8 — stops it at the start
//! of the record in question: quick-xml reads that record as before, with all of its checks and
//! error messages, and the scanner goes on after it. A record is only handed on once it has
//! been read whole, so quick-xml never sees half of one.

use super::{Record, RecordBuilder};

/// A field of the record being scanned: byte ranges of its name and its value in the input.
#[derive(Clone, Copy)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
    /// The value holds entity references (all predefined ones: checked while scanning).
    escaped: bool,
}

/// Reads plain records from the start of `input` (just after `<data ...>`), handing each to
/// `emit`; returns how many bytes it consumed. It stops before the `</data>` end tag, and
/// before the first record it does not take (see the module's comment), for quick-xml to read.
pub(super) fn scan_records(
    input: &[u8],
    rb: &mut RecordBuilder,
    emit: &mut dyn FnMut(Record),
) -> usize {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    loop {
        let start = skip_space(input, pos);
        match scan_record(input, start, &mut fields) {
            Some(Scanned::Empty(end)) => {
                // Its name is not kept, but quick-xml would refuse it if it were not UTF-8.
                if std::str::from_utf8(&input[start..end]).is_err() {
                    return pos;
                }
                emit(Record::default());
                pos = end;
            }
            Some(Scanned::Fields(end)) => {
                // Delimiters are ASCII, so the ranges fall on character boundaries of the text.
                let Ok(text) = std::str::from_utf8(&input[start..end]) else {
                    return pos;
                };
                rb.start();
                for f in &fields {
                    let value = &text[f.value.0 - start..f.value.1 - start];
                    if f.escaped {
                        unescape_into(value, &mut rb.values);
                    } else {
                        rb.values.push_str(value);
                    }
                    rb.end_field(&text[f.name.0 - start..f.name.1 - start]);
                }
                emit(rb.finish());
                pos = end;
            }
            None => return pos,
        }
    }
}

enum Scanned {
    /// `<VENDOR/>`, ending at this offset.
    Empty(usize),
    /// A record with `fields`, ending at this offset.
    Fields(usize),
}

/// The record starting at `at`, if it has the plain shape; `None` at the end tag of `<data>` or
/// at anything else.
fn scan_record(input: &[u8], at: usize, fields: &mut Vec<Field>) -> Option<Scanned> {
    if input.get(at) != Some(&b'<') {
        return None;
    }
    let (name, after) = tag_name(input, at + 1)?;
    match input.get(after)? {
        b'/' if input.get(after + 1) == Some(&b'>') => return Some(Scanned::Empty(after + 2)),
        b'>' => {}
        _ => return None,
    }
    fields.clear();
    let mut pos = after + 1;
    loop {
        pos = skip_space(input, pos);
        if input.get(pos) != Some(&b'<') {
            return None;
        }
        if input.get(pos + 1) == Some(&b'/') {
            let end = end_tag(input, pos, &input[name.0..name.1])?;
            return Some(Scanned::Fields(end));
        }
        let (field, after) = tag_name(input, pos + 1)?;
        match input.get(after)? {
            b'/' if input.get(after + 1) == Some(&b'>') => {
                fields.push(Field {
                    name: field,
                    value: (after, after),
                    escaped: false,
                });
                pos = after + 2;
            }
            b'>' => {
                let from = after + 1;
                let to = from + memchr::memchr(b'<', &input[from..])?;
                let value = &input[from..to];
                if memchr::memchr(b'\r', value).is_some() {
                    return None;
                }
                let escaped = memchr::memchr(b'&', value).is_some();
                if escaped && !only_predefined_entities(value) {
                    return None;
                }
                pos = end_tag(input, to, &input[field.0..field.1])?;
                fields.push(Field {
                    name: field,
                    value: (from, to),
                    escaped,
                });
            }
            _ => return None,
        }
    }
}

/// The name starting at `at`: up to `>`, `/` or whitespace (as quick-xml reads it); `None` if
/// empty or if it starts a comment, CDATA or processing instruction.
fn tag_name(input: &[u8], at: usize) -> Option<((usize, usize), usize)> {
    let len = input
        .get(at..)?
        .iter()
        .position(|b| matches!(b, b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'))?;
    let name = &input[at..at + len];
    if name.is_empty()
        || matches!(name[0], b'!' | b'?')
        || name.iter().any(|b| matches!(b, b'<' | b'&'))
    {
        return None;
    }
    Some(((at, at + len), at + len))
}

/// Where the end tag `</name>` starting at `at` ends; `None` unless it is exactly that.
fn end_tag(input: &[u8], at: usize, name: &[u8]) -> Option<usize> {
    let rest = input.get(at..)?;
    let close = 2 + name.len();
    (rest.starts_with(b"</") && rest.get(2..close) == Some(name) && rest.get(close) == Some(&b'>'))
        .then_some(at + close + 1)
}

fn skip_space(input: &[u8], mut pos: usize) -> usize {
    while matches!(input.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// The five entities XML predefines, and the characters they stand for.
const PREDEFINED: [(&str, char); 5] = [
    ("lt", '<'),
    ("gt", '>'),
    ("amp", '&'),
    ("apos", '\''),
    ("quot", '"'),
];

/// The predefined entity whose reference `after` (the text after a `&`) starts with: its name
/// and the character it stands for.
fn predefined_at(after: &[u8]) -> Option<(&'static str, char)> {
    PREDEFINED.iter().copied().find(|(name, _)| {
        after.starts_with(name.as_bytes()) && after.get(name.len()) == Some(&b';')
    })
}

/// Whether every `&` of `value` starts a predefined entity reference (`&amp;` ...). Character
/// references (`&#38;`) are left to quick-xml, which knows which code points XML allows.
fn only_predefined_entities(value: &[u8]) -> bool {
    let mut rest = value;
    while let Some(at) = memchr::memchr(b'&', rest) {
        let after = &rest[at + 1..];
        let Some((name, _)) = predefined_at(after) else {
            return false;
        };
        rest = &after[name.len() + 1..];
    }
    true
}

/// Appends `value` to `out` with its predefined entity references replaced (checked by
/// [`only_predefined_entities`] while scanning).
fn unescape_into(value: &str, out: &mut String) {
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match predefined_at(after.as_bytes()) {
            Some((name, ch)) => {
                out.push(ch);
                rest = &after[name.len() + 1..];
            }
            None => {
                // Unreachable after the scan's check; kept literal rather than dropped.
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}
