//! "Has anything changed?" for several objects in one request, before any of them is read.
//!
//! An incremental read costs at least a request per pass and one for its deletes, per object,
//! even when nothing changed. Asked together, with a page of one record each, the same questions
//! cost one request for up to [`super::batch::MAX_FUNCTIONS_PER_REQUEST`] / 3 objects: each answer's
//! `totalcount` says whether that read would return anything.

use chrono::NaiveDateTime;

use crate::error::IntacctError;
use crate::protocol::FunctionCall;

use super::IntacctClient;
use super::deletes::deleted_query;
use super::keyset::{ChangedSince, modified_query, never_modified_query};
use super::page::Pass;
use super::results::page_from;

/// One object's incremental read, as the run would make it.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The read: both passes (`since` must be set: a full read always reads).
    pub read: ChangedSince,
    /// Deletions in AUDITHISTORY after this time, when the read finds deletes there.
    pub deleted_after: Option<NaiveDateTime>,
}

impl IntacctClient {
    /// For each probe, whether its read (both passes) and its deletes would all come back empty:
    /// `Ok(true)` quiet, `Ok(false)` something to read, `Err` that probe's own failure (the
    /// read itself will meet and report it). The outer `Err` is the request's.
    pub async fn quiet(
        &self,
        probes: &[Probe],
    ) -> Result<Vec<Result<bool, IntacctError>>, IntacctError> {
        let mut calls = Vec::with_capacity(probes.len() * 3);
        let mut objects = Vec::with_capacity(probes.len() * 3);
        for p in probes {
            calls.push(FunctionCall::Query(never_modified_query(&p.read, None, 1)));
            calls.push(FunctionCall::Query(modified_query(
                &p.read,
                p.read.since,
                1,
            )));
            objects.push(p.read.object.clone());
            objects.push(p.read.object.clone());
            if let Some(after) = p.deleted_after {
                calls.push(FunctionCall::Query(deleted_query(&p.read.object, after, 1)));
                objects.push("AUDITHISTORY".to_owned());
            }
        }
        let mut results = self.call_each("query", calls).await?.into_iter();
        let mut objects = objects.into_iter();
        let mut out = Vec::with_capacity(probes.len());
        for p in probes {
            let n = if p.deleted_after.is_some() { 3 } else { 2 };
            let mut quiet = Ok(true);
            for _ in 0..n {
                let r = results.next().expect("one result per function");
                let object = objects.next().expect("one object per function");
                let empty = r
                    .and_then(|r| page_from(&object, r, Pass::Query))
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
