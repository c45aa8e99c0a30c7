//! "Has anything changed?" for several objects in one request, before any of them is read.
//!
//! An incremental read costs at least a request per pass and one for its deletes, per object,
//! even when nothing changed. Asked together, with a page of one record each, the same questions
//! cost one request for up to [`super::batch::MAX_FUNCTIONS_PER_REQUEST`] / 3 objects: each answer's
//! `totalcount` says whether that read would return anything.

use chrono::NaiveDateTime;

use crate::error::IntacctError;
use crate::protocol::values::format_timestamp;
use crate::protocol::{Filter, FunctionCall, Query};

use super::IntacctClient;
use super::deletes::deleted_query;
use super::keyset::{ChangedSince, modified_query, never_modified_query};
use super::page::Pass;
use super::results::page_from;

/// One question: would this read return anything?
#[derive(Clone, Debug)]
pub enum Probe {
    /// An object's incremental read, as the run would make it: both passes (`since` must be set:
    /// a full read always reads), and its deletes in AUDITHISTORY after `deleted_after`.
    Read {
        read: ChangedSince,
        deleted_after: Option<NaiveDateTime>,
    },
    /// GL account balances of `periods` modified after `modified_after` (Intacct's clock):
    /// `WHENMODIFIED` lists only changed balances (reference §6.4).
    Balances {
        periods: Vec<String>,
        modified_after: NaiveDateTime,
    },
}

impl Probe {
    fn functions(&self) -> Vec<(String, Query)> {
        match self {
            Probe::Read {
                read,
                deleted_after,
            } => {
                let mut out = vec![
                    (read.object.clone(), never_modified_query(read, None, 1)),
                    (read.object.clone(), modified_query(read, read.since, 1)),
                ];
                if let Some(after) = deleted_after {
                    out.push((
                        "AUDITHISTORY".to_owned(),
                        deleted_query(&read.object, *after, 1),
                    ));
                }
                out
            }
            Probe::Balances {
                periods,
                modified_after,
            } => {
                let mut q = Query::new("GLACCOUNTBALANCE", &["RECORDNO"]);
                q.filter = Some(Filter::And(vec![
                    Filter::In("PERIOD".into(), periods.clone()),
                    Filter::gt("WHENMODIFIED", format_timestamp(*modified_after)),
                ]));
                q.page_size = Some(1);
                vec![("GLACCOUNTBALANCE".to_owned(), q)]
            }
        }
    }
}

impl IntacctClient {
    /// For each probe, whether its read (both passes) and its deletes would all come back empty:
    /// `Ok(true)` quiet, `Ok(false)` something to read, `Err` that probe's own failure (the
    /// read itself will meet and report it). The outer `Err` is the request's.
    pub async fn quiet(
        &self,
        probes: &[Probe],
    ) -> Result<Vec<Result<bool, IntacctError>>, IntacctError> {
        let asked: Vec<Vec<(String, Query)>> = probes.iter().map(Probe::functions).collect();
        let calls = asked
            .iter()
            .flatten()
            .map(|(_, q)| FunctionCall::Query(q.clone()))
            .collect();
        let mut results = self.call_each("query", calls).await?.into_iter();
        let mut out = Vec::with_capacity(probes.len());
        for functions in &asked {
            let mut quiet = Ok(true);
            for (object, _) in functions {
                let r = results.next().expect("one result per function");
                let empty = r
                    .and_then(|r| page_from(object, r, Pass::Query))
                    .map(|page| {
                        // `totalcount` counts every match; without it, the page itself.
                        page.total_count.map_or(page.records.is_empty(), |t| t == 0)
                    });
                quiet = match (quiet, empty) {
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                    (Ok(a), Ok(b)) => Ok(a && b),
                };
            }
            out.push(quiet);
        }
        Ok(out)
    }
}
