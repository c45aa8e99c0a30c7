//! The stored audit trail as the `audit` commands use it: search by filter, verification of a
//! chain from its anchor to its head, and pruning of a verified prefix (the rows the mirror still
//! reads from entries about to go are moved into the mirror first, and the last entry pruned
//! becomes the anchor).
//!
//! Hashing and checking entries is `crate::audit`'s pure job; this file reads and deletes rows.

/// Page size when walking the audit chain.
pub(crate) const WALK_PAGE: i64 = 5000;

/// An audit row's columns as `stored_from_row` reads them, in its order.
pub(crate) const AUDIT_COLS: &str = "a.id, c.name, a.seq, a.run_id, a.stream, a.record_key, a.when_modified, \
     a.source_hash, a.action, a.row_json, a.ref_seq, a.batch_id, a.request_id, a.outcome, a.error, a.detail, \
     a.created_at, a.prev_hash, a.hash";

macro_rules! impl_audit_trail {
    ($ty:ident, $db:ty, $conn:ty) => {
        impl $ty {
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
                    hash: crate::backend::convert::hash32(head_row.try_get(1)?, "audit head hash")?,
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

            async fn read_anchor(c: &mut $conn, cid: i64) -> Result<Option<ChainHead>, StoreError> {
                let row = sqlx::query("SELECT seq, hash FROM audit_anchor WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_optional(&mut *c)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(row) => Ok(Some(ChainHead {
                        seq: row.try_get(0)?,
                        hash: crate::backend::convert::hash32(row.try_get(1)?, "audit anchor hash")?,
                    })),
                }
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

            fn stored_from_row(row: &<$db as sqlx::Database>::Row) -> Result<(i64, String, StoredEntry), StoreError> {
                let action: String = row.try_get(8)?;
                let entry = NewEntry {
                    run: row.try_get::<Option<i64>, _>(3)?.map(RunId),
                    stream: row.try_get(4)?,
                    record_key: row.try_get(5)?,
                    when_modified: row.try_get(6)?,
                    source_hash: row.try_get(7)?,
                    action: crate::backend::convert::parse_enum(&action)?,
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
        }
    };
}
pub(crate) use impl_audit_trail;
