//! Reads of the mirror, the latest version of every record staged: by-key lookups (what staging
//! and a pull compare records with), key pages (a full pull's delete comparison) and row pages (a
//! table rebuild).
//!
//! A mirror row's row lives in the audit entry that staged it (migration 0007), so these reads
//! join the two (`mirror_with_rows!`), and a read that finds a row nowhere names the record
//! (`missing_mirror_row`). Key and row pages come as a few joined texts per page rather than a
//! result row per value (`JoinedPart`; `mirror_rows` says why).

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

macro_rules! impl_mirror {
    ($ty:ident, $conn:ty, backend = $backend:literal, anonymous_placeholders = $anon:literal) => {
        impl $ty {
            async fn mirror_page(&self, connection: &str, stream: &str, after_key: Option<&str>, limit: u32) -> Result<Vec<MirrorRow>, StoreError> {
                let cid = self.cid(connection).await?;
                let rows = sqlx::query(
                    concat!(
                        "SELECT m.record_key, COALESCE(m.row_json, a.row_json) ",
                        crate::backend::mirror::mirror_with_rows!(),
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
                        crate::backend::mirror::mirror_with_rows!(),
                        " WHERE m.connection_id = $1 AND m.stream = $2 \
                         AND m.rowid > CAST($3 AS INTEGER) ORDER BY m.rowid LIMIT $4) part"
                    )
                } else {
                    concat!(
                        "SELECT count(*), max(record_key), string_agg(row_text, $5) FROM \
                         (SELECT m.record_key, COALESCE(m.row_json, a.row_json) AS row_text ",
                        crate::backend::mirror::mirror_with_rows!(),
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
                    let part = match MirrorRows::new(part.cursor, crate::backend::convert::to_u64(part.count) as usize, part.joined) {
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
                Ok(crate::backend::convert::to_u64(n))
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

            async fn mirror_keys_by_column(
                &self,
                connection: &str,
                stream: &str,
                column: &str,
                values: &[String],
            ) -> Result<Vec<(String, String)>, StoreError> {
                static SQL: OnceLock<String> = OnceLock::new();
                if values.is_empty() {
                    return Ok(Vec::new());
                }
                let cid = self.cid(connection).await?;
                // The row's `column` as text: SQLite takes a JSON path, PostgreSQL the member's name.
                // `$1`..`$3` are the column, the connection and the stream (in the order they are
                // written: SQLite's placeholders are anonymous, see `MultiRow`); the values follow.
                let (head, column_arg) = if $backend == "sqlite" {
                    (
                        concat!(
                            "SELECT v, record_key FROM (SELECT m.record_key, \
                             CAST(json_extract(COALESCE(m.row_json, a.row_json), $1) AS TEXT) AS v ",
                            crate::backend::mirror::mirror_with_rows!(),
                            " WHERE m.connection_id = $2 AND m.stream = $3) found WHERE v IN ("
                        ),
                        // Quoted, so a column holding a dot or a space is one label (one holding a
                        // double quote finds nothing: the caller then compares keys).
                        format!("$.\"{column}\""),
                    )
                } else {
                    (
                        concat!(
                            "SELECT v, record_key FROM (SELECT m.record_key, \
                             (COALESCE(m.row_json, a.row_json))::jsonb ->> CAST($1 AS TEXT) AS v ",
                            crate::backend::mirror::mirror_with_rows!(),
                            " WHERE m.connection_id = $2 AND m.stream = $3) found WHERE v IN ("
                        ),
                        column.to_string(),
                    )
                };
                let spec = MultiRow {
                    head,
                    first: 4,
                    cols: 1,
                    group: false,
                    tail: ")",
                };
                let mut out = Vec::new();
                for chunk in values.chunks(CHUNK) {
                    let sql = spec.sql(&SQL, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 3 + chunk.len())
                        .bind(column_arg.as_str())
                        .bind(cid)
                        .bind(stream);
                    for v in chunk {
                        q = q.bind(v.as_str());
                    }
                    for row in q.fetch_all(&self.pool).await? {
                        out.push((row.try_get(0)?, row.try_get(1)?));
                    }
                }
                Ok(out)
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

            /// The error for a page that came back short of a row: names the mirror row whose row is
            /// nowhere (its audit entry deleted or emptied outside ml-connector; pruning copies a row
            /// into the mirror before it deletes the entry), or says `otherwise` if none is.
            async fn missing_mirror_row(&self, cid: i64, connection: &str, stream: &str, otherwise: String) -> StoreError {
                let missing = sqlx::query(
                    concat!(
                        "SELECT m.record_key, m.row_seq ",
                        crate::backend::mirror::mirror_with_rows!(),
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
        }
    };
}
pub(crate) use impl_mirror;
