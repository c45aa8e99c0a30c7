//! The SQL shared by both back ends.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`, fixed-width text timestamps, integer flags), but sqlx types every query by its
//! database, and writing this code generically over `sqlx::Database` needs a wall of
//! higher-ranked `Encode`/`Decode` bounds. So the implementation is written once as a macro and
//! instantiated for each back end, which supplies only: its pool type, how a write transaction
//! begins (`BEGIN IMMEDIATE` on SQLite so the single writer is taken up front, a plain `BEGIN` on
//! PostgreSQL), and the row-lock suffix used on the audit chain head (`FOR UPDATE` on PostgreSQL;
//! SQLite's writer lock already serialises appends).

/// Rows per multi-row statement: 1000 rows x 18 columns stays under SQLite's 32766 and
/// PostgreSQL's 65535 bind parameters.
pub(crate) const CHUNK: usize = 1000;
/// Page size when walking the audit chain.
pub(crate) const WALK_PAGE: i64 = 5000;
/// Seqs of a chain whose keys go into `audit_keys` in one statement. SQLite's sort of a batch
/// takes ~500 bytes an entry (10 MB here; 50,000 took 24 MB more at the peak, for no less CPU).
pub(crate) const KEY_INDEX_BATCH: i64 = 20_000;
/// Mirror rows a rebuild reads joined into one text (~150 KB of VENDOR rows).
pub(crate) const MIRROR_ROWS_PER_TEXT: i64 = 500;
/// Mirror keys a full pull's delete comparison reads joined into one text (~20 KB of RECORDNOs).
pub(crate) const MIRROR_KEYS_PER_TEXT: i64 = 2_000;
/// Between the keys of such a text: U+001F, which XML 1.0 cannot carry (`mirror_keys_page`).
pub(crate) const KEY_SEPARATOR: &str = "\u{1f}";
/// One query's part of a mirror page read as joined text (`joined_parts`).
pub(crate) struct JoinedPart {
    /// The position the part was read after.
    pub after: String,
    pub count: i64,
    /// The part's last position: where the next part starts.
    pub cursor: String,
    /// Its `count` values, joined by the separator asked for.
    pub joined: String,
}

/// How far an append lets its chain run ahead of `audit_keys` before it indexes the rest: bounds
/// what a search by key reads off the chain itself (migration 0005 says why the index lags).
pub(crate) const KEY_INDEX_LAG: i64 = 100_000;

pub(crate) const AUDIT_COLS: &str = "a.id, c.name, a.seq, a.run_id, a.stream, a.record_key, a.when_modified, \
     a.source_hash, a.action, a.row_json, a.ref_seq, a.batch_id, a.request_id, a.outcome, a.error, a.detail, \
     a.created_at, a.prev_hash, a.hash";

pub(crate) mod prelude {
    pub(crate) use std::collections::HashMap;
    pub(crate) use std::sync::{Arc, Mutex};
    pub(crate) use std::time::Duration;

    pub(crate) use async_trait::async_trait;
    pub(crate) use chrono::{DateTime, Utc};
    pub(crate) use foldhash::{HashMapExt, HashSetExt};
    pub(crate) use sqlx::{QueryBuilder, Row};

    pub(crate) use super::{
        AUDIT_COLS, CHUNK, JoinedPart, KEY_INDEX_BATCH, KEY_INDEX_LAG, KEY_SEPARATOR,
        MIRROR_KEYS_PER_TEXT, MIRROR_ROWS_PER_TEXT, MirrorColumn, MultiRow, WALK_PAGE,
    };
    pub(crate) use crate::StoreError;
    pub(crate) use crate::audit::{
        ChainHead, ChainedEntry, GENESIS, NewEntry, StoredEntry, Verifier,
    };
    pub(crate) use crate::crypto::SealedSecret;
    pub(crate) use crate::model::*;
    pub(crate) use crate::store::{Clock, Store};
    pub(crate) use std::sync::OnceLock;
}

/// Text of a multi-row statement: `head`, then `rows` groups of `cols` numbered placeholders from
/// `$first` on (`($1, $2), ($3, $4)` with `group = true`, or a flat `$3, $4` list for `IN (...)`),
/// then `tail`.
///
/// With `anonymous` (SQLite) every placeholder, those written in `head` and `tail` included, is a
/// plain `?` and they are bound in order: sqlx-sqlite resolves a *numbered* placeholder through
/// `sqlite3_bind_parameter_name`, a linear search, which made an 18,000-parameter insert quadratic.
/// So `$n` in `head`/`tail` must appear in the order of their numbers.
///
/// Why not sqlx's `QueryBuilder`: it formats every placeholder anew for every statement, which was
/// ~4 % of the staging CPU (18,000 placeholders per audit chunk). Full chunks, the common case, are
/// built once per statement and kept in `cache`; sqlx then also reuses its prepared statement,
/// which it keys by this text.
pub(crate) struct MultiRow {
    pub head: &'static str,
    /// Number of the first generated placeholder.
    pub first: usize,
    /// Placeholders per row.
    pub cols: usize,
    /// `(..), (..)` groups (VALUES) rather than one flat list (IN).
    pub group: bool,
    pub tail: &'static str,
}

impl MultiRow {
    /// `INSERT ... VALUES ($1, ..), (..)` with `cols` values a row.
    pub(crate) const fn values(head: &'static str, cols: usize) -> Self {
        MultiRow {
            head,
            first: 1,
            cols,
            group: true,
            tail: "",
        }
    }

    /// `... AND record_key IN ($3, $4, ..)`, after `$1` and `$2` in `head`.
    pub(crate) const fn keys_after_two(head: &'static str) -> Self {
        MultiRow {
            head,
            first: 3,
            cols: 1,
            group: false,
            tail: ")",
        }
    }

    pub(crate) const fn with_tail(self, tail: &'static str) -> Self {
        MultiRow { tail, ..self }
    }

    /// The text for `rows` rows.
    pub(crate) fn sql(
        &self,
        cache: &'static std::sync::OnceLock<String>,
        anonymous: bool,
        rows: usize,
    ) -> std::borrow::Cow<'static, str> {
        multi_row_sql(self, cache, anonymous, rows)
    }
}

fn multi_row_sql(
    spec: &MultiRow,
    cache: &'static std::sync::OnceLock<String>,
    anonymous: bool,
    rows: usize,
) -> std::borrow::Cow<'static, str> {
    let MultiRow {
        head,
        first,
        cols,
        group,
        tail,
    } = *spec;
    use std::fmt::Write;
    let fixed = |text: &str| -> String {
        if !anonymous {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(ch);
            }
        }
        out
    };
    let build = || {
        let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 7);
        sql.push_str(&fixed(head));
        let mut n = first - 1;
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            if group {
                sql.push('(');
            }
            for c in 0..cols {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if anonymous {
                    sql.push('?');
                } else {
                    let _ = write!(sql, "${n}");
                }
            }
            if group {
                sql.push(')');
            }
        }
        sql.push_str(&fixed(tail));
        sql
    };
    if rows == CHUNK {
        std::borrow::Cow::Borrowed(cache.get_or_init(build).as_str())
    } else {
        std::borrow::Cow::Owned(build())
    }
}

/// Which of a mirror row's columns a key lookup reads.
#[derive(Clone, Copy)]
pub(crate) enum MirrorColumn {
    /// What staging compares a record with (changed or not).
    SourceHash,
    /// What a pull compares a record read twice with (older or newer).
    WhenModified,
}

/// `FROM` the mirror (`m`) joined to the audit entries that hold its rows (`a`): a mirror row's
/// row is `COALESCE(m.row_json, a.row_json)` (migration 0007; `m.row_json` only where the entry
/// was pruned or the row predates 0007).
macro_rules! mirror_with_rows {
    () => {
        "FROM mirror m LEFT JOIN audit a ON a.connection_id = m.connection_id AND a.seq = m.row_seq"
    };
}
pub(crate) use mirror_with_rows;

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn hash32(v: Vec<u8>, what: &str) -> Result<[u8; 32], crate::StoreError> {
    v.try_into()
        .map_err(|_| crate::StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

pub(crate) fn parse_enum<T: std::str::FromStr<Err = String>>(
    s: &str,
) -> Result<T, crate::StoreError> {
    s.parse().map_err(crate::StoreError::Corrupt)
}

pub(crate) fn lease_expiry(
    now: chrono::DateTime<chrono::Utc>,
    ttl: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>, crate::StoreError> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| crate::StoreError::Invalid(format!("lease ttl {ttl:?} is too large")))
}

macro_rules! impl_store {
    ($ty:ident, $db:ty, $conn:ty, lock = $lock:literal, backend = $backend:literal, anonymous_placeholders = $anon:literal) => {
        impl $ty {
            fn now(&self) -> DateTime<Utc> {
                self.clock.now()
            }

            async fn cid(&self, name: &str) -> Result<i64, StoreError> {
                if let Some(id) = self.cache.lock().expect("cache lock").get(name) {
                    return Ok(*id);
                }
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM connections WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                let id = id.ok_or_else(|| StoreError::UnknownConnection(name.to_string()))?;
                self.cache.lock().expect("cache lock").insert(name.to_string(), id);
                Ok(id)
            }

            /// A statement for `sql` with room for `n` arguments. sqlx otherwise grows its argument
            /// list a bind at a time, and for an 18,000-argument insert the reallocations, copies and
            /// page faults of the new memory were ~9 % of the pipeline thread's CPU (BENCHMARKS.md,
            /// "Session 6").
            fn with_room<'q>(sql: &'q str, n: usize) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                let mut args = <<$db as sqlx::Database>::Arguments<'q> as Default>::default();
                sqlx::Arguments::reserve(&mut args, n, 0);
                sqlx::query_with(sql, args)
            }

            async fn run_owner(&self, run: RunId) -> Result<(i64, String), StoreError> {
                let row = sqlx::query(
                    "SELECT r.connection_id, c.name FROM runs r JOIN connections c ON c.id = r.connection_id WHERE r.id = $1",
                )
                .bind(run.0)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::UnknownRun(run.0))?;
                Ok((row.try_get(0)?, row.try_get(1)?))
            }

            async fn lock_head(c: &mut $conn, cid: i64) -> Result<ChainHead, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT last_seq, last_hash FROM audit_head WHERE connection_id = $1",
                    $lock
                ))
                .bind(cid)
                .fetch_optional(&mut *c)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("connection {cid} has no audit chain head")))?;
                Ok(ChainHead {
                    seq: row.try_get(0)?,
                    hash: crate::backend::hash32(row.try_get(1)?, "audit head hash")?,
                })
            }

            /// The (key, `column`) of the mirror rows of those of `keys` it holds, in no particular order.
            async fn mirror_column(
                c: &mut $conn,
                cid: i64,
                stream: &str,
                keys: &[&str],
                column: MirrorColumn,
            ) -> Result<Vec<(String, Option<String>)>, StoreError> {
                static SOURCE_HASH: OnceLock<String> = OnceLock::new();
                static WHEN_MODIFIED: OnceLock<String> = OnceLock::new();
                let (select, sql_cache) = match column {
                    MirrorColumn::SourceHash => (
                        "SELECT record_key, source_hash FROM mirror WHERE connection_id = $1 AND stream = $2 \
                         AND record_key IN (",
                        &SOURCE_HASH,
                    ),
                    MirrorColumn::WhenModified => (
                        "SELECT record_key, when_modified FROM mirror WHERE connection_id = $1 AND stream = $2 \
                         AND record_key IN (",
                        &WHEN_MODIFIED,
                    ),
                };
                let mut out = Vec::new();
                for chunk in keys.chunks(CHUNK) {
                    // $1 and $2 are the connection and stream; the keys follow from $3.
                    let sql = MultiRow::keys_after_two(select).sql(sql_cache, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 2 + chunk.len()).bind(cid).bind(stream);
                    for k in chunk {
                        q = q.bind(*k);
                    }
                    for row in q.fetch_all(&mut *c).await? {
                        out.push((row.try_get(0)?, row.try_get(1)?));
                    }
                }
                Ok(out)
            }

            async fn read_anchor(c: &mut $conn, cid: i64) -> Result<Option<ChainHead>, StoreError> {
                let row = sqlx::query("SELECT seq, hash FROM audit_anchor WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_optional(&mut *c)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(ChainHead {
                        seq: row.try_get(0)?,
                        hash: crate::backend::hash32(row.try_get(1)?, "audit anchor hash")?,
                    })),
                }
            }

            /// Chains `entries` after the locked head, inserts them and stores the new head.
            async fn append(
                c: &mut $conn,
                cid: i64,
                connection: &str,
                head: &mut ChainHead,
                created_at: &str,
                entries: Vec<NewEntry>,
            ) -> Result<Vec<ChainedEntry>, StoreError> {
                let mut chained: Vec<ChainedEntry> =
                    entries.into_iter().map(|e| head.chain(connection, created_at, e)).collect();
                Self::insert_entries(&mut *c, cid, &mut chained).await?;
                Self::save_head(&mut *c, cid, head).await?;
                Self::widen_run_spans(&mut *c, cid, &chained).await?;
                Ok(chained)
            }

            /// How far `audit_keys` covers the chain of connection `cid`: every entry up to this seq.
            async fn keys_through(c: &mut $conn, cid: i64) -> Result<i64, StoreError> {
                let through: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM audit_keys_through WHERE connection_id = $1")
                        .bind(cid)
                        .fetch_optional(&mut *c)
                        .await?;
                Ok(through.unwrap_or(0))
            }

            /// The streams with entries in `audit_keys` for connection `cid`, found one index seek
            /// each (a skip-scan: a key lookup without its stream then seeks each stream's part).
            async fn indexed_streams(c: &mut $conn, cid: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "WITH RECURSIVE s(stream) AS ( \
                       SELECT min(stream) FROM audit_keys WHERE connection_id = $1 \
                       UNION ALL \
                       SELECT (SELECT min(k.stream) FROM audit_keys k WHERE k.connection_id = $1 AND k.stream > s.stream) \
                       FROM s WHERE s.stream IS NOT NULL) \
                     SELECT stream FROM s WHERE stream IS NOT NULL",
                )
                .bind(cid)
                .fetch_all(&mut *c)
                .await?)
            }

            /// Adds the keys of the chain's entries after the indexed point to `audit_keys`, up to
            /// the chain's head as it is now, if at least `min_lag` entries are behind:
            /// `KEY_INDEX_BATCH` seqs a statement, each batch in key order, so that an index page
            /// is written once a batch rather than once per page staged (migration 0005). Not in
            /// the appender's transaction: the batch's index pages and a staged page's would
            /// otherwise share one transaction's dirty pages.
            async fn index_keys(&self, cid: i64, min_lag: i64) -> Result<(), StoreError> {
                // Read outside a write transaction, so that a call with nothing to do takes no
                // write lock. A stale `through` only re-inserts keys (DO NOTHING below).
                let head: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_optional(self.writer())
                    .await?;
                let head = head.unwrap_or(0);
                let mut through = Self::keys_through(&mut *self.writer().acquire().await?, cid).await?;
                if head - through < min_lag.max(1) {
                    return Ok(());
                }
                while through < head {
                    let upto = head.min(through + KEY_INDEX_BATCH);
                    // Each statement on its own, no transaction around the two: inside one, SQLite
                    // keeps a statement journal (in memory, temp_store) of every index page the
                    // INSERT touches, and a batch's keys touch most leaves of the index, so that
                    // journal grew with the index (20 MB at 1,000,000 entries, the peak of the
                    // extract phase). Alone, the INSERT needs none. The indexed point moves only
                    // after its keys are in: a crash between the two re-inserts them (DO NOTHING,
                    // which also lets two PostgreSQL sessions index the same span at once).
                    sqlx::query(
                        "INSERT INTO audit_keys (connection_id, stream, record_key, seq) \
                         SELECT connection_id, stream, record_key, seq FROM audit \
                         WHERE connection_id = $1 AND seq > $2 AND seq <= $3 AND stream IS NOT NULL AND record_key IS NOT NULL \
                         ORDER BY stream, record_key, seq ON CONFLICT DO NOTHING",
                    )
                    .bind(cid)
                    .bind(through)
                    .bind(upto)
                    .execute(self.writer())
                    .await?;
                    sqlx::query(
                        "INSERT INTO audit_keys_through (connection_id, seq) VALUES ($1, $2) ON CONFLICT (connection_id) \
                         DO UPDATE SET seq = CASE WHEN excluded.seq > audit_keys_through.seq THEN excluded.seq \
                         ELSE audit_keys_through.seq END",
                    )
                    .bind(cid)
                    .bind(upto)
                    .execute(self.writer())
                    .await?;
                    through = upto;
                }
                Ok(())
            }

            /// The error for a page that came back short of a row: names the mirror row whose row is
            /// nowhere (its audit entry deleted or emptied outside ml-connector; pruning copies a row
            /// into the mirror before it deletes the entry), or says `otherwise` if none is.
            async fn missing_mirror_row(&self, cid: i64, connection: &str, stream: &str, otherwise: String) -> StoreError {
                let missing = sqlx::query(
                    concat!(
                        "SELECT m.record_key, m.row_seq ",
                        crate::backend::mirror_with_rows!(),
                        " WHERE m.connection_id = $1 AND m.stream = $2 AND m.row_json IS NULL AND a.row_json IS NULL LIMIT 1"
                    ),
                )
                .bind(cid)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await;
                let row = match missing {
                    Ok(Some(row)) => row,
                    Ok(None) => return StoreError::Corrupt(otherwise),
                    Err(e) => return e.into(),
                };
                let key: String = match row.try_get(0) {
                    Ok(key) => key,
                    Err(e) => return e.into(),
                };
                let seq = row
                    .try_get::<Option<i64>, _>(1)
                    .ok()
                    .flatten()
                    .map_or_else(|| "none".to_string(), |s| s.to_string());
                StoreError::Corrupt(format!(
                    "the mirror of '{connection}' {stream} keeps record '{key}' in audit entry {seq}, which is gone \
                     or holds no row: the audit trail was changed outside ml-connector. Run `ml-connector audit verify \
                     --connection {connection}`, then reload the stream from Intacct with \
                     `ml-connector sync --connection {connection} --stream {stream} --full`"
                ))
            }

            /// Up to `limit` of a stream's mirror values after `after`, `per_text` a query of
            /// `sql` (bound: connection, stream, after, how many, separator; answering the count,
            /// the last position and the values joined): one result row a part, not one a value
            /// (`mirror_rows` says why). Stops at the first short part.
            #[allow(clippy::too_many_arguments)]
            async fn joined_parts(
                &self,
                sql: &'static str,
                cid: i64,
                stream: &str,
                mut after: String,
                limit: u32,
                per_text: i64,
                separator: &str,
            ) -> Result<Vec<JoinedPart>, StoreError> {
                let mut parts = Vec::new();
                let mut left = i64::from(limit);
                while left > 0 {
                    let want = left.min(per_text);
                    let row = sqlx::query(sql)
                        .bind(cid)
                        .bind(stream)
                        .bind(after.as_str())
                        .bind(want)
                        .bind(separator)
                        .fetch_one(&self.pool)
                        .await?;
                    let count: i64 = row.try_get(0)?;
                    if count == 0 {
                        break;
                    }
                    let cursor: String = row.try_get(1)?;
                    let part = JoinedPart {
                        after: std::mem::replace(&mut after, cursor.clone()),
                        count,
                        cursor,
                        joined: row.try_get(2)?,
                    };
                    parts.push(part);
                    if count < want {
                        break;
                    }
                    left -= count;
                }
                Ok(parts)
            }

            /// Records the seq span of each run among `chained` (all of one append, usually one run):
            /// replay and search by run read the run's entries as that span of the chain.
            async fn widen_run_spans(c: &mut $conn, cid: i64, chained: &[ChainedEntry]) -> Result<(), StoreError> {
                // (run, first seq, last seq); seqs only grow, so the first one seen stays the first.
                let mut spans: Vec<(i64, i64, i64)> = Vec::new();
                for e in chained {
                    let Some(run) = e.entry.run else { continue };
                    match spans.iter_mut().find(|s| s.0 == run.0) {
                        Some(span) => span.2 = e.seq,
                        None => spans.push((run.0, e.seq, e.seq)),
                    }
                }
                for (run, first, last) in spans {
                    sqlx::query(
                        "UPDATE runs SET first_seq = COALESCE(first_seq, $3), last_seq = $4 \
                         WHERE id = $1 AND connection_id = $2",
                    )
                    .bind(run)
                    .bind(cid)
                    .bind(first)
                    .bind(last)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            }

            async fn save_head(c: &mut $conn, cid: i64, head: &ChainHead) -> Result<(), StoreError> {
                sqlx::query("UPDATE audit_head SET last_seq = $2, last_hash = $3 WHERE connection_id = $1")
                    .bind(cid)
                    .bind(head.seq)
                    .bind(&head.hash[..])
                    .execute(&mut *c)
                    .await?;
                Ok(())
            }

            /// Inserts chained entries, moving their rows into the statement: a row bound by
            /// reference is copied whole by sqlx (its arguments must own their values), and an
            /// entry's row is not read again once it is in the trail.
            async fn insert_entries(c: &mut $conn, cid: i64, entries: &mut [ChainedEntry]) -> Result<(), StoreError> {
                static SQL: OnceLock<String> = OnceLock::new();
                for chunk in entries.chunks_mut(CHUNK) {
                    let sql = MultiRow::values(
                        "INSERT INTO audit (connection_id, seq, run_id, stream, record_key, when_modified, source_hash, \
                         action, row_json, ref_seq, batch_id, request_id, outcome, error, detail, created_at, prev_hash, hash) VALUES ",
                        18,
                    )
                    .sql(&SQL, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 18 * chunk.len());
                    for e in chunk.iter_mut() {
                        q = q
                            .bind(cid)
                            .bind(e.seq)
                            .bind(e.entry.run.map(|r| r.0))
                            .bind(e.entry.stream.as_deref())
                            .bind(e.entry.record_key.as_deref())
                            .bind(e.entry.when_modified.as_deref())
                            .bind(e.entry.source_hash.as_deref())
                            .bind(e.entry.action.as_str())
                            .bind(e.entry.row_json.take())
                            .bind(e.entry.ref_seq)
                            .bind(e.entry.batch_id.as_deref())
                            .bind(e.entry.request_id.as_deref())
                            .bind(e.entry.outcome.as_deref())
                            .bind(e.entry.error.as_deref())
                            .bind(e.entry.detail.as_deref())
                            .bind(e.created_at.as_str())
                            .bind(&e.prev_hash[..])
                            .bind(&e.hash[..]);
                    }
                    q.execute(&mut *c).await?;
                }
                Ok(())
            }

            fn stored_from_row(row: &<$db as sqlx::Database>::Row) -> Result<(i64, String, StoredEntry), StoreError> {
                let action: String = row.try_get(8)?;
                let entry = NewEntry {
                    run: row.try_get::<Option<i64>, _>(3)?.map(RunId),
                    stream: row.try_get(4)?,
                    record_key: row.try_get(5)?,
                    when_modified: row.try_get(6)?,
                    source_hash: row.try_get(7)?,
                    action: crate::backend::parse_enum(&action)?,
                    row_json: row.try_get(9)?,
                    ref_seq: row.try_get(10)?,
                    batch_id: row.try_get(11)?,
                    request_id: row.try_get(12)?,
                    outcome: row.try_get(13)?,
                    error: row.try_get(14)?,
                    detail: row.try_get(15)?,
                };
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    StoredEntry {
                        seq: row.try_get(2)?,
                        created_at: row.try_get(16)?,
                        prev_hash: row.try_get(17)?,
                        hash: row.try_get(18)?,
                        entry,
                    },
                ))
            }

            /// Feeds entries `from < seq <= to` to the verifier; `Ok(Err(..))` on the first break.
            async fn walk(
                c: &mut $conn,
                cid: i64,
                from: i64,
                to: i64,
                v: &mut Verifier,
            ) -> Result<Result<(), (i64, String)>, StoreError> {
                let sql = format!(
                    "SELECT {AUDIT_COLS} FROM audit a JOIN connections c ON c.id = a.connection_id \
                     WHERE a.connection_id = $1 AND a.seq > $2 AND a.seq <= $3 ORDER BY a.seq LIMIT $4"
                );
                let mut after = from;
                loop {
                    let rows = sqlx::query(&sql)
                        .bind(cid)
                        .bind(after)
                        .bind(to)
                        .bind(WALK_PAGE)
                        .fetch_all(&mut *c)
                        .await?;
                    if rows.is_empty() {
                        return Ok(Ok(()));
                    }
                    for row in &rows {
                        let (_, _, s) = Self::stored_from_row(row)?;
                        after = s.seq;
                        if let Err(bad) = v.check(&s) {
                            return Ok(Err(bad));
                        }
                    }
                }
            }

            fn run_from_row(row: &<$db as sqlx::Database>::Row) -> Result<RunRecord, StoreError> {
                let status: String = row.try_get(3)?;
                let started: String = row.try_get(4)?;
                let finished: Option<String> = row.try_get(5)?;
                let summary: String = row.try_get(6)?;
                Ok(RunRecord {
                    id: RunId(row.try_get(0)?),
                    connection: row.try_get(1)?,
                    trigger: row.try_get(2)?,
                    status: crate::backend::parse_enum(&status)?,
                    started_at: parse_ts(&started)?,
                    finished_at: finished.as_deref().map(parse_ts).transpose()?,
                    summary: serde_json::from_str(&summary)
                        .map_err(|e| StoreError::Corrupt(format!("run summary: {e}")))?,
                })
            }

            fn credential_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Credential, StoreError> {
                let nonce: Vec<u8> = row.try_get(3)?;
                let public: String = row.try_get(5)?;
                let updated: String = row.try_get(6)?;
                Ok(Credential {
                    connection: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    sealed: SealedSecret {
                        key_fingerprint: row.try_get(2)?,
                        nonce: nonce
                            .try_into()
                            .map_err(|_| StoreError::Corrupt("credential nonce is not 24 bytes".into()))?,
                        ciphertext: row.try_get(4)?,
                    },
                    public_fields: serde_json::from_str(&public)
                        .map_err(|e| StoreError::Corrupt(format!("credential public fields: {e}")))?,
                    updated_at: parse_ts(&updated)?,
                })
            }

            fn outbox_from_row(row: &<$db as sqlx::Database>::Row) -> Result<OutboxRow, StoreError> {
                Ok(OutboxRow {
                    id: row.try_get(0)?,
                    key: row.try_get(1)?,
                    row_json: row.try_get(2)?,
                    audit_seq: row.try_get(3)?,
                    ambiguous: row.try_get::<i64, _>(4)? != 0,
                    batch_id: row.try_get(5)?,
                })
            }

            async fn outbox_query(
                &self,
                connection: &str,
                stream: &str,
                after_id: i64,
                limit: u32,
                ambiguous: i64,
            ) -> Result<Vec<OutboxRow>, StoreError> {
                let cid = self.cid(connection).await?;
                let rows = sqlx::query(
                    "SELECT o.id, o.record_key, a.row_json, o.audit_seq, o.ambiguous, o.batch_id FROM outbox o \
                     JOIN audit a ON a.connection_id = o.connection_id AND a.seq = o.audit_seq \
                     WHERE o.connection_id = $1 AND o.stream = $2 AND o.ambiguous = $3 AND o.id > $4 ORDER BY o.id LIMIT $5",
                )
                .bind(cid)
                .bind(stream)
                .bind(ambiguous)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::outbox_from_row).collect()
            }

            async fn set_ambiguous(
                &self,
                connection: &str,
                stream: &str,
                ids: &[i64],
                flag: i64,
                batch_id: Option<&str>,
            ) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let mut tx = self.begin_write().await?;
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("UPDATE outbox SET ambiguous = ");
                    qb.push_bind(flag);
                    if let Some(b) = batch_id {
                        qb.push(", batch_id = ").push_bind(b);
                    }
                    qb.push(" WHERE connection_id = ").push_bind(cid);
                    qb.push(" AND stream = ").push_bind(stream);
                    qb.push(" AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    sep.push_unseparated(")");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn lease_row(&self, cid: i64, connection: &str) -> Result<Option<Lease>, StoreError> {
                let row = sqlx::query("SELECT worker_id, token, expires_at FROM leases WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        let exp: String = row.try_get(2)?;
                        Ok(Some(Lease {
                            connection: connection.to_string(),
                            worker_id: row.try_get(0)?,
                            token: row.try_get(1)?,
                            expires_at: parse_ts(&exp)?,
                        }))
                    }
                }
            }
        }

        #[async_trait]
        impl Store for $ty {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            async fn ensure_connection(&self, name: &str) -> Result<ConnectionId, StoreError> {
                if name.trim().is_empty() {
                    return Err(StoreError::Invalid("a connection name must not be empty".into()));
                }
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO connections (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(ts(self.now()))
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar("SELECT id FROM connections WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO audit_head (connection_id, last_seq, last_hash) VALUES ($1, 0, $2) \
                     ON CONFLICT (connection_id) DO NOTHING",
                )
                .bind(id)
                .bind(&GENESIS[..])
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.cache.lock().expect("cache lock").insert(name.to_string(), id);
                Ok(ConnectionId(id))
            }

            async fn list_connections(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT name FROM connections ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn put_credential(
                &self,
                connection: &str,
                kind: &str,
                sealed: SealedSecret,
                public_fields: serde_json::Value,
            ) -> Result<(), StoreError> {
                let cred = Credential {
                    connection: connection.to_string(),
                    kind: kind.to_string(),
                    sealed,
                    public_fields,
                    updated_at: self.now(),
                };
                self.replace_credentials(vec![cred]).await
            }

            async fn get_credential(&self, connection: &str, kind: &str) -> Result<Option<Credential>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT c.name, k.kind, k.key_fingerprint, k.nonce, k.ciphertext, k.public_fields, k.updated_at \
                     FROM credentials k JOIN connections c ON c.id = k.connection_id \
                     WHERE k.connection_id = $1 AND k.kind = $2",
                )
                .bind(cid)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::credential_from_row).transpose()
            }

            async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError> {
                let rows = sqlx::query(
                    "SELECT c.name, k.kind, k.key_fingerprint, k.nonce, k.ciphertext, k.public_fields, k.updated_at \
                     FROM credentials k JOIN connections c ON c.id = k.connection_id ORDER BY c.name, k.kind",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::credential_from_row).collect()
            }

            async fn delete_credential(&self, connection: &str, kind: &str) -> Result<bool, StoreError> {
                let cid = self.cid(connection).await?;
                let r = sqlx::query("DELETE FROM credentials WHERE connection_id = $1 AND kind = $2")
                    .bind(cid)
                    .bind(kind)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn replace_credentials(&self, creds: Vec<Credential>) -> Result<(), StoreError> {
                let mut ids = Vec::with_capacity(creds.len());
                for c in &creds {
                    ids.push(self.cid(&c.connection).await?);
                }
                let mut tx = self.begin_write().await?;
                for (c, cid) in creds.iter().zip(ids) {
                    let public = serde_json::to_string(&c.public_fields)
                        .map_err(|e| StoreError::Invalid(format!("credential public fields: {e}")))?;
                    sqlx::query(
                        "INSERT INTO credentials (connection_id, kind, key_fingerprint, nonce, ciphertext, public_fields, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (connection_id, kind) DO UPDATE SET \
                         key_fingerprint = excluded.key_fingerprint, nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                         public_fields = excluded.public_fields, updated_at = excluded.updated_at",
                    )
                    .bind(cid)
                    .bind(c.kind.as_str())
                    .bind(c.sealed.key_fingerprint.as_str())
                    .bind(&c.sealed.nonce[..])
                    .bind(c.sealed.ciphertext.as_slice())
                    .bind(public)
                    .bind(ts(self.now()))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn begin_run(&self, connection: &str, trigger: &str) -> Result<RunId, StoreError> {
                let cid = self.cid(connection).await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO runs (connection_id, run_trigger, status, started_at, summary) \
                     VALUES ($1, $2, 'running', $3, '{}') RETURNING id",
                )
                .bind(cid)
                .bind(trigger)
                .bind(ts(self.now()))
                .fetch_one(self.writer())
                .await?;
                Ok(RunId(id))
            }

            async fn record_stream_result(&self, run: RunId, stream: &str, r: &StreamResult) -> Result<(), StoreError> {
                let (cid, name) = self.run_owner(run).await?;
                let now = ts(self.now());
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO run_streams (run_id, stream, status, extracted, staged, inserted, updated, deleted, \
                     unchanged, pushed, error, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (run_id, stream) DO UPDATE SET status = excluded.status, extracted = excluded.extracted, \
                     staged = excluded.staged, inserted = excluded.inserted, updated = excluded.updated, \
                     deleted = excluded.deleted, unchanged = excluded.unchanged, pushed = excluded.pushed, \
                     error = excluded.error, updated_at = excluded.updated_at",
                )
                .bind(run.0)
                .bind(stream)
                .bind(r.status.map(|s| s.as_str()))
                .bind(crate::backend::to_i64(r.extracted))
                .bind(crate::backend::to_i64(r.staged))
                .bind(crate::backend::to_i64(r.inserted))
                .bind(crate::backend::to_i64(r.updated))
                .bind(crate::backend::to_i64(r.deleted))
                .bind(crate::backend::to_i64(r.unchanged))
                .bind(crate::backend::to_i64(r.pushed))
                .bind(r.error.as_deref())
                .bind(now.as_str())
                .execute(&mut *tx)
                .await?;
                if r.status == Some(StreamStatus::Failed) {
                    let mut head = Self::lock_head(&mut tx, cid).await?;
                    let mut e = NewEntry::new(AuditAction::Failed);
                    e.run = Some(run);
                    e.stream = Some(stream.to_string());
                    e.outcome = Some("stream_failed".into());
                    e.error = r.error.clone();
                    Self::append(&mut tx, cid, &name, &mut head, &now, vec![e]).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn finish_run(&self, run: RunId, status: RunStatus, summary: serde_json::Value) -> Result<(), StoreError> {
                let summary = serde_json::to_string(&summary)
                    .map_err(|e| StoreError::Invalid(format!("run summary: {e}")))?;
                let r = sqlx::query("UPDATE runs SET status = $2, finished_at = $3, summary = $4 WHERE id = $1")
                    .bind(run.0)
                    .bind(status.as_str())
                    .bind(ts(self.now()))
                    .bind(summary)
                    .execute(self.writer())
                    .await?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::UnknownRun(run.0));
                }
                // The run's keys go into the index now, in one go. If that fails the run stays
                // finished: search by key reads unindexed entries off the chain, and the next run
                // (or replay) indexes them.
                let (cid, name) = self.run_owner(run).await?;
                if let Err(e) = self.index_keys(cid, 1).await {
                    tracing::warn!(connection = %name, error = %e, "indexing the audit trail's keys failed; search by key stays correct, only slower");
                }
                Ok(())
            }

            async fn list_runs(&self, connection: Option<&str>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT r.id, c.name, r.run_trigger, r.status, r.started_at, r.finished_at, r.summary \
                     FROM runs r JOIN connections c ON c.id = r.connection_id",
                );
                if let Some(name) = connection {
                    let cid = self.cid(name).await?;
                    qb.push(" WHERE r.connection_id = ").push_bind(cid);
                }
                qb.push(" ORDER BY r.id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::run_from_row).collect()
            }

            async fn get_run(&self, run: RunId) -> Result<Option<RunDetail>, StoreError> {
                let row = sqlx::query(
                    "SELECT r.id, c.name, r.run_trigger, r.status, r.started_at, r.finished_at, r.summary \
                     FROM runs r JOIN connections c ON c.id = r.connection_id WHERE r.id = $1",
                )
                .bind(run.0)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let rec = Self::run_from_row(&row)?;
                let rows = sqlx::query(
                    "SELECT stream, status, extracted, staged, inserted, updated, deleted, unchanged, pushed, error, updated_at \
                     FROM run_streams WHERE run_id = $1 ORDER BY stream",
                )
                .bind(run.0)
                .fetch_all(&self.pool)
                .await?;
                let mut streams = Vec::with_capacity(rows.len());
                for row in &rows {
                    let status: Option<String> = row.try_get(1)?;
                    let u = |i: usize| -> Result<u64, StoreError> {
                        Ok(crate::backend::to_u64(row.try_get::<i64, _>(i)?))
                    };
                    let updated: String = row.try_get(10)?;
                    streams.push(StreamRun {
                        stream: row.try_get(0)?,
                        result: StreamResult {
                            status: status.as_deref().map(crate::backend::parse_enum).transpose()?,
                            extracted: u(2)?,
                            staged: u(3)?,
                            inserted: u(4)?,
                            updated: u(5)?,
                            deleted: u(6)?,
                            unchanged: u(7)?,
                            pushed: u(8)?,
                            error: row.try_get(9)?,
                        },
                        updated_at: parse_ts(&updated)?,
                    });
                }
                Ok(Some(RunDetail { run: rec, streams }))
            }

            async fn unfinished_runs(&self, connection: &str) -> Result<Vec<RunRecord>, StoreError> {
                let cid = self.cid(connection).await?;
                let rows = sqlx::query(
                    "SELECT r.id, c.name, r.run_trigger, r.status, r.started_at, r.finished_at, r.summary \
                     FROM runs r JOIN connections c ON c.id = r.connection_id \
                     WHERE r.connection_id = $1 AND r.status = 'running' ORDER BY r.id",
                )
                .bind(cid)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::run_from_row).collect()
            }

            async fn cursor(&self, connection: &str, stream: &str) -> Result<Option<Cursor>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT committed_wm, committed_recno, pending_wm, pending_recno FROM cursors \
                     WHERE connection_id = $1 AND stream = $2",
                )
                .bind(cid)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let pos = |wm: Option<String>, rn: Option<i64>| match (wm, rn) {
                    (Some(when_modified), Some(recordno)) => Some(CursorPos { when_modified, recordno }),
                    _ => None,
                };
                Ok(Some(Cursor {
                    committed: pos(row.try_get(0)?, row.try_get(1)?),
                    pending: pos(row.try_get(2)?, row.try_get(3)?),
                }))
            }

            async fn commit_cursor(&self, connection: &str, stream: &str) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                sqlx::query(
                    "UPDATE cursors SET committed_wm = pending_wm, committed_recno = pending_recno, \
                     pending_wm = NULL, pending_recno = NULL \
                     WHERE connection_id = $1 AND stream = $2 AND pending_wm IS NOT NULL",
                )
                .bind(cid)
                .bind(stream)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn reset_cursor(&self, connection: &str, stream: &str) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                sqlx::query("DELETE FROM cursors WHERE connection_id = $1 AND stream = $2")
                    .bind(cid)
                    .bind(stream)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn stage_page(&self, page: StagePage) -> Result<StageSummary, StoreError> {
                let StagePage { connection, run, stream, mode, mut records, mut deletes, mut failed, pending_cursor } = page;
                // Records, deletes and failures are each chained in key order (stable: a key's records keep
                // their page order). The audit trail's key index then takes a page's entries in order, as
                // the mirror's takes the upserts, instead of all over itself (BENCHMARKS.md, "the audit
                // trail's key index"). Sorted in place: no second copy of the page's entries.
                records.sort_by(|a, b| a.key.cmp(&b.key));
                deletes.sort();
                failed.sort_by(|a, b| a.key.cmp(&b.key));
                if records.iter().map(|r| &r.key).chain(&deletes).chain(failed.iter().map(|f| &f.key)).any(|k| k.is_empty()) {
                    return Err(StoreError::Invalid("a staged record key must not be empty".into()));
                }
                let cid = self.cid(&connection).await?;
                let created = ts(self.now());
                let mut tx = self.begin_write().await?;
                let mut head = Self::lock_head(&mut tx, cid).await?;

                // The mirror's hash of every key this page touches (absent = new record), read into
                // `known` and looked up by borrowed key: no key or hash is copied per record.
                let known = {
                    let mut seen = foldhash::HashSet::with_capacity(records.len() + deletes.len());
                    let keys: Vec<&str> = records
                        .iter()
                        .map(|r| r.key.as_str())
                        .chain(deletes.iter().map(String::as_str))
                        .filter(|k| seen.insert(*k))
                        .collect();
                    Self::mirror_column(&mut tx, cid, &stream, &keys, MirrorColumn::SourceHash).await?
                };

                // Classify in page order. Entries are records first (entry i = record i), then deletes,
                // then failures; `last` maps a key to the entry holding its final row (None: deleted).
                let mut summary = StageSummary::default();
                let mut actions: Vec<AuditAction> = Vec::with_capacity(records.len());
                let mut deleting: Vec<bool> = Vec::with_capacity(deletes.len());
                let mut upserts: Vec<usize> = Vec::new();
                let mut removed: Vec<String> = Vec::new();
                {
                    let mut current: foldhash::HashMap<&str, Option<&str>> =
                        known.iter().map(|(k, h)| (k.as_str(), h.as_deref())).collect();
                    let mut last: foldhash::HashMap<&str, Option<usize>> =
                        foldhash::HashMap::with_capacity(records.len() + deletes.len());
                    for (i, r) in records.iter().enumerate() {
                        let action = match current.get(r.key.as_str()) {
                            Some(Some(h)) if *h == r.source_hash => AuditAction::Unchanged,
                            Some(Some(_)) => AuditAction::Updated,
                            _ => AuditAction::Inserted,
                        };
                        match action {
                            AuditAction::Unchanged => summary.unchanged += 1,
                            AuditAction::Inserted => summary.inserted += 1,
                            _ => summary.updated += 1,
                        }
                        if action != AuditAction::Unchanged {
                            current.insert(&r.key, Some(&r.source_hash));
                            last.insert(&r.key, Some(i));
                        }
                        actions.push(action);
                    }
                    for key in &deletes {
                        let live = matches!(current.get(key.as_str()), Some(Some(_)));
                        if live {
                            current.insert(key, None);
                            last.insert(key, None);
                            summary.deleted += 1;
                        }
                        deleting.push(live);
                    }
                    for (key, at) in last {
                        match at {
                            Some(i) => upserts.push(i),
                            None => removed.push(key.to_string()),
                        }
                    }
                }
                summary.failed = failed.len() as u64;

                // The page's entries in chain order: records, then live deletes, then failures. They
                // are built, chained and written a chunk at a time, so a page of 10,000 records never
                // holds all its entries at once (a few MB each time, which the allocator would map
                // and fault in anew for every page).
                let mut entries = records
                    .into_iter()
                    .zip(actions)
                    .map(|(r, action)| {
                        let mut e = NewEntry::new(action);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.when_modified = r.when_modified;
                        if action != AuditAction::Unchanged {
                            // Unchanged entries stay compact: the row is already in the trail.
                            e.row_json = Some(r.row_json);
                        }
                        e.record_key = Some(r.key);
                        e.source_hash = Some(r.source_hash);
                        e
                    })
                    .chain(deletes.into_iter().zip(deleting).filter(|(_, live)| *live).map(|(key, _)| {
                        let mut e = NewEntry::new(AuditAction::Deleted);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.record_key = Some(key);
                        e
                    }))
                    .chain(failed.into_iter().map(|f| {
                        let mut e = NewEntry::new(AuditAction::Failed);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.record_key = Some(f.key);
                        e.when_modified = f.when_modified;
                        e.source_hash = f.source_hash;
                        e.error = Some(f.error);
                        e
                    }));

                let changed = summary.inserted + summary.updated + summary.deleted > 0;
                if mode == StageMode::Replace && changed {
                    sqlx::query(
                        "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                         VALUES ($1, $2, 1, NULL, 0) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1",
                    )
                    .bind(cid)
                    .bind(stream.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                // Mirror writes point at the chained entries that hold their rows (migration 0007),
                // in key order (the records') so that neighbouring keys land on the same index pages.
                upserts.sort_unstable();
                let mut upserts = upserts.into_iter().peekable();
                // Positions of the current chunk's entries in the page: base..end.
                let mut end = 0usize;
                loop {
                    let chunk: Vec<NewEntry> = entries.by_ref().take(CHUNK).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    let base = end;
                    end += chunk.len();
                    let mut chained = Self::append(&mut tx, cid, &connection, &mut head, &created, chunk).await?;
                    if mode == StageMode::Append {
                        // The outbox points at the staging entry, which holds the row: one copy of it, not two.
                        static SQL: OnceLock<String> = OnceLock::new();
                        let rows: Vec<&ChainedEntry> = chained
                            .iter()
                            .filter(|e| matches!(e.entry.action, AuditAction::Inserted | AuditAction::Updated))
                            .collect();
                        if !rows.is_empty() {
                            let sql = MultiRow::values(
                                "INSERT INTO outbox (connection_id, stream, record_key, audit_seq) VALUES ",
                                4,
                            )
                            .sql(&SQL, $anon, rows.len());
                            let mut q = Self::with_room(&sql, 4 * rows.len());
                            for e in rows {
                                q = q.bind(cid).bind(stream.as_str()).bind(e.entry.record_key.as_deref()).bind(e.seq);
                            }
                            q.execute(&mut *tx).await?;
                        }
                    }
                    // The upserts whose final row is in this chunk, by their place in `chained`.
                    let mut mine: Vec<usize> = Vec::new();
                    while let Some(i) = upserts.next_if(|i| *i < end) {
                        mine.push(i - base);
                    }
                    if mine.is_empty() {
                        continue;
                    }
                    static UPSERT: OnceLock<String> = OnceLock::new();
                    let sql = MultiRow::values(
                        "INSERT INTO mirror (connection_id, stream, record_key, when_modified, source_hash, row_seq) VALUES ",
                        6,
                    )
                    .with_tail(" ON CONFLICT (connection_id, stream, record_key) DO UPDATE SET when_modified = excluded.when_modified, \
                         source_hash = excluded.source_hash, row_seq = excluded.row_seq, row_json = NULL")
                    .sql(&UPSERT, $anon, mine.len());
                    let mut q = Self::with_room(&sql, 6 * mine.len());
                    for i in mine {
                        let c = &mut chained[i];
                        q = q
                            .bind(cid)
                            .bind(stream.as_str())
                            .bind(c.entry.record_key.take())
                            .bind(c.entry.when_modified.take())
                            .bind(c.entry.source_hash.take())
                            .bind(c.seq);
                    }
                    q.execute(&mut *tx).await?;
                }
                static DELETE: OnceLock<String> = OnceLock::new();
                for chunk in removed.chunks(CHUNK) {
                    let sql = MultiRow::keys_after_two(
                        "DELETE FROM mirror WHERE connection_id = $1 AND stream = $2 AND record_key IN (",
                    )
                    .sql(&DELETE, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 2 + chunk.len()).bind(cid).bind(stream.as_str());
                    for k in chunk {
                        q = q.bind(k.as_str());
                    }
                    q.execute(&mut *tx).await?;
                }
                if let Some(c) = &pending_cursor {
                    sqlx::query(
                        "INSERT INTO cursors (connection_id, stream, pending_wm, pending_recno) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (connection_id, stream) DO UPDATE SET pending_wm = excluded.pending_wm, \
                         pending_recno = excluded.pending_recno",
                    )
                    .bind(cid)
                    .bind(stream.as_str())
                    .bind(c.when_modified.as_str())
                    .bind(c.recordno)
                    .execute(&mut *tx)
                    .await?;
                }
                let keys_behind = head.seq - Self::keys_through(&mut tx, cid).await?;
                tx.commit().await?;
                if keys_behind >= KEY_INDEX_LAG {
                    self.index_keys(cid, KEY_INDEX_LAG).await?;
                }
                self.after_stage(summary.inserted + summary.updated + summary.unchanged + summary.deleted).await?;
                Ok(summary)
            }

            async fn outbox_batch(&self, connection: &str, stream: &str, after_id: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
                self.outbox_query(connection, stream, after_id, limit, 0).await
            }

            async fn outbox_count(&self, connection: &str, stream: &str) -> Result<u64, StoreError> {
                let cid = self.cid(connection).await?;
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE connection_id = $1 AND stream = $2")
                    .bind(cid)
                    .bind(stream)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(crate::backend::to_u64(n))
            }

            async fn mark_delivered(&self, connection: &str, stream: &str, ids: &[i64], d: &Delivery) -> Result<u64, StoreError> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let cid = self.cid(connection).await?;
                let created = ts(self.now());
                let mut tx = self.begin_write().await?;
                let mut head = Self::lock_head(&mut tx, cid).await?;
                let mut found: Vec<(i64, String, i64)> = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("SELECT id, record_key, audit_seq FROM outbox WHERE connection_id = ");
                    qb.push_bind(cid).push(" AND stream = ").push_bind(stream).push(" AND id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    sep.push_unseparated(")");
                    for row in qb.build().fetch_all(&mut *tx).await? {
                        found.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
                    }
                }
                found.sort_unstable_by_key(|f| f.0);
                let action = match d.outcome {
                    DeliveryOutcome::Accepted => AuditAction::Pushed,
                    DeliveryOutcome::Ambiguous => AuditAction::Ambiguous,
                    DeliveryOutcome::Failed => AuditAction::PushFailed,
                };
                let entries = found
                    .iter()
                    .map(|(_, key, seq)| {
                        let mut e = NewEntry::new(action);
                        e.run = Some(d.run);
                        e.stream = Some(stream.to_string());
                        e.record_key = Some(key.clone());
                        e.ref_seq = Some(*seq);
                        e.batch_id = Some(d.batch_id.clone());
                        e.request_id = d.request_id.clone();
                        e.outcome = Some(d.outcome.as_str().to_string());
                        e.error = d.error.clone();
                        e
                    })
                    .collect();
                Self::append(&mut tx, cid, connection, &mut head, &created, entries).await?;
                let found_ids: Vec<i64> = found.iter().map(|f| f.0).collect();
                match d.outcome {
                    DeliveryOutcome::Accepted => {
                        for chunk in found_ids.chunks(CHUNK) {
                            let mut qb = QueryBuilder::<$db>::new("DELETE FROM outbox WHERE id IN (");
                            let mut sep = qb.separated(", ");
                            for id in chunk {
                                sep.push_bind(*id);
                            }
                            sep.push_unseparated(")");
                            qb.build().execute(&mut *tx).await?;
                        }
                        sqlx::query(
                            "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                             VALUES ($1, $2, 0, $3, $4) ON CONFLICT (connection_id, stream) DO UPDATE SET \
                             last_loaded_run = excluded.last_loaded_run, table_rows = stream_state.table_rows + excluded.table_rows",
                        )
                        .bind(cid)
                        .bind(stream)
                        .bind(d.run.0)
                        .bind(found_ids.len() as i64)
                        .execute(&mut *tx)
                        .await?;
                    }
                    DeliveryOutcome::Ambiguous => {
                        for chunk in found_ids.chunks(CHUNK) {
                            let mut qb = QueryBuilder::<$db>::new("UPDATE outbox SET ambiguous = 1, batch_id = ");
                            qb.push_bind(d.batch_id.as_str()).push(" WHERE id IN (");
                            let mut sep = qb.separated(", ");
                            for id in chunk {
                                sep.push_bind(*id);
                            }
                            sep.push_unseparated(")");
                            qb.build().execute(&mut *tx).await?;
                        }
                    }
                    DeliveryOutcome::Failed => {}
                }
                let keys_behind = head.seq - Self::keys_through(&mut tx, cid).await?;
                tx.commit().await?;
                if keys_behind >= KEY_INDEX_LAG {
                    self.index_keys(cid, KEY_INDEX_LAG).await?;
                }
                Ok(found_ids.len() as u64)
            }

            async fn mark_ambiguous(&self, connection: &str, stream: &str, ids: &[i64], batch_id: &str) -> Result<(), StoreError> {
                self.set_ambiguous(connection, stream, ids, 1, Some(batch_id)).await
            }

            async fn ambiguous_rows(&self, connection: &str, stream: &str, after_id: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
                self.outbox_query(connection, stream, after_id, limit, 1).await
            }

            async fn clear_ambiguous(&self, connection: &str, stream: &str, ids: &[i64]) -> Result<(), StoreError> {
                self.set_ambiguous(connection, stream, ids, 0, None).await
            }

            async fn mirror_page(&self, connection: &str, stream: &str, after_key: Option<&str>, limit: u32) -> Result<Vec<MirrorRow>, StoreError> {
                let cid = self.cid(connection).await?;
                let rows = sqlx::query(
                    concat!(
                        "SELECT m.record_key, COALESCE(m.row_json, a.row_json) ",
                        crate::backend::mirror_with_rows!(),
                        " WHERE m.connection_id = $1 AND m.stream = $2 AND m.record_key > $3 ORDER BY m.record_key LIMIT $4"
                    ),
                )
                .bind(cid)
                .bind(stream)
                .bind(after_key.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut page = Vec::with_capacity(rows.len());
                for r in &rows {
                    let row_json: Option<String> = r.try_get(1)?;
                    match row_json {
                        Some(row_json) => page.push(MirrorRow { key: r.try_get(0)?, row_json }),
                        None => {
                            let otherwise = format!("a mirror row of '{connection}' {stream} has no row");
                            return Err(self.missing_mirror_row(cid, connection, stream, otherwise).await);
                        }
                    }
                }
                Ok(page)
            }

            async fn mirror_rows(&self, connection: &str, stream: &str, after: Option<&str>, limit: u32) -> Result<Option<MirrorRows>, StoreError> {
                let cid = self.cid(connection).await?;
                // One query, and one result row, per 500 mirror rows: sqlx hands every result row
                // from SQLite's thread to this one with a wake-up, which cost a rebuild more than
                // reading the rows (BENCHMARKS.md, "Session 6"). Not one text for the whole page:
                // texts of megabytes, mapped and unmapped a page at a time, took the 1,000,000-row
                // rebuild's peak RSS from 98 to 180-230 MB. Not the parts of one query either
                // (`row_number() OVER (ORDER BY record_key) / 500`, grouped): SQLite sorted the
                // page twice for the window and the grouping, copying every row (BENCHMARKS.md,
                // "Session 7"); each query here walks an index in order and sorts nothing.
                //
                // SQLite walks `mirror_by_stream` (migration 0006), in rowid order: the rows as
                // they lie in the table, each leaf read once. In key order every row was a seek to
                // a leaf of its own (a pull adds rows in WHENMODIFIED order), 40 % of a rebuild's
                // CPU at 1,000,000 rows. PostgreSQL has no rowid: key order, `mirror_key`.
                //
                // A row is read from the audit entry that staged it (`row_seq`, migration 0007), or
                // from the mirror itself where that entry was pruned or the row predates 0007.
                let by_rowid = $backend == "sqlite";
                let sql = if by_rowid {
                    concat!(
                        "SELECT count(*), CAST(max(pos) AS TEXT), string_agg(row_text, $5) FROM \
                         (SELECT m.rowid AS pos, COALESCE(m.row_json, a.row_json) AS row_text ",
                        crate::backend::mirror_with_rows!(),
                        " WHERE m.connection_id = $1 AND m.stream = $2 \
                         AND m.rowid > CAST($3 AS INTEGER) ORDER BY m.rowid LIMIT $4) part"
                    )
                } else {
                    concat!(
                        "SELECT count(*), max(record_key), string_agg(row_text, $5) FROM \
                         (SELECT m.record_key, COALESCE(m.row_json, a.row_json) AS row_text ",
                        crate::backend::mirror_with_rows!(),
                        " WHERE m.connection_id = $1 AND m.stream = $2 \
                         AND m.record_key > $3 ORDER BY m.record_key LIMIT $4) part"
                    )
                };
                let after = match after {
                    Some(a) if by_rowid && a.parse::<i64>().is_err() => {
                        return Err(StoreError::Invalid(format!("'{a}' is not a mirror page's cursor")));
                    }
                    Some(a) => a.to_string(),
                    None if by_rowid => "0".to_string(),
                    None => String::new(),
                };
                let mut page: Option<MirrorRows> = None;
                for part in self.joined_parts(sql, cid, stream, after, limit, MIRROR_ROWS_PER_TEXT, "\n").await? {
                    // An aggregate skips a missing row: fewer lines than rows. Say which one.
                    let part = match MirrorRows::new(part.cursor, crate::backend::to_u64(part.count) as usize, part.joined) {
                        Ok(part) => part,
                        Err(why) => return Err(self.missing_mirror_row(cid, connection, stream, why).await),
                    };
                    match &mut page {
                        None => page = Some(part),
                        Some(p) => p.append(part),
                    }
                }
                Ok(page)
            }

            async fn mirror_count(&self, connection: &str, stream: &str) -> Result<u64, StoreError> {
                let cid = self.cid(connection).await?;
                let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mirror WHERE connection_id = $1 AND stream = $2")
                    .bind(cid)
                    .bind(stream)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(crate::backend::to_u64(n))
            }

            async fn mirror_versions(&self, connection: &str, stream: &str, keys: &[String]) -> Result<Vec<(String, Option<String>)>, StoreError> {
                let cid = self.cid(connection).await?;
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                let mut c = self.pool.acquire().await?;
                Self::mirror_column(&mut c, cid, stream, &keys, MirrorColumn::WhenModified).await
            }

            async fn mirror_keys_page(&self, connection: &str, stream: &str, after_key: Option<&str>, limit: u32) -> Result<Vec<String>, StoreError> {
                let cid = self.cid(connection).await?;
                // Joined into one text per MIRROR_KEYS_PER_TEXT keys, for the reason of mirror_rows:
                // a full pull compares every key of the mirror, and a result row per key cost it
                // 0.4 µs a key in hand-overs between threads (BENCHMARKS.md, "Session 7"). The
                // separator is a control character XML 1.0 cannot carry, so no key read from
                // Intacct holds it; a part whose text does not split into its count (a key put
                // there another way) is read again key by key.
                let parts = self
                    .joined_parts(
                        "SELECT count(*), max(record_key), string_agg(record_key, $5) FROM \
                         (SELECT record_key FROM mirror WHERE connection_id = $1 AND stream = $2 \
                          AND record_key > $3 ORDER BY record_key LIMIT $4) part",
                        cid,
                        stream,
                        after_key.unwrap_or("").to_string(),
                        limit,
                        MIRROR_KEYS_PER_TEXT,
                        KEY_SEPARATOR,
                    )
                    .await?;
                let mut keys: Vec<String> = Vec::new();
                for part in parts {
                    let before = keys.len();
                    keys.extend(part.joined.split(KEY_SEPARATOR).map(str::to_string));
                    if (keys.len() - before) as i64 != part.count {
                        keys.truncate(before);
                        keys.extend(
                            sqlx::query_scalar::<_, String>(
                                "SELECT record_key FROM mirror WHERE connection_id = $1 AND stream = $2 AND record_key > $3 \
                                 ORDER BY record_key LIMIT $4",
                            )
                            .bind(cid)
                            .bind(stream)
                            .bind(part.after.as_str())
                            .bind(part.count)
                            .fetch_all(&self.pool)
                            .await?,
                        );
                    }
                    // Bytewise, as the keyset (PostgreSQL's keys are COLLATE "C"); an aggregate
                    // promises no order.
                    keys[before..].sort_unstable();
                }
                Ok(keys)
            }

            async fn stream_state(&self, connection: &str, stream: &str) -> Result<StreamState, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT dirty, last_loaded_run, table_rows FROM stream_state WHERE connection_id = $1 AND stream = $2",
                )
                .bind(cid)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(StreamState::default()) };
                Ok(StreamState {
                    dirty: row.try_get::<i64, _>(0)? != 0,
                    last_loaded_run: row.try_get::<Option<i64>, _>(1)?.map(RunId),
                    table_rows: crate::backend::to_u64(row.try_get(2)?),
                })
            }

            async fn mark_dirty(&self, connection: &str, stream: &str) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                     VALUES ($1, $2, 1, NULL, 0) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1, table_rows = 0",
                )
                .bind(cid)
                .bind(stream)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mark_reloaded(&self, connection: &str, stream: &str, run: RunId, rows: u64, batches: &[Delivery]) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let created = ts(self.now());
                let mut tx = self.begin_write().await?;
                let mut head = Self::lock_head(&mut tx, cid).await?;
                let detail = format!("{{\"reload_rows\":{rows}}}");
                let entries = batches
                    .iter()
                    .map(|d| {
                        let mut e = NewEntry::new(match d.outcome {
                            DeliveryOutcome::Accepted => AuditAction::Pushed,
                            DeliveryOutcome::Ambiguous => AuditAction::Ambiguous,
                            DeliveryOutcome::Failed => AuditAction::PushFailed,
                        });
                        e.run = Some(d.run);
                        e.stream = Some(stream.to_string());
                        e.batch_id = Some(d.batch_id.clone());
                        e.request_id = d.request_id.clone();
                        e.outcome = Some(d.outcome.as_str().to_string());
                        e.error = d.error.clone();
                        e.detail = Some(detail.clone());
                        e
                    })
                    .collect();
                Self::append(&mut tx, cid, connection, &mut head, &created, entries).await?;
                let all_ok = batches.iter().all(|d| d.outcome == DeliveryOutcome::Accepted);
                let sql = if all_ok {
                    "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                     VALUES ($1, $2, 0, $3, $4) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 0, \
                     last_loaded_run = excluded.last_loaded_run, table_rows = excluded.table_rows"
                } else {
                    "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                     VALUES ($1, $2, 1, NULL, $4) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1, \
                     table_rows = excluded.table_rows"
                };
                sqlx::query(sql)
                    .bind(cid)
                    .bind(stream)
                    .bind(run.0)
                    .bind(crate::backend::to_i64(rows))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rows_pushed_by_run(&self, run: RunId, stream: &str, after_seq: i64, limit: u32) -> Result<Vec<ReplayRow>, StoreError> {
                // The run's span of its chain, in chain order (see widen_run_spans).
                let rows = sqlx::query(
                    "SELECT a.seq, a.record_key, s.row_json FROM runs r \
                     JOIN audit a ON a.connection_id = r.connection_id AND a.seq >= r.first_seq AND a.seq <= r.last_seq \
                     JOIN audit s ON s.connection_id = a.connection_id AND s.seq = a.ref_seq \
                     WHERE r.id = $1 AND a.run_id = $1 AND a.stream = $2 AND a.action = 'pushed' AND a.record_key IS NOT NULL \
                     AND a.seq > $3 ORDER BY a.seq LIMIT $4",
                )
                .bind(run.0)
                .bind(stream)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let row_json: Option<String> = r.try_get(2)?;
                        Ok(ReplayRow {
                            id: r.try_get(0)?,
                            key: r.try_get(1)?,
                            row_json: row_json.ok_or_else(|| {
                                StoreError::Corrupt("a pushed row refers to an audit entry without a row".into())
                            })?,
                        })
                    })
                    .collect()
            }

            async fn rows_as_of_run(&self, connection: &str, stream: &str, run: RunId, after_key: Option<&str>, limit: u32) -> Result<Vec<ReplayRow>, StoreError> {
                let cid = self.cid(connection).await?;
                if after_key.is_none() {
                    // The first page: every entry so far must be in the key index.
                    self.index_keys(cid, 1).await?;
                }
                // For each key: its newest insert/update/delete entry from runs <= R; keep it
                // unless it is a delete.
                let rows = sqlx::query(
                    "SELECT k.record_key, a.row_json FROM audit_keys k \
                     JOIN audit a ON a.connection_id = k.connection_id AND a.seq = k.seq \
                     WHERE k.connection_id = $1 AND k.stream = $2 AND k.record_key > $3 \
                     AND a.action IN ('inserted', 'updated') AND a.run_id <= $4 \
                     AND k.seq = (SELECT max(kb.seq) FROM audit_keys kb \
                        JOIN audit b ON b.connection_id = kb.connection_id AND b.seq = kb.seq \
                        WHERE kb.connection_id = $1 AND kb.stream = $2 AND kb.record_key = k.record_key \
                        AND b.run_id <= $4 AND b.action IN ('inserted', 'updated', 'deleted')) \
                     ORDER BY k.record_key LIMIT $5",
                )
                .bind(cid)
                .bind(stream)
                .bind(after_key.unwrap_or(""))
                .bind(run.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let row_json: Option<String> = r.try_get(1)?;
                        Ok(ReplayRow {
                            id: 0,
                            key: r.try_get(0)?,
                            row_json: row_json
                                .ok_or_else(|| StoreError::Corrupt("a staged audit entry has no row".into()))?,
                        })
                    })
                    .collect()
            }

            async fn save_dataset(&self, connection: &str, s: &DatasetState) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                sqlx::query(
                    "INSERT INTO datasets (connection_id, group_id, dataset_id, schema_json, schema_hash, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (connection_id) DO UPDATE SET group_id = excluded.group_id, \
                     dataset_id = excluded.dataset_id, schema_json = excluded.schema_json, \
                     schema_hash = excluded.schema_hash, updated_at = excluded.updated_at",
                )
                .bind(cid)
                .bind(s.group_id.as_str())
                .bind(s.dataset_id.as_str())
                .bind(s.schema_json.as_str())
                .bind(s.schema_hash.as_str())
                .bind(ts(self.now()))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn dataset(&self, connection: &str) -> Result<Option<DatasetState>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT group_id, dataset_id, schema_json, schema_hash FROM datasets WHERE connection_id = $1",
                )
                .bind(cid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(DatasetState {
                        group_id: r.try_get(0)?,
                        dataset_id: r.try_get(1)?,
                        schema_json: r.try_get(2)?,
                        schema_hash: r.try_get(3)?,
                    })
                })
                .transpose()
            }

            async fn record_posts(&self, dataset_id: &str, posts: &[PushPost], forget_before: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM push_log WHERE dataset_id = $1 AND sent_at < $2")
                    .bind(dataset_id)
                    .bind(ts(forget_before))
                    .execute(&mut *tx)
                    .await?;
                static SQL: OnceLock<String> = OnceLock::new();
                for chunk in posts.chunks(CHUNK) {
                    let sql = MultiRow::values(
                        "INSERT INTO push_log (dataset_id, sent_at, row_count) VALUES ",
                        3,
                    )
                    .sql(&SQL, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 3 * chunk.len());
                    for p in chunk {
                        q = q.bind(dataset_id).bind(ts(p.at)).bind(crate::backend::to_i64(p.rows));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn recent_posts(&self, dataset_id: &str, since: DateTime<Utc>) -> Result<Vec<PushPost>, StoreError> {
                let rows = sqlx::query(
                    "SELECT sent_at, row_count FROM push_log WHERE dataset_id = $1 AND sent_at >= $2 ORDER BY sent_at",
                )
                .bind(dataset_id)
                .bind(ts(since))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let at: String = r.try_get(0)?;
                        Ok(PushPost { at: parse_ts(&at)?, rows: crate::backend::to_u64(r.try_get(1)?) })
                    })
                    .collect()
            }

            async fn try_acquire_lease(&self, connection: &str, worker_id: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                let now = self.now();
                let expires_at = crate::backend::lease_expiry(now, ttl)?;
                let token = uuid::Uuid::new_v4().to_string();
                // One atomic statement: insert, or take over only a lease that has expired.
                let got: Option<String> = sqlx::query_scalar(
                    "INSERT INTO leases (connection_id, worker_id, token, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (connection_id) DO UPDATE SET worker_id = excluded.worker_id, token = excluded.token, \
                     expires_at = excluded.expires_at WHERE leases.expires_at <= $5 RETURNING token",
                )
                .bind(cid)
                .bind(worker_id)
                .bind(token.as_str())
                .bind(ts(expires_at))
                .bind(ts(now))
                .fetch_optional(self.writer())
                .await?;
                Ok(got.map(|token| Lease {
                    connection: connection.to_string(),
                    worker_id: worker_id.to_string(),
                    token,
                    expires_at: parse_ts(&ts(expires_at)).unwrap_or(expires_at),
                }))
            }

            async fn renew_lease(&self, connection: &str, token: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                let expires_at = crate::backend::lease_expiry(self.now(), ttl)?;
                // Still ours while the token matches, even just past expiry: nobody took it over.
                let worker: Option<String> = sqlx::query_scalar(
                    "UPDATE leases SET expires_at = $3 WHERE connection_id = $1 AND token = $2 RETURNING worker_id",
                )
                .bind(cid)
                .bind(token)
                .bind(ts(expires_at))
                .fetch_optional(self.writer())
                .await?;
                Ok(worker.map(|worker_id| Lease {
                    connection: connection.to_string(),
                    worker_id,
                    token: token.to_string(),
                    expires_at: parse_ts(&ts(expires_at)).unwrap_or(expires_at),
                }))
            }

            async fn release_lease(&self, connection: &str, token: &str) -> Result<bool, StoreError> {
                let cid = self.cid(connection).await?;
                let r = sqlx::query("DELETE FROM leases WHERE connection_id = $1 AND token = $2")
                    .bind(cid)
                    .bind(token)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn current_lease(&self, connection: &str) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                self.lease_row(cid, connection).await
            }

            async fn audit_search(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLS} FROM audit a JOIN connections c ON c.id = a.connection_id WHERE 1 = 1"
                ));
                let mut cid = None;
                if let Some(name) = &f.connection {
                    let id = self.cid(name).await?;
                    cid = Some(id);
                    qb.push(" AND a.connection_id = ").push_bind(id);
                }
                if let Some(run) = f.run {
                    // The run's span of its connection's chain (see widen_run_spans), read off audit_chain
                    // from the entry the last page ended with.
                    let span: Option<(i64, Option<i64>, Option<i64>)> =
                        sqlx::query_as("SELECT connection_id, first_seq, last_seq FROM runs WHERE id = $1")
                            .bind(run.0)
                            .fetch_optional(&self.pool)
                            .await?;
                    let Some((cid, Some(first), Some(last))) = span else {
                        return Ok(Vec::new());
                    };
                    let mut after_seq = first - 1;
                    if let Some(id) = f.after_id {
                        let seq: Option<i64> =
                            sqlx::query_scalar("SELECT seq FROM audit WHERE id = $1 AND connection_id = $2")
                                .bind(id)
                                .bind(cid)
                                .fetch_optional(&self.pool)
                                .await?;
                        after_seq = after_seq.max(seq.unwrap_or(0));
                    }
                    qb.push(" AND a.run_id = ").push_bind(run.0);
                    qb.push(" AND a.connection_id = ").push_bind(cid);
                    qb.push(" AND a.seq > ").push_bind(after_seq);
                    qb.push(" AND a.seq <= ").push_bind(last);
                }
                if let Some(s) = &f.stream {
                    qb.push(" AND a.stream = ").push_bind(s.as_str());
                }
                if let Some(k) = &f.record_key {
                    qb.push(" AND a.record_key = ").push_bind(k.as_str());
                    if let (Some(cid), None) = (cid, f.run) {
                        // The key's entries after the point the key index reaches (at most
                        // KEY_INDEX_LAG plus a running sync's), read off the chain, and its indexed
                        // ones, looked up stream by stream.
                        let mut c = self.pool.acquire().await?;
                        let through = Self::keys_through(&mut c, cid).await?;
                        let streams = match &f.stream {
                            Some(s) => vec![s.clone()],
                            None => Self::indexed_streams(&mut c, cid).await?,
                        };
                        qb.push(" AND a.seq IN (SELECT t.seq FROM audit t WHERE t.connection_id = ").push_bind(cid);
                        qb.push(" AND t.seq > ").push_bind(through);
                        qb.push(" AND t.record_key = ").push_bind(k.as_str());
                        if !streams.is_empty() {
                            qb.push(" UNION ALL SELECT k.seq FROM audit_keys k WHERE k.connection_id = ").push_bind(cid);
                            qb.push(" AND k.record_key = ").push_bind(k.as_str());
                            qb.push(" AND k.stream IN (");
                            let mut sep = qb.separated(", ");
                            for s in streams {
                                sep.push_bind(s);
                            }
                            sep.push_unseparated(")");
                        }
                        qb.push(")");
                    }
                }
                if let Some(t) = f.from {
                    qb.push(" AND a.created_at >= ").push_bind(ts(t));
                }
                if let Some(t) = f.to {
                    qb.push(" AND a.created_at < ").push_bind(ts(t));
                }
                if let Some(a) = f.action {
                    qb.push(" AND a.action = ").push_bind(a.as_str());
                }
                if let Some(id) = f.after_id {
                    qb.push(" AND a.id > ").push_bind(id);
                }
                // A run's entries all lie in one chain, where ids grow with seqs: in seq order they are
                // in id order too, and read straight off audit_chain with no sort of the whole span.
                let order = if f.run.is_some() { " ORDER BY a.seq LIMIT " } else { " ORDER BY a.id LIMIT " };
                qb.push(order).push_bind(i64::from(f.limit.unwrap_or(1000)));
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        let (id, name, s) = Self::stored_from_row(row)?;
                        crate::audit::to_public(id, &name, s)
                    })
                    .collect()
            }

            async fn audit_verify(&self, connection: &str) -> Result<VerifyReport, StoreError> {
                let cid = self.cid(connection).await?;
                let mut c = self.pool.acquire().await?;
                let head_row = sqlx::query("SELECT last_seq, last_hash FROM audit_head WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_one(&mut *c)
                    .await?;
                let head = ChainHead {
                    seq: head_row.try_get(0)?,
                    hash: crate::backend::hash32(head_row.try_get(1)?, "audit head hash")?,
                };
                let anchor = Self::read_anchor(&mut c, cid).await?;
                let mut v = Verifier::new(connection, anchor);
                let start = anchor.map_or(0, |a| a.seq);
                let mut result = Self::walk(&mut c, cid, start, head.seq, &mut v).await?;
                if result.is_ok() {
                    result = v.finish(head);
                }
                if result.is_ok() {
                    let extra: i64 = sqlx::query_scalar("SELECT count(*) FROM audit WHERE connection_id = $1 AND seq > $2")
                        .bind(cid)
                        .bind(head.seq)
                        .fetch_one(&mut *c)
                        .await?;
                    if extra > 0 {
                        result = Err((head.seq + 1, format!("{extra} entries lie beyond the recorded head: they were inserted by hand")));
                    }
                }
                Ok(VerifyReport {
                    entries_checked: v.checked(),
                    ok: result.is_ok(),
                    first_bad: result.err(),
                    anchor_seq: anchor.map(|a| a.seq),
                })
            }

            async fn audit_prune(&self, connection: &str, before: DateTime<Utc>) -> Result<PruneReport, StoreError> {
                let cid = self.cid(connection).await?;
                let mut tx = self.begin_write().await?;
                Self::lock_head(&mut tx, cid).await?;
                let anchor = Self::read_anchor(&mut tx, cid).await?;
                let start = anchor.map_or(0, |a| a.seq);
                let old: Option<i64> =
                    sqlx::query_scalar("SELECT max(seq) FROM audit WHERE connection_id = $1 AND created_at < $2")
                        .bind(cid)
                        .bind(ts(before))
                        .fetch_one(&mut *tx)
                        .await?;
                // Rows still waiting in the outbox are replayed from their staging entries: keep those.
                let oldest_needed: Option<i64> =
                    sqlx::query_scalar("SELECT min(audit_seq) FROM outbox WHERE connection_id = $1")
                        .bind(cid)
                        .fetch_one(&mut *tx)
                        .await?;
                let cut = match (old, oldest_needed) {
                    (Some(o), Some(n)) => o.min(n - 1),
                    (Some(o), None) => o,
                    (None, _) => start,
                };
                if cut <= start {
                    return Ok(PruneReport { deleted: 0, anchor_seq: anchor.map(|a| a.seq) });
                }
                // Never prune a broken prefix: that would erase the evidence.
                let mut v = Verifier::new(connection, anchor);
                if let Err((seq, why)) = Self::walk(&mut tx, cid, start, cut, &mut v).await? {
                    return Err(StoreError::Invalid(format!(
                        "the audit chain of '{connection}' is broken at entry {seq} ({why}); refusing to prune. \
                         Run `ml-connector audit verify` and investigate before pruning"
                    )));
                }
                let new_anchor = v.head();
                if new_anchor.seq != cut {
                    return Err(StoreError::Invalid(format!(
                        "the audit chain of '{connection}' ends at entry {} before the prune point {cut}; refusing to prune",
                        new_anchor.seq
                    )));
                }
                // The mirror reads its rows from the entries that staged them (migration 0007):
                // rows kept in entries about to go move into the mirror first.
                sqlx::query(
                    "UPDATE mirror SET row_json = (SELECT a.row_json FROM audit a \
                     WHERE a.connection_id = mirror.connection_id AND a.seq = mirror.row_seq), row_seq = NULL \
                     WHERE connection_id = $1 AND row_seq <= $2",
                )
                .bind(cid)
                .bind(cut)
                .execute(&mut *tx)
                .await?;
                let deleted = sqlx::query("DELETE FROM audit WHERE connection_id = $1 AND seq <= $2")
                    .bind(cid)
                    .bind(cut)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM audit_keys WHERE connection_id = $1 AND seq <= $2")
                    .bind(cid)
                    .bind(cut)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO audit_anchor (connection_id, seq, hash, pruned_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (connection_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
                     pruned_at = excluded.pruned_at",
                )
                .bind(cid)
                .bind(new_anchor.seq)
                .bind(&new_anchor.hash[..])
                .bind(ts(self.now()))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(PruneReport { deleted, anchor_seq: Some(new_anchor.seq) })
            }
        }
    };
}

pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    #[test]
    fn multi_row_sql_numbers_or_anonymises_every_placeholder() {
        static A: OnceLock<String> = OnceLock::new();
        static B: OnceLock<String> = OnceLock::new();
        let head = "SELECT k FROM t WHERE c = $1 AND s = $2 AND k IN (";
        assert_eq!(
            MultiRow {
                head,
                first: 3,
                cols: 1,
                group: false,
                tail: ")"
            }
            .sql(&A, false, 3),
            "SELECT k FROM t WHERE c = $1 AND s = $2 AND k IN ($3, $4, $5)"
        );
        assert_eq!(
            MultiRow {
                head,
                first: 3,
                cols: 1,
                group: false,
                tail: ") AND x = $5"
            }
            .sql(&B, true, 2),
            "SELECT k FROM t WHERE c = ? AND s = ? AND k IN (?, ?) AND x = ?"
        );
        assert_eq!(
            MultiRow {
                head: "INSERT INTO t (a, b) VALUES ",
                first: 1,
                cols: 2,
                group: true,
                tail: ""
            }
            .sql(&A, false, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        // A full chunk is built once and then served from the cache.
        let full = MultiRow::values("V ", 1).sql(&B, true, CHUNK);
        assert!(matches!(full, std::borrow::Cow::Borrowed(_)));
        assert_eq!(full.matches('?').count(), CHUNK);
    }
}
