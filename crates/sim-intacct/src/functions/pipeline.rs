//! The HTTP handler: transport faults, gateway errors, the concurrency slot, sender check,
//! authentication and sessions, then the functions of each operation.

use super::parse::parse_call;
use super::*;

// ------------------------------------------------------------------------------ HTTP layer ----

pub(super) fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; encoding=\"UTF-8\""),
    );
    r
}

pub(super) fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    r
}

pub(super) fn request_id() -> String {
    let mut rng = rand::rng();
    format!(
        "{:08x}-{:04x}-{:04x}",
        rng.random::<u32>(),
        rng.random::<u16>(),
        rng.random::<u16>()
    )
}

/// Frees a company's concurrency slot when the request ends (also if the client disconnects).
pub(super) struct Slot {
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

pub(super) fn try_acquire(state: &Arc<State>, company: &str) -> Option<Slot> {
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

pub(super) async fn pause(d: std::time::Duration) {
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
    // The configured latency is the service's response time as a client sees it, its own work
    // included (real Intacct's query time is part of its latency): the simulator's work is done
    // inside it, and the slot stays busy until it has passed.
    // A slow answer (an injected fault, on top of the latency) keeps its concurrency slot busy, as
    // a slow gateway would.
    if let Some(d) = fault.as_ref().and_then(Fault::extra_delay) {
        pause(d).await;
    }
    let started = tokio::time::Instant::now();

    let pretty = req.control.includewhitespace;
    let (body, work, content_type) = execute(&state, &req, calls, &echo, pretty, fault.as_ref());
    let lat = &state.cfg.latency;
    let response_time = lat.per_request
        + lat.per_function * work.functions as u32
        + lat.per_record * work.records as u32;
    pause(response_time.saturating_sub(started.elapsed())).await;
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

pub(super) fn transport_fault(f: Option<&Fault>) -> Option<Response> {
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

pub(super) fn schema_failure(state: &State, echo: &ControlEcho, e: &XmlError) -> String {
    let err = ErrorItem::new(
        "XL03000003",
        "",
        &format!("{} {}", e.message(), sid(state)),
        "",
    );
    control_failure(false, echo, &[err])
}

/// The company a request is for (the concurrency cap is per company), or the gateway's HTTP error.
#[allow(clippy::result_large_err)]
pub(super) fn company_of(state: &State, req: &Request) -> Result<String, Response> {
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

pub(super) fn execute(
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
                _ => run_call(state, &principal, &name, call),
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

pub(super) const XML_CT: &str = "text/xml; encoding=\"UTF-8\"";

/// `returnformat` json: an array of objects whose values are all strings.
pub(super) fn bare_json(rows: &[Vec<(String, String)>]) -> String {
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
pub(super) fn bare_csv(rows: &[Vec<(String, String)>], header: &[String]) -> String {
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

pub(super) type AuthFailure = Box<(AuthEcho, Vec<ErrorItem>)>;

pub(super) fn authenticate(
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

pub(super) fn unauthorized_sender(senderid: &str, company: &str) -> ErrorItem {
    ErrorItem::new(
        "XL03000006",
        "Invalid Web Services Authorization",
        &format!(
            "The sender ID '{senderid}' is not authorized to make Web Services requests to company ID '{company}'."
        ),
        "Contact the company administrator to grant Web Services authorization to this sender ID.",
    )
}

pub(super) fn entity_exists(state: &State, entity: &str) -> bool {
    let store = state.store.read().expect("store lock");
    let def = object_def("LOCATION").expect("LOCATION defined");
    let fi = def.field_index("LOCATIONID").expect("field");
    let mut found = false;
    store.scan(def, |r| found |= r.text(fi) == entity);
    found
}
