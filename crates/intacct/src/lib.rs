//! Sage Intacct XML gateway client for ml-connector.
//!
//! # Layout
//!
//! - [`protocol`]: the pure codec. Request envelopes out, response documents in; no I/O, no
//!   async, the only module that touches quick-xml.
//! - [`error`]: [`IntacctError`], classified (level, kind, retryable) with actionable messages.
//! - [`settings`]: [`IntacctSettings`], [`RetryPolicy`], and the endpoint rule that keeps
//!   credentials on `https://*.intacct.com`.
//! - `transport`: HTTP under the per-company concurrency limit, status/body classification,
//!   retries with backoff and jitter.
//! - `session`: the session cache (single-flight login, sliding expiry, age cap).
//! - `client`: [`IntacctClient`], the façade: ping, lookup, user formatting, queries, keyset
//!   paging streams with prefetch, deletions from AUDITHISTORY, batched GL balances.

pub mod error;
pub mod protocol;
pub mod settings;

mod client;
mod session;
mod transport;

pub use client::{
    BalancesRequest, ChangedSince, Cursor, DeletedRecord, FirstPages, IntacctClient, Page, Pass,
    Resume, SessionInfo, UserFormatting, parse_object_key,
};
pub use error::{ErrorKind, ErrorLevel, IntacctError};
pub use protocol::{
    ErrorDetail, FieldDef, Filter, ObjectDefinition, Order, Query, Record, RecordShape, SelectItem,
};
pub use settings::{IntacctSettings, RetryPolicy};
pub use transport::classify_exchange;
