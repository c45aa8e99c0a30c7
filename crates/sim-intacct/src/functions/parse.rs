//! Schema checks and extraction of function bodies, as the v3.0 XSD (and the gateway) apply them.

use super::*;

/// Functions the XSD defines that the simulator answers with a function failure instead.
pub(super) const KNOWN_UNSUPPORTED: &[&str] = &[
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

pub(super) fn text_of(el: &Element, name: &str) -> Result<Option<String>, XmlError> {
    match el.child(name) {
        None => Ok(None),
        Some(c) => {
            check_leaf(c)?;
            Ok(Some(c.text.clone()))
        }
    }
}

pub(super) fn int_facet(
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
    if let Some(m) = max
        && v > m
    {
        return Err(XmlError::Schema(format!(
            "Element '{name}': [facet 'maxInclusive'] The value '{v}' is greater than the maximum value allowed ('{m}')."
        )));
    }
    Ok(v)
}

/// Schema validation and extraction of one function body.
pub(super) fn parse_call(f: &FunctionCall) -> Result<Call, XmlError> {
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
