//! The names the back end's macros use, imported once by each file that instantiates them
//! (`sqlite`, `postgres`): a macro's body resolves names where it expands, not where it is written,
//! so the job files cannot import these themselves.

pub(crate) use std::collections::HashMap;
pub(crate) use std::sync::{Arc, Mutex};
pub(crate) use std::time::Duration;

pub(crate) use async_trait::async_trait;
pub(crate) use chrono::{DateTime, Utc};
pub(crate) use foldhash::{HashMapExt, HashSetExt};
pub(crate) use sqlx::{QueryBuilder, Row};

pub(crate) use super::audit_trail::{AUDIT_COLS, WALK_PAGE};
pub(crate) use super::key_index::{KEY_INDEX_BATCH, KEY_INDEX_LAG};
pub(crate) use super::mirror::{
    JoinedPart, KEY_SEPARATOR, MIRROR_KEYS_PER_TEXT, MIRROR_ROWS_PER_TEXT, MirrorColumn,
};
pub(crate) use super::multi_row::{CHUNK, MultiRow};
pub(crate) use crate::StoreError;
pub(crate) use crate::audit::{
    ChainHead, ChainedEntry, GENESIS, NewEntry, StoredEntry, UnchangedDigest, Verifier,
};
pub(crate) use crate::crypto::SealedSecret;
pub(crate) use crate::model::*;
pub(crate) use crate::store::{Clock, Store};
pub(crate) use std::sync::OnceLock;
