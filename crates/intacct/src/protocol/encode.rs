//! Request envelopes, written as text with escaping (no DOM, no serde: the element order the
//! XSD demands is easiest to see and to keep right in straight-line code).
//!
//! # GL balances: why `GLACCOUNTBALANCE` through `query`
//!
//! Of the four options in the reference (§6.4) the connector reads the `GLACCOUNTBALANCE` object
//! with `query`, not `get_accountbalances`: `query` pages (pagesize up to 2000, keyset on
//! `RECORDNO`), filters on `WHENMODIFIED` so incremental runs fetch only changed balances,
//! returns one row per book, currency and dimension combination (which is what a Power BI model
//! slices by), and several periods can go in one request as separate functions. The legacy
//! `get_accountbalances` has no paging, no change filter and only account-level totals, so it is
//! not encoded here.

use quick_xml::escape::partial_escape;
use thiserror::Error;

/// The largest `query` page the XSD allows.
pub const MAX_QUERY_PAGE_SIZE: u32 = 2000;
/// The most `<value>`s an `in`/`notin` may carry before the gateway answers with a schema error.
pub const MAX_IN_VALUES: usize = 1000;

/// A request that cannot be written; a programming or configuration error, never retried.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("query page size {0} is outside 1..=2000; use a page size the gateway accepts")]
    PageSize(u32),
    #[error("an `{0}` filter needs at least one condition")]
    EmptyLogical(&'static str),
    #[error(
        "an `in`/`notin` filter on {field} has {count} values; the gateway accepts 1..=1000, split the filter"
    )]
    InValues { field: String, count: usize },
    #[error("a query must select at least one field")]
    EmptySelect,
    #[error("a request needs at least one function")]
    NoFunctions,
    #[error("control id must be 1..=256 characters, got {0}")]
    ControlId(usize),
    #[error("getAPISession must be sent alone in its request")]
    SessionNotAlone,
}

/// How the operation authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Login {
        user_id: &'a str,
        company_id: &'a str,
        password: &'a str,
        location_id: Option<&'a str>,
    },
    Session(&'a str),
}

/// The whole request. Secrets are borrowed only for the time it takes to write the text.
pub struct Envelope<'a> {
    pub sender_id: &'a str,
    pub sender_password: &'a str,
    pub control_id: &'a str,
    /// `false` for every read: the same functions may run any number of times.
    pub unique_id: bool,
    pub transaction: bool,
    pub auth: Auth<'a>,
    pub functions: &'a [Function],
}

/// One `<function controlid="...">`.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub control_id: String,
    pub call: FunctionCall,
}

/// The functions the connector sends.
#[derive(Clone, Debug, PartialEq)]
pub enum FunctionCall {
    /// `locationid`: `None` = session at the level of the login, `Some("")` = back to top level.
    GetApiSession {
        location_id: Option<String>,
    },
    ReadByQuery {
        object: String,
        fields: String,
        query: String,
        page_size: Option<u32>,
    },
    ReadMore {
        result_id: String,
    },
    Query(Query),
    Read {
        object: String,
        keys: Vec<String>,
        fields: String,
    },
    ReadByName {
        object: String,
        keys: Vec<String>,
        fields: String,
    },
    Lookup {
        object: String,
    },
    /// By user login id (`userId`); the XSD's alternative is the user's RECORDNO (`key`).
    ReadUserFormatting {
        user_id: String,
    },
}

impl FunctionCall {
    /// The function name as it comes back in `<result><function>`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GetApiSession { .. } => "getAPISession",
            Self::ReadByQuery { .. } => "readByQuery",
            Self::ReadMore { .. } => "readMore",
            Self::Query(_) => "query",
            Self::Read { .. } => "read",
            Self::ReadByName { .. } => "readByName",
            Self::Lookup { .. } => "lookup",
            Self::ReadUserFormatting { .. } => "readUserFormatting",
        }
    }
}

/// An entry of `<select>`: a field (dotted paths allowed) or an aggregate of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectItem {
    Field(String),
    Count(String),
    Sum(String),
    Avg(String),
    Min(String),
    Max(String),
}

impl From<&str> for SelectItem {
    fn from(s: &str) -> Self {
        Self::Field(s.to_owned())
    }
}

/// Sort direction of an `<order>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// The `query` filter tree (§5.3): `and`/`or` over the comparison operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    EqualTo(String, String),
    NotEqualTo(String, String),
    LessThan(String, String),
    LessThanOrEqualTo(String, String),
    GreaterThan(String, String),
    GreaterThanOrEqualTo(String, String),
    /// Lower bound first.
    Between(String, String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Like(String, String),
    NotLike(String, String),
    IsNull(String),
    IsNotNull(String),
}

impl Filter {
    pub fn eq(field: &str, value: impl Into<String>) -> Self {
        Self::EqualTo(field.to_owned(), value.into())
    }
    pub fn gt(field: &str, value: impl Into<String>) -> Self {
        Self::GreaterThan(field.to_owned(), value.into())
    }
}

/// A `query` function (§5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub object: String,
    pub select: Vec<SelectItem>,
    pub filter: Option<Filter>,
    pub order_by: Vec<(String, Order)>,
    pub case_insensitive: Option<bool>,
    /// Include rows private to entities when querying from the top level.
    pub show_private: bool,
    pub page_size: Option<u32>,
    pub offset: Option<u32>,
    pub docparid: Option<String>,
}

impl Query {
    /// A query selecting `fields` of `object`, no filter, `showprivate` on (what a connector
    /// reading from the top level needs).
    pub fn new(object: &str, fields: &[&str]) -> Self {
        Self {
            object: object.to_owned(),
            select: fields
                .iter()
                .map(|f| SelectItem::Field((*f).to_owned()))
                .collect(),
            filter: None,
            order_by: Vec::new(),
            case_insensitive: None,
            show_private: true,
            page_size: None,
            offset: None,
            docparid: None,
        }
    }
}

/// Writes the request document.
pub fn encode_request(env: &Envelope<'_>) -> Result<String, EncodeError> {
    if env.functions.is_empty() {
        return Err(EncodeError::NoFunctions);
    }
    check_control_id(env.control_id)?;
    if env.functions.len() > 1
        && env
            .functions
            .iter()
            .any(|f| matches!(f.call, FunctionCall::GetApiSession { .. }))
    {
        return Err(EncodeError::SessionNotAlone);
    }
    let mut w = String::with_capacity(1024);
    w.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    w.push_str("<request><control>");
    leaf(&mut w, "senderid", env.sender_id);
    leaf(&mut w, "password", env.sender_password);
    leaf(&mut w, "controlid", env.control_id);
    leaf(&mut w, "uniqueid", bool_str(env.unique_id));
    leaf(&mut w, "dtdversion", "3.0");
    leaf(&mut w, "includewhitespace", "false");
    w.push_str("</control>");
    w.push_str(if env.transaction {
        r#"<operation transaction="true">"#
    } else {
        r#"<operation transaction="false">"#
    });
    w.push_str("<authentication>");
    match env.auth {
        Auth::Login {
            user_id,
            company_id,
            password,
            location_id,
        } => {
            w.push_str("<login>");
            leaf(&mut w, "userid", user_id);
            leaf(&mut w, "companyid", company_id);
            leaf(&mut w, "password", password);
            if let Some(loc) = location_id {
                leaf(&mut w, "locationid", loc);
            }
            w.push_str("</login>");
        }
        Auth::Session(id) => leaf(&mut w, "sessionid", id),
    }
    w.push_str("</authentication><content>");
    for f in env.functions {
        check_control_id(&f.control_id)?;
        w.push_str(r#"<function controlid=""#);
        w.push_str(&escape_attr(&f.control_id));
        w.push_str(r#"">"#);
        write_call(&mut w, &f.call)?;
        w.push_str("</function>");
    }
    w.push_str("</content></operation></request>");
    Ok(w)
}

fn check_control_id(id: &str) -> Result<(), EncodeError> {
    let n = id.chars().count();
    if (1..=256).contains(&n) {
        Ok(())
    } else {
        Err(EncodeError::ControlId(n))
    }
}

fn write_call(w: &mut String, call: &FunctionCall) -> Result<(), EncodeError> {
    match call {
        FunctionCall::GetApiSession { location_id } => match location_id {
            None => w.push_str("<getAPISession/>"),
            Some(loc) => {
                w.push_str("<getAPISession>");
                leaf(w, "locationid", loc);
                w.push_str("</getAPISession>");
            }
        },
        FunctionCall::ReadByQuery {
            object,
            fields,
            query,
            page_size,
        } => {
            w.push_str("<readByQuery>");
            leaf(w, "object", object);
            leaf(w, "fields", fields);
            leaf(w, "query", query);
            if let Some(p) = page_size {
                leaf(w, "pagesize", &p.to_string());
            }
            leaf(w, "returnFormat", "xml");
            w.push_str("</readByQuery>");
        }
        FunctionCall::ReadMore { result_id } => {
            w.push_str("<readMore>");
            leaf(w, "resultId", result_id);
            w.push_str("</readMore>");
        }
        FunctionCall::Query(q) => write_query(w, q)?,
        // The same children under two names: by RECORDNO or by the object's name key.
        FunctionCall::Read {
            object,
            keys,
            fields,
        }
        | FunctionCall::ReadByName {
            object,
            keys,
            fields,
        } => {
            let tag = call.name();
            w.extend(["<", tag, ">"]);
            leaf(w, "object", object);
            leaf(w, "keys", &keys.join(","));
            leaf(w, "fields", fields);
            leaf(w, "returnFormat", "xml");
            w.extend(["</", tag, ">"]);
        }
        FunctionCall::Lookup { object } => {
            w.push_str("<lookup>");
            leaf(w, "object", object);
            w.push_str("</lookup>");
        }
        FunctionCall::ReadUserFormatting { user_id } => {
            w.push_str("<readUserFormatting>");
            leaf(w, "userId", user_id);
            w.push_str("</readUserFormatting>");
        }
    }
    Ok(())
}

fn write_query(w: &mut String, q: &Query) -> Result<(), EncodeError> {
    if q.select.is_empty() {
        return Err(EncodeError::EmptySelect);
    }
    if let Some(p) = q.page_size
        && !(1..=MAX_QUERY_PAGE_SIZE).contains(&p)
    {
        return Err(EncodeError::PageSize(p));
    }
    w.push_str("<query>");
    leaf(w, "object", &q.object);
    w.push_str("<select>");
    for s in &q.select {
        let (tag, f) = match s {
            SelectItem::Field(f) => ("field", f),
            SelectItem::Count(f) => ("count", f),
            SelectItem::Sum(f) => ("sum", f),
            SelectItem::Avg(f) => ("avg", f),
            SelectItem::Min(f) => ("min", f),
            SelectItem::Max(f) => ("max", f),
        };
        leaf(w, tag, f);
    }
    w.push_str("</select>");
    if let Some(d) = &q.docparid {
        leaf(w, "docparid", d);
    }
    if let Some(f) = &q.filter {
        w.push_str("<filter>");
        write_filter(w, f)?;
        w.push_str("</filter>");
    }
    if !q.order_by.is_empty() {
        w.push_str("<orderby>");
        for (field, dir) in &q.order_by {
            w.push_str("<order>");
            leaf(w, "field", field);
            w.push_str(match dir {
                Order::Ascending => "<ascending/>",
                Order::Descending => "<descending/>",
            });
            w.push_str("</order>");
        }
        w.push_str("</orderby>");
    }
    w.push_str("<options>");
    if let Some(ci) = q.case_insensitive {
        leaf(w, "caseinsensitive", bool_str(ci));
    }
    leaf(w, "showprivate", bool_str(q.show_private));
    leaf(w, "returnformat", "xml");
    w.push_str("</options>");
    if let Some(p) = q.page_size {
        leaf(w, "pagesize", &p.to_string());
    }
    if let Some(o) = q.offset {
        leaf(w, "offset", &o.to_string());
    }
    w.push_str("</query>");
    Ok(())
}

fn write_filter(w: &mut String, f: &Filter) -> Result<(), EncodeError> {
    let cmp = |w: &mut String, tag: &str, field: &str, values: &[&String]| {
        w.push('<');
        w.push_str(tag);
        w.push('>');
        leaf(w, "field", field);
        for v in values {
            leaf(w, "value", v);
        }
        w.push_str("</");
        w.push_str(tag);
        w.push('>');
    };
    match f {
        Filter::And(items) | Filter::Or(items) => {
            let tag = if matches!(f, Filter::And(_)) {
                "and"
            } else {
                "or"
            };
            match items.len() {
                0 => return Err(EncodeError::EmptyLogical(tag)),
                // The XSD wants two or more children; one condition needs no wrapper.
                1 => write_filter(w, &items[0])?,
                _ => {
                    w.push('<');
                    w.push_str(tag);
                    w.push('>');
                    for i in items {
                        write_filter(w, i)?;
                    }
                    w.push_str("</");
                    w.push_str(tag);
                    w.push('>');
                }
            }
        }
        Filter::EqualTo(k, v) => cmp(w, "equalto", k, &[v]),
        Filter::NotEqualTo(k, v) => cmp(w, "notequalto", k, &[v]),
        Filter::LessThan(k, v) => cmp(w, "lessthan", k, &[v]),
        Filter::LessThanOrEqualTo(k, v) => cmp(w, "lessthanorequalto", k, &[v]),
        Filter::GreaterThan(k, v) => cmp(w, "greaterthan", k, &[v]),
        Filter::GreaterThanOrEqualTo(k, v) => cmp(w, "greaterthanorequalto", k, &[v]),
        Filter::Between(k, lo, hi) => cmp(w, "between", k, &[lo, hi]),
        Filter::In(k, vs) | Filter::NotIn(k, vs) => {
            if vs.is_empty() || vs.len() > MAX_IN_VALUES {
                return Err(EncodeError::InValues {
                    field: k.clone(),
                    count: vs.len(),
                });
            }
            let tag = if matches!(f, Filter::In(..)) {
                "in"
            } else {
                "notin"
            };
            let refs: Vec<&String> = vs.iter().collect();
            cmp(w, tag, k, &refs);
        }
        Filter::Like(k, v) => cmp(w, "like", k, &[v]),
        Filter::NotLike(k, v) => cmp(w, "notlike", k, &[v]),
        Filter::IsNull(k) => cmp(w, "isnull", k, &[]),
        Filter::IsNotNull(k) => cmp(w, "isnotnull", k, &[]),
    }
    Ok(())
}

fn leaf(w: &mut String, tag: &str, text: &str) {
    w.push('<');
    w.push_str(tag);
    w.push('>');
    w.push_str(&partial_escape(text));
    w.push_str("</");
    w.push_str(tag);
    w.push('>');
}

fn escape_attr(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}
