//! The codec against documents typed from the reference's examples (tests/fixtures).

use ml_intacct::protocol::{
    Auth, DecodeError, Envelope, Filter, Function, FunctionCall, Query, Status, decode_response,
    decode_response_streaming,
};
use ml_intacct::{ErrorKind, ErrorLevel, IntacctError, classify_exchange};

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn classify(status: u16, name: &str) -> IntacctError {
    classify_exchange(status, &fixture(name)).expect_err("fixture is an error document")
}

#[test]
fn session_response_decodes_with_timeouts_and_endpoint() {
    let r = decode_response(&fixture("session_success.xml")).unwrap();
    assert_eq!(r.control.status, Status::Success);
    assert_eq!(r.control.control_id, "sessionProvider");
    let op = r.operation.unwrap();
    let a = &op.authentication;
    assert_eq!(a.status, Status::Success);
    assert_eq!(a.company_id, "ACME");
    assert_eq!(a.location_id.as_deref(), Some(""));
    let (ts, to) = (a.session_timestamp.unwrap(), a.session_timeout.unwrap());
    assert_eq!((to - ts).num_hours(), 6);
    assert_eq!(ts.offset().local_minus_utc(), -7 * 3600);
    let res = &op.results[0];
    assert_eq!(res.function, "getAPISession");
    let api = &res.records[0];
    assert_eq!(api.get("sessionid"), Some("opaque-session-abc.."));
    assert_eq!(
        api.get("endpoint"),
        Some("https://na12.intacct.com/ia/xml/xmlgw.phtml")
    );
    assert_eq!(api.get("locationid"), Some(""));
}

#[test]
fn older_session_response_without_timeout_or_location() {
    let r = decode_response(&fixture("session_no_timeout.xml")).unwrap();
    let a = r.operation.unwrap().authentication;
    assert!(a.session_timestamp.is_some());
    assert!(a.session_timeout.is_none());
    assert!(a.location_id.is_none());
}

#[test]
fn query_page_has_attributes_and_uppercase_records() {
    let r = decode_response(&fixture("query_glaccount.xml")).unwrap();
    let res = &r.operation.unwrap().results[0];
    let d = res.data.as_ref().unwrap();
    assert_eq!(d.list_type.as_deref(), Some("GLACCOUNT"));
    assert_eq!(
        (d.count, d.total_count, d.num_remaining, d.offset),
        (Some(2), Some(18), Some(16), Some(0))
    );
    assert_eq!(d.result_id, None);
    assert_eq!(res.records.len(), 2);
    assert_eq!(res.records[0].get("TITLE"), Some("Cash"));
    assert_eq!(res.records[1].get("WHENMODIFIED"), Some(""));
    assert_eq!(res.records[1].get("NOPE"), None);
}

#[test]
fn read_by_query_page_has_result_id_and_lowercase_records() {
    let r = decode_response(&fixture("readbyquery_project.xml")).unwrap();
    let res = &r.operation.unwrap().results[0];
    let d = res.data.as_ref().unwrap();
    assert_eq!(
        d.result_id.as_deref(),
        Some("7765623336W-ne68CoA4gAAEEhD7EAAAAP4")
    );
    assert_eq!(d.num_remaining, Some(33));
    assert_eq!(
        res.records[0].get("PARENTID"),
        Some(""),
        "self-closed element = empty value"
    );
    assert_eq!(
        res.records[1].get("PARENTID"),
        None,
        "absent element = absent field"
    );
    assert_eq!(
        res.records[1].get("name"),
        Some("Board"),
        "case-insensitive fallback"
    );
}

#[test]
fn control_failure_with_support_id() {
    let r = decode_response(&fixture("control_schema_error.xml")).unwrap();
    assert_eq!(r.control.status, Status::Failure);
    assert!(r.operation.is_none());
    assert_eq!(r.errors[0].support_id.as_deref(), Some("p5rxS~YxAbC"));
    let e = classify(200, "control_schema_error.xml");
    assert_eq!(
        (e.level, e.kind.clone(), e.retryable),
        (ErrorLevel::Control, ErrorKind::SchemaError, false)
    );
    assert_eq!(e.support_id(), Some("p5rxS~YxAbC"));
    assert!(e.to_string().contains("Support ID p5rxS~YxAbC"), "{e}");
}

#[test]
fn gateway_http_error_bodies() {
    let e = classify(401, "http401_jpp0002.xml");
    assert_eq!(
        (e.kind.clone(), e.http_status, e.retryable),
        (ErrorKind::SignInIncorrect, Some(401), false)
    );
    assert_eq!(e.errorno(), Some("XMLGW_JPP0002"));
    assert!(
        e.to_string().contains("Sign-in information is incorrect"),
        "{e}"
    );

    let e = classify(400, "http400_gw0011.xml");
    assert_eq!(
        (e.kind.clone(), e.http_status),
        (ErrorKind::SignInIncorrect, Some(400))
    );
    assert_eq!(e.errors[0].request_id.as_deref(), Some("0a1b2c3d"));

    let e = classify(429, "http429_gw0010.xml");
    assert_eq!(
        (e.kind.clone(), e.retryable),
        (ErrorKind::RateLimited, true)
    );
}

#[test]
fn demo_expired_with_stripped_control() {
    let r = decode_response(&fixture("demo_expired.xml")).unwrap();
    assert_eq!(r.control.sender_id, "");
    assert_eq!(r.control.unique_id, "");
    let e = classify(200, "demo_expired.xml");
    assert_eq!(e.kind, ErrorKind::DemoExpired);
    assert!(e.to_string().contains("expired demo company"), "{e}");
}

#[test]
fn authentication_failures() {
    let e = classify(200, "auth_signin_incorrect.xml");
    assert_eq!(
        (e.level, e.kind.clone()),
        (ErrorLevel::Authentication, ErrorKind::SignInIncorrect)
    );
    assert!(e.to_string().contains("password"), "{e}");

    let e = classify(200, "auth_invalid_session.xml");
    assert!(e.is_invalid_session());
    assert_eq!(e.support_id(), Some("Ab@Cd"));

    let e = classify(200, "auth_sender_not_authorized.xml");
    assert_eq!(e.kind, ErrorKind::SenderNotAuthorized);
    assert!(
        e.to_string()
            .contains("Company > Setup > Company > Security > Web Services authorizations"),
        "{e}"
    );
}

#[test]
fn function_failures_are_left_in_the_results() {
    let r = classify_exchange(200, &fixture("function_permission_denied.xml")).unwrap();
    let res = &r.operation.unwrap().results[0];
    assert_eq!(res.status, Status::Failure);
    let e = IntacctError::from_gateway(ErrorLevel::Function, res.errors.clone(), None);
    assert!(e.is_permission_denied());
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
    assert!(
        e.to_string().contains("Grant the web services user's role"),
        "{e}"
    );

    let r = decode_response(&fixture("audit_history_denied.xml")).unwrap();
    let res = &r.operation.unwrap().results[0];
    assert_eq!(res.errors[0].errorno, "");
    let e = IntacctError::from_gateway(ErrorLevel::Function, res.errors.clone(), None);
    assert!(e.is_audit_history_denied());
}

#[test]
fn aborted_transaction_and_failed_result_with_data() {
    let r = decode_response(&fixture("transaction_aborted.xml")).unwrap();
    let results = r.operation.unwrap().results;
    assert_eq!(results[0].status, Status::Aborted);
    assert_eq!(results[1].status, Status::Failure);
    assert_eq!(
        results[1].data.as_ref().unwrap().count,
        Some(1),
        "a failed result may still carry data"
    );
    let e = IntacctError::from_gateway(ErrorLevel::Function, results[0].errors.clone(), None);
    assert_eq!(e.kind, ErrorKind::TransactionAborted);
    assert_eq!(results[1].errors.len(), 2);
}

#[test]
fn several_errors_and_free_text_errorno() {
    let r = decode_response(&fixture("multiple_errors.xml")).unwrap();
    let errs = &r.operation.unwrap().results[0].errors;
    assert_eq!(
        errs.iter().map(|e| e.errorno.as_str()).collect::<Vec<_>>(),
        ["BL34000061", "BL01001973"]
    );
    assert_eq!(errs[0].correction, "Use a unique value instead.");
    let e = IntacctError::from_gateway(ErrorLevel::Function, errs.clone(), None);
    let msg = e.to_string();
    assert!(
        msg.contains("already exists") && msg.contains("Could not create project record!"),
        "{msg}"
    );

    let r = decode_response(&fixture("free_text_errorno.xml")).unwrap();
    let errs = &r.operation.unwrap().results[0].errors;
    assert_eq!(errs[0].errorno, "Query Failed");
    let e = IntacctError::from_gateway(ErrorLevel::Function, errs.clone(), None);
    assert_eq!(e.kind, ErrorKind::ObjectNotFound);
}

#[test]
fn empty_data_has_no_records() {
    let r = decode_response(&fixture("empty_data.xml")).unwrap();
    let res = &r.operation.unwrap().results[0];
    let d = res.data.as_ref().unwrap();
    assert_eq!(
        (d.count, d.num_remaining, d.result_id.as_deref()),
        (Some(0), Some(0), Some(""))
    );
    assert!(res.records.is_empty());
}

#[test]
fn lookup_definition() {
    let r = decode_response(&fixture("lookup_glbatch.xml")).unwrap();
    let def = r.operation.unwrap().results[0].definition.clone().unwrap();
    assert_eq!(def.name, "GLBATCH");
    assert_eq!(def.fields.len(), 3);
    assert_eq!(def.fields[0].data_type, "INTEGER");
    assert_eq!(def.fields[1].valid_values, ["Draft", "Posted"]);
    assert!(def.fields[1].read_only);
    assert!(def.fields[2].is_custom);
    assert_eq!(
        def.relationships[0].get("RELATIONSHIPTYPE"),
        Some("MANY2ONE")
    );
}

#[test]
fn escaped_text_cdata_and_nested_fields() {
    let r = decode_response(&fixture("entities.xml")).unwrap();
    let rec = &r.operation.unwrap().results[0].records[0];
    assert_eq!(rec.get("NAME"), Some("Jane's Deli & Bar"));
    assert_eq!(rec.get("NOTE"), Some("<out> \u{263A} \"q\""));
    assert_eq!(rec.get("MEMO"), Some("raw <b>"));
    assert_eq!(rec.get("DISPLAYCONTACT.EMAIL1"), Some("a@b.c"));
    assert_eq!(rec.get("DISPLAYCONTACT"), None);
    assert_eq!(rec.get("EMPTY"), Some(""));
}

#[test]
fn user_formatting_record() {
    let r = decode_response(&fixture("user_formatting.xml")).unwrap();
    let rec = &r.operation.unwrap().results[0].records[0];
    assert_eq!(rec.get("dateformat"), Some("/mdY"));
    assert_eq!(rec.get("clock"), Some("24"));
}

#[test]
fn acknowledgement_is_not_a_synchronous_answer() {
    let r = decode_response(&fixture("acknowledgement.xml")).unwrap();
    assert_eq!(r.acknowledgement, Some(Status::Success));
    assert!(classify_exchange(200, &fixture("acknowledgement.xml")).is_err());
}

#[test]
fn html_and_plain_text_and_truncation_are_typed_and_retryable() {
    match decode_response(&fixture("cloudflare_524.html")) {
        Err(DecodeError::Html { title, cloudflare }) => {
            assert!(cloudflare);
            assert_eq!(
                title.as_deref(),
                Some("api.intacct.com | 524: A timeout occurred")
            );
        }
        other => panic!("{other:?}"),
    }
    let e = classify(524, "cloudflare_524.html");
    assert_eq!(
        (e.kind.clone(), e.level, e.retryable),
        (ErrorKind::Unavailable, ErrorLevel::Http, true)
    );

    assert!(matches!(
        decode_response(b"Service Unavailable"),
        Err(DecodeError::NotXml { .. })
    ));
    assert!(matches!(decode_response(b""), Err(DecodeError::Empty)));
    assert!(matches!(decode_response(b"   \n"), Err(DecodeError::Empty)));
    let full = fixture("query_glaccount.xml");
    for cut in [60, full.len() / 2, full.len() - 12] {
        let e = decode_response(&full[..cut]).unwrap_err();
        assert!(matches!(e, DecodeError::Truncated), "cut {cut}: {e:?}");
        let ie = classify_exchange(200, &full[..cut]).unwrap_err();
        assert!(ie.retryable, "{ie}");
    }
    let e = classify_exchange(503, b"<html><body>Service Unavailable</body></html>").unwrap_err();
    assert!(e.retryable && e.http_status == Some(503));
    let e = classify_exchange(404, b"not found").unwrap_err();
    assert!(!e.retryable);
    let e = classify_exchange(302, b"").unwrap_err();
    assert_eq!(
        (e.kind.clone(), e.retryable),
        (ErrorKind::EndpointRefused, false),
        "{e}"
    );
}

#[test]
fn doctype_and_unknown_entities_are_refused() {
    assert_eq!(
        decode_response(&fixture("doctype_entity.xml")),
        Err(DecodeError::Doctype)
    );
    let doc = b"<response><control><status>&foo;</status></control></response>";
    assert!(matches!(
        decode_response(doc),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode_response(b"<other/>"),
        Err(DecodeError::NotEnvelope(_))
    ));
    assert!(matches!(
        decode_response(b"<response></response><x/>"),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn streaming_decode_yields_records_without_keeping_them() {
    let mut seen = Vec::new();
    let r = decode_response_streaming(&fixture("query_glaccount.xml")[..], &mut |i, rec| {
        seen.push((i, rec.get("RECORDNO").unwrap().to_owned()))
    })
    .unwrap();
    let res = &r.operation.unwrap().results[0];
    assert!(res.records.is_empty());
    assert_eq!(res.record_count, 2);
    assert_eq!(seen, [(0, "1010".to_owned()), (0, "1011".to_owned())]);
}

#[test]
fn encoder_escapes_and_orders_elements() {
    let mut q = Query::new("VENDOR", &["RECORDNO", "NAME"]);
    q.filter = Some(Filter::And(vec![Filter::eq("NAME", "A&B <c>")]));
    q.page_size = Some(2000);
    let fns = [Function {
        control_id: "f\"1".into(),
        call: FunctionCall::Query(q),
    }];
    let xml = ml_intacct::protocol::encode_request(&Envelope {
        sender_id: "S",
        sender_password: "p&w",
        control_id: "c1",
        unique_id: false,
        transaction: false,
        auth: Auth::Session("sid"),
        functions: &fns,
    })
    .unwrap();
    assert!(xml.contains("<password>p&amp;w</password>"));
    assert!(xml.contains(r#"<function controlid="f&quot;1">"#));
    // a single-condition `and` is written without the wrapper (the XSD wants two or more)
    assert!(xml.contains(
        "<filter><equalto><field>NAME</field><value>A&amp;B &lt;c&gt;</value></equalto></filter>"
    ));
    assert!(xml.contains("<uniqueid>false</uniqueid><dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace>"));
    assert!(xml.contains("<showprivate>true</showprivate>"));

    let mut bad = Query::new("VENDOR", &["RECORDNO"]);
    bad.page_size = Some(2001);
    let fns = [Function {
        control_id: "f".into(),
        call: FunctionCall::Query(bad),
    }];
    let env = Envelope {
        sender_id: "S",
        sender_password: "p",
        control_id: "c",
        unique_id: false,
        transaction: false,
        auth: Auth::Session("sid"),
        functions: &fns,
    };
    assert!(ml_intacct::protocol::encode_request(&env).is_err());
    let two = [
        Function {
            control_id: "a".into(),
            call: FunctionCall::GetApiSession { location_id: None },
        },
        Function {
            control_id: "b".into(),
            call: FunctionCall::Lookup {
                object: "VENDOR".into(),
            },
        },
    ];
    let env = Envelope {
        functions: &two,
        ..env
    };
    assert!(
        ml_intacct::protocol::encode_request(&env).is_err(),
        "getAPISession must go alone"
    );
}
