//! OneLake for Fabric open mirroring: a DFS client for a mirrored database's landing zone and the
//! Parquet change files written into it.
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`client`] | `OneLakeClient`: create, append, flush, rename, list, delete over the ADLS Gen2 DFS REST API, with a service-principal token for the storage scope and retries on 500/503/429 |
//! | [`changefile`] | `ChangeFile`: typed Parquet columns plus `__rowMarker__` last, written with the `parquet` crate's column writers (no arrow) |
//! | [`error`] | `OneLakeError` |
//!
//! Why not `object_store` (whose Azure store reaches OneLake): publishing needs a rename that
//! refuses an existing destination (`If-None-Match: *` on the DFS rename) so a file number is never
//! published twice, and `object_store`'s `rename_if_not_exists` on Azure is a copy, not the DFS
//! rename open mirroring's best practices name; it would also bring its own HTTP and credential
//! stack beside the Power BI token source we reuse. The six DFS calls are a small surface.

pub mod changefile;
pub mod client;
pub mod error;

pub use changefile::{ChangeFile, ColumnKind, RowMarker, Value};
pub use client::{LandingZone, OneLakeClient, PathEntry, STORAGE_SCOPE};
pub use error::OneLakeError;
