//! Delivery of replace streams: the state of a stream's Power BI table (dirty, its row count, the
//! last run loaded into it). A table is marked dirty before anything makes it differ from the
//! mirror, and `mark_reloaded` makes it clean again after a rebuild, recording each of the
//! rebuild's batches in the audit trail in the same transaction. In between, the rebuild records
//! how far it got (`save_rebuild_progress`), so that an interrupted one can resume; both marks
//! forget that progress.

macro_rules! impl_stream_state {
    ($ty:ident) => {
        impl $ty {
            async fn stream_state(&self, connection: &str, stream: &str) -> Result<StreamState, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT dirty, last_loaded_run, table_rows, mirror_version, rebuild_version, rebuild_cursor, \
                     rebuild_rows, rebuild_done, rebuild_page_rows FROM stream_state WHERE connection_id = $1 AND stream = $2",
                )
                .bind(cid)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(StreamState::default()) };
                let dirty = row.try_get::<i64, _>(0)? != 0;
                let rebuild = match row.try_get::<Option<i64>, _>(4)? {
                    Some(version) if dirty => {
                        let done: Option<String> = row.try_get(7)?;
                        Some(RebuildProgress {
                            mirror_version: crate::backend::convert::to_u64(version),
                            cursor: row.try_get(5)?,
                            rows: crate::backend::convert::to_u64(row.try_get(6)?),
                            done: match done {
                                None => Vec::new(),
                                Some(d) => serde_json::from_str(&d).map_err(|e| {
                                    StoreError::Corrupt(format!("the rebuild progress of {stream} is not a list of cursors: {e}"))
                                })?,
                            },
                            page_rows: u32::try_from(row.try_get::<i64, _>(8)?).unwrap_or(0),
                        })
                    }
                    _ => None,
                };
                Ok(StreamState {
                    dirty,
                    last_loaded_run: row.try_get::<Option<i64>, _>(1)?.map(RunId),
                    table_rows: crate::backend::convert::to_u64(row.try_get(2)?),
                    mirror_version: crate::backend::convert::to_u64(row.try_get(3)?),
                    rebuild,
                })
            }

            async fn save_rebuild_progress(&self, connection: &str, stream: &str, progress: &RebuildProgress) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let done = serde_json::to_string(&progress.done)
                    .map_err(|e| StoreError::Invalid(format!("rebuild progress: {e}")))?;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE stream_state SET rebuild_version = $3, rebuild_cursor = $4, rebuild_rows = $5, rebuild_done = $6, \
                     rebuild_page_rows = $7, table_rows = $5 WHERE connection_id = $1 AND stream = $2 AND dirty = 1",
                )
                .bind(cid)
                .bind(stream)
                .bind(crate::backend::convert::to_i64(progress.mirror_version))
                .bind(progress.cursor.as_deref())
                .bind(crate::backend::convert::to_i64(progress.rows))
                .bind(done)
                .bind(i64::from(progress.page_rows))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mark_dirty(&self, connection: &str, stream: &str) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                     VALUES ($1, $2, 1, NULL, 0) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1, table_rows = 0, \
                     rebuild_version = NULL, rebuild_cursor = NULL, rebuild_rows = 0, rebuild_done = NULL",
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
                     last_loaded_run = excluded.last_loaded_run, table_rows = excluded.table_rows, \
                     rebuild_version = NULL, rebuild_cursor = NULL, rebuild_rows = 0, rebuild_done = NULL"
                } else {
                    "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows) \
                     VALUES ($1, $2, 1, NULL, $4) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1, \
                     table_rows = excluded.table_rows, rebuild_version = NULL, rebuild_cursor = NULL, rebuild_rows = 0, \
                     rebuild_done = NULL"
                };
                sqlx::query(sql)
                    .bind(cid)
                    .bind(stream)
                    .bind(run.0)
                    .bind(crate::backend::convert::to_i64(rows))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_stream_state;
