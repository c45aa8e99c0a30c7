//! Delivery of append streams: the outbox rows waiting for Power BI, each batch's fate recorded
//! (`mark_delivered`: audit entries, then the rows deleted, flagged ambiguous or left to retry),
//! and the ambiguous rows a later run checks and then releases or clears.
//!
//! An outbox row holds no copy of its row: it points at the audit entry that staged it, and the
//! reads here join the row from there.

macro_rules! impl_outbox {
    ($ty:ident, $db:ty) => {
        impl $ty {
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
                Ok(crate::backend::convert::to_u64(n))
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
        }
    };
}
pub(crate) use impl_outbox;
