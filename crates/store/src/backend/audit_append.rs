//! Appending to a connection's hash-chained audit trail inside the caller's write transaction:
//! the chain's head locked, the entries chained after it (`crate::audit` computes the hashes),
//! inserted, the new head stored, and each run's span of the chain widened.
//!
//! Every job that writes the trail (runs, staging, delivery, reloads) goes through `append`, so
//! the head is locked and moved in one place only: `FOR UPDATE` on PostgreSQL, where appends to
//! one chain must queue; nothing on SQLite, whose single writer already serialises them.

macro_rules! impl_audit_append {
    ($ty:ident, $conn:ty, lock = $lock:literal, anonymous_placeholders = $anon:literal) => {
        impl $ty {
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
                    hash: crate::backend::convert::hash32(row.try_get(1)?, "audit head hash")?,
                })
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

            async fn save_head(c: &mut $conn, cid: i64, head: &ChainHead) -> Result<(), StoreError> {
                sqlx::query("UPDATE audit_head SET last_seq = $2, last_hash = $3 WHERE connection_id = $1")
                    .bind(cid)
                    .bind(head.seq)
                    .bind(&head.hash[..])
                    .execute(&mut *c)
                    .await?;
                Ok(())
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
        }
    };
}
pub(crate) use impl_audit_append;
