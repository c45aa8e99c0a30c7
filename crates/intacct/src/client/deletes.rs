//! Finding deleted records. AUDITHISTORY names them when the API user may read it; when it may
//! not, the caller compares every RECORDNO the object still has against its mirror instead.

use chrono::NaiveDateTime;

use crate::error::{ErrorKind, IntacctError};
use crate::protocol::values::{format_timestamp, parse_timestamp};
use crate::protocol::{Filter, Order, Query};

use super::IntacctClient;
use super::keyset::recordno;
use super::page::is_last;
use super::prefetch::{prefetching, send_pass};

/// A deletion found in AUDITHISTORY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedRecord {
    /// The RECORDNO when OBJECTKEY has the `123--REC` form; `None` for other keys.
    pub recordno: Option<i64>,
    pub object_key: String,
    pub access_time: Option<NaiveDateTime>,
    pub id: String,
}

/// A page of `object`'s deletions recorded in AUDITHISTORY after `since`, oldest first.
pub(super) fn deleted_query(object: &str, since: NaiveDateTime, page_size: u32) -> Query {
    let mut q = Query::new("AUDITHISTORY", &["OBJECTKEY", "ACCESSTIME", "ID"]);
    q.filter = Some(Filter::And(vec![
        Filter::eq("OBJECTTYPE", object.to_ascii_lowercase()),
        Filter::eq("ACCESSMODE", "D"),
        Filter::gt("ACCESSTIME", format_timestamp(since)),
    ]));
    q.order_by = vec![
        ("ACCESSTIME".into(), Order::Ascending),
        ("ID".into(), Order::Ascending),
    ];
    q.page_size = Some(page_size);
    q
}

impl IntacctClient {
    /// Deletions of `object` recorded in AUDITHISTORY after `since`.
    ///
    /// AUDITHISTORY is append-only and read in (ACCESSTIME, ID) order, so offset paging is
    /// stable here. A permission failure comes back as [`ErrorKind::AuditHistoryDenied`] so
    /// the pipeline can fall back to [`Self::all_keys`].
    pub async fn deleted_since(
        &self,
        object: &str,
        since: NaiveDateTime,
    ) -> Result<Vec<DeletedRecord>, IntacctError> {
        let page_size = self.page_size(None);
        let mut out = Vec::new();
        let mut offset = 0u32;
        loop {
            let mut q = deleted_query(object, since, page_size);
            q.offset = Some(offset);
            let page = self.query(q).await.map_err(|mut e| {
                if e.is_permission_denied() {
                    e.kind = ErrorKind::AuditHistoryDenied;
                }
                e
            })?;
            let n = page.records.len() as u32;
            for r in &page.records {
                let key = r.get("OBJECTKEY").unwrap_or("").to_owned();
                out.push(DeletedRecord {
                    recordno: parse_object_key(&key),
                    access_time: r.get("ACCESSTIME").and_then(parse_timestamp),
                    id: r.get("ID").unwrap_or("").to_owned(),
                    object_key: key,
                });
            }
            if is_last(&page, page_size) || n == 0 {
                return Ok(out);
            }
            offset += n;
        }
    }

    /// When the newest deletion of `object` in AUDITHISTORY happened (its ACCESSTIME), if any:
    /// one function, a page of one record. A full read asks it before comparing every key, so
    /// every deletion up to that time is in the comparison and later ones can be asked for
    /// after it.
    pub async fn newest_deletion(
        &self,
        object: &str,
    ) -> Result<Option<NaiveDateTime>, IntacctError> {
        let mut q = Query::new("AUDITHISTORY", &["ACCESSTIME", "ID"]);
        q.filter = Some(Filter::And(vec![
            Filter::eq("OBJECTTYPE", object.to_ascii_lowercase()),
            Filter::eq("ACCESSMODE", "D"),
        ]));
        q.order_by = vec![
            ("ACCESSTIME".into(), Order::Descending),
            ("ID".into(), Order::Descending),
        ];
        q.page_size = Some(1);
        let page = self.query(q).await.map_err(|mut e| {
            if e.is_permission_denied() {
                e.kind = ErrorKind::AuditHistoryDenied;
            }
            e
        })?;
        Ok(page
            .records
            .first()
            .and_then(|r| r.get("ACCESSTIME"))
            .and_then(parse_timestamp))
    }

    /// Every RECORDNO of `object`, in pages (keyset on RECORDNO, RECORDNO selected alone), for
    /// finding deletions by comparison when AUDITHISTORY is not readable.
    pub fn all_keys(
        &self,
        object: &str,
    ) -> impl futures::Stream<Item = Result<Vec<i64>, IntacctError>> + Send + 'static {
        let client = self.clone();
        let object = object.to_owned();
        prefetching(move |tx| async move {
            let page_size = client.page_size(None);
            let (client, object) = (&client, object.as_str());
            send_pass(&tx, Some(None), move |after: Option<i64>| async move {
                let mut q = Query::new(object, &["RECORDNO"]);
                q.filter = after.map(|n| Filter::gt("RECORDNO", n.to_string()));
                q.order_by = vec![("RECORDNO".into(), Order::Ascending)];
                q.page_size = Some(page_size);
                let page = client.query(q).await?;
                let keys = page
                    .records
                    .iter()
                    .map(recordno)
                    .collect::<Result<Vec<i64>, _>>()?;
                let next = match keys.last() {
                    Some(&n) if !is_last(&page, page_size) => Some(Some(n)),
                    _ => None,
                };
                Ok((keys, next))
            })
            .await;
        })
    }
}

impl IntacctClient {
    /// Those of `keys` (RECORDNOs of `object`) that Intacct still has, in no particular order: one
    /// `query` a 1,000 keys (the gateway's limit for `in`). What tells a deleted record from a
    /// live one when a delete event names it by a business ID that may since have been given to
    /// a new record.
    pub async fn present_keys(&self, object: &str, keys: &[i64]) -> Result<Vec<i64>, IntacctError> {
        let mut present = Vec::new();
        for chunk in keys.chunks(1000) {
            let mut q = Query::new(object, &["RECORDNO"]);
            q.filter = Some(Filter::In(
                "RECORDNO".into(),
                chunk.iter().map(i64::to_string).collect(),
            ));
            q.order_by = vec![("RECORDNO".into(), Order::Ascending)];
            q.page_size = Some(1000);
            let page = self.query(q).await?;
            for r in &page.records {
                present.push(recordno(r)?);
            }
        }
        Ok(present)
    }
}

/// `123--REC` → 123; other OBJECTKEY forms are not RECORDNOs.
pub fn parse_object_key(key: &str) -> Option<i64> {
    key.trim().strip_suffix("--REC")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_of_the_recordno_form() {
        assert_eq!(parse_object_key("123--REC"), Some(123));
        assert_eq!(parse_object_key(" 7--REC "), Some(7));
        assert_eq!(parse_object_key("V-100"), None);
        assert_eq!(parse_object_key("jsmith"), None);
        assert_eq!(parse_object_key("--REC"), None);
    }
}
