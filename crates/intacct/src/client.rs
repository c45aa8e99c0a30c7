//! [`IntacctClient`]: sessions, calls, and the read operations the connector needs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::{debug, info};
use url::Url;

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{
    Auth, Envelope, Filter, Function, FunctionCall, FunctionResult, ObjectDefinition, Order, Query,
    Record, Response, SelectItem, encode_request,
};
use crate::session::{Session, SessionCache, SessionKey, deadline_from};
use crate::settings::{IntacctSettings, check_endpoint};
use crate::transport::Transport;

/// What `ping` reports about the session it obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub company_id: String,
    pub user_id: String,
    /// Entity of the session; `None` or empty = top level.
    pub entity: Option<String>,
    pub endpoint: Url,
    pub expires_at: Option<DateTime<FixedOffset>>,
}

/// The user's formatting preferences (timestamps follow them, §6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFormatting {
    pub locale: String,
    pub date_format: String,
    pub clock: String,
    pub gmt_offset: String,
    /// Every field as returned.
    pub raw: Record,
}

/// One page of records of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub object: String,
    pub records: Vec<Record>,
    pub total_count: Option<u64>,
    pub num_remaining: Option<u64>,
    /// Which pass of a `changed_since` stream produced the page.
    pub pass: Pass,
    /// After a [`Pass::Modified`] page: the keyset position of its last record, which is the
    /// watermark to resume from once the page is staged.
    pub cursor: Option<Cursor>,
}

/// The two passes of `changed_since`, or a plain query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pass {
    /// Records whose WHENMODIFIED is empty (never modified since creation).
    NeverModified,
    /// Records with WHENMODIFIED, in (WHENMODIFIED, RECORDNO) order.
    Modified,
    #[default]
    Query,
}

/// A position in (WHENMODIFIED, RECORDNO) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub when_modified: NaiveDateTime,
    pub recordno: i64,
}

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
}

/// A deletion found in AUDITHISTORY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedRecord {
    /// The RECORDNO when OBJECTKEY has the `123--REC` form; `None` for other keys.
    pub recordno: Option<i64>,
    pub object_key: String,
    pub access_time: Option<NaiveDateTime>,
    pub id: String,
}

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
    never_modified: Option<Option<i64>>,
    modified: Option<Option<Cursor>>,
}

impl Resume {
    pub fn is_done(&self) -> bool {
        self.never_modified.is_none() && self.modified.is_none()
    }
}

/// The Intacct client of one company. Cheap to clone; clones share sessions and the
/// concurrency limit.
#[derive(Clone)]
pub struct IntacctClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: IntacctSettings,
    transport: Transport,
    sessions: SessionCache,
    key: SessionKey,
    generation: AtomicU64,
    seq: AtomicU64,
}

impl fmt::Debug for IntacctClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntacctClient")
            .field("endpoint", &self.inner.settings.endpoint.as_str())
            .field("company_id", &self.inner.settings.company_id)
            .field("entity", &self.inner.settings.entity)
            .field("user_id", &self.inner.settings.user_id)
            .finish_non_exhaustive()
    }
}

impl IntacctClient {
    pub fn new(settings: IntacctSettings) -> Result<Self, IntacctError> {
        settings.validate()?;
        let transport = Transport::new(
            settings.max_concurrent_requests,
            settings.request_timeout,
            settings.retry.clone(),
        )?;
        let key = SessionKey {
            company: settings.company_id.clone(),
            entity: settings.entity.clone(),
            user: settings.user_id.clone(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                transport,
                sessions: SessionCache::default(),
                key,
                generation: AtomicU64::new(0),
                seq: AtomicU64::new(0),
            }),
        })
    }

    pub fn settings(&self) -> &IntacctSettings {
        &self.inner.settings
    }

    fn control_id(&self, prefix: &str) -> String {
        let n = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n}")
    }

    fn build(&self, auth: Auth<'_>, functions: &[Function]) -> Result<String, IntacctError> {
        let s = &self.inner.settings;
        let control_id = self.control_id("req");
        encode_request(&Envelope {
            sender_id: &s.sender_id,
            sender_password: s.sender_password.expose_secret(),
            control_id: &control_id,
            unique_id: false,
            transaction: false,
            auth,
            functions,
        })
        .map_err(|e| IntacctError::config(e.to_string()))
    }

    /// Logs in with `getAPISession`, sent alone with the login credentials.
    async fn login(&self) -> Result<Session, IntacctError> {
        let s = &self.inner.settings;
        let functions = [Function {
            control_id: "sessionProvider".into(),
            call: FunctionCall::GetApiSession { location_id: None },
        }];
        let body = || {
            self.build(
                Auth::Login {
                    user_id: &s.user_id,
                    company_id: &s.company_id,
                    password: s.user_password.expose_secret(),
                    location_id: s.entity.as_deref(),
                },
                &functions,
            )
        };
        let resp = self
            .inner
            .transport
            .exchange(&s.endpoint, "getAPISession", body)
            .await?;
        let now = Instant::now();
        let op = resp
            .operation
            .as_ref()
            .expect("checked by classify_exchange");
        let result = single_result(&resp, "getAPISession")?;
        let rec = result.records.first().ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "getAPISession returned no <api> block",
            )
            .with_function("getAPISession")
        })?;
        let id = rec.get("sessionid").unwrap_or("").to_owned();
        if id.is_empty() {
            return Err(IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "getAPISession returned an empty session id",
            ));
        }
        let endpoint = match rec.get("endpoint").map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => Url::parse(e).map_err(|_| {
                IntacctError::new(
                    ErrorKind::EndpointRefused,
                    ErrorLevel::Function,
                    "getAPISession returned an endpoint that is not a URL",
                )
            })?,
            None => s.endpoint.clone(),
        };
        check_endpoint(&endpoint, s.allow_loopback_http)?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        info!(
            company_id = %s.company_id,
            entity = s.entity.as_deref().unwrap_or(""),
            endpoint = %endpoint,
            generation,
            "intacct session obtained"
        );
        Ok(Session {
            id: SecretString::from(id),
            endpoint,
            location_id: rec.get("locationid").map(str::to_owned),
            company_id: op.authentication.company_id.clone(),
            user_id: op.authentication.user_id.clone(),
            generation,
            obtained: now,
            deadline: deadline_from(
                &op.authentication,
                now,
                s.session_refresh_margin,
                s.session_max_age,
            ),
            expires_at: op.authentication.session_timeout,
        })
    }

    /// A usable session: the cached one, or a fresh login by exactly one caller.
    async fn session(&self) -> Result<Session, IntacctError> {
        let slot = self.inner.sessions.slot(&self.inner.key);
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref()
            && s.usable(Instant::now(), self.inner.settings.session_max_age)
        {
            return Ok(s.clone());
        }
        *guard = None;
        let s = self.login().await?;
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn invalidate(&self, generation: u64) {
        let slot = self.inner.sessions.slot(&self.inner.key);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|s| s.generation == generation) {
            *guard = None;
        }
    }

    /// Slides the cached session's expiry from an authenticated response.
    fn touch(&self, generation: u64, resp: &Response) {
        let Some(op) = resp.operation.as_ref() else {
            return;
        };
        if op.authentication.session_timeout.is_none() {
            return;
        }
        let slot = self.inner.sessions.slot(&self.inner.key);
        // If the slot is busy, a login is under way and will replace this session anyway:
        // do not make the caller wait for it just to slide an expiry.
        let Ok(mut guard) = slot.try_lock() else {
            return;
        };
        if let Some(s) = guard.as_mut().filter(|s| s.generation == generation) {
            let st = &self.inner.settings;
            s.deadline = deadline_from(
                &op.authentication,
                Instant::now(),
                st.session_refresh_margin,
                st.session_max_age,
            );
            s.expires_at = op.authentication.session_timeout;
        }
    }

    /// Sends functions with the session; on "Invalid session" logs in once more and retries once.
    pub(crate) async fn call(
        &self,
        what: &str,
        functions: &[Function],
    ) -> Result<Response, IntacctError> {
        let mut relogged = false;
        loop {
            let s = self.session().await?;
            let body = || self.build(Auth::Session(s.id.expose_secret()), functions);
            match self.inner.transport.exchange(&s.endpoint, what, body).await {
                Ok(resp) => {
                    self.touch(s.generation, &resp);
                    return Ok(resp);
                }
                Err(e) if e.is_invalid_session() && !relogged => {
                    debug!(
                        function = what,
                        "intacct session rejected; logging in again"
                    );
                    self.invalidate(s.generation).await;
                    relogged = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Logs in (or reuses the session) and reports it.
    pub async fn ping(&self) -> Result<SessionInfo, IntacctError> {
        let s = self.session().await?;
        Ok(SessionInfo {
            company_id: s.company_id,
            user_id: s.user_id,
            entity: s.location_id,
            endpoint: s.endpoint,
            expires_at: s.expires_at,
        })
    }

    /// The object definition (fields, types, relationships).
    pub async fn lookup(&self, object: &str) -> Result<ObjectDefinition, IntacctError> {
        let f = [Function {
            control_id: self.control_id("lookup"),
            call: FunctionCall::Lookup {
                object: object.to_owned(),
            },
        }];
        let resp = self.call("lookup", &f).await?;
        let r = single_result(&resp, "lookup")?;
        r.definition.clone().ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                format!("lookup of {object} returned no <Type>"),
            )
        })
    }

    /// The API user's formatting preferences.
    pub async fn user_formatting(&self) -> Result<UserFormatting, IntacctError> {
        let f = [Function {
            control_id: self.control_id("fmt"),
            call: FunctionCall::ReadUserFormatting {
                user_id: self.inner.settings.user_id.clone(),
            },
        }];
        let resp = self.call("readUserFormatting", &f).await?;
        let r = single_result(&resp, "readUserFormatting")?;
        let rec = r.records.first().cloned().unwrap_or_default();
        let g = |k: &str| rec.get(k).unwrap_or("").to_owned();
        Ok(UserFormatting {
            locale: g("locale"),
            date_format: g("dateformat"),
            clock: g("clock"),
            gmt_offset: g("gmtoffset"),
            raw: rec,
        })
    }

    /// One `query` page.
    pub async fn query(&self, q: Query) -> Result<Page, IntacctError> {
        let object = q.object.clone();
        let f = [Function {
            control_id: self.control_id("q"),
            call: FunctionCall::Query(q),
        }];
        let mut resp = self.call("query", &f).await?;
        single_result(&resp, "query")?;
        let r = take_result(&mut resp, 0);
        Ok(page_from(&object, r, Pass::Query))
    }

    /// Several queries in one request (several functions, uniqueid=false); results in order.
    pub async fn query_batch(&self, queries: Vec<Query>) -> Result<Vec<Page>, IntacctError> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let objects: Vec<String> = queries.iter().map(|q| q.object.clone()).collect();
        let functions: Vec<Function> = queries
            .into_iter()
            .enumerate()
            .map(|(i, q)| Function {
                control_id: format!("q{i}"),
                call: FunctionCall::Query(q),
            })
            .collect();
        let resp = self.call("query", &functions).await?;
        let mut results = resp
            .operation
            .expect("checked by classify_exchange")
            .results;
        if results.len() != functions.len() {
            return Err(IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                format!(
                    "sent {} functions, got {} results",
                    functions.len(),
                    results.len()
                ),
            ));
        }
        // Match by control id; fall back to position for gateways that do not echo it.
        let by_id = functions
            .iter()
            .enumerate()
            .all(|(i, f)| results[i].control_id == f.control_id);
        if !by_id {
            let mut ordered = Vec::with_capacity(results.len());
            for (i, f) in functions.iter().enumerate() {
                let j = results
                    .iter()
                    .position(|r| r.control_id == f.control_id)
                    .unwrap_or(i.min(results.len() - 1));
                ordered.push(std::mem::take(&mut results[j]));
            }
            results = ordered;
        }
        let mut pages = Vec::with_capacity(results.len());
        for (i, r) in results.into_iter().enumerate() {
            check_result(&r)?;
            pages.push(page_from(&objects[i], r, Pass::Query));
        }
        Ok(pages)
    }

    fn page_size(&self, req: Option<u32>) -> u32 {
        req.unwrap_or(self.inner.settings.page_size).clamp(1, 2000)
    }

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
            let ps = client.page_size(req.page_size);
            let (nm_done_tx, nm_done) = tokio::sync::watch::channel(false);
            let marks = Marks::default();
            let nm = async {
                let r = never_modified_chain(&client, &req, ps, width, &tx).await;
                nm_done_tx.send_replace(true);
                r
            };
            let m = modified_chains(&client, &req, ps, width, &tx, &marks, nm_done);
            match futures::try_join!(nm, m) {
                Ok(_) => {
                    let page = Page {
                        object: req.object.clone(),
                        pass: Pass::Modified,
                        cursor: marks.watermark(),
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

    /// Continues a `changed_since` stream from [`FirstPages::resume`].
    pub fn changed_since_resume(
        &self,
        req: ChangedSince,
        resume: Resume,
    ) -> impl futures::Stream<Item = Result<Page, IntacctError>> + Send + 'static {
        let client = self.clone();
        prefetching(move |tx| async move {
            let page_size = client.page_size(req.page_size);
            let mut nm = resume.never_modified;
            while let Some(after) = nm {
                if !ahead_ok(&tx).await {
                    return;
                }
                let q = never_modified_query(&req, after, page_size);
                let page = match client.query(q).await {
                    Ok(p) => Page {
                        pass: Pass::NeverModified,
                        ..p
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                nm = match next_never_modified(&page, page_size) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if !page.records.is_empty() && tx.send(Ok(page)).await.is_err() {
                    return;
                }
            }
            let mut m = resume.modified;
            while let Some(after) = m {
                if !ahead_ok(&tx).await {
                    return;
                }
                let q = modified_query(&req, after, page_size);
                let mut page = match client.query(q).await {
                    Ok(p) => Page {
                        pass: Pass::Modified,
                        ..p
                    },
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                m = match next_modified(&page, page_size) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                page.cursor = last_cursor(&page).ok().flatten();
                if !page.records.is_empty() && tx.send(Ok(page)).await.is_err() {
                    return;
                }
            }
        })
    }

    /// The first page of both passes of several objects, in ONE request (two functions per
    /// object). Small dimension objects usually finish here; continue the others with
    /// [`Self::changed_since_resume`].
    pub async fn first_pages(
        &self,
        reqs: &[ChangedSince],
    ) -> Result<Vec<FirstPages>, IntacctError> {
        let mut queries = Vec::with_capacity(reqs.len() * 2);
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
            let mut after: Option<i64> = None;
            loop {
                if !ahead_ok(&tx).await {
                    return;
                }
                let mut q = Query::new(&object, &["RECORDNO"]);
                q.filter = after.map(|n| Filter::gt("RECORDNO", n.to_string()));
                q.order_by = vec![("RECORDNO".into(), Order::Ascending)];
                q.page_size = Some(page_size);
                let page = match client.query(q).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let mut keys = Vec::with_capacity(page.records.len());
                for r in &page.records {
                    match recordno(r) {
                        Ok(n) => keys.push(n),
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                let done = is_last(&page, page_size);
                after = keys.last().copied();
                if !keys.is_empty() && tx.send(Ok(keys)).await.is_err() {
                    return;
                }
                if done || after.is_none() {
                    return;
                }
            }
        })
    }

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
            let mut q = Query::new("AUDITHISTORY", &["OBJECTKEY", "ACCESSTIME", "ID"]);
            q.filter = Some(Filter::And(vec![
                Filter::eq("OBJECTTYPE", object.to_ascii_lowercase()),
                Filter::eq("ACCESSMODE", "D"),
                Filter::gt(
                    "ACCESSTIME",
                    crate::protocol::values::format_timestamp(since),
                ),
            ]));
            q.order_by = vec![
                ("ACCESSTIME".into(), Order::Ascending),
                ("ID".into(), Order::Ascending),
            ];
            q.page_size = Some(page_size);
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
                    access_time: r
                        .get("ACCESSTIME")
                        .and_then(crate::protocol::values::parse_timestamp),
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
                .map(|(period, after)| {
                    let mut conds = vec![Filter::eq("PERIOD", period.clone())];
                    if let Some(ts) = req.modified_since {
                        conds.push(Filter::GreaterThanOrEqualTo(
                            "WHENMODIFIED".into(),
                            crate::protocol::values::format_timestamp(ts),
                        ));
                    }
                    if let Some(f) = &req.filter {
                        conds.push(f.clone());
                    }
                    if let Some(n) = after {
                        conds.push(Filter::gt("RECORDNO", n.to_string()));
                    }
                    Query {
                        object: "GLACCOUNTBALANCE".into(),
                        select: fields
                            .iter()
                            .map(|f| SelectItem::Field(f.clone()))
                            .collect(),
                        filter: Some(Filter::And(conds)),
                        order_by: vec![("RECORDNO".into(), Order::Ascending)],
                        case_insensitive: None,
                        show_private: true,
                        page_size: Some(page_size),
                        offset: None,
                        docparid: None,
                    }
                })
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

/// Why a chain of [`IntacctClient::full_read`] stopped early.
enum Stop {
    /// The consumer dropped the stream.
    Closed,
    Failed(IntacctError),
}

type PageTx = tokio::sync::mpsc::Sender<Result<Page, IntacctError>>;

async fn never_modified_chain(
    client: &IntacctClient,
    req: &ChangedSince,
    ps: u32,
    width: usize,
    tx: &PageTx,
) -> Result<(), Stop> {
    let mut after = None;
    let mut split = req.since.is_some() && width > 1;
    loop {
        // The slot is taken before the fetch: pages fetched ahead stay within the channel's size.
        let permit = tx.reserve().await.map_err(|_| Stop::Closed)?;
        let page = client
            .query(never_modified_query(req, after, ps))
            .await
            .map_err(Stop::Failed)?;
        let page = Page {
            pass: Pass::NeverModified,
            ..page
        };
        let next = next_never_modified(&page, ps).map_err(Stop::Failed)?;
        // On an incremental read the never-modified records are most of what is read: after
        // the first page, cut the rest into RECORDNO ranges (extrapolated from the page's span;
        // RECORDNOs are assigned in sequence) read in parallel. A full read does not: there the
        // modified chains keep every slot busy.
        let bounds = match (split, next) {
            (true, Some(Some(_))) => nm_split_points(&page, width),
            _ => Vec::new(),
        };
        split = false;
        if !page.records.is_empty() {
            permit.send(Ok(page));
        } else {
            drop(permit);
        }
        let Some(a) = next else { return Ok(()) };
        if bounds.is_empty() {
            after = a;
            continue;
        }
        // This chain continues to the first bound; the others take the ranges above it.
        let mut chains = Vec::with_capacity(bounds.len() + 1);
        let mut lower = a;
        for up in bounds.iter().copied().map(Some).chain([None]) {
            chains.push(never_modified_range(client, req, ps, lower, up, tx));
            lower = up;
        }
        return futures::future::try_join_all(chains).await.map(|_| ());
    }
}

/// One RECORDNO keyset scan of the never-modified records in `(after, upper]`.
async fn never_modified_range(
    client: &IntacctClient,
    req: &ChangedSince,
    ps: u32,
    mut after: Option<i64>,
    upper: Option<i64>,
    tx: &PageTx,
) -> Result<(), Stop> {
    loop {
        let permit = tx.reserve().await.map_err(|_| Stop::Closed)?;
        let mut q = never_modified_query(req, after, ps);
        if let (Some(u), Some(Filter::And(conds))) = (upper, q.filter.as_mut()) {
            conds.push(Filter::LessThanOrEqualTo("RECORDNO".into(), u.to_string()));
        }
        let page = client.query(q).await.map_err(Stop::Failed)?;
        let page = Page {
            pass: Pass::NeverModified,
            ..page
        };
        let next = next_never_modified(&page, ps).map_err(Stop::Failed)?;
        if !page.records.is_empty() {
            permit.send(Ok(page));
        } else {
            drop(permit);
        }
        match next {
            Some(a) => after = a,
            None => return Ok(()),
        }
    }
}

/// RECORDNOs cutting the never-modified records after the first page into `width` ranges,
/// extrapolating the page's RECORDNO span over `numremaining` records.
fn nm_split_points(first: &Page, width: usize) -> Vec<i64> {
    let keys: Vec<i64> = first
        .records
        .iter()
        .filter_map(|r| recordno(r).ok())
        .collect();
    let (Some(&r0), Some(&r1), Some(rest)) = (keys.first(), keys.last(), first.num_remaining)
    else {
        return Vec::new();
    };
    if width < 2 || r1 <= r0 || (rest as usize) < keys.len() {
        return Vec::new();
    }
    let per_record = (r1 - r0) as f64 / keys.len() as f64;
    let end = r1 as f64 + per_record * rest as f64;
    let mut out: Vec<i64> = Vec::new();
    for k in 1..width {
        let b = (r1 as f64 + (end - r1 as f64) * k as f64 / width as f64) as i64;
        if b > r1 && out.last().is_none_or(|l| b > *l) {
            out.push(b);
        }
    }
    out
}

/// What the modified chains of a full read have seen, for the watermark.
#[derive(Default)]
struct Marks(std::sync::Mutex<MarksInner>);

#[derive(Default)]
struct MarksInner {
    /// Newest WHENMODIFIED in any response received so far.
    newest: Option<NaiveDateTime>,
    /// Per finished chain: how far it is known to have read.
    finals: Vec<Cursor>,
}

impl Marks {
    fn newest(&self) -> Option<NaiveDateTime> {
        self.0.lock().expect("marks lock").newest
    }

    fn saw(&self, page: &Page) {
        // Modified pages are in WHENMODIFIED order: the last record has the newest.
        if let Some(c) = last_cursor(page).ok().flatten() {
            let mut m = self.0.lock().expect("marks lock");
            m.newest = m.newest.max(Some(c.when_modified));
        }
    }

    fn finished(&self, mark: Cursor) {
        self.0.lock().expect("marks lock").finals.push(mark);
    }

    fn watermark(&self) -> Option<Cursor> {
        self.0
            .lock()
            .expect("marks lock")
            .finals
            .iter()
            .min()
            .copied()
    }
}

/// The modified pass: the first page, then `width` chains over RECORDNO ranges.
async fn modified_chains(
    client: &IntacctClient,
    req: &ChangedSince,
    ps: u32,
    width: usize,
    tx: &PageTx,
    marks: &Marks,
    nm_done: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Stop> {
    let permit = tx.reserve().await.map_err(|_| Stop::Closed)?;
    let mut first = client
        .query(modified_query(req, req.since, ps))
        .await
        .map_err(Stop::Failed)?;
    first.pass = Pass::Modified;
    marks.saw(&first);
    let c1 = last_cursor(&first).map_err(Stop::Failed)?;
    let more = next_modified(&first, ps).map_err(Stop::Failed)?.is_some();
    let bounds = if more {
        split_points(&first, width)
    } else {
        Vec::new()
    };
    if !first.records.is_empty() {
        permit.send(Ok(first));
    } else {
        drop(permit);
    }
    let Some(c1) = c1 else {
        // No modified record at all: the never-modified chain may still move one here.
        let r = modified_chain(
            client,
            req,
            ps,
            None,
            (None, None),
            tx,
            marks,
            nm_done,
            true,
        )
        .await;
        return r;
    };
    if !more {
        // The first page was the whole pass, read while the never-modified chain ran.
        return modified_chain(
            client,
            req,
            ps,
            Some(c1),
            (None, None),
            tx,
            marks,
            nm_done,
            true,
        )
        .await;
    }
    let mut chains = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for upper in bounds.iter().copied().map(Some).chain([None]) {
        let nm_done = nm_done.clone();
        chains.push(modified_chain(
            client,
            req,
            ps,
            Some(c1),
            (lower, upper),
            tx,
            marks,
            nm_done,
            false,
        ));
        lower = upper;
    }
    futures::future::try_join_all(chains).await.map(|_| ())
}

/// One (WHENMODIFIED, RECORDNO) keyset scan of the records with RECORDNO in `(lower, upper]`,
/// after `after`. `ran_out`: the caller's last query was sent while the never-modified chain ran.
#[allow(clippy::too_many_arguments)]
async fn modified_chain(
    client: &IntacctClient,
    req: &ChangedSince,
    ps: u32,
    mut after: Option<Cursor>,
    (lower, upper): (Option<i64>, Option<i64>),
    tx: &PageTx,
    marks: &Marks,
    mut nm_done: tokio::sync::watch::Receiver<bool>,
    ran_out: bool,
) -> Result<(), Stop> {
    if ran_out {
        let _ = nm_done.wait_for(|d| *d).await;
    }
    loop {
        let after_nm = *nm_done.borrow();
        let newest_before = marks.newest();
        let permit = tx.reserve().await.map_err(|_| Stop::Closed)?;
        let mut q = modified_query(req, after, ps);
        let mut conds = vec![q.filter.take().expect("modified queries filter")];
        if let Some(l) = lower {
            conds.push(Filter::gt("RECORDNO", l.to_string()));
        }
        if let Some(u) = upper {
            conds.push(Filter::LessThanOrEqualTo("RECORDNO".into(), u.to_string()));
        }
        q.filter = Some(if conds.len() == 1 {
            conds.pop().expect("one")
        } else {
            Filter::And(conds)
        });
        let mut page = client.query(q).await.map_err(Stop::Failed)?;
        page.pass = Pass::Modified;
        marks.saw(&page);
        let next = next_modified(&page, ps).map_err(Stop::Failed)?;
        let last = last_cursor(&page).map_err(Stop::Failed)?;
        after = last.or(after);
        if !page.records.is_empty() {
            permit.send(Ok(page));
        } else {
            drop(permit);
        }
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
                    marks.finished(mark);
                }
                return Ok(());
            }
        }
    }
}

/// RECORDNOs that cut the rest of the modified pass into `width` ranges of about equal size:
/// quantiles of the RECORDNOs on the first page, a sample of the pass (its oldest changes).
/// Empty when the page has too few records to go by.
fn split_points(first: &Page, width: usize) -> Vec<i64> {
    let mut keys: Vec<i64> = first
        .records
        .iter()
        .filter_map(|r| recordno(r).ok())
        .collect();
    if width < 2 || keys.len() < width * 2 {
        return Vec::new();
    }
    keys.sort_unstable();
    let mut out: Vec<i64> = Vec::new();
    for k in 1..width {
        let b = keys[keys.len() * k / width];
        if out.last().is_none_or(|l| b > *l) {
            out.push(b);
        }
    }
    out
}

/// Waits until the one-slot channel is empty, i.e. the consumer has taken the previous page.
/// Producers call it before each fetch, so they run exactly one page ahead: the consumer holds
/// page n, page n+1 is fetched (then waits in the slot), and nothing more. `false` when the
/// stream was dropped. The producer is the channel's only sender, so the capacity seen free
/// here is still free when it sends.
async fn ahead_ok<T>(tx: &tokio::sync::mpsc::Sender<T>) -> bool {
    tx.reserve().await.is_ok()
}

/// Runs `producer` in a task that sends pages into a one-slot channel, so the next page is
/// being fetched while the consumer handles the current one. The task starts on first poll
/// and stops when the stream is dropped (its next send fails).
fn prefetching<T, F, Fut>(producer: F) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    enum State<F, T> {
        Idle(F),
        Running(tokio::sync::mpsc::Receiver<T>),
    }
    futures::stream::unfold(State::Idle(producer), |state| async move {
        let mut rx = match state {
            State::Idle(p) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(p(tx));
                rx
            }
            State::Running(rx) => rx,
        };
        rx.recv().await.map(|item| (item, State::Running(rx)))
    })
}

/// Like [`prefetching`] with `n` slots, for producers that run several fetches at once and
/// reserve a slot before each.
fn prefetching_n<T, F, Fut>(
    n: usize,
    producer: F,
) -> impl futures::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    enum State<F, T> {
        Idle(F, usize),
        Running(tokio::sync::mpsc::Receiver<T>),
    }
    futures::stream::unfold(State::Idle(producer, n), |state| async move {
        let mut rx = match state {
            State::Idle(p, n) => {
                let (tx, rx) = tokio::sync::mpsc::channel(n.max(1));
                tokio::spawn(p(tx));
                rx
            }
            State::Running(rx) => rx,
        };
        rx.recv().await.map(|item| (item, State::Running(rx)))
    })
}

fn check_result(r: &FunctionResult) -> Result<(), IntacctError> {
    if r.status.is_success() {
        return Ok(());
    }
    let mut e = IntacctError::from_gateway(ErrorLevel::Function, r.errors.clone(), None);
    if r.errors.is_empty() {
        e.context = Some(format!(
            "result status {:?} without error details",
            r.status
        ));
    }
    Err(e.with_function(&r.function))
}

fn single_result<'a>(resp: &'a Response, what: &str) -> Result<&'a FunctionResult, IntacctError> {
    let r = resp
        .operation
        .as_ref()
        .and_then(|op| op.results.first())
        .ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "the response has no <result>",
            )
            .with_function(what)
        })?;
    check_result(r)?;
    Ok(r)
}

/// Moves result `i` out of the response (records are not copied).
fn take_result(resp: &mut Response, i: usize) -> FunctionResult {
    resp.operation
        .as_mut()
        .and_then(|op| op.results.get_mut(i))
        .map(std::mem::take)
        .unwrap_or_default()
}

fn page_from(object: &str, r: FunctionResult, pass: Pass) -> Page {
    Page {
        object: object.to_owned(),
        records: r.records,
        total_count: r.data.as_ref().and_then(|d| d.total_count),
        num_remaining: r.data.as_ref().and_then(|d| d.num_remaining),
        pass,
        cursor: None,
    }
}

fn is_last(page: &Page, page_size: u32) -> bool {
    page.num_remaining == Some(0) || (page.records.len() as u32) < page_size
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

fn never_modified_query(req: &ChangedSince, after: Option<i64>, page_size: u32) -> Query {
    let mut conds = vec![Filter::IsNull("WHENMODIFIED".into())];
    if let Some(n) = after {
        conds.push(Filter::gt("RECORDNO", n.to_string()));
    }
    Query {
        object: req.object.clone(),
        select: select_with_keys(req),
        filter: Some(Filter::And(conds)),
        order_by: vec![("RECORDNO".into(), Order::Ascending)],
        case_insensitive: None,
        show_private: true,
        page_size: Some(page_size),
        offset: None,
        docparid: None,
    }
}

fn modified_query(req: &ChangedSince, after: Option<Cursor>, page_size: u32) -> Query {
    let filter = match after {
        None => Filter::IsNotNull("WHENMODIFIED".into()),
        Some(c) => {
            let ts = crate::protocol::values::format_timestamp(c.when_modified);
            Filter::Or(vec![
                Filter::gt("WHENMODIFIED", ts.clone()),
                Filter::And(vec![
                    Filter::eq("WHENMODIFIED", ts),
                    Filter::gt("RECORDNO", c.recordno.to_string()),
                ]),
            ])
        }
    };
    Query {
        object: req.object.clone(),
        select: select_with_keys(req),
        filter: Some(filter),
        order_by: vec![
            ("WHENMODIFIED".into(), Order::Ascending),
            ("RECORDNO".into(), Order::Ascending),
        ],
        case_insensitive: None,
        show_private: true,
        page_size: Some(page_size),
        offset: None,
        docparid: None,
    }
}

fn recordno(r: &Record) -> Result<i64, IntacctError> {
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

fn last_cursor(page: &Page) -> Result<Option<Cursor>, IntacctError> {
    let Some(r) = page.records.last() else {
        return Ok(None);
    };
    let n = recordno(r)?;
    let wm = r
        .get("WHENMODIFIED")
        .and_then(crate::protocol::values::parse_timestamp)
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

/// `None` = pass finished; `Some(after)` = continue after that RECORDNO.
fn next_never_modified(page: &Page, page_size: u32) -> Result<Option<Option<i64>>, IntacctError> {
    if is_last(page, page_size) {
        return Ok(None);
    }
    Ok(Some(Some(recordno(
        page.records.last().expect("a full page has records"),
    )?)))
}

fn next_modified(page: &Page, page_size: u32) -> Result<Option<Option<Cursor>>, IntacctError> {
    if is_last(page, page_size) {
        return Ok(None);
    }
    Ok(Some(last_cursor(page)?))
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

    #[test]
    fn keyset_filters() {
        let req = ChangedSince {
            object: "VENDOR".into(),
            fields: vec!["NAME".into()],
            since: None,
            page_size: None,
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
    }
}
