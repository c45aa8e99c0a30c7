//! The parallel full read: both passes of `changed_since` cut into RECORDNO ranges, each read by
//! its own keyset chain, so that every slot of the concurrency limit is busy (one keyset scan
//! waits a round trip per page and would use a single slot whatever the limit).

use tokio::sync::mpsc::Permit;
use tokio::sync::watch;

use crate::error::IntacctError;

use super::IntacctClient;
use super::keyset::{ChangedSince, last_cursor, modified_page, never_modified_page};
use super::page::{Cursor, Page, Pass};
use super::prefetch::{PageTx, prefetching_n};
use super::split::{modified_split_points, never_modified_split_points, ranges};
use super::watermark::Marks;

impl IntacctClient {
    /// Every record of an object changed after `req.since` (all when `None`), plus the
    /// never-modified ones, read by parallel keyset chains that keep all
    /// `max_concurrent_requests` slots busy (a single keyset scan waits one round trip per page,
    /// so it uses one slot whatever the limit).
    ///
    /// - The never-modified pass is one chain (RECORDNO keyset), started together with the
    ///   first page of the modified pass. On an incremental read, where it is most of the work,
    ///   it splits after its first page into RECORDNO ranges extrapolated from that page.
    /// - That first page (the 2,000 oldest modifications) is a sample of the RECORDNOs of the
    ///   modified records: its quantiles cut the rest of the pass into `max_concurrent_requests`
    ///   RECORDNO ranges, each read by its own (WHENMODIFIED, RECORDNO) keyset scan. No request
    ///   is spent on probing; a skewed sample only makes one chain longer than the others.
    /// - A record keeps its RECORDNO, so a change during the read moves it to the end of its own
    ///   chain, never out of it: every record is yielded at least once, and its newest version
    ///   whenever the chain was still reading when it changed. A never-modified record changed
    ///   during the read leaves the first chain for one of the others, so no other chain sends
    ///   its last query before the never-modified chain is done (should one run out earlier, it
    ///   looks once more then).
    /// - Pages come in any order and carry no cursor. The stream ends with an empty page whose
    ///   cursor is the watermark: the lowest over the chains of what each had read when it ended
    ///   (its last record, or the newest WHENMODIFIED seen anywhere before its last query was
    ///   sent, whichever is later). Every change the read missed is after it.
    ///
    /// Each chain ends on its own partial page, so a read of n records costs at most
    /// ⌈n/page⌉ + max_concurrent_requests requests, plus one per chain in the rare case above.
    /// At most `max_concurrent_requests` pages are fetched ahead of the consumer.
    pub fn full_read(
        &self,
        req: ChangedSince,
    ) -> impl futures::Stream<Item = Result<Page, IntacctError>> + Send + 'static {
        let client = self.clone();
        let width = self.inner.settings.max_concurrent_requests.max(1);
        prefetching_n(width, move |tx| async move {
            let (nm_done_tx, nm_done) = watch::channel(false);
            let read = FullRead {
                client: &client,
                req: &req,
                ps: client.page_size(req.page_size),
                width,
                tx: &tx,
                marks: Marks::default(),
            };
            let nm = async {
                let r = read.never_modified().await;
                nm_done_tx.send_replace(true);
                r
            };
            match futures::try_join!(nm, read.modified(nm_done)) {
                Ok(_) => {
                    let page = Page {
                        object: req.object.clone(),
                        pass: Pass::Modified,
                        cursor: read.marks.watermark(),
                        ..Page::default()
                    };
                    let _ = tx.send(Ok(page)).await;
                }
                Err(Stop::Failed(e)) => {
                    let _ = tx.send(Err(e)).await;
                }
                Err(Stop::Closed) => {}
            }
        })
    }
}

/// Why a chain of [`IntacctClient::full_read`] stopped early.
enum Stop {
    /// The consumer dropped the stream.
    Closed,
    Failed(IntacctError),
}

/// What every chain of one full read shares.
struct FullRead<'a> {
    client: &'a IntacctClient,
    req: &'a ChangedSince,
    /// Records per page.
    ps: u32,
    /// How many chains each pass is cut into.
    width: usize,
    tx: &'a PageTx,
    marks: Marks,
}

impl FullRead<'_> {
    /// A slot for the next page. It is taken before the fetch, so the pages fetched ahead stay
    /// within the channel's size.
    async fn slot(&self) -> Result<Permit<'_, Result<Page, IntacctError>>, Stop> {
        self.tx.reserve().await.map_err(|_| Stop::Closed)
    }

    /// The never-modified pass: the first page, then one chain, or several on an incremental
    /// read.
    async fn never_modified(&self) -> Result<(), Stop> {
        let permit = self.slot().await?;
        let (page, next) = never_modified_page(self.client, self.req, self.ps, None, None)
            .await
            .map_err(Stop::Failed)?;
        // On an incremental read the never-modified records are most of what is read: after
        // the first page, cut the rest into RECORDNO ranges (extrapolated from the page's span;
        // RECORDNOs are assigned in sequence) read in parallel. A full read does not: there the
        // modified chains keep every slot busy.
        let bounds = match next {
            Some(Some(_)) if self.req.since.is_some() && self.width > 1 => {
                never_modified_split_points(&page, self.width)
            }
            _ => Vec::new(),
        };
        offer(permit, page);
        let Some(after) = next else { return Ok(()) };
        // This chain continues to the first bound; the others take the ranges above it.
        let chains = ranges(after, &bounds)
            .into_iter()
            .map(|(lower, upper)| self.never_modified_range(lower, upper));
        futures::future::try_join_all(chains).await.map(|_| ())
    }

    /// One RECORDNO keyset scan of the never-modified records in `(after, upper]`.
    async fn never_modified_range(
        &self,
        mut after: Option<i64>,
        upper: Option<i64>,
    ) -> Result<(), Stop> {
        loop {
            let permit = self.slot().await?;
            let (page, next) = never_modified_page(self.client, self.req, self.ps, after, upper)
                .await
                .map_err(Stop::Failed)?;
            offer(permit, page);
            match next {
                Some(a) => after = a,
                None => return Ok(()),
            }
        }
    }

    /// The modified pass: the first page, then `width` chains over RECORDNO ranges.
    async fn modified(&self, nm_done: watch::Receiver<bool>) -> Result<(), Stop> {
        let permit = self.slot().await?;
        let (first, next) =
            modified_page(self.client, self.req, self.ps, self.req.since, (None, None))
                .await
                .map_err(Stop::Failed)?;
        self.marks.saw(&first);
        // Where the pass continues: after the first page's last record, or, when the first page
        // was empty (nothing changed since the cursor), after the cursor itself. Without the
        // latter, the look once more after the never-modified chain read every modified record
        // from the start: a run with nothing changed read the whole object.
        let c1 = last_cursor(&first)
            .map_err(Stop::Failed)?
            .or(self.req.since);
        let bounds = match next {
            Some(_) => modified_split_points(&first, self.width),
            None => Vec::new(),
        };
        offer(permit, first);
        if next.is_none() {
            // The first page was the whole pass (or there is no modified record at all), read
            // while the never-modified chain ran, which may still move records here.
            return self.modified_range(c1, (None, None), nm_done, true).await;
        }
        let chains = ranges(None, &bounds)
            .into_iter()
            .map(|range| self.modified_range(c1, range, nm_done.clone(), false));
        futures::future::try_join_all(chains).await.map(|_| ())
    }

    /// One (WHENMODIFIED, RECORDNO) keyset scan of the records with RECORDNO in
    /// `(lower, upper]`, after `after`. `ran_out`: the caller's last query was sent while the
    /// never-modified chain ran.
    async fn modified_range(
        &self,
        mut after: Option<Cursor>,
        range: (Option<i64>, Option<i64>),
        mut nm_done: watch::Receiver<bool>,
        ran_out: bool,
    ) -> Result<(), Stop> {
        if ran_out {
            let _ = nm_done.wait_for(|d| *d).await;
        }
        loop {
            let after_nm = *nm_done.borrow();
            let newest_before = self.marks.newest();
            let permit = self.slot().await?;
            let (page, next) = modified_page(self.client, self.req, self.ps, after, range)
                .await
                .map_err(Stop::Failed)?;
            self.marks.saw(&page);
            let last = last_cursor(&page).map_err(Stop::Failed)?;
            after = last.or(after);
            offer(permit, page);
            match next {
                Some(c) => after = c,
                None if !after_nm => {
                    // Sent while the never-modified chain ran: look once more when it is done.
                    let _ = nm_done.wait_for(|d| *d).await;
                }
                None => {
                    // Read up to `after`; and everything changed before the newest modification
                    // seen before this last query was sent (that query ran later).
                    let seen = newest_before.map(|t| Cursor {
                        when_modified: t,
                        recordno: 0,
                    });
                    if let Some(mark) = after.max(seen) {
                        self.marks.finished(mark);
                    }
                    return Ok(());
                }
            }
        }
    }
}

/// Sends a page into the slot taken for it; an empty page is not sent, and its slot is freed.
fn offer(permit: Permit<'_, Result<Page, IntacctError>>, page: Page) {
    if !page.records.is_empty() {
        permit.send(Ok(page));
    }
}
