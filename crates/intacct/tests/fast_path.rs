//! A response held in memory has its plain records read by a fast path, not by quick-xml
//! (src/protocol/fast_records.rs). Streaming a response never takes that path, so decoding the
//! same document both ways must give the same records, the same envelope and the same errors,
//! whatever the records hold: entities, CDATA, line ends, nesting, attributes, comments,
//! mismatched tags, bytes that are not UTF-8, a document cut short.

use std::io::BufReader;

use ml_intacct::protocol::{DecodeError, Record, decode_response, decode_response_streaming};
use proptest::prelude::*;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status></control><operation><authentication><status>success</status></authentication><result><status>success</status><function>readByQuery</function><controlid>q</controlid><data listtype="vendor" count="3" totalcount="3" numremaining="0" resultId="">"#;
const TAIL: &str = "</data></result></operation></response>";

fn fields(r: &Record) -> Vec<(String, String)> {
    r.fields().to_vec()
}

type Decoded = Result<(Vec<Vec<(String, String)>>, ml_intacct::protocol::Response), DecodeError>;

/// The records (in order, as fields) and the envelope with the records taken out.
fn in_memory(doc: &[u8]) -> Decoded {
    let mut resp = decode_response(doc)?;
    let mut records = Vec::new();
    if let Some(op) = resp.operation.as_mut() {
        for r in &mut op.results {
            records.extend(r.records.drain(..).map(|r| fields(&r)));
        }
    }
    Ok((records, resp))
}

fn streamed(doc: &[u8], capacity: usize) -> Decoded {
    let mut records = Vec::new();
    let resp = decode_response_streaming(BufReader::with_capacity(capacity, doc), &mut |_, r| {
        records.push(fields(&r))
    })?;
    Ok((records, resp))
}

fn same_both_ways(doc: &[u8]) {
    let fast = in_memory(doc);
    let slow = streamed(doc, 64);
    assert_eq!(fast, slow, "document: {:?}", String::from_utf8_lossy(doc));
}

#[test]
fn plain_and_odd_records_decode_alike() {
    let records = [
        "<VENDOR><RECORDNO>1</RECORDNO><NAME>Acme &amp; Sons &lt;EU&gt; &quot;x&apos;</NAME><PARENTID/><E></E></VENDOR>",
        "<VENDOR>\n  <RECORDNO>2</RECORDNO>\n  <NAME>  spaced  </NAME>\n</VENDOR>",
        "<VENDOR/>",
        "<VENDOR><NAME>caf\u{e9} \u{1f600}</NAME></VENDOR>",
        "<VENDOR><NAME>&#38;&#x26;</NAME></VENDOR>",
        "<VENDOR><NAME>a\r\nb\rc</NAME></VENDOR>",
        "<VENDOR><NAME><![CDATA[<b>&</b>]]></NAME></VENDOR>",
        "<VENDOR><CONTACT><EMAIL>e@x</EMAIL><PHONE/></CONTACT></VENDOR>",
        "<VENDOR><NAME a=\"1\">v</NAME></VENDOR>",
        "<VENDOR><!-- note --><NAME>v</NAME></VENDOR>",
        "<VENDOR>stray<NAME>v</NAME></VENDOR>",
        "<VENDOR ><NAME >v</NAME ></VENDOR >",
        "<vendor><name>lower</name></vendor>",
        "<VENDOR><NAME>v</NAME ><ID>1</ID></VENDOR>",
    ];
    for r in records {
        same_both_ways(format!("{HEAD}{r}{r}{TAIL}").as_bytes());
        same_both_ways(
            format!("{HEAD}<VENDOR><ID>0</ID></VENDOR>{r}<VENDOR><ID>9</ID></VENDOR>{TAIL}")
                .as_bytes(),
        );
    }
    // What the fast path must hand over as an error, with the same message as quick-xml's.
    for bad in [
        "<VENDOR><NAME>v</NAMX></VENDOR>",
        "<VENDOR><NAME>v</NAME></VENDORX>",
        "<VENDOR><NAME>&bogus;</NAME></VENDOR>",
        "<VENDOR><NAME>a & b</NAME></VENDOR>",
        "<VENDOR><NAME>&#0;</NAME></VENDOR>",
        "<VENDOR><NAME>v</NAME>",
    ] {
        let doc = format!("{HEAD}<VENDOR><ID>0</ID></VENDOR>{bad}{TAIL}");
        assert!(in_memory(doc.as_bytes()).is_err(), "{bad} decoded");
        same_both_ways(doc.as_bytes());
    }
    let mut not_utf8 = format!("{HEAD}<VENDOR><ID>0</ID></VENDOR><VENDOR><NAME>").into_bytes();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    not_utf8.extend_from_slice(format!("</NAME></VENDOR>{TAIL}").as_bytes());
    same_both_ways(&not_utf8);
    // An empty record whose name is not UTF-8 (found by the generated pages below).
    let mut empty_not_utf8 = format!("{HEAD}<").into_bytes();
    empty_not_utf8.extend_from_slice(&[0xff]);
    empty_not_utf8.extend_from_slice(format!("ENDOR/>{TAIL}").as_bytes());
    assert!(in_memory(&empty_not_utf8).is_err());
    same_both_ways(&empty_not_utf8);
}

#[test]
fn the_fast_path_reads_what_quick_xml_reads() {
    let doc = format!(
        "{HEAD}<VENDOR><RECORDNO>7</RECORDNO><NAME>A &amp; B</NAME><PARENTID/></VENDOR><VENDOR/>{TAIL}"
    );
    let (records, resp) = in_memory(doc.as_bytes()).unwrap();
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        records,
        vec![
            vec![kv("RECORDNO", "7"), kv("NAME", "A & B"), kv("PARENTID", "")],
            vec![]
        ]
    );
    assert_eq!(resp.operation.unwrap().results[0].record_count, 2);
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<NAME>plain</NAME>".to_string()),
        Just("<NAME>a &amp; b &lt;&gt;&quot;&apos;</NAME>".to_string()),
        Just("<NAME>&#38;</NAME>".to_string()),
        Just("<NAME>&nbsp;</NAME>".to_string()),
        Just("<NAME>x & y</NAME>".to_string()),
        Just("<NAME>&amp</NAME>".to_string()),
        Just("<NAME>l1\r\nl2</NAME>".to_string()),
        Just("<NAME>l1\nl2</NAME>".to_string()),
        Just("<NAME><![CDATA[c]]></NAME>".to_string()),
        Just("<NAME>\u{e9}\u{1f600}</NAME>".to_string()),
        Just("<EMPTY/>".to_string()),
        Just("<EMPTY />".to_string()),
        Just("<E></E>".to_string()),
        Just("<P><C>v</C><D/></P>".to_string()),
        Just("<P>t<C>v</C>u</P>".to_string()),
        Just("<F a='1'>v</F>".to_string()),
        Just("<!-- c -->".to_string()),
        Just("\n  ".to_string()),
        Just("junk".to_string()),
        Just("<A>v</B>".to_string()),
        Just("<A>v</A >".to_string()),
        Just("<A/ >".to_string()),
        Just("<?pi x?>".to_string()),
        "[A-Za-z_][A-Za-z0-9_.]{0,6}".prop_map(|n| format!("<{n}>{n}</{n}>")),
    ]
}

fn record() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::collection::vec(field(), 0..6).prop_map(|f| format!("<VENDOR>{}</VENDOR>", f.concat())),
        1 => Just("<VENDOR/>".to_string()),
        1 => Just("<VENDOR a=\"1\"><ID>1</ID></VENDOR>".to_string()),
        1 => Just("\n".to_string()),
        1 => Just("<VENDOR><ID>1</ID></vendor>".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_page_decodes_alike_in_memory_and_streamed(
        records in proptest::collection::vec(record(), 0..6),
        cut in proptest::option::of(0usize..2000),
        bad_byte in proptest::option::of(0usize..2000),
    ) {
        let mut doc = format!("{HEAD}{}{TAIL}", records.concat()).into_bytes();
        if let Some(at) = bad_byte.filter(|at| *at < doc.len()) {
            doc[at] = 0xff;
        }
        if let Some(cut) = cut {
            doc.truncate(cut.min(doc.len()));
        }
        same_both_ways(&doc);
    }
}
