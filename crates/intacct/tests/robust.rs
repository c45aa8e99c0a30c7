//! The decoder never panics and never holds a whole large document.

use std::io::{BufRead, Read};

use ml_intacct::protocol::{decode_response, decode_response_streaming};
use proptest::prelude::*;

/// A reader that produces a large response page lazily, so the test never holds the document.
struct BigPage {
    target: usize,
    produced: usize,
    records: u64,
    chunk: Vec<u8>,
    pos: usize,
    stage: u8,
}

impl BigPage {
    fn new(target: usize) -> Self {
        let mut s = Self {
            target,
            produced: 0,
            records: 0,
            chunk: Vec::new(),
            pos: 0,
            stage: 0,
        };
        s.chunk = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><response><control><status>success</status></control><operation><authentication><status>success</status></authentication><result><status>success</status><function>query</function><controlid>q</controlid><data listtype=\"VENDOR\" count=\"0\">".to_vec();
        s
    }
    fn refill(&mut self) {
        self.pos = 0;
        self.chunk.clear();
        match self.stage {
            0 if self.produced < self.target => {
                self.records += 1;
                let n = self.records;
                self.chunk.extend_from_slice(
                    format!("<VENDOR><RECORDNO>{n}</RECORDNO><VENDORID>V{n:08}</VENDORID><NAME>Vendor &amp; Sons {n}</NAME><STATUS>active</STATUS><TOTALDUE>{n}.25</TOTALDUE><WHENMODIFIED>01/02/2024 03:04:05</WHENMODIFIED></VENDOR>").as_bytes(),
                );
            }
            0 => {
                self.stage = 1;
                self.chunk
                    .extend_from_slice(b"</data></result></operation></response>");
            }
            _ => {}
        }
        self.produced += self.chunk.len();
    }
}

impl Read for BigPage {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for BigPage {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.chunk.len() {
            self.refill();
        }
        Ok(&self.chunk[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

#[test]
fn a_100_mb_page_streams_in_bounded_memory() {
    let src = BigPage::new(100 * 1024 * 1024);
    let mut count = 0u64;
    let mut last = 0u64;
    let resp = decode_response_streaming(
        std::io::BufReader::with_capacity(64 * 1024, src),
        &mut |_, rec| {
            count += 1;
            last = rec.get("RECORDNO").unwrap().parse().unwrap();
            assert_eq!(rec.fields().len(), 6);
        },
    )
    .unwrap();
    let res = &resp.operation.unwrap().results[0];
    assert!(res.records.is_empty(), "streamed records are not kept");
    assert_eq!(res.record_count, count);
    assert_eq!(last, count);
    assert!(count > 400_000, "{count}");
    // The document was 100 MB; had it been held, the peak resident set would show it.
    if let Some(peak_kb) = peak_rss_kb() {
        assert!(peak_kb < 80 * 1024, "peak RSS {peak_kb} kB");
    }
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_response(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic(cut in 0usize..900, flip in 0usize..900, byte in any::<u8>()) {
        let mut doc = include_bytes!("fixtures/transaction_aborted.xml").to_vec();
        if flip < doc.len() { doc[flip] = byte; }
        doc.truncate(cut.min(doc.len()));
        let _ = decode_response(&doc);
    }

    #[test]
    fn tag_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("<response>"), Just("</response>"), Just("<control>"), Just("</control>"),
        Just("<status>success</status>"), Just("<operation>"), Just("</operation>"),
        Just("<result>"), Just("</result>"), Just("<data count=\"x\">"), Just("</data>"),
        Just("<R><F>v&amp;</F></R>"), Just("<errormessage><error><errorno>1</errorno></error></errormessage>"),
        Just("&#0;"), Just("&#x110000;"), Just("<![CDATA[x"), Just("<!-- c -->"), Just("<a b='1"),
    ], 0..24)) {
        let doc: String = parts.concat();
        let _ = decode_response(doc.as_bytes());
    }
}
