//! The sequential `changed_since` read: the never-modified pass, then the modified pass, one
//! page at a time with the next page fetched ahead; and its batched start, [`FirstPages`], which
//! opens both passes of many objects in one request and hands back where each continues.

use crate::error::IntacctError;
use crate::protocol::Query;

use super::IntacctClient;
use super::keyset::{
    ChangedSince, last_cursor, modified_page, modified_query, never_modified_page,
    never_modified_query, next_modified, next_never_modified,
};
use super::page::{Cursor, Next, Page, Pass};
use super::prefetch::{prefetching, send_pass};

/// The first pages of one object's two `changed_since` passes, fetched together with other
/// objects' in one request by [`IntacctClient::first_pages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstPages {
    pub never_modified: Page,
    pub modified: Page,
    /// Where the passes continue; `resume.is_done()` when both were complete.
    pub resume: Resume,
}

/// Continuation of a `changed_since` stream after [`FirstPages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    never_modified: Next<i64>,
    modified: Next<Cursor>,
}

impl Resume {
    pub fn is_done(&self) -> bool {
        self.never_modified.is_none() && self.modified.is_none()
    }
}

impl IntacctClient {
    /// Records changed after `req.since` (all records when `None`), as a stream of pages.
    ///
    /// Two passes, each a keyset scan that never uses offsets:
    ///
    /// 1. **Never modified** (`WHENMODIFIED` empty), keyset on RECORDNO. On incremental runs
    ///    *all* such records are read again: filtering them on WHENCREATED could lose records,
    ///    because on transaction objects WHENCREATED is the (back-datable) transaction date.
    ///    The cost is re-reading records never touched since creation; the mirror absorbs the
    ///    repeats. This pass runs first so a record modified during the run moves into the
    ///    second pass instead of falling between the two.
    /// 2. **Modified**, ordered by (WHENMODIFIED, RECORDNO) with the filter
    ///    `WHENMODIFIED > ts OR (WHENMODIFIED = ts AND RECORDNO > n)` from the last record of
    ///    the previous page.
    ///
    /// Within one pass the keys are strictly increasing, so no version of a record
    /// (RECORDNO, WHENMODIFIED) is yielded twice and none existing when the pass reaches its
    /// place is skipped. A record updated during the pass moves to the end and is yielded
    /// again with its newer value (a new version, not a repeat), so the last version yielded
    /// for each record is the newest the pass saw. One caveat: an update stamped with the very
    /// second of the cursor but a lower RECORDNO is found by the next run's lookback, not by
    /// this pass (timestamps have one-second resolution).
    ///
    /// The next page is fetched while the consumer handles the current one (one page ahead,
    /// inside the concurrency limit).
    ///
    /// With a concurrency limit above 1 the passes run as parallel keyset chains instead (see
    /// [`Self::full_read`]): the same records with the same guarantee, pages in any order, the
    /// watermark on a final empty page, in about `1 / max_concurrent_requests` of the time.
    pub fn changed_since(
        &self,
        req: ChangedSince,
    ) -> impl futures::Stream<Item = Result<Page, IntacctError>> + Send + 'static {
        use futures::StreamExt;
        if self.inner.settings.max_concurrent_requests > 1 {
            return self.full_read(req).left_stream();
        }
        let resume = Resume {
            never_modified: Some(None),
            modified: Some(req.since),
        };
        self.changed_since_resume(req, resume).right_stream()
    }

    /// Continues a `changed_since` stream from [`FirstPages::resume`].
    pub fn changed_since_resume(
        &self,
        req: ChangedSince,
        resume: Resume,
    ) -> impl futures::Stream<Item = Result<Page, IntacctError>> + Send + 'static {
        let client = self.clone();
        prefetching(move |tx| async move {
            let ps = client.page_size(req.page_size);
            let (client, req) = (&client, &req);
            let never_modified = send_pass(&tx, resume.never_modified, move |after| async move {
                never_modified_page(client, req, ps, after, None).await
            });
            if !never_modified.await {
                return;
            }
            send_pass(&tx, resume.modified, move |after| async move {
                let (mut page, next) = modified_page(client, req, ps, after, (None, None)).await?;
                page.cursor = last_cursor(&page).ok().flatten();
                Ok((page, next))
            })
            .await;
        })
    }

    /// The first page of both passes of several objects, in ONE request (two functions per
    /// object). Small dimension objects usually finish here; continue the others with
    /// [`Self::changed_since_resume`].
    pub async fn first_pages(
        &self,
        reqs: &[ChangedSince],
    ) -> Result<Vec<FirstPages>, IntacctError> {
        let mut queries: Vec<Query> = Vec::with_capacity(reqs.len() * 2);
        for r in reqs {
            let ps = self.page_size(r.page_size);
            queries.push(never_modified_query(r, None, ps));
            queries.push(modified_query(r, r.since, ps));
        }
        let mut pages = self.query_batch(queries).await?.into_iter();
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            let ps = self.page_size(r.page_size);
            let nm = Page {
                pass: Pass::NeverModified,
                ..pages.next().expect("two per request")
            };
            let mut m = Page {
                pass: Pass::Modified,
                ..pages.next().expect("two per request")
            };
            m.cursor = last_cursor(&m)?;
            let resume = Resume {
                never_modified: next_never_modified(&nm, ps)?,
                modified: next_modified(&m, ps)?,
            };
            out.push(FirstPages {
                never_modified: nm,
                modified: m,
                resume,
            });
        }
        Ok(out)
    }
}
