//! Response documents, written by hand (a string builder with escaping) so the simulator shares no
//! code with the product's codec. Shapes follow the reference: control echo, the three error
//! placements, minimal control blocks for gateway errors, result data attributes per function.

use quick_xml::escape::{escape, partial_escape};

/// One `<error>` element.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorItem {
    /// `None` = no `<errorno>` element at all (some denials carry none).
    pub errorno: Option<String>,
    pub description: String,
    pub description2: String,
    pub correction: String,
}

impl ErrorItem {
    pub fn new(errorno: &str, description: &str, description2: &str, correction: &str) -> Self {
        ErrorItem {
            errorno: Some(errorno.to_string()),
            description: description.to_string(),
            description2: description2.to_string(),
            correction: correction.to_string(),
        }
    }
}

/// A tiny XML writer. `pretty` mimics `includewhitespace=true`.
pub struct Xml {
    out: String,
    pretty: bool,
    depth: usize,
}

impl Xml {
    pub fn new(pretty: bool) -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            pretty,
            depth: 0,
        }
    }

    fn indent(&mut self) {
        if self.pretty {
            if !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            for _ in 0..self.depth {
                self.out.push_str("  ");
            }
        }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.open_attrs(name, &[])
    }

    /// `<name k="v"...` up to the closing bracket, which differs for open and empty elements.
    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(*v));
            self.out.push('"');
        }
    }

    pub fn open_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push('>');
        self.depth += 1;
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn empty_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
        self
    }

    /// `<name>text</name>`; empty text gives `<name></name>` as the gateway writes it.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&partial_escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn finish(mut self) -> String {
        if self.pretty {
            self.out.push('\n');
        }
        self.out
    }
}

/// The request's control fields as echoed back.
#[derive(Clone, Debug, Default)]
pub struct ControlEcho {
    pub senderid: String,
    pub controlid: String,
    pub uniqueid: Option<String>,
    pub dtdversion: Option<String>,
}

pub fn write_control(x: &mut Xml, status: &str, c: &ControlEcho) {
    x.open("control");
    x.leaf("status", status);
    x.leaf("senderid", &c.senderid);
    x.leaf("controlid", &c.controlid);
    x.leaf("uniqueid", c.uniqueid.as_deref().unwrap_or("false"));
    x.leaf("dtdversion", c.dtdversion.as_deref().unwrap_or("3.0"));
    x.close("control");
}

pub fn write_errors(x: &mut Xml, errors: &[ErrorItem]) {
    x.open("errormessage");
    for e in errors {
        x.open("error");
        if let Some(no) = &e.errorno {
            x.leaf("errorno", no);
        }
        x.leaf("description", &e.description);
        x.leaf("description2", &e.description2);
        x.leaf("correction", &e.correction);
        x.close("error");
    }
    x.close("errormessage");
}

/// Control-level failure: `errormessage` is a sibling of `control`; nothing ran.
pub fn control_failure(pretty: bool, c: &ControlEcho, errors: &[ErrorItem]) -> String {
    let mut x = Xml::new(pretty);
    x.open("response");
    write_control(&mut x, "failure", c);
    write_errors(&mut x, errors);
    x.close("response");
    x.finish()
}

/// Gateway-layer failure (GW-0010, GW-0011, XMLGW_JPP0002): a control block with only `status`, and
/// errors with only `errorno` and `description`.
pub fn gateway_failure(errorno: &str, description: &str) -> String {
    let mut x = Xml::new(false);
    x.open("response");
    x.open("control");
    x.leaf("status", "failure");
    x.close("control");
    x.open("errormessage");
    x.open("error");
    x.leaf("errorno", errorno);
    x.leaf("description", description);
    x.close("error");
    x.close("errormessage");
    x.close("response");
    x.finish()
}

/// The authentication block of an operation.
#[derive(Clone, Debug, Default)]
pub struct AuthEcho {
    pub status_ok: bool,
    pub userid: String,
    pub companyid: String,
    pub locationid: Option<String>,
    pub sessiontimestamp: Option<String>,
    pub sessiontimeout: Option<String>,
}

pub fn write_auth(x: &mut Xml, a: &AuthEcho) {
    x.open("authentication");
    x.leaf("status", if a.status_ok { "success" } else { "failure" });
    x.leaf("userid", &a.userid);
    x.leaf("companyid", &a.companyid);
    if let Some(l) = &a.locationid {
        x.leaf("locationid", l);
    }
    if let Some(t) = &a.sessiontimestamp {
        x.leaf("sessiontimestamp", t);
    }
    if let Some(t) = &a.sessiontimeout {
        x.leaf("sessiontimeout", t);
    }
    x.close("authentication");
}

/// A pre-rendered `<result>` (the function module renders data).
pub type ResultXml = String;

/// Renders a whole successful-control response with one operation.
pub fn operation_response(
    pretty: bool,
    c: &ControlEcho,
    auth: &AuthEcho,
    auth_errors: &[ErrorItem],
    results: &[ResultXml],
) -> String {
    let mut x = Xml::new(pretty);
    x.open("response");
    write_control(&mut x, "success", c);
    x.open("operation");
    write_auth(&mut x, auth);
    if !auth.status_ok {
        write_errors(&mut x, auth_errors);
    }
    // Each rendered result carries its own leading newline and indentation when pretty.
    for r in results {
        x.out.push_str(r);
    }
    x.close("operation");
    x.close("response");
    x.finish()
}

/// Renders one `<result>` fragment; `data` is a closure writing the `<data>` element (or nothing).
pub fn result(
    pretty: bool,
    status: &str,
    function: &str,
    controlid: &str,
    errors: &[ErrorItem],
    data: impl FnOnce(&mut Xml),
) -> ResultXml {
    let mut x = Xml {
        out: String::new(),
        pretty,
        depth: 2,
    };
    x.open("result");
    x.leaf("status", status);
    x.leaf("function", function);
    x.leaf("controlid", controlid);
    data(&mut x);
    if !errors.is_empty() {
        write_errors(&mut x, errors);
    }
    x.close("result");
    x.out
}

/// `[Support ID: ...]` suffix, URL-encoded like the real one (`~` becomes `%7E`).
pub fn support_id(rng_word: u64) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut v = rng_word;
    let mut s = String::new();
    for i in 0..22 {
        if i == 10 {
            s.push_str("%7E");
        }
        s.push(ALPHA[(v % ALPHA.len() as u64) as usize] as char);
        v = v
            .rotate_left(7)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i);
    }
    format!("[Support ID: {s}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml_in::parse_document;

    #[test]
    fn pretty_and_compact_documents_are_well_formed() {
        for pretty in [false, true] {
            let echo = ControlEcho {
                senderid: "S".into(),
                controlid: "c".into(),
                ..Default::default()
            };
            let r = result(pretty, "success", "readByQuery", "f1", &[], |x| {
                x.open_attrs("data", &[("listtype", "vendor"), ("count", "1")]);
                x.open("vendor");
                x.leaf("NAME", "A & B <C>");
                x.close("vendor");
                x.close("data");
            });
            let auth = AuthEcho {
                status_ok: true,
                userid: "u".into(),
                companyid: "c".into(),
                ..Default::default()
            };
            let doc = operation_response(pretty, &echo, &auth, &[], &[r]);
            let root = parse_document(doc.as_bytes()).unwrap();
            let name = root
                .child("operation")
                .unwrap()
                .child("result")
                .unwrap()
                .child("data")
                .unwrap()
                .child("vendor")
                .unwrap();
            assert_eq!(name.child_text("NAME"), Some("A & B <C>"));
            let fail = control_failure(pretty, &echo, &[ErrorItem::new("XL03000003", "", "x", "")]);
            let root = parse_document(fail.as_bytes()).unwrap();
            assert_eq!(
                root.children
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
                ["control", "errormessage"]
            );
        }
    }

    #[test]
    fn support_ids_are_url_encoded() {
        let s = support_id(12345);
        assert!(s.starts_with("[Support ID: ") && s.contains("%7E") && s.ends_with(']'));
    }
}
