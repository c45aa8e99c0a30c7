//! The keyset both passes of a `changed_since` read walk: the query for the page after a
//! position, and the position a page leaves off at. Offsets are never used, because records
//! changing during a read would shift them; a key only moves forward.

use chrono::NaiveDateTime;

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::values::{format_timestamp, parse_timestamp};
use crate::protocol::{Filter, Order, Query, Record, SelectItem};

use super::IntacctClient;
use super::page::{Cursor, Next, Page, Pass, is_last};

/// What `changed_since` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedSince {
    pub object: String,
    /// Fields to select; RECORDNO and WHENMODIFIED are added when missing (the keyset needs them).
    pub fields: Vec<String>,
    /// Resume after this position; `None` reads everything.
    pub since: Option<Cursor>,
    /// Records per page, 1..=2000; `None` = the client's page size.
    pub page_size: Option<u32>,
    /// Narrows the never-modified pass to records created at or after a time, by the object's
    /// audit creation field; `None` reads every never-modified record.
    pub created_since: Option<CreatedSince>,
}

/// Records never modified are found by when they were created: `field >= since`. The field must
/// be an audit time the system sets (WHENCREATED on master data, AUDITWHENCREATED on documents,
/// whose WHENCREATED is the user's document date and can be back-dated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedSince {
    pub field: String,
    pub since: NaiveDateTime,
    /// Only records after this one in (`field`, RECORDNO) order, i.e. `field > since OR (field =
    /// since AND RECORDNO > after)`: exactly the records created after the newest a read saw
    /// (RECORDNOs are assigned in sequence). `None`: every record created at or after `since`.
    pub after: Option<i64>,
}

/// The never-modified page after RECORDNO `after`, up to RECORDNO `upper`, and where the pass
/// goes on.
pub(super) async fn never_modified_page(
    client: &IntacctClient,
    req: &ChangedSince,
    page_size: u32,
    after: Option<i64>,
    upper: Option<i64>,
) -> Result<(Page, Next<i64>), IntacctError> {
    let mut q = never_modified_query(req, after, page_size);
    within_recordnos(&mut q, None, upper);
    let page = Page {
        pass: Pass::NeverModified,
        ..client.query(q).await?
    };
    let next = next_never_modified(&page, page_size)?;
    Ok((page, next))
}

/// The modified page after `after`, among the RECORDNOs in `(lower, upper]`, and where the
/// pass goes on.
pub(super) async fn modified_page(
    client: &IntacctClient,
    req: &ChangedSince,
    page_size: u32,
    after: Option<Cursor>,
    (lower, upper): (Option<i64>, Option<i64>),
) -> Result<(Page, Next<Cursor>), IntacctError> {
    let mut q = modified_query(req, after, page_size);
    within_recordnos(&mut q, lower, upper);
    let page = Page {
        pass: Pass::Modified,
        ..client.query(q).await?
    };
    let next = next_modified(&page, page_size)?;
    Ok((page, next))
}

/// Narrows a keyset query to the RECORDNOs in `(lower, upper]`, the range a parallel chain
/// owns. The conditions join the query's own `AND` when it has one, so an unbounded range
/// leaves the request exactly as it was.
fn within_recordnos(q: &mut Query, lower: Option<i64>, upper: Option<i64>) {
    let mut bounds = Vec::new();
    if let Some(l) = lower {
        bounds.push(Filter::gt("RECORDNO", l.to_string()));
    }
    if let Some(u) = upper {
        bounds.push(Filter::LessThanOrEqualTo("RECORDNO".into(), u.to_string()));
    }
    if bounds.is_empty() {
        return;
    }
    q.filter = Some(match q.filter.take() {
        Some(Filter::And(mut conds)) => {
            conds.append(&mut bounds);
            Filter::And(conds)
        }
        Some(f) => {
            bounds.insert(0, f);
            Filter::And(bounds)
        }
        None => Filter::And(bounds),
    });
}

fn select_with_keys(req: &ChangedSince) -> Vec<SelectItem> {
    let mut fields: Vec<SelectItem> = req
        .fields
        .iter()
        .map(|f| SelectItem::Field(f.clone()))
        .collect();
    for k in ["RECORDNO", "WHENMODIFIED"] {
        if !req.fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
            fields.push(SelectItem::Field(k.into()));
        }
    }
    fields
}

pub(super) fn never_modified_query(
    req: &ChangedSince,
    after: Option<i64>,
    page_size: u32,
) -> Query {
    let mut conds = vec![Filter::IsNull("WHENMODIFIED".into())];
    if let Some(c) = &req.created_since {
        let at = format_timestamp(c.since);
        conds.push(match c.after {
            Some(n) => Filter::Or(vec![
                Filter::gt(c.field.as_str(), at.clone()),
                Filter::And(vec![
                    Filter::eq(c.field.as_str(), at),
                    Filter::gt("RECORDNO", n.to_string()),
                ]),
            ]),
            None => Filter::GreaterThanOrEqualTo(c.field.clone(), at),
        });
    }
    if let Some(n) = after {
        conds.push(Filter::gt("RECORDNO", n.to_string()));
    }
    keyset_query(
        &req.object,
        select_with_keys(req),
        Filter::And(conds),
        &["RECORDNO"],
        page_size,
    )
}

pub(super) fn modified_query(req: &ChangedSince, after: Option<Cursor>, page_size: u32) -> Query {
    let filter = match after {
        None => Filter::IsNotNull("WHENMODIFIED".into()),
        Some(c) => {
            let ts = format_timestamp(c.when_modified);
            Filter::Or(vec![
                Filter::gt("WHENMODIFIED", ts.clone()),
                Filter::And(vec![
                    Filter::eq("WHENMODIFIED", ts),
                    Filter::gt("RECORDNO", c.recordno.to_string()),
                ]),
            ])
        }
    };
    keyset_query(
        &req.object,
        select_with_keys(req),
        filter,
        &["WHENMODIFIED", "RECORDNO"],
        page_size,
    )
}

/// A page of `object` in ascending `keys` order, private fields included, without an offset:
/// the one shape of query every keyset read sends.
pub(super) fn keyset_query(
    object: &str,
    select: Vec<SelectItem>,
    filter: Filter,
    keys: &[&str],
    page_size: u32,
) -> Query {
    Query {
        object: object.to_owned(),
        select,
        filter: Some(filter),
        order_by: keys
            .iter()
            .map(|k| ((*k).to_owned(), Order::Ascending))
            .collect(),
        case_insensitive: None,
        show_private: true,
        page_size: Some(page_size),
        offset: None,
        docparid: None,
    }
}

pub(super) fn recordno(r: &Record) -> Result<i64, IntacctError> {
    r.get("RECORDNO")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "a record has no numeric RECORDNO; keyset paging cannot continue",
            )
        })
}

pub(super) fn last_cursor(page: &Page) -> Result<Option<Cursor>, IntacctError> {
    let Some(r) = page.records.last() else {
        return Ok(None);
    };
    let n = recordno(r)?;
    let wm = r
        .get("WHENMODIFIED")
        .and_then(parse_timestamp)
        .ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "a record has no parseable WHENMODIFIED; keyset paging cannot continue",
            )
        })?;
    Ok(Some(Cursor {
        when_modified: wm,
        recordno: n,
    }))
}

pub(super) fn next_never_modified(page: &Page, page_size: u32) -> Result<Next<i64>, IntacctError> {
    if is_last(page, page_size) {
        return Ok(None);
    }
    Ok(Some(Some(recordno(
        page.records.last().expect("a full page has records"),
    )?)))
}

pub(super) fn next_modified(page: &Page, page_size: u32) -> Result<Next<Cursor>, IntacctError> {
    if is_last(page, page_size) {
        return Ok(None);
    }
    Ok(Some(last_cursor(page)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_filters() {
        let req = ChangedSince {
            object: "VENDOR".into(),
            fields: vec!["NAME".into()],
            since: None,
            page_size: None,
            created_since: None,
        };
        let c = Cursor {
            when_modified: crate::protocol::values::parse_timestamp("01/02/2024 03:04:05").unwrap(),
            recordno: 42,
        };
        let q = modified_query(&req, Some(c), 2000);
        assert_eq!(
            q.filter,
            Some(Filter::Or(vec![
                Filter::gt("WHENMODIFIED", "01/02/2024 03:04:05"),
                Filter::And(vec![
                    Filter::eq("WHENMODIFIED", "01/02/2024 03:04:05"),
                    Filter::gt("RECORDNO", "42"),
                ]),
            ]))
        );
        assert_eq!(q.select.len(), 3, "RECORDNO and WHENMODIFIED added");
        assert!(q.show_private);
        let q = never_modified_query(&req, Some(9), 2000);
        assert_eq!(
            q.filter,
            Some(Filter::And(vec![
                Filter::IsNull("WHENMODIFIED".into()),
                Filter::gt("RECORDNO", "9"),
            ]))
        );
        assert_eq!(q.order_by, vec![("RECORDNO".to_owned(), Order::Ascending)]);
        let created = ChangedSince {
            created_since: Some(CreatedSince {
                field: "AUDITWHENCREATED".into(),
                since: c.when_modified,
                after: None,
            }),
            ..req.clone()
        };
        assert_eq!(
            never_modified_query(&created, None, 2000).filter,
            Some(Filter::And(vec![
                Filter::IsNull("WHENMODIFIED".into()),
                Filter::GreaterThanOrEqualTo(
                    "AUDITWHENCREATED".into(),
                    "01/02/2024 03:04:05".into()
                ),
            ]))
        );
    }

    #[test]
    fn recordno_ranges_join_the_keyset_filter() {
        let req = ChangedSince {
            object: "VENDOR".into(),
            fields: vec!["NAME".into()],
            since: None,
            page_size: None,
            created_since: None,
        };
        let mut q = modified_query(&req, None, 100);
        within_recordnos(&mut q, Some(10), Some(20));
        assert_eq!(
            q.filter,
            Some(Filter::And(vec![
                Filter::IsNotNull("WHENMODIFIED".into()),
                Filter::gt("RECORDNO", "10"),
                Filter::LessThanOrEqualTo("RECORDNO".into(), "20".into()),
            ]))
        );
        let mut q = never_modified_query(&req, Some(5), 100);
        within_recordnos(&mut q, None, Some(20));
        assert_eq!(
            q.filter,
            Some(Filter::And(vec![
                Filter::IsNull("WHENMODIFIED".into()),
                Filter::gt("RECORDNO", "5"),
                Filter::LessThanOrEqualTo("RECORDNO".into(), "20".into()),
            ]))
        );
        let unbounded = modified_query(&req, None, 100);
        let mut q = unbounded.clone();
        within_recordnos(&mut q, None, None);
        assert_eq!(
            q.filter, unbounded.filter,
            "an unbounded range changes nothing"
        );
    }
}
