//! The HTTP handler: transport faults, gateway errors, the per-company concurrency slot and the
//! latency, around [`execute`](super::execute), which answers the request itself.

use super::execute::execute;
use super::parse::parse_call;
use super::*;

pub(super) fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(XML_CT));
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
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XML_CT));
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
