//! Runs the functions of each operation of an accepted request and renders the response document:
//! control-level failures, per-operation authentication, injected function faults, transactions.

use super::session::authenticate;
use super::*;

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
            let own = match fault {
                None => state
                    .faults
                    .lock()
                    .expect("faults lock")
                    .next_function_fault(),
                Some(_) => None,
            };
            if own.is_some() {
                state.with_stats(|s| s.faults_injected += 1);
            }
            let out = match fault.or(own.as_ref()) {
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
