//! [`IntacctClient`]: the façade the connector holds. It owns the settings, the transport and
//! the session slot, and answers the single-request questions (ping, lookup, user formatting,
//! queries); each longer read has a module of its own beside this one.

mod balances;
mod batch;
mod coalesce;
mod deletes;
mod keyset;
mod page;
mod paging;
mod parallel;
mod prefetch;
mod probe;
mod results;
mod sessions;
mod setup;
mod split;
mod watermark;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, FixedOffset};
use url::Url;

use crate::error::IntacctError;
use crate::protocol::{Function, FunctionCall, ObjectDefinition, Query, Record};
use crate::session::{SessionCache, SessionKey};
use crate::settings::IntacctSettings;
use crate::transport::Transport;

pub use balances::BalancesRequest;
pub use batch::MAX_FUNCTIONS_PER_REQUEST;
pub use deletes::{DeletedRecord, parse_object_key};
pub use keyset::{ChangedSince, CreatedSince};
pub use page::{Cursor, Page, Pass};
pub use paging::{FirstPages, Resume};
pub use probe::Probe;
pub use sessions::SavedSession;
pub use setup::Setup;

use results::{page_from, single_result, take_result};

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
    /// A sign-in Intacct refused: every later call of this client fails with it instead of signing
    /// in again (Intacct locks a user out after repeated failures). A client lives for one run
    /// (`sync`) or is built anew for each scheduled run, so new credentials are read next time.
    refused: std::sync::Mutex<Option<IntacctError>>,
    /// Queries waiting for a slot, sent together (see [`coalesce`]).
    coalescer: coalesce::Coalescer,
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
        let settings_slots = settings.max_concurrent_requests;
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
                refused: std::sync::Mutex::new(None),
                coalescer: coalesce::Coalescer::new(settings_slots),
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
        let mut resp = self.call("lookup", &f).await?;
        single_result(&resp, "lookup")?;
        setup::definition_from(object, take_result(&mut resp, 0))
    }

    /// The API user's formatting preferences.
    pub async fn user_formatting(&self) -> Result<UserFormatting, IntacctError> {
        let f = [Function {
            control_id: self.control_id("fmt"),
            call: FunctionCall::ReadUserFormatting {
                user_id: self.inner.settings.user_id.clone(),
            },
        }];
        let mut resp = self.call("readUserFormatting", &f).await?;
        single_result(&resp, "readUserFormatting")?;
        Ok(setup::formatting_from(take_result(&mut resp, 0)))
    }

    /// One `query` page.
    pub async fn query(&self, q: Query) -> Result<Page, IntacctError> {
        let object = q.object.clone();
        let r = self.query_coalesced(q).await?;
        page_from(&object, r, Pass::Query)
    }

    /// Several queries in one request (several functions, uniqueid=false); pages in order. A
    /// query that failed for a passing reason is sent again alone (see [`batch`]); any other
    /// failure is the error.
    pub async fn query_batch(&self, queries: Vec<Query>) -> Result<Vec<Page>, IntacctError> {
        let objects: Vec<String> = queries.iter().map(|q| q.object.clone()).collect();
        let calls = queries.into_iter().map(FunctionCall::Query).collect();
        let results = self.call_each("query", calls).await?;
        let mut pages = Vec::with_capacity(results.len());
        for (object, r) in objects.iter().zip(results) {
            pages.push(page_from(object, r?, Pass::Query)?);
        }
        Ok(pages)
    }

    fn page_size(&self, req: Option<u32>) -> u32 {
        req.unwrap_or(self.inner.settings.page_size).clamp(1, 2000)
    }
}
