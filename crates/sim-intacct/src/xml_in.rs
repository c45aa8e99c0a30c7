//! Request parsing: a small element tree built with quick-xml (no DTD processing: a DOCTYPE is
//! rejected), then the envelope (`control`, `operation`, `authentication`, `content/function`) checked
//! the way the v3.0 XSD would check it. Schema messages imitate libxml2's, as the real gateway's do.

use quick_xml::events::Event;

/// One element: name, attributes, child elements, and its own concatenated text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a body could not become a request.
#[derive(Clone, Debug, PartialEq)]
pub enum XmlError {
    /// Not well-formed, or a DOCTYPE (no DTD processing here, as on the real gateway).
    Malformed(String),
    /// Well-formed but invalid against the schema.
    Schema(String),
}

impl XmlError {
    pub fn message(&self) -> String {
        match self {
            XmlError::Malformed(m) => format!("XML Parse error: {m}"),
            XmlError::Schema(m) => format!("XML Parse schema error: {m}"),
        }
    }
}

/// Parses a document into its root element. Whitespace-only text between elements is dropped;
/// text inside leaf elements is kept verbatim (no trimming: it would eat spaces around entities).
pub fn parse_document(body: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| XmlError::Malformed("Input is not proper UTF-8".into()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(format!("{e} at byte {}", reader.error_position())))?;
        match ev {
            Event::DocType(_) => {
                return Err(XmlError::Malformed("DOCTYPE is not allowed".into()));
            }
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                let _ = s;
                return Err(XmlError::Malformed(
                    "Extra content at the end of the document".into(),
                ));
            }
            Event::Start(s) => stack.push(start_element(&s)?),
            Event::Empty(s) => {
                let el = start_element(&s)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unexpected end tag".into()))?;
                if !el.children.is_empty() && el.text.trim().is_empty() {
                    el.text.clear();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(XmlError::Malformed(
                            "Start tag expected, '<' not found".into(),
                        ));
                    }
                }
            }
            Event::CData(c) => {
                let s = c.into_inner().into_owned();
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if let Some(ch) = r
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Malformed(format!("invalid character reference: {e}")))?
                {
                    ch.to_string()
                } else if let Some(v) = quick_xml::escape::resolve_predefined_entity(&r) {
                    v.to_string()
                } else {
                    return Err(XmlError::Malformed(format!("Entity '{}' not defined", &*r)));
                };
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&resolved),
                    None => {
                        return Err(XmlError::Malformed(
                            "Start tag expected, '<' not found".into(),
                        ));
                    }
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("Premature end of data".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("Document is empty".into()))
}

fn start_element(s: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let mut el = Element {
        name: s.name().as_ref().to_string(),
        ..Default::default()
    };
    for a in s.attributes() {
        let a = a.map_err(|e| XmlError::Malformed(format!("bad attribute: {e}")))?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Malformed(format!("bad attribute value: {e}")))?;
        el.attrs.push((a.key.as_ref().to_string(), v.into_owned()));
    }
    Ok(el)
}

/// One particle of an `xs:sequence`: name, minOccurs, maxOccurs (None = unbounded).
pub type Particle = (&'static str, u32, Option<u32>);

/// Checks children against an `xs:sequence`, with libxml2-like messages.
pub fn check_sequence(el: &Element, seq: &[Particle]) -> Result<(), XmlError> {
    let mut pos = 0;
    let mut count = 0u32;
    for c in &el.children {
        loop {
            if pos >= seq.len() {
                return Err(not_expected(&c.name, &[]));
            }
            let (name, min, max) = seq[pos];
            if c.name == name && max.is_none_or(|m| count < m) {
                count += 1;
                break;
            }
            if count < min {
                return Err(not_expected(&c.name, &[name]));
            }
            pos += 1;
            count = 0;
        }
    }
    // Remaining required particles.
    let mut p = pos;
    let mut cnt = count;
    while p < seq.len() {
        let (name, min, _) = seq[p];
        if cnt < min {
            return Err(XmlError::Schema(format!(
                "Element '{}': Missing child element(s). Expected is ( {name} ).",
                el.name
            )));
        }
        p += 1;
        cnt = 0;
    }
    Ok(())
}

/// Checks children against an `xs:all` (each at most once, any order).
pub fn check_all(el: &Element, all: &[(&'static str, bool)]) -> Result<(), XmlError> {
    let mut seen: Vec<&str> = Vec::new();
    for c in &el.children {
        if !all.iter().any(|(n, _)| *n == c.name) || seen.contains(&c.name.as_str()) {
            let expected: Vec<&str> = all
                .iter()
                .filter(|(n, _)| !seen.contains(n))
                .map(|(n, _)| *n)
                .collect();
            return Err(not_expected(&c.name, &expected));
        }
        seen.push(&c.name);
    }
    let missing: Vec<&str> = all
        .iter()
        .filter(|(n, r)| *r && !seen.contains(n))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(XmlError::Schema(format!(
            "Element '{}': Missing child element(s). Expected is ( {} ).",
            el.name,
            missing.join(", ")
        )));
    }
    Ok(())
}

pub fn not_expected(name: &str, expected: &[&str]) -> XmlError {
    if expected.is_empty() {
        XmlError::Schema(format!("Element '{name}': This element is not expected."))
    } else {
        XmlError::Schema(format!(
            "Element '{name}': This element is not expected. Expected is one of ( {} ).",
            expected.join(", ")
        ))
    }
}

/// Checks an `xs:boolean` value.
pub fn check_bool(el: &Element) -> Result<bool, XmlError> {
    match el.text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(XmlError::Schema(format!(
            "Element '{}': '{other}' is not a valid value of the atomic type 'xs:boolean'.",
            el.name
        ))),
    }
}

/// Checks that an element has no child elements (string content).
pub fn check_leaf(el: &Element) -> Result<(), XmlError> {
    match el.children.first() {
        Some(c) => Err(not_expected(&c.name, &[])),
        None => Ok(()),
    }
}

/// The `control` block.
#[derive(Clone, Debug, Default)]
pub struct Control {
    pub senderid: String,
    pub password: String,
    pub controlid: String,
    pub uniqueid: Option<String>,
    pub dtdversion: Option<String>,
    pub policyid: Option<String>,
    pub includewhitespace: bool,
}

#[derive(Clone, Debug)]
pub enum Auth {
    Login {
        userid: String,
        companyid: String,
        password: String,
        clientid: Option<String>,
        locationid: Option<String>,
    },
    Session(String),
}

#[derive(Clone, Debug)]
pub struct FunctionCall {
    pub controlid: String,
    /// The function element (readByQuery, query, ...).
    pub body: Element,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub transaction: bool,
    pub auth: Auth,
    pub functions: Vec<FunctionCall>,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub control: Control,
    pub operations: Vec<Operation>,
}

/// Whatever control fields could be read, even from an invalid request (for the echo in errors).
pub fn lenient_control(root: &Element) -> Control {
    let Some(c) = root.child("control") else {
        return Control::default();
    };
    Control {
        senderid: c.child_text("senderid").unwrap_or("").to_string(),
        password: c.child_text("password").unwrap_or("").to_string(),
        controlid: c.child_text("controlid").unwrap_or("").to_string(),
        uniqueid: c.child_text("uniqueid").map(str::to_string),
        dtdversion: c.child_text("dtdversion").map(str::to_string),
        policyid: c.child_text("policyid").map(str::to_string),
        includewhitespace: c
            .child_text("includewhitespace")
            .map(|v| v.trim() == "true")
            .unwrap_or(true),
    }
}

const CONTROL_SEQ: &[Particle] = &[
    ("appid", 0, Some(1)),
    ("senderid", 1, Some(1)),
    ("password", 0, Some(1)),
    ("controlid", 1, Some(1)),
    ("uniqueid", 0, Some(1)),
    ("dtdversion", 0, Some(1)),
    ("policyid", 0, Some(1)),
    ("debug", 0, Some(1)),
    ("includewhitespace", 0, Some(1)),
    ("showadditionalerrorinfo", 0, Some(1)),
];

/// Validates the envelope and extracts it. Function bodies are validated by `functions`.
pub fn parse_request(root: &Element) -> Result<Request, XmlError> {
    if root.name != "request" {
        return Err(XmlError::Schema(format!(
            "Element '{}': No matching global declaration available for the validation root.",
            root.name
        )));
    }
    check_sequence(root, &[("control", 1, Some(1)), ("operation", 1, None)])?;
    let c = root.child("control").expect("checked");
    check_sequence(c, CONTROL_SEQ)?;
    for child in &c.children {
        check_leaf(child)?;
        if matches!(
            child.name.as_str(),
            "uniqueid" | "includewhitespace" | "showadditionalerrorinfo" | "debug"
        ) {
            check_bool(child)?;
        }
    }
    let control = lenient_control(root);
    if control.controlid.is_empty() || control.controlid.chars().count() > 256 {
        return Err(XmlError::Schema(format!(
            "Element 'controlid': [facet 'maxLength'/'minLength'] The value '{}' has a length outside 1..256.",
            control.controlid
        )));
    }
    let mut operations = Vec::new();
    for op in root.children.iter().filter(|e| e.name == "operation") {
        for (k, _) in &op.attrs {
            if k != "transaction" {
                return Err(XmlError::Schema(format!(
                    "Element 'operation', attribute '{k}': The attribute '{k}' is not allowed."
                )));
            }
        }
        let transaction = match op.attr("transaction").map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(XmlError::Schema(format!(
                    "Element 'operation', attribute 'transaction': [facet 'enumeration'] The value '{v}' is not an element of the set {{'true', 'false'}}."
                )));
            }
        };
        check_sequence(
            op,
            &[
                ("authentication", 1, Some(1)),
                ("preferences", 0, Some(1)),
                ("content", 1, Some(1)),
            ],
        )?;
        let auth_el = op.child("authentication").expect("checked");
        let auth = parse_auth(auth_el)?;
        let content = op.child("content").expect("checked");
        check_sequence(content, &[("function", 1, None)])?;
        let mut functions = Vec::new();
        for f in &content.children {
            let controlid = f.attr("controlid").unwrap_or("").to_string();
            if f.attr("controlid").is_none() {
                return Err(XmlError::Schema(
                    "Element 'function': The attribute 'controlid' is required but missing.".into(),
                ));
            }
            if controlid.is_empty() || controlid.chars().count() > 256 {
                return Err(XmlError::Schema(format!(
                    "Element 'function', attribute 'controlid': The value '{controlid}' has a length outside 1..256."
                )));
            }
            if f.children.len() != 1 {
                return match f.children.get(1) {
                    Some(extra) => Err(not_expected(&extra.name, &[])),
                    None => Err(XmlError::Schema(
                        "Element 'function': Missing child element(s).".into(),
                    )),
                };
            }
            functions.push(FunctionCall {
                controlid,
                body: f.children[0].clone(),
            });
        }
        operations.push(Operation {
            transaction,
            auth,
            functions,
        });
    }
    Ok(Request {
        control,
        operations,
    })
}

fn parse_auth(el: &Element) -> Result<Auth, XmlError> {
    let first = el
        .children
        .first()
        .ok_or_else(|| XmlError::Schema("Element 'authentication': Missing child element(s). Expected is one of ( login, sessionid, oauth ).".into()))?;
    if let Some(extra) = el.children.get(1) {
        return Err(not_expected(&extra.name, &[]));
    }
    match first.name.as_str() {
        "sessionid" => {
            check_leaf(first)?;
            Ok(Auth::Session(first.text.trim().to_string()))
        }
        "login" => {
            check_sequence(
                first,
                &[
                    ("userid", 1, Some(1)),
                    ("companyid", 1, Some(1)),
                    ("password", 1, Some(1)),
                    ("clientid", 0, Some(1)),
                    ("locationid", 0, Some(1)),
                ],
            )?;
            for c in &first.children {
                check_leaf(c)?;
            }
            let t = |n: &str| first.child_text(n).unwrap_or("").to_string();
            Ok(Auth::Login {
                userid: t("userid"),
                companyid: t("companyid"),
                password: t("password"),
                clientid: first.child_text("clientid").map(str::to_string),
                locationid: first.child_text("locationid").map(str::to_string),
            })
        }
        other => Err(not_expected(other, &["login", "sessionid", "oauth"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_resolve_and_spaces_survive() {
        let el = parse_document(b"<a><b>Tom &amp; Jerry &#39;s &lt;x&gt;</b></a>").unwrap();
        assert_eq!(el.child_text("b"), Some("Tom & Jerry 's <x>"));
    }

    #[test]
    fn doctype_and_unknown_entities_are_rejected() {
        let e = parse_document(b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>").unwrap_err();
        assert!(matches!(e, XmlError::Malformed(m) if m.contains("DOCTYPE")));
        assert!(parse_document(b"<a>&e;</a>").is_err());
        assert!(parse_document(b"<a><b></a>").is_err());
        assert!(parse_document(b"<a/><b/>").is_err());
    }

    #[test]
    fn sequences_report_missing_and_unexpected_children() {
        let el = parse_document(b"<control><controlid>1</controlid></control>").unwrap();
        let e = check_sequence(&el, CONTROL_SEQ).unwrap_err();
        assert!(
            matches!(e, XmlError::Schema(m) if m.contains("'controlid': This element is not expected. Expected is one of ( senderid )"))
        );
        let el = parse_document(b"<control><senderid>s</senderid></control>").unwrap();
        let e = check_sequence(&el, CONTROL_SEQ).unwrap_err();
        assert!(
            matches!(e, XmlError::Schema(m) if m.contains("Missing child element(s). Expected is ( controlid )"))
        );
    }
}
