//! The gateway request pipeline and its functions: envelope → sender check → authentication →
//! functions (readByQuery, readMore, query, read, readByName, lookup, readUserFormatting,
//! get_accountbalances, getAPISession), each answered with the real result shapes and error texts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rand::Rng;

use crate::clock::fmt_ts;
use crate::data::{Kind, ObjectDef, RowRef, Store, Val, object_def};
use crate::faults::Fault;
use crate::query_eval::{
    Filter, check_filter_schema, eval, filter_from_xml, order_cmp, parse_query_string,
};
use crate::server::{ResultSet, Session, State};
use crate::xml_in::{
    Auth, Element, FunctionCall, Request, XmlError, check_all, check_bool, check_leaf,
    check_sequence, lenient_control, not_expected, parse_document, parse_request,
};
use crate::xml_out::{
    AuthEcho, ControlEcho, ErrorItem, Xml, control_failure, gateway_failure, operation_response,
    result, support_id,
};

/// A parsed, schema-valid function.
#[derive(Clone, Debug)]
enum Call {
    GetApiSession {
        locationid: Option<String>,
    },
    ReadByQuery {
        object: String,
        fields: String,
        query: String,
        pagesize: usize,
    },
    ReadMore {
        result_id: Option<String>,
        object: Option<String>,
    },
    Query(QueryCall),
    Read {
        object: String,
        keys: String,
        fields: String,
        by_name: bool,
    },
    Lookup {
        object: String,
    },
    ReadUserFormatting {
        key: String,
    },
    GetAccountBalances {
        period: Option<String>,
        enddate: Option<Element>,
        from_acct: Option<String>,
        to_acct: Option<String>,
        glaccountno: Option<String>,
        locationid: Option<String>,
        departmentid: Option<String>,
        showzero: bool,
        book: String,
    },
    /// A function the XSD knows but the simulator does not execute (writes, reports).
    Unsupported,
}

#[derive(Clone, Debug)]
struct QueryCall {
    /// `xml` (default), `json` or `csv`; the last two answer with bare data, no envelope.
    returnformat: String,
    object: String,
    select: Vec<String>,
    filter: Option<Element>,
    order: Vec<(String, bool)>,
    caseinsensitive: bool,
    showprivate: bool,
    pagesize: usize,
    offset: usize,
}

/// Functions the XSD defines that the simulator answers with a function failure instead.
const KNOWN_UNSUPPORTED: &[&str] = &[
    "create",
    "update",
    "delete",
    "inspect",
    "readReport",
    "readView",
    "readRelated",
    "getAuditTrail",
    "get_trialbalance",
    "get_accountbalancesbydimensions",
    "getDimensions",
    "installApp",
    "consolidate",
    "validate",
];

fn text_of(el: &Element, name: &str) -> Result<Option<String>, XmlError> {
    match el.child(name) {
        None => Ok(None),
        Some(c) => {
            check_leaf(c)?;
            Ok(Some(c.text.clone()))
        }
    }
}

fn int_facet(
    el: &Element,
    name: &str,
    min: i64,
    max: Option<i64>,
    default: i64,
) -> Result<i64, XmlError> {
    let Some(c) = el.child(name) else {
        return Ok(default);
    };
    check_leaf(c)?;
    let t = c.text.trim();
    let v: i64 = t.parse().map_err(|_| {
        XmlError::Schema(format!(
            "Element '{name}': '{t}' is not a valid value of the atomic type 'xs:integer'."
        ))
    })?;
    if v < min {
        return Err(XmlError::Schema(format!(
            "Element '{name}': [facet 'minInclusive'] The value '{v}' is less than the minimum value allowed ('{min}')."
        )));
    }
    if let Some(m) = max {
        if v > m {
            return Err(XmlError::Schema(format!(
                "Element '{name}': [facet 'maxInclusive'] The value '{v}' is greater than the maximum value allowed ('{m}')."
            )));
        }
    }
    Ok(v)
}

/// Schema validation and extraction of one function body.
fn parse_call(f: &FunctionCall) -> Result<Call, XmlError> {
    let el = &f.body;
    match el.name.as_str() {
        "getAPISession" => {
            if let Some(c) = el.children.iter().find(|c| c.name != "locationid") {
                return Err(not_expected(&c.name, &["locationid"]));
            }
            if el.children.len() > 1 {
                return Err(not_expected("locationid", &[]));
            }
            Ok(Call::GetApiSession {
                locationid: text_of(el, "locationid")?,
            })
        }
        "readByQuery" => {
            check_all(
                el,
                &[
                    ("object", true),
                    ("query", true),
                    ("pagesize", false),
                    ("fields", false),
                    ("returnFormat", false),
                    ("docparid", false),
                ],
            )?;
            // The XSD types pagesize as a string; the gateway enforces 1..1000 and answers with the same
            // schema error as for `query`.
            let pagesize = int_facet(el, "pagesize", 1, Some(1000), 100)? as usize;
            Ok(Call::ReadByQuery {
                object: text_of(el, "object")?.unwrap_or_default(),
                fields: text_of(el, "fields")?.unwrap_or_else(|| "*".into()),
                query: text_of(el, "query")?.unwrap_or_default(),
                pagesize,
            })
        }
        "readMore" => {
            let [c] = el.children.as_slice() else {
                return match el.children.get(1) {
                    Some(extra) => Err(not_expected(&extra.name, &[])),
                    None => Err(XmlError::Schema("Element 'readMore': Missing child element(s). Expected is one of ( object, view, reportId, resultId ).".into())),
                };
            };
            check_leaf(c)?;
            match c.name.as_str() {
                "resultId" => Ok(Call::ReadMore {
                    result_id: Some(c.text.trim().to_string()),
                    object: None,
                }),
                "object" => Ok(Call::ReadMore {
                    result_id: None,
                    object: Some(c.text.trim().to_string()),
                }),
                "view" | "reportId" => Ok(Call::Unsupported),
                other => Err(not_expected(
                    other,
                    &["object", "view", "reportId", "resultId"],
                )),
            }
        }
        "query" => {
            check_all(
                el,
                &[
                    ("select", true),
                    ("object", true),
                    ("docparid", false),
                    ("filter", false),
                    ("orderby", false),
                    ("options", false),
                    ("pagesize", false),
                    ("offset", false),
                ],
            )?;
            let sel = el.child("select").expect("checked");
            if sel.children.is_empty() {
                return Err(XmlError::Schema("Element 'select': Missing child element(s). Expected is one of ( field, count, avg, min, max, sum ).".into()));
            }
            let mut select = Vec::new();
            for c in &sel.children {
                check_leaf(c)?;
                match c.name.as_str() {
                    "field" => {
                        if c.text.trim() == "*" {
                            return Err(XmlError::Schema(
                                "Element 'field': '*' is not allowed in select; list the fields."
                                    .into(),
                            ));
                        }
                        select.push(c.text.trim().to_string());
                    }
                    "count" | "avg" | "min" | "max" | "sum" => {
                        select.push(format!("{}.{}", c.name.to_uppercase(), c.text.trim()))
                    }
                    other => {
                        return Err(not_expected(
                            other,
                            &["field", "count", "avg", "min", "max", "sum"],
                        ));
                    }
                }
            }
            let filter = match el.child("filter") {
                Some(fl) => {
                    check_filter_schema(fl)?;
                    Some(fl.children[0].clone())
                }
                None => None,
            };
            let mut order = Vec::new();
            if let Some(ob) = el.child("orderby") {
                check_sequence(ob, &[("order", 1, None)])?;
                for o in &ob.children {
                    check_sequence(
                        o,
                        &[
                            ("field", 1, Some(1)),
                            ("ascending", 0, Some(1)),
                            ("descending", 0, Some(1)),
                        ],
                    )?;
                    if o.child("ascending").is_some() && o.child("descending").is_some() {
                        return Err(not_expected("descending", &[]));
                    }
                    order.push((
                        o.child_text("field").unwrap_or("").trim().to_string(),
                        o.child("descending").is_some(),
                    ));
                }
            }
            let (mut ci, mut sp, mut rf) = (false, false, "xml".to_string());
            if let Some(opts) = el.child("options") {
                check_sequence(
                    opts,
                    &[
                        ("caseinsensitive", 0, Some(1)),
                        ("showprivate", 0, Some(1)),
                        ("returnformat", 0, Some(1)),
                    ],
                )?;
                if let Some(c) = opts.child("caseinsensitive") {
                    ci = check_bool(c)?;
                }
                if let Some(c) = opts.child("showprivate") {
                    sp = check_bool(c)?;
                }
                if let Some(c) = opts.child("returnformat") {
                    rf = c.text.trim().to_ascii_lowercase();
                }
            }
            Ok(Call::Query(QueryCall {
                object: text_of(el, "object")?.unwrap_or_default(),
                select,
                filter,
                order,
                caseinsensitive: ci,
                showprivate: sp,
                returnformat: rf,
                pagesize: int_facet(el, "pagesize", 1, Some(2000), 100)? as usize,
                offset: int_facet(el, "offset", 0, None, 0)? as usize,
            }))
        }
        "read" | "readByName" => {
            check_all(
                el,
                &[
                    ("object", true),
                    ("keys", true),
                    ("fields", false),
                    ("returnFormat", false),
                    ("docparid", false),
                ],
            )?;
            Ok(Call::Read {
                object: text_of(el, "object")?.unwrap_or_default(),
                keys: text_of(el, "keys")?.unwrap_or_default(),
                fields: text_of(el, "fields")?.unwrap_or_else(|| "*".into()),
                by_name: el.name == "readByName",
            })
        }
        "lookup" => {
            check_all(el, &[("object", true), ("docparid", false)])?;
            Ok(Call::Lookup {
                object: text_of(el, "object")?.unwrap_or_default(),
            })
        }
        "readUserFormatting" => {
            let [c] = el.children.as_slice() else {
                return Err(XmlError::Schema("Element 'readUserFormatting': Missing child element(s). Expected is one of ( key, userId ).".into()));
            };
            check_leaf(c)?;
            if c.name != "key" && c.name != "userId" {
                return Err(not_expected(&c.name, &["key", "userId"]));
            }
            Ok(Call::ReadUserFormatting {
                key: c.text.trim().to_string(),
            })
        }
        "get_accountbalances" => {
            // A simplified form of the XSD sequence covering the period, account and dimension filters.
            check_sequence(
                el,
                &[
                    ("reportingperiodname", 0, Some(1)),
                    ("startdate", 0, Some(1)),
                    ("enddate", 0, Some(1)),
                    ("glaccountno", 0, Some(1)),
                    ("accountgroupname", 0, Some(1)),
                    ("startaccountno", 0, Some(1)),
                    ("endaccountno", 0, Some(1)),
                    ("locationid", 0, Some(1)),
                    ("departmentid", 0, Some(1)),
                    ("showzerobalances", 0, Some(1)),
                    ("reportingbook", 0, Some(1)),
                    ("adjbooks", 0, Some(1)),
                    ("includereportingbook", 0, Some(1)),
                    ("statistical", 0, Some(1)),
                ],
            )?;
            let has_period = el.child("reportingperiodname").is_some();
            let has_dates = el.child("startdate").is_some() && el.child("enddate").is_some();
            if has_period == has_dates {
                return Err(XmlError::Schema(
                    "Element 'get_accountbalances': Missing child element(s). Expected is one of ( reportingperiodname, startdate ).".into(),
                ));
            }
            Ok(Call::GetAccountBalances {
                period: text_of(el, "reportingperiodname")?,
                enddate: el.child("enddate").cloned(),
                from_acct: text_of(el, "startaccountno")?,
                to_acct: text_of(el, "endaccountno")?,
                glaccountno: text_of(el, "glaccountno")?,
                locationid: text_of(el, "locationid")?.filter(|s| !s.trim().is_empty()),
                departmentid: text_of(el, "departmentid")?.filter(|s| !s.trim().is_empty()),
                showzero: el
                    .child_text("showzerobalances")
                    .map(|s| s.trim() == "true")
                    .unwrap_or(false),
                book: text_of(el, "reportingbook")?.unwrap_or_else(|| "ACCRUAL".into()),
            })
        }
        n if KNOWN_UNSUPPORTED.contains(&n) => Ok(Call::Unsupported),
        other => Err(not_expected(other, &[])),
    }
}

// ------------------------------------------------------------------------------ HTTP layer ----

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; encoding=\"UTF-8\""),
    );
    r
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    r
}

fn request_id() -> String {
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:04x}-{:04x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>()
    )
}

/// Frees a company's concurrency slot when the request ends (also if the client disconnects).
struct Slot {
    state: Arc<State>,
    company: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.state.in_flight.lock().expect("in-flight lock");
        if let Some(n) = m.get_mut(&self.company) {
            *n = n.saturating_sub(1);
        }
        drop(m);
        self.state
            .with_stats(|s| s.in_flight = s.in_flight.saturating_sub(1));
    }
}

fn try_acquire(state: &Arc<State>, company: &str) -> Option<Slot> {
    let mut m = state.in_flight.lock().expect("in-flight lock");
    let n = m.entry(company.to_ascii_uppercase()).or_insert(0);
    if *n >= state.cfg.max_concurrency {
        return None;
    }
    *n += 1;
    drop(m);
    state.with_stats(|s| {
        s.in_flight += 1;
        s.peak_concurrency = s.peak_concurrency.max(s.in_flight);
    });
    Some(Slot {
        state: state.clone(),
        company: company.to_ascii_uppercase(),
    })
}

async fn pause(d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// `POST /ia/xml/xmlgw.phtml`
pub async fn gateway(AxState(state): AxState<Arc<State>>, body: bytes::Bytes) -> Response {
    state.with_stats(|s| s.http_requests += 1);
    let fault = state.faults.lock().expect("faults lock").next_fault();
    if fault.is_some() {
        state.with_stats(|s| s.faults_injected += 1);
    }
    if let Some(resp) = transport_fault(fault.as_ref()) {
        return resp;
    }

    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return xml_response(
            StatusCode::BAD_REQUEST,
            gateway_failure(
                "GW-0011",
                &format!("Invalid Request [Request ID: {}]", request_id()),
            ),
        );
    }
    let root = match parse_document(&body) {
        Ok(r) => r,
        Err(e) => {
            return xml_response(
                StatusCode::OK,
                schema_failure(&state, &ControlEcho::default(), &e),
            );
        }
    };
    let lc = lenient_control(&root);
    let echo = ControlEcho {
        senderid: lc.senderid.clone(),
        controlid: lc.controlid.clone(),
        uniqueid: lc.uniqueid.clone(),
        dtdversion: lc.dtdversion.clone(),
    };
    let req = match parse_request(&root).and_then(|r| {
        let calls = r
            .operations
            .iter()
            .map(|op| {
                op.functions
                    .iter()
                    .map(parse_call)
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((r, calls))
    }) {
        Ok(r) => r,
        Err(e) => return xml_response(StatusCode::OK, schema_failure(&state, &echo, &e)),
    };
    let (req, calls) = req;

    // Gateway layer: empty credentials and unknown companies never reach the XML application.
    let company = match company_of(&state, &req) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let Some(_slot) = try_acquire(&state, &company) else {
        state.with_stats(|s| s.rejected_429 += 1);
        return xml_response(
            StatusCode::TOO_MANY_REQUESTS,
            gateway_failure(
                "GW-0010",
                &format!(
                    "Rate limit exceeded: too many concurrent requests for this company [Request ID: {}]",
                    request_id()
                ),
            ),
        );
    };
    pause(state.cfg.latency.per_request).await;
    // A slow answer keeps its concurrency slot busy, as a slow gateway would.
    if let Some(d) = fault.as_ref().and_then(Fault::extra_delay) {
        pause(d).await;
    }

    let pretty = req.control.includewhitespace;
    let (body, work, content_type) = execute(&state, &req, calls, &echo, pretty, fault.as_ref());
    let lat = &state.cfg.latency;
    pause(lat.per_function * work.functions as u32 + lat.per_record * work.records as u32).await;
    drop(_slot);

    match fault {
        Some(Fault::TruncatedXml) => {
            let cut = body.len() / 2;
            let mut cut_at = cut;
            while !body.is_char_boundary(cut_at) {
                cut_at -= 1;
            }
            xml_response(StatusCode::OK, body[..cut_at].to_string())
        }
        _ => {
            let mut r = xml_response(StatusCode::OK, body);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
    }
}

fn transport_fault(f: Option<&Fault>) -> Option<Response> {
    Some(match f? {
        Fault::Http500Empty => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        Fault::Http502Html => html_response(
            StatusCode::BAD_GATEWAY,
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n".into(),
        ),
        Fault::Http503Html => html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>".into(),
        ),
        Fault::Http524 => {
            let mut r = Response::new(Body::from("error code: 524"));
            *r.status_mut() = StatusCode::from_u16(524).expect("valid status");
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
            r
        }
        Fault::CloudflareHtml => html_response(
            StatusCode::from_u16(520).expect("valid status"),
            format!(
                "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>api.intacct.com | 520: Web server is returning an unknown error</title></head>\n<body><div id=\"cf-wrapper\"><div id=\"cf-error-details\" class=\"cf-error-details-wrapper\"><div class=\"cf-wrapper cf-header cf-error-overview\"><h1><span class=\"cf-error-type\">Error</span> <span class=\"cf-error-code\">520</span></h1></div><div class=\"cf-section\">Ray ID: <strong>{}</strong></div></div></div></body></html>\n",
                request_id()
            ),
        ),
        Fault::RateLimited => xml_response(
            StatusCode::TOO_MANY_REQUESTS,
            gateway_failure("GW-0010", &format!("Rate limit exceeded [Request ID: {}]", request_id())),
        ),
        Fault::MalformedXml => xml_response(
            StatusCode::OK,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response><control><status>success</status><senderid>".into(),
        ),
        Fault::DropConnection => {
            let stream = futures::stream::once(async { Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("connection dropped by fault injection")) });
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; encoding=\"UTF-8\""));
            r
        }
        _ => return None,
    })
}

fn schema_failure(state: &State, echo: &ControlEcho, e: &XmlError) -> String {
    let err = ErrorItem::new(
        "XL03000003",
        "",
        &format!("{} {}", e.message(), sid(state)),
        "",
    );
    control_failure(false, echo, &[err])
}

fn sid(_state: &State) -> String {
    support_id(rand::rng().random())
}

/// The company a request is for (the concurrency cap is per company), or the gateway's HTTP error.
#[allow(clippy::result_large_err)]
fn company_of(state: &State, req: &Request) -> Result<String, Response> {
    let op = req
        .operations
        .first()
        .expect("schema requires one operation");
    match &op.auth {
        Auth::Login {
            userid,
            companyid,
            password,
            ..
        } => {
            if userid.trim().is_empty() || companyid.trim().is_empty() || password.is_empty() {
                return Err(xml_response(
                    StatusCode::BAD_REQUEST,
                    gateway_failure(
                        "GW-0011",
                        &format!("Invalid Request [Request ID: {}]", request_id()),
                    ),
                ));
            }
            let company = companyid.split('|').next().unwrap_or("").trim().to_string();
            if state
                .cfg
                .gateway_unknown_companies
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&company))
            {
                return Err(xml_response(
                    StatusCode::UNAUTHORIZED,
                    gateway_failure(
                        "XMLGW_JPP0002",
                        "Sign-in information is incorrect. Please check your request.",
                    ),
                ));
            }
            Ok(company)
        }
        Auth::Session(id) => {
            if id.is_empty() {
                return Err(xml_response(
                    StatusCode::BAD_REQUEST,
                    gateway_failure(
                        "GW-0011",
                        &format!("Invalid Request [Request ID: {}]", request_id()),
                    ),
                ));
            }
            let sessions = state.sessions.lock().expect("sessions lock");
            Ok(sessions
                .get(id)
                .map(|s| s.company_id.clone())
                .unwrap_or_default())
        }
    }
}

/// Work done, for the per-function and per-record latency.
#[derive(Default)]
struct Work {
    functions: usize,
    records: usize,
}

/// Writes a result's `<data>` element once the response is rendered.
type DataWriter = Box<dyn FnOnce(&mut Xml)>;

struct Outcome {
    ok: bool,
    errors: Vec<ErrorItem>,
    data: Option<DataWriter>,
    records: usize,
    /// A bare body (content type, text) for `returnformat` json/csv.
    bare: Option<(&'static str, String)>,
}

impl Outcome {
    fn fail(errors: Vec<ErrorItem>) -> Self {
        Outcome {
            ok: false,
            errors,
            data: None,
            records: 0,
            bare: None,
        }
    }
    fn data(records: usize, f: impl FnOnce(&mut Xml) + 'static) -> Self {
        Outcome {
            ok: true,
            errors: vec![],
            data: Some(Box::new(f)),
            records,
            bare: None,
        }
    }
}

/// Who the request runs as, after authentication.
struct Principal {
    userid: String,
    companyid: String,
    locationid: String,
    timestamp: chrono::NaiveDateTime,
    timeout: chrono::NaiveDateTime,
    /// Authenticated with `<login>` (already counted as a login in the stats).
    via_login: bool,
}

fn execute(
    state: &Arc<State>,
    req: &Request,
    calls: Vec<Vec<Call>>,
    echo: &ControlEcho,
    pretty: bool,
    fault: Option<&Fault>,
) -> (String, Work, &'static str) {
    let cfg = &state.cfg;
    let mut work = Work::default();
    // Sender credentials: a control-level failure, nothing runs.
    let c = &req.control;
    let sender_ok = cfg
        .senders
        .get(&c.senderid)
        .is_some_and(|p| *p == c.password);
    let sender_unauthorized = cfg
        .unauthorized_senders
        .get(&c.senderid)
        .is_some_and(|p| *p == c.password);
    if !sender_ok && !sender_unauthorized {
        let e = ErrorItem::new(
            "XL03000006",
            "",
            "Incorrect Intacct XML Partner ID or password.",
            "",
        );
        return (control_failure(pretty, echo, &[e]), work, XML_CT);
    }
    if let Some(Fault::ControlError) = fault {
        let e = ErrorItem::new(
            "XL03000010",
            "",
            &format!(
                "The system is temporarily unable to process requests. {}",
                sid(state)
            ),
            "Please Try Again Later",
        );
        return (control_failure(pretty, echo, &[e]), work, XML_CT);
    }
    if let Some(p) = &c.policyid {
        let e = ErrorItem::new(
            "XL03000006",
            "",
            &format!("{p} is not a valid transport policy."),
            "",
        );
        return (control_failure(pretty, echo, &[e]), work, XML_CT);
    }
    // One operation is what every client sends; several are answered in order.
    let mut body_ops = Vec::new();
    for (op, calls) in req.operations.iter().zip(calls) {
        let principal = match authenticate(state, &op.auth, sender_unauthorized, &c.senderid, fault)
        {
            Ok(p) => p,
            Err(failure) => {
                let (auth, errors) = *failure;
                body_ops.push((auth, errors, Vec::new()));
                continue;
            }
        };
        let auth = AuthEcho {
            status_ok: true,
            userid: principal.userid.clone(),
            companyid: principal.companyid.clone(),
            locationid: Some(principal.locationid.clone()),
            sessiontimestamp: Some(state.clock.iso(principal.timestamp)),
            sessiontimeout: Some(state.clock.iso(principal.timeout)),
        };
        let mut outcomes = Vec::new();
        for (f, call) in op.functions.iter().zip(calls) {
            let name = f.body.name.clone();
            state.with_stats(|s| *s.requests_by_function.entry(name.clone()).or_insert(0) += 1);
            let out = match fault {
                Some(Fault::FunctionError) => Outcome::fail(vec![
                    ErrorItem::new(
                        "BL01001973",
                        "",
                        &format!("There was an error processing the request. {}", sid(state)),
                        "",
                    ),
                    ErrorItem::new("BL01001973", "", "Could not complete the function.", ""),
                ]),
                Some(Fault::ServiceOffline) => Outcome::fail(vec![ErrorItem::new(
                    "XL03000008",
                    "",
                    &format!("The Service is Temporarily Off-line {}", sid(state)),
                    "Please Try Again Later",
                )]),
                _ => run_call(state, &principal, &name, call, &c.senderid),
            };
            work.functions += 1;
            work.records += out.records;
            outcomes.push((f.controlid.clone(), name, out));
        }
        let any_failed = outcomes.iter().any(|(_, _, o)| !o.ok);
        let rolled_back = ErrorItem::new(
            "XL03000009",
            "",
            "The entire transaction in this operation has been rolled back due to an error.",
            "",
        );
        // json/csv: a lone successful query answers with the bare data (errors keep the envelope).
        if req.operations.len() == 1
            && outcomes.len() == 1
            && outcomes[0].2.ok
            && outcomes[0].2.bare.is_some()
        {
            let (_, _, out) = outcomes.pop().expect("one");
            state.with_stats(|s| s.records_returned += out.records as u64);
            let (ct, body) = out.bare.expect("checked");
            return (body, work, ct);
        }
        let mut results = Vec::new();
        for (cid, name, out) in outcomes {
            let (status, mut errors, data) = if op.transaction && any_failed {
                if out.ok {
                    ("aborted", vec![], None)
                } else {
                    ("failure", out.errors, None)
                }
            } else if out.ok {
                ("success", vec![], out.data)
            } else {
                ("failure", out.errors, out.data)
            };
            if op.transaction && any_failed {
                errors.push(rolled_back.clone());
            } else {
                state.with_stats(|s| s.records_returned += out.records as u64);
            }
            results.push(result(pretty, status, &name, &cid, &errors, |x| {
                if let Some(d) = data {
                    d(x)
                }
            }));
        }
        body_ops.push((auth, Vec::new(), results));
    }
    // Render: the writer supports one operation per response body helper; join several by hand.
    if body_ops.len() == 1 {
        let (auth, errors, results) = body_ops.pop().expect("one");
        return (
            operation_response(pretty, echo, &auth, &errors, &results),
            work,
            XML_CT,
        );
    }
    let mut out = String::new();
    for (i, (auth, errors, results)) in body_ops.into_iter().enumerate() {
        let doc = operation_response(pretty, echo, &auth, &errors, &results);
        let start = doc.find("<operation>").unwrap_or(0);
        let end = doc.rfind("</response>").unwrap_or(doc.len());
        if i == 0 {
            out.push_str(&doc[..end]);
        } else {
            out.push_str(&doc[start..end]);
        }
    }
    out.push_str("</response>");
    (out, work, XML_CT)
}

const XML_CT: &str = "text/xml; encoding=\"UTF-8\"";

/// `returnformat` json: an array of objects whose values are all strings.
fn bare_json(rows: &[Vec<(String, String)>]) -> String {
    let arr: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect()
        })
        .collect();
    serde_json::to_string(&arr).unwrap_or_else(|_| "[]".into())
}

/// `returnformat` csv: a header row, then one row per record (RFC 4180 quoting).
fn bare_csv(rows: &[Vec<(String, String)>], header: &[String]) -> String {
    let q = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut out = header.iter().map(|h| q(h)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|(_, v)| q(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

type AuthFailure = Box<(AuthEcho, Vec<ErrorItem>)>;

fn authenticate(
    state: &State,
    auth: &Auth,
    sender_unauthorized: bool,
    senderid: &str,
    fault: Option<&Fault>,
) -> Result<Principal, AuthFailure> {
    let cfg = &state.cfg;
    let now = state.clock.now();
    let lifetime =
        chrono::Duration::from_std(cfg.session_lifetime).unwrap_or(chrono::Duration::hours(2));
    let failed = |userid: &str, companyid: &str, e: ErrorItem| -> AuthFailure {
        Box::new((
            AuthEcho {
                status_ok: false,
                userid: userid.to_string(),
                companyid: companyid.to_string(),
                ..Default::default()
            },
            vec![e],
        ))
    };
    let sign_in = || ErrorItem::new("XL03000006", "", "Sign-in information is incorrect", "");
    match auth {
        Auth::Login {
            userid,
            companyid,
            password,
            locationid,
            ..
        } => {
            state.with_stats(|s| s.logins += 1);
            let mut parts = companyid.split('|');
            let company = parts.next().unwrap_or("").trim();
            let entity = parts
                .next()
                .map(str::trim)
                .map(str::to_string)
                .or_else(|| locationid.clone())
                .unwrap_or_default();
            if sender_unauthorized {
                return Err(failed(
                    userid,
                    companyid,
                    unauthorized_sender(senderid, company),
                ));
            }
            if matches!(fault, Some(Fault::AuthError))
                || !company.eq_ignore_ascii_case(&cfg.company_id)
                || *userid != cfg.user_id
                || *password != cfg.user_password
                || (!entity.is_empty() && !entity_exists(state, &entity))
            {
                return Err(failed(userid, companyid, sign_in()));
            }
            Ok(Principal {
                userid: userid.clone(),
                companyid: cfg.company_id.clone(),
                locationid: entity,
                timestamp: now,
                timeout: now + lifetime,
                via_login: true,
            })
        }
        Auth::Session(id) => {
            let mut sessions = state.sessions.lock().expect("sessions lock");
            let invalid = || {
                failed(
                    "",
                    "",
                    ErrorItem::new("XL03000006", "", "Invalid session. Please login again.", ""),
                )
            };
            let Some(s) = sessions.get_mut(id) else {
                return Err(invalid());
            };
            if s.expires < now {
                sessions.remove(id);
                return Err(invalid());
            }
            if sender_unauthorized {
                let company = s.company_id.clone();
                return Err(failed(
                    &s.user_id.clone(),
                    &company,
                    unauthorized_sender(senderid, &company),
                ));
            }
            if matches!(fault, Some(Fault::AuthError)) {
                return Err(invalid());
            }
            // Sliding expiry: every call pushes the timeout out again.
            s.expires = now + lifetime;
            Ok(Principal {
                userid: s.user_id.clone(),
                companyid: s.company_id.clone(),
                locationid: s.location_id.clone(),
                timestamp: now,
                timeout: s.expires,
                via_login: false,
            })
        }
    }
}

fn unauthorized_sender(senderid: &str, company: &str) -> ErrorItem {
    ErrorItem::new(
        "XL03000006",
        "Invalid Web Services Authorization",
        &format!(
            "The sender ID '{senderid}' is not authorized to make Web Services requests to company ID '{company}'."
        ),
        "Contact the company administrator to grant Web Services authorization to this sender ID.",
    )
}

fn entity_exists(state: &State, entity: &str) -> bool {
    let store = state.store.read().expect("store lock");
    let def = object_def("LOCATION").expect("LOCATION defined");
    let fi = def.field_index("LOCATIONID").expect("field");
    let mut found = false;
    store.scan(def, |r| found |= r.text(fi) == entity);
    found
}

// ------------------------------------------------------------------------------ functions ----

fn query_failed(state: &State, object: &str) -> Outcome {
    Outcome::fail(vec![ErrorItem::new(
        "Query Failed",
        "",
        &format!("Object definition {object} not found {}", sid(state)),
        "",
    )])
}

/// Permission checks shared by the read functions.
fn check_readable(state: &State, def: &ObjectDef, api_op: &str) -> Option<Outcome> {
    if def.kind == Kind::AuditHistory && !state.cfg.audit_history_readable {
        return Some(Outcome::fail(vec![ErrorItem {
            errorno: None,
            description: String::new(),
            description2: "You do not have permission to view audit history. Ask your administrator for View permission on Custom reports.".into(),
            correction: String::new(),
        }]));
    }
    if state
        .cfg
        .denied_objects
        .iter()
        .any(|o| o.eq_ignore_ascii_case(def.name))
    {
        return Some(Outcome::fail(vec![ErrorItem::new(
            "PL04000005",
            "",
            &format!(
                "You do not have permission for API operation {api_op} on objects of type {} {}",
                def.name.to_ascii_lowercase(),
                sid(state)
            ),
            "",
        )]));
    }
    None
}

/// Resolves a comma-separated field list (`*` or empty = all); unknown names fail like the gateway.
fn resolve_fields(def: &ObjectDef, list: &str) -> Result<Vec<usize>, String> {
    let list = list.trim();
    if list.is_empty() || list == "*" {
        return Ok((0..def.fields.len()).collect());
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match def.field_index(name) {
            Some(i) => out.push(i),
            None => bad.push(name.to_string()),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(bad.join(","))
    }
}

fn invalid_fields(state: &State, def: &ObjectDef, bad: &str) -> Outcome {
    Outcome::fail(vec![
        ErrorItem::new(
            &format!("Invalid fields list {bad}"),
            "",
            &format!(
                "Invalid field(s) {bad} for object {} {}",
                def.name,
                sid(state)
            ),
            "Check the field names with the lookup function.",
        ),
        // Real failures often add a generic follow-up error after the cause.
        ErrorItem::new(
            "BL01001973",
            "",
            &format!("Could not read {} records.", def.name.to_ascii_lowercase()),
            "",
        ),
    ])
}

/// Rows visible to the principal: at the top level, entity-private rows only with showprivate.
fn visible(p: &Principal, row: &RowRef<'_>, showprivate: bool) -> bool {
    if p.locationid.is_empty() && showprivate {
        return true;
    }
    let Some(fi) = row.def.field_index("MEGAENTITYID") else {
        return true;
    };
    match row.val(fi) {
        Val::Null => true,
        Val::Str(owner) => !p.locationid.is_empty() && owner == p.locationid.as_str(),
        _ => false,
    }
}

/// A page of rows rendered to owned values (the store lock is released before writing XML).
fn render_rows(
    store: &Store,
    def: &'static ObjectDef,
    keys: &[u64],
    fields: &[usize],
) -> Vec<Vec<(&'static str, String)>> {
    keys.iter()
        .filter_map(|k| store.get(def, *k))
        .map(|r| {
            fields
                .iter()
                .map(|fi| (def.fields[*fi].id, r.text(*fi).to_string()))
                .collect()
        })
        .collect()
}

fn write_rows(x: &mut Xml, tag: &str, rows: &[Vec<(&'static str, String)>]) {
    for r in rows {
        x.open(tag);
        for (k, v) in r {
            x.leaf(k, v);
        }
        x.close(tag);
    }
}

fn run_call(state: &Arc<State>, p: &Principal, name: &str, call: Call, senderid: &str) -> Outcome {
    let _ = senderid;
    match call {
        Call::GetApiSession { locationid } => get_api_session(state, p, locationid),
        Call::ReadByQuery {
            object,
            fields,
            query,
            pagesize,
        } => read_by_query(state, p, &object, &fields, &query, pagesize),
        Call::ReadMore { result_id, object } => read_more(state, result_id, object),
        Call::Query(q) => run_query(state, p, q),
        Call::Read {
            object,
            keys,
            fields,
            by_name,
        } => read_keys(state, &object, &keys, &fields, by_name),
        Call::Lookup { object } => lookup(state, &object),
        Call::ReadUserFormatting { key } => user_formatting(state, &key),
        Call::GetAccountBalances {
            period,
            enddate,
            from_acct,
            to_acct,
            glaccountno,
            locationid,
            departmentid,
            showzero,
            book,
        } => account_balances(
            state,
            period,
            enddate,
            from_acct,
            to_acct,
            glaccountno,
            locationid,
            departmentid,
            showzero,
            &book,
        ),
        Call::Unsupported => Outcome::fail(vec![ErrorItem::new(
            "XL03000005",
            "",
            &format!("The function {name} is not supported by this simulator."),
            "Use a read function (readByQuery, readMore, query, read, readByName, lookup).",
        )]),
    }
}

fn get_api_session(state: &Arc<State>, p: &Principal, locationid: Option<String>) -> Outcome {
    if !p.via_login {
        state.with_stats(|s| s.logins += 1);
    }
    let location = match locationid {
        Some(l) if !l.trim().is_empty() => {
            if !entity_exists(state, l.trim()) {
                return Outcome::fail(vec![ErrorItem::new(
                    "Get API Session Failed",
                    "",
                    &format!("Invalid location ID {} {}", l.trim(), sid(state)),
                    "",
                )]);
            }
            l.trim().to_string()
        }
        Some(_) => String::new(),
        None => p.locationid.clone(),
    };
    let id = format!(
        "{}{}..",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let now = state.clock.now();
    let lifetime = chrono::Duration::from_std(state.cfg.session_lifetime)
        .unwrap_or(chrono::Duration::hours(2));
    state.sessions.lock().expect("sessions lock").insert(
        id.clone(),
        Session {
            user_id: p.userid.clone(),
            company_id: p.companyid.clone(),
            location_id: location.clone(),
            expires: now + lifetime,
        },
    );
    let endpoint = state
        .cfg
        .advertised_endpoint
        .clone()
        .unwrap_or_else(|| state.endpoint.clone());
    Outcome::data(0, move |x| {
        x.open("data");
        x.open("api");
        x.leaf("sessionid", &id);
        x.leaf("endpoint", &endpoint);
        x.leaf("locationid", &location);
        x.close("api");
        x.close("data");
    })
}

fn read_by_query(
    state: &Arc<State>,
    p: &Principal,
    object: &str,
    fields: &str,
    query: &str,
    pagesize: usize,
) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    if let Some(o) = check_readable(state, def, "READ_BY_QUERY") {
        return o;
    }
    let fields = match resolve_fields(def, fields) {
        Ok(f) => f,
        Err(bad) => return invalid_fields(state, def, &bad),
    };
    let filter = match parse_query_string(def, query) {
        Ok(f) => f,
        Err(e) => {
            return Outcome::fail(vec![ErrorItem::new(
                "Query Failed",
                "",
                &format!("{} {}", e.0, sid(state)),
                "Check the query string syntax.",
            )]);
        }
    };
    let keys = {
        let store = state.store.read().expect("store lock");
        let mut keys = Vec::new();
        // Whether readByQuery hides entity-private rows from the top level is unconfirmed: it shows them.
        store.scan(def, |r| {
            if visible(p, &r, true) && filter.as_ref().is_none_or(|f| eval(f, &r, false)) {
                keys.push(r.key);
            }
        });
        keys
    };
    let set = ResultSet {
        object: def,
        keys,
        next: 0,
        fields,
        page_size: pagesize,
    };
    page_of(state, set)
}

/// Serves the next page of a result set, keeping it for readMore while rows remain.
fn page_of(state: &Arc<State>, mut set: ResultSet) -> Outcome {
    let total = set.keys.len();
    let end = (set.next + set.page_size).min(total);
    let page_keys = set.keys[set.next..end].to_vec();
    set.next = end;
    let remaining = total - end;
    let rows = {
        let store = state.store.read().expect("store lock");
        render_rows(&store, set.object, &page_keys, &set.fields)
    };
    let tag = set.object.lower_tag();
    let result_id = if remaining > 0 {
        let n = state
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!(
            "{}W-{}",
            7_765_623_000u64 + n,
            &uuid::Uuid::new_v4().simple().to_string()[..22]
        );
        let mut rs = state.results.lock().expect("results lock");
        rs.0.insert(id.clone(), set);
        rs.1.push_back(id.clone());
        // Bounded memory: the oldest result sets expire first (at most 64 sets and 16M keys, 128 MB).
        loop {
            let keys: usize = rs.0.values().map(|s| s.keys.len()).sum();
            if rs.1.len() <= 64 && keys <= 16_000_000 {
                break;
            }
            match rs.1.pop_front() {
                Some(old) => {
                    rs.0.remove(&old);
                }
                None => break,
            }
        }
        id
    } else {
        String::new()
    };
    let count = rows.len();
    Outcome::data(count, move |x| {
        let attrs = [
            ("listtype", tag.as_str()),
            ("count", &count.to_string()),
            ("totalcount", &total.to_string()),
            ("numremaining", &remaining.to_string()),
            ("resultId", result_id.as_str()),
        ];
        let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, *v)).collect();
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            write_rows(x, &tag, &rows);
            x.close("data");
        }
    })
}

fn read_more(state: &Arc<State>, result_id: Option<String>, object: Option<String>) -> Outcome {
    let set = {
        let mut rs = state.results.lock().expect("results lock");
        let id = match (&result_id, &object) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(obj)) => {
                rs.1.iter()
                    .rev()
                    .find(|id| {
                        rs.0.get(*id)
                            .is_some_and(|s| s.object.name.eq_ignore_ascii_case(obj))
                    })
                    .cloned()
            }
            _ => None,
        };
        id.and_then(|id| {
            rs.1.retain(|x| *x != id);
            rs.0.remove(&id)
        })
    };
    match set {
        Some(set) => page_of(state, set),
        None => Outcome::fail(vec![ErrorItem::new(
            "Invalid resultId",
            "",
            &format!(
                "Attempt to readMore with an invalid or expired resultId {} {}",
                result_id.or(object).unwrap_or_default(),
                sid(state)
            ),
            "Run the readByQuery again.",
        )]),
    }
}

fn run_query(state: &Arc<State>, p: &Principal, q: QueryCall) -> Outcome {
    let Some(def) = object_def(&q.object) else {
        return query_failed(state, q.object.trim());
    };
    if let Some(o) = check_readable(state, def, "READ_BY_QUERY") {
        return o;
    }
    // Plain fields and aggregates (`COUNT.RECORDNO`); unknown names fail the whole query.
    let mut plain = Vec::new();
    let mut aggs: Vec<(String, usize)> = Vec::new();
    let mut bad = Vec::new();
    for s in &q.select {
        let (agg, name) = match s.split_once('.') {
            Some((a, n))
                if matches!(a, "COUNT" | "SUM" | "AVG" | "MIN" | "MAX")
                    && q.select.iter().any(|x| x == s)
                    && def.field_index(s).is_none() =>
            {
                (Some(a), n)
            }
            _ => (None, s.as_str()),
        };
        match (agg, def.field_index(name)) {
            (Some(a), Some(i)) => aggs.push((a.to_string(), i)),
            (None, Some(i)) => plain.push(i),
            (_, None) => bad.push(name.to_string()),
        }
    }
    if !bad.is_empty() {
        return invalid_fields(state, def, &bad.join(","));
    }
    let filter = match q
        .filter
        .as_ref()
        .map(|f| filter_from_xml(def, f))
        .transpose()
    {
        Ok(mut f) => {
            if let Some(f) = f.as_mut() {
                crate::query_eval::prepare(f, def);
            }
            f
        }
        Err(e) => {
            return Outcome::fail(vec![ErrorItem::new(
                "Query Failed",
                "",
                &format!("{} {}", e.0, sid(state)),
                "",
            )]);
        }
    };
    let mut order = Vec::new();
    for (name, desc) in &q.order {
        match def.field_index(name) {
            Some(i) => order.push((i, *desc)),
            None => return invalid_fields(state, def, name),
        }
    }
    let desc: Vec<bool> = order.iter().map(|(_, d)| *d).collect();
    let store = state.store.read().expect("store lock");
    let mut hits: Vec<(Vec<Val<'static>>, u64)> = Vec::new();
    store.scan(def, |r| {
        if visible(p, &r, q.showprivate)
            && filter
                .as_ref()
                .is_none_or(|f: &Filter| eval(f, &r, q.caseinsensitive))
        {
            let keyvals = order.iter().map(|(i, _)| r.val(*i).into_owned()).collect();
            hits.push((keyvals, r.key));
        }
    });
    if !order.is_empty() {
        let by = |a: &(Vec<Val<'static>>, u64), b: &(Vec<Val<'static>>, u64)| {
            order_cmp(&a.0, &b.0, &desc, q.caseinsensitive).then(a.1.cmp(&b.1))
        };
        // Only the rows up to the end of the requested page need a full sort.
        let need = q.offset.saturating_add(q.pagesize);
        if aggs.is_empty() && need < hits.len() {
            hits.select_nth_unstable_by(need, by);
            hits[..need].sort_by(by);
        } else {
            hits.sort_by(by);
        }
    }
    let rows: Vec<Vec<(String, String)>> = if aggs.is_empty() {
        let keys: Vec<u64> = hits.iter().map(|h| h.1).collect();
        let rows = render_rows(
            &store,
            def,
            &keys[q.offset.min(keys.len())..(q.offset + q.pagesize).min(keys.len())],
            &plain,
        );
        rows.into_iter()
            .map(|r| r.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            .collect()
    } else {
        aggregate(
            &store,
            def,
            &hits.iter().map(|h| h.1).collect::<Vec<_>>(),
            &plain,
            &aggs,
        )
    };
    drop(store);
    let total = if aggs.is_empty() {
        hits.len()
    } else {
        rows.len()
    };
    let rows: Vec<_> = if aggs.is_empty() {
        rows
    } else {
        rows.into_iter().skip(q.offset).take(q.pagesize).collect()
    };
    let count = rows.len();
    let remaining = total.saturating_sub(q.offset + count);
    let offset = q.offset;
    let tag = def.name;
    let bare = match q.returnformat.as_str() {
        "json" => Some(("application/json", bare_json(&rows))),
        "csv" => {
            let header: Vec<String> = plain
                .iter()
                .map(|i| def.fields[*i].id.to_string())
                .chain(
                    aggs.iter()
                        .map(|(a, i)| format!("{a}.{}", def.fields[*i].id)),
                )
                .collect();
            Some(("text/csv", bare_csv(&rows, &header)))
        }
        _ => None,
    };
    let mut out = Outcome::data(count, move |x| {
        let (c, t, o, r) = (
            count.to_string(),
            total.to_string(),
            offset.to_string(),
            remaining.to_string(),
        );
        let attrs = [
            ("listtype", tag),
            ("totalcount", t.as_str()),
            ("offset", o.as_str()),
            ("count", c.as_str()),
            ("numremaining", r.as_str()),
        ];
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            for row in &rows {
                x.open(tag);
                for (k, v) in row {
                    x.leaf(k, v);
                }
                x.close(tag);
            }
            x.close("data");
        }
    });
    out.bare = bare;
    out
}

/// `query` aggregates, grouped by the selected plain fields; elements named `COUNT.FIELD` etc.
fn aggregate(
    store: &Store,
    def: &'static ObjectDef,
    keys: &[u64],
    plain: &[usize],
    aggs: &[(String, usize)],
) -> Vec<Vec<(String, String)>> {
    use rust_decimal::Decimal;
    // Per group and aggregate: (non-null count, min, max, sum).
    type Acc = (u64, Option<Decimal>, Option<Decimal>, Decimal);
    let mut groups: BTreeMap<Vec<String>, Vec<Acc>> = BTreeMap::new();
    for k in keys {
        let Some(r) = store.get(def, *k) else {
            continue;
        };
        let g: Vec<String> = plain.iter().map(|i| r.text(*i).to_string()).collect();
        let acc = groups
            .entry(g)
            .or_insert_with(|| vec![(0, None, None, Decimal::ZERO); aggs.len()]);
        for (slot, (_, fi)) in acc.iter_mut().zip(aggs) {
            let t = r.text(*fi);
            if t.is_empty() {
                continue;
            }
            slot.0 += 1;
            if let Ok(d) = t.parse::<Decimal>() {
                slot.1 = Some(slot.1.map_or(d, |m: Decimal| m.min(d)));
                slot.2 = Some(slot.2.map_or(d, |m: Decimal| m.max(d)));
                slot.3 += d;
            }
        }
    }
    groups
        .into_iter()
        .map(|(g, acc)| {
            let mut row: Vec<(String, String)> = plain
                .iter()
                .zip(g)
                .map(|(i, v)| (def.fields[*i].id.to_string(), v))
                .collect();
            for ((a, fi), (n, mn, mx, sum)) in aggs.iter().zip(acc) {
                let v = match a.as_str() {
                    "COUNT" => n.to_string(),
                    "SUM" => sum.to_string(),
                    "AVG" if n > 0 => (sum / Decimal::from(n))
                        .round_dp(10)
                        .normalize()
                        .to_string(),
                    "MIN" => mn.map(|d| d.to_string()).unwrap_or_default(),
                    "MAX" => mx.map(|d| d.to_string()).unwrap_or_default(),
                    _ => String::new(),
                };
                row.push((format!("{a}.{}", def.fields[*fi].id), v));
            }
            row
        })
        .collect()
}

fn read_keys(state: &Arc<State>, object: &str, keys: &str, fields: &str, by_name: bool) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    if let Some(o) = check_readable(state, def, if by_name { "READ_BY_NAME" } else { "READ" }) {
        return o;
    }
    let fields = match resolve_fields(def, fields) {
        Ok(f) => f,
        Err(bad) => return invalid_fields(state, def, &bad),
    };
    let wanted: Vec<String> = keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let store = state.store.read().expect("store lock");
    let found: Vec<u64> = if by_name {
        let ni = def.field_index(def.name_field).unwrap_or(0);
        let mut out = Vec::new();
        store.scan(def, |r| {
            if wanted.iter().any(|w| w == r.text(ni)) {
                out.push(r.key);
            }
        });
        out
    } else {
        wanted
            .iter()
            .filter_map(|k| k.parse::<u64>().ok())
            .filter(|k| store.get(def, *k).is_some())
            .collect()
    };
    let rows = render_rows(&store, def, &found, &fields);
    drop(store);
    let count = rows.len();
    let tag = def.name;
    Outcome::data(count, move |x| {
        let c = count.to_string();
        let attrs = [("listtype", tag), ("count", c.as_str())];
        if count == 0 {
            x.empty_attrs("data", &attrs);
        } else {
            x.open_attrs("data", &attrs);
            write_rows(x, tag, &rows);
            x.close("data");
        }
    })
}

fn lookup(state: &Arc<State>, object: &str) -> Outcome {
    let Some(def) = object_def(object) else {
        return query_failed(state, object.trim());
    };
    // lookup succeeds even without read permission (Estuary's observation).
    Outcome::data(0, move |x| {
        x.open_attrs("data", &[("listtype", "All"), ("count", "1")]);
        x.open_attrs("Type", &[("Name", def.name), ("DocumentType", "")]);
        x.open("Fields");
        for f in def.fields {
            x.open("Field");
            x.leaf("ID", f.id);
            x.leaf("LABEL", f.label);
            x.leaf("DESCRIPTION", f.label);
            x.leaf("REQUIRED", if f.required { "true" } else { "false" });
            x.leaf("READONLY", if f.readonly { "true" } else { "false" });
            x.leaf("DATATYPE", f.ty.lookup_name());
            x.leaf("ISCUSTOM", if f.custom { "true" } else { "false" });
            if !f.valid.is_empty() {
                x.open("VALIDVALUES");
                for (_, v) in f.valid {
                    x.leaf("VALIDVALUE", v);
                }
                x.close("VALIDVALUES");
            }
            x.close("Field");
        }
        x.close("Fields");
        x.open("Relationships");
        x.close("Relationships");
        x.close("Type");
        x.close("data");
    })
}

fn user_formatting(state: &Arc<State>, key: &str) -> Outcome {
    let def = object_def("USERINFO").expect("USERINFO defined");
    let store = state.store.read().expect("store lock");
    let login_i = def.field_index("LOGINID").expect("field");
    let mut found = false;
    store.scan(def, |r| {
        found |= r.key.to_string() == key || r.text(login_i) == key
    });
    drop(store);
    if !found {
        return Outcome::fail(vec![ErrorItem::new(
            "BL01001973",
            "",
            &format!("User {key} not found {}", sid(state)),
            "",
        )]);
    }
    let gmt = state.clock.offset_hours();
    Outcome::data(1, move |x| {
        x.open("data");
        x.open("userformatting");
        x.leaf("locale", "en_US");
        x.leaf("dateformat", "/mdY");
        x.leaf("clock", "24");
        x.leaf("gmtoffset", &format!("{gmt}"));
        x.leaf("currencyformat", "USD");
        x.close("userformatting");
        x.close("data");
    })
}

#[allow(clippy::too_many_arguments)]
fn account_balances(
    state: &Arc<State>,
    period: Option<String>,
    enddate: Option<Element>,
    from_acct: Option<String>,
    to_acct: Option<String>,
    glaccountno: Option<String>,
    locationid: Option<String>,
    departmentid: Option<String>,
    showzero: bool,
    book: &str,
) -> Outcome {
    let store = state.store.read().expect("store lock");
    let generator = store.gen_ref().clone();
    drop(store);
    let p = match (&period, &enddate) {
        (Some(name), _) => generator.period_index(name),
        (None, Some(e)) => {
            let (y, m) = (
                e.child_text("year").unwrap_or("").trim().to_string(),
                e.child_text("month").unwrap_or("").trim().to_string(),
            );
            (0..generator.size.periods).find(|p| {
                let n = generator.period_name(*p);
                n.ends_with(&y)
                    && month_number(&n)
                        .is_some_and(|mm| mm.to_string() == m.trim_start_matches('0'))
            })
        }
        _ => None,
    };
    let Some(p) = p else {
        return Outcome::fail(vec![ErrorItem::new(
            "GL-0493",
            "",
            &format!(
                "Invalid reporting period {} {}",
                period.unwrap_or_default(),
                sid(state)
            ),
            "Use an existing reporting period name such as 'Month Ended January 2026'.",
        )]);
    };
    if !book.eq_ignore_ascii_case("ACCRUAL") {
        return Outcome::data(0, |x| {
            x.empty_attrs("data", &[("listtype", "accountbalance"), ("count", "0")]);
        });
    }
    let accts = generator.count(Kind::GlAccount);
    let nd = generator.count(Kind::Department).max(1);
    let nl = generator.count(Kind::Location).max(1);
    let mut rows = Vec::new();
    for a in 0..accts {
        let (no, ..) = generator.account(a);
        let n: u64 = no.parse().unwrap_or(0);
        if glaccountno.as_ref().is_some_and(|g| g.trim() != no)
            || from_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|f| n < f)
            || to_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|t| n > t)
        {
            continue;
        }
        let (mut open, mut dr, mut cr, mut end) = (0i64, 0i64, 0i64, 0i64);
        for d in 0..nd {
            if departmentid
                .as_ref()
                .is_some_and(|x| *x != generator.department(d).0)
            {
                continue;
            }
            for l in 0..nl {
                if locationid
                    .as_ref()
                    .is_some_and(|x| x != generator.location(l).0)
                {
                    continue;
                }
                let (o, dd, cc, e) = generator.balance(p, a, d, l);
                open += o;
                dr += dd;
                cr += cc;
                end += e;
            }
        }
        if !showzero && open == 0 && dr == 0 && cr == 0 {
            continue;
        }
        let m = |c: i64| rust_decimal::Decimal::new(c, 2).to_string();
        rows.push(vec![
            ("glaccountno", no),
            ("startbalance", m(open)),
            ("debits", m(dr)),
            ("credits", m(cr)),
            ("adjdebits", m(0)),
            ("adjcredits", m(0)),
            ("endbalance", m(end)),
            ("currency", "USD".to_string()),
            ("reportingbook", "ACCRUAL".to_string()),
        ]);
    }
    let count = rows.len();
    Outcome::data(count, move |x| {
        let c = count.to_string();
        x.open_attrs(
            "data",
            &[("listtype", "accountbalance"), ("count", c.as_str())],
        );
        for r in &rows {
            x.open("accountbalance");
            for (k, v) in r {
                x.leaf(k, v);
            }
            x.close("accountbalance");
        }
        x.close("data");
    })
}

fn month_number(period_name: &str) -> Option<u32> {
    const M: &[&str] = &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    M.iter()
        .position(|m| period_name.contains(m))
        .map(|i| i as u32 + 1)
}

/// Current simulated time as an Intacct timestamp (used by admin).
pub fn now_ts(state: &State) -> String {
    fmt_ts(state.clock.now())
}
