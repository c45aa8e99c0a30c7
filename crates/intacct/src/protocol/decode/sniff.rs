//! Telling a body that is not a gateway response for what it is (empty, plain text, an HTML
//! error page, perhaps from the CDN) before or instead of reporting a parser message, because
//! those bodies come from proxies and outages, and the caller needs to know which.

use super::DecodeError;

/// Plain text (a 5xx "Service Unavailable", JSON) is not XML at all and deserves that name
/// rather than a parser message.
pub(super) fn peek(head: &[u8]) -> Result<(), DecodeError> {
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

/// An HTML answer with what its body tells: the page title, and whether the CDN sent it.
/// Only a body held in memory can be searched like this; a streamed one keeps the bare error.
pub(super) fn describe_html(body: &[u8], cloudflare: bool) -> DecodeError {
    let start = first_significant(body);
    DecodeError::Html {
        title: html_title(&body[start..]),
        cloudflare: cloudflare
            || contains(body, b"cf-error-details")
            || contains_ci(body, b"cloudflare"),
    }
}

/// Where the document starts: after a UTF-8 byte-order mark and leading white space.
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

/// An HTML answer as the parser sees it; [`describe_html`] adds what the body tells.
pub(super) fn html_error() -> DecodeError {
    DecodeError::Html {
        title: None,
        cloudflare: false,
    }
}
