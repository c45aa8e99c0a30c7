//! Sage Intacct XML gateway client for ml-connector.
//!
//! # Layout
//!
//! - [`protocol`]: the pure codec. Request envelopes out, response documents in; no I/O, no
//!   async, the only module that touches quick-xml.
//!   - `protocol::encode`: request envelopes that validate against Sage's XSD.
//!   - `protocol::decode`: response documents, read leniently and by streaming; under it
//!     `events` (the guarded event reader), `envelope`, `records` and `lookup` (the parts of a
//!     document), `sniff` (bodies that are not responses) and `response` (the decoded types).
//!   - `protocol::fast_records`: plain records read without the XML parser.
//!   - `protocol::values`: Intacct's small text formats (timestamps, support ids).
//! - [`error`]: [`IntacctError`], classified (level, kind, retryable) with actionable messages.
//! - [`settings`]: [`IntacctSettings`], [`RetryPolicy`], and the endpoint rule that keeps
//!   credentials on `https://*.intacct.com`.
//! - `transport`: HTTP under the per-company concurrency limit, status/body classification,
//!   retries with backoff and jitter.
//! - `session`: the session cache (single-flight login, sliding expiry, age cap).
//! - `client`: [`IntacctClient`], the façade: ping, lookup, user formatting, queries. Each
//!   longer read is a module of its own under it:
//!   - `client::sessions`: login, session reuse, expiry sliding, one re-login on "Invalid session".
//!   - `client::page`: [`Page`], [`Pass`], [`Cursor`]: what every read hands back.
//!   - `client::results`: function results judged (error or page) the same way for every read.
//!   - `client::keyset`: [`ChangedSince`], the keyset queries of both passes and where a page
//!     leaves off.
//!   - `client::prefetch`: streams that fetch ahead of the consumer, and the one loop that
//!     sends a keyset pass into them.
//!   - `client::paging`: the sequential `changed_since` read, [`FirstPages`] and [`Resume`].
//!   - `client::parallel`: `full_read`, both passes cut into RECORDNO ranges read in parallel;
//!     `client::split` guesses the cut points, `client::watermark` keeps where it may resume.
//!   - `client::deletes`: deletions from AUDITHISTORY, or all keys to compare when it is denied.
//!   - `client::balances`: GL balances of several periods, batched in one request.

pub mod error;
pub mod protocol;
pub mod settings;

mod client;
mod session;
mod transport;

pub use client::{
    BalancesRequest, ChangedSince, CreatedSince, Cursor, DeletedRecord, FirstPages, IntacctClient,
    MAX_FUNCTIONS_PER_REQUEST, Page, Pass, Probe, Resume, SavedSession, SessionInfo, Setup,
    UserFormatting, parse_object_key,
};
pub use error::{ErrorKind, ErrorLevel, IntacctError};
pub use protocol::{
    ErrorDetail, FieldDef, Filter, ObjectDefinition, Order, Query, Record, RecordShape, SelectItem,
};
pub use settings::{IntacctSettings, RetryPolicy};
pub use transport::classify_exchange;
