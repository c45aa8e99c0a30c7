//! Power BI push datasets for ml-connector: app-only tokens, the REST client, the schema model and row encoder,
//! and a pusher that stays inside every documented push limit.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | cloud table (authority, scope, API host), identity and credential, endpoint validation |
//! | [`token`] | OAuth 2.0 client credentials (secret or certificate JWT), cached, single-flight refresh |
//! | [`error`] | the crate's error (`mod.rs`), what an API refusal means (`api.rs`), reading every Power BI error response into one, with Retry-After (`classify.rs`), Entra AADSTS errors (`entra.rs`) |
//! | [`client`] | REST calls on `/groups/{groupId}/...`: request plumbing (`http.rs`), the endpoint calls (`endpoints.rs`), answer types (`types.rs`), request bodies (`body.rs`) |
//! | [`schema`] | dataset/table/column model and validation (`model.rs`); the fast row → JSON encoder (`row_encoder.rs`); both pure |
//! | [`limits`] | the documented push limits, read by the batcher and the pacer |
//! | [`events`] | progress notices ([`PushEvent`]) and why a POST waits ([`WaitReason`]) |
//! | [`batch`] | cuts encoded rows into `{"rows":[...]}` bodies within rows/bytes limits (pure) |
//! | [`pace`] | per-dataset budgets: in-flight slots and exact sliding logs for POSTs and rows |
//! | [`pusher`] | sends batches under the budgets; retries only what certainly was not applied; stamps each POST with the injected clock |
//!
//! Imports run one way: `limits` and `events` stand below `batch`, `pace` and `pusher`, and only `pusher` imports
//! `batch` and `pace`. Inside `schema/`, `error/` and `client/` the `mod.rs` hands names on and the files depend on
//! each other without a loop.
//!
//! The flow for one table: [`schema::RowEncoder`] → [`Batcher`] → [`Pusher::send`] → [`BatchReport`].

// Errors carry the remote code, message, RequestId and trace ids as plain public fields so the audit trail can
// store them; they are built on the cold path only, so their size (clippy's `result_large_err`) costs nothing real.
#![allow(clippy::result_large_err)]

pub mod batch;
pub mod client;
pub mod error;
pub mod events;
pub mod limits;
pub mod pace;
pub mod pusher;
pub mod schema;
pub mod settings;
pub mod token;

pub use batch::{Batch, Batcher, RowTooLarge};
pub use client::{
    ColumnInfo, Dashboard, Dataset, Group, PowerBiClient, QueryResult, Refresh, Report,
    RequestInfo, Retention, TableInfo, Tile,
};
pub use error::{
    ApiError, ApiErrorKind, ErrorClass, PowerBiError, TokenError, TokenErrorKind, TransportError,
};
pub use events::{PushEvent, WaitReason};
pub use limits::PushLimits;
pub use pusher::{BatchOutcome, BatchReport, PostRecord, Pusher, TableTarget};
pub use schema::{
    Column, DataType, DatasetSchema, EncodedRow, Measure, Relationship, RowEncoder, SchemaError,
    TableSchema, Value, ValueError, encode_row, validate_dataset,
};
pub use settings::{ClientCredential, Cloud, PowerBiSettings};
pub use token::{AccessToken, TokenSource};
