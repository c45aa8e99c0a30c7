//! GL account balances of several reporting periods. One function per period goes into a single
//! request, and the follow-up pages of all periods that have more are batched again, so the
//! request count grows with the largest period, not with the number of periods.

use chrono::NaiveDateTime;

use crate::error::IntacctError;
use crate::protocol::values::format_timestamp;
use crate::protocol::{Filter, Query, Record, SelectItem};

use super::IntacctClient;
use super::keyset::{keyset_query, recordno};
use super::page::is_last;

/// GL balances of several periods (`GLACCOUNTBALANCE`, see [`crate::protocol::encode`] for
/// why this object and not `get_accountbalances`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalancesRequest {
    /// Reporting period names, e.g. `Month Ended June 2021`; one function per period, all in
    /// one request.
    pub periods: Vec<String>,
    pub fields: Vec<String>,
    /// Extra conditions (e.g. `CURRENCY`, `BOOKID`).
    pub filter: Option<Filter>,
    /// Only balances changed after this time.
    pub modified_since: Option<NaiveDateTime>,
}

impl IntacctClient {
    /// GLACCOUNTBALANCE rows of several periods: one function per period in ONE request,
    /// follow-up pages (keyset on RECORDNO) again batched for all periods that have more.
    pub async fn account_balances(
        &self,
        req: BalancesRequest,
    ) -> Result<Vec<Record>, IntacctError> {
        let page_size = self.page_size(None);
        let mut fields = req.fields.clone();
        if !fields.iter().any(|f| f.eq_ignore_ascii_case("RECORDNO")) {
            fields.push("RECORDNO".into());
        }
        let mut pending: Vec<(String, Option<i64>)> =
            req.periods.iter().map(|p| (p.clone(), None)).collect();
        let mut out = Vec::new();
        while !pending.is_empty() {
            let queries: Vec<Query> = pending
                .iter()
                .map(|(period, after)| balances_query(&req, &fields, period, *after, page_size))
                .collect();
            let pages = self.query_batch(queries).await?;
            let mut next = Vec::new();
            for ((period, _), page) in pending.iter().zip(pages) {
                let last = match page.records.last() {
                    Some(r) => Some(recordno(r)?),
                    None => None,
                };
                let done = is_last(&page, page_size);
                out.extend(page.records);
                if !done && let Some(n) = last {
                    next.push((period.clone(), Some(n)));
                }
            }
            pending = next;
        }
        Ok(out)
    }
}

/// The page of `period`'s balances after RECORDNO `after`.
fn balances_query(
    req: &BalancesRequest,
    fields: &[String],
    period: &str,
    after: Option<i64>,
    page_size: u32,
) -> Query {
    let mut conds = vec![Filter::eq("PERIOD", period)];
    if let Some(ts) = req.modified_since {
        conds.push(Filter::GreaterThanOrEqualTo(
            "WHENMODIFIED".into(),
            format_timestamp(ts),
        ));
    }
    if let Some(f) = &req.filter {
        conds.push(f.clone());
    }
    if let Some(n) = after {
        conds.push(Filter::gt("RECORDNO", n.to_string()));
    }
    keyset_query(
        "GLACCOUNTBALANCE",
        fields
            .iter()
            .map(|f| SelectItem::Field(f.clone()))
            .collect(),
        Filter::And(conds),
        &["RECORDNO"],
        page_size,
    )
}
