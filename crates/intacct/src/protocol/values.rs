//! Small text formats of the gateway: Intacct timestamps, session timestamps, error suffixes.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

/// Formats a timestamp the way Intacct renders and filters them: `MM/DD/YYYY HH:MM:SS`, 24-hour.
pub fn format_timestamp(ts: NaiveDateTime) -> String {
    ts.format("%m/%d/%Y %H:%M:%S").to_string()
}

/// Parses `MM/DD/YYYY HH:MM:SS` (the seconds optional, as some captures omit them).
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M"))
        .ok()
}

/// Parses a record's `MM/DD/YYYY HH:MM:SS` (or a bare date) as a wall-clock time of the API user:
/// the hot path of every record's conversion.
pub fn parse_record_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    // The exact forms Intacct renders, read by hand: chrono's format interpreter costs more than
    // the rest of a record's conversion. Anything else goes the general way below.
    if let Some(dt) = parse_fixed_time(text.as_bytes()) {
        return Some(dt);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(text, "%m/%d/%Y %H:%M:%S") {
        return Some(dt);
    }
    NaiveDate::parse_from_str(text, "%m/%d/%Y")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

/// `MM/DD/YYYY` or `MM/DD/YYYY HH:MM:SS` with every digit present; `None` for any other form.
pub fn parse_fixed_time(b: &[u8]) -> Option<NaiveDateTime> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    if (b.len() != 10 && b.len() != 19) || b[2] != b'/' || b[5] != b'/' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(&b[6..10])? as i32, num(&b[0..2])?, num(&b[3..5])?)?;
    if b.len() == 10 {
        return Some(date.and_time(NaiveTime::MIN));
    }
    if b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let time = NaiveTime::from_hms_opt(num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?)?;
    Some(date.and_time(time))
}

/// Parses a `MM/DD/YYYY` date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%m/%d/%Y").ok()
}

/// Parses `sessiontimestamp` / `sessiontimeout`: ISO-8601 with an offset that varies by sample.
pub fn parse_session_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s.trim()).ok()
}

/// Finds `[<label>: value]` in `text` and returns the value URL-decoded.
pub fn bracketed(text: &str, label: &str) -> Option<String> {
    let open = format!("[{label}:");
    let start = text.find(&open)? + open.len();
    let rest = &text[start..];
    let end = rest.find(']')?;
    let raw = rest[..end].trim();
    if raw.is_empty() {
        return None;
    }
    Some(percent_decode(raw))
}

/// URL-decodes `%XX` sequences; invalid sequences and invalid UTF-8 are kept as they are,
/// because the value is only shown to a person.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Removes `<...>` markup from an error text (the SDKs strip tags before showing messages).
pub fn strip_tags(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('<') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ts = parse_timestamp("07/24/2017 15:19:46").unwrap();
        assert_eq!(format_timestamp(ts), "07/24/2017 15:19:46");
        assert!(parse_timestamp("2017-07-24").is_none());
        assert_eq!(
            parse_date("07/24/2017"),
            NaiveDate::from_ymd_opt(2017, 7, 24)
        );
    }

    #[test]
    fn session_times_keep_their_offset() {
        let a = parse_session_time("2019-05-30T12:29:53-07:00").unwrap();
        let b = parse_session_time("2019-05-30T18:29:53-07:00").unwrap();
        assert_eq!((b - a).num_hours(), 6);
    }

    #[test]
    fn support_id_is_url_decoded() {
        let t = "Oops [Support ID: p5rxS%7EYx%40abc] more";
        assert_eq!(bracketed(t, "Support ID").as_deref(), Some("p5rxS~Yx@abc"));
        assert_eq!(bracketed("no id", "Support ID"), None);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn tags_are_stripped() {
        assert_eq!(strip_tags("a <b>bold</b> c"), "a bold c");
    }
}
