//! The gateway request pipeline and its functions: envelope → sender check → authentication →
//! functions (readByQuery, readMore, query, read, readByName, lookup, readUserFormatting,
//! get_accountbalances, getAPISession), each answered with the real result shapes and error texts.
//!
//! - `pipeline`: the HTTP handler: transport faults, gateway errors, concurrency slot, latency
//! - `parse`: schema checks and extraction of each function body (XL03000003 on violations)
//! - `execute`: sender check, authentication per operation, the functions, the response document
//! - `session`: sign-in, sessions and getAPISession
//! - `reads`: the read functions themselves

mod execute;
mod parse;
mod pipeline;
mod reads;
mod session;

pub use pipeline::gateway;
use reads::*;
use session::get_api_session;

// Imports shared by the submodules, which `use super::*`.
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rand::Rng;

use crate::data::{Kind, ObjectDef, RowRef, Store, Val, object_def};
use crate::faults::Fault;
use crate::query_eval::{check_filter_schema, filter_from_xml, parse_query_string};
use crate::select::scan::hits as scan_hits;
use crate::select::{Criteria, select};
use crate::state::{ResultSet, Session, State};
use crate::xml_in::{
    Auth, Element, FunctionCall, Request, XmlError, check_all, check_bool, check_leaf,
    check_sequence, lenient_control, not_expected, parse_document, parse_request,
};
use crate::xml_out::{
    AuthEcho, ControlEcho, ErrorItem, Xml, control_failure, gateway_failure, operation_response,
    result, support_id,
};

/// The content type of every XML answer, the gateway's own spelling included.
const XML_CT: &str = "text/xml; encoding=\"UTF-8\"";

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

/// A fresh `[Support ID: ...]` suffix, drawn from the simulator's seed and a counter so runs repeat.
fn sid(state: &State) -> String {
    let n = state
        .counter
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    support_id(state.cfg.seed.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
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

/// Dispatches one parsed function.
fn run_call(state: &Arc<State>, p: &Principal, name: &str, call: Call) -> Outcome {
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
            // An entity session only sees its own location's balances.
            locationid.or_else(|| (!p.locationid.is_empty()).then(|| p.locationid.clone())),
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
