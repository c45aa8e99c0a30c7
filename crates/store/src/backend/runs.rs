//! Runs and their per-stream results: a run begun, each stream's counters recorded, the run
//! finished, and the reads of them (`runs` and `run` commands, resuming unfinished runs).
//!
//! A failed stream's error also goes into the audit trail, in the same transaction as its
//! counters (`audit_append`); a finished run's entries go into the key index (`key_index`) after
//! its commit, because a failure there must not undo the run.

macro_rules! impl_runs {
    ($ty:ident, $db:ty) => {
        impl $ty {
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
                .bind(crate::backend::convert::to_i64(r.extracted))
                .bind(crate::backend::convert::to_i64(r.staged))
                .bind(crate::backend::convert::to_i64(r.inserted))
                .bind(crate::backend::convert::to_i64(r.updated))
                .bind(crate::backend::convert::to_i64(r.deleted))
                .bind(crate::backend::convert::to_i64(r.unchanged))
                .bind(crate::backend::convert::to_i64(r.pushed))
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

            async fn record_skipped_run(&self, connection: &str, trigger: &str, reason: &str) -> Result<RunId, StoreError> {
                // A connection skipped from its first scheduled time on has no row yet.
                self.ensure_connection(connection).await?;
                let cid = self.cid(connection).await?;
                let summary = serde_json::to_string(&serde_json::json!({ "skipped": reason }))
                    .map_err(|e| StoreError::Invalid(format!("run summary: {e}")))?;
                let now = ts(self.now());
                // One statement: a skip is never seen half-written (`running`) by the next run.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO runs (connection_id, run_trigger, status, started_at, finished_at, summary) \
                     VALUES ($1, $2, 'skipped', $3, $3, $4) RETURNING id",
                )
                .bind(cid)
                .bind(trigger)
                .bind(now.as_str())
                .bind(summary)
                .fetch_one(self.writer())
                .await?;
                Ok(RunId(id))
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
                        Ok(crate::backend::convert::to_u64(row.try_get::<i64, _>(i)?))
                    };
                    let updated: String = row.try_get(10)?;
                    streams.push(StreamRun {
                        stream: row.try_get(0)?,
                        result: StreamResult {
                            status: status.as_deref().map(crate::backend::convert::parse_enum).transpose()?,
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

            async fn run_totals(&self) -> Result<RunTotals, StoreError> {
                // CAST: PostgreSQL's SUM of a bigint is a numeric.
                let rows = sqlx::query(
                    "SELECT c.name, r.status, CAST(COUNT(*) AS BIGINT) FROM runs r \
                     JOIN connections c ON c.id = r.connection_id GROUP BY c.name, r.status ORDER BY c.name, r.status",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut totals = RunTotals::default();
                for row in &rows {
                    let status: String = row.try_get(1)?;
                    totals.runs.push(RunCount {
                        connection: row.try_get(0)?,
                        status: crate::backend::convert::parse_enum(&status)?,
                        runs: crate::backend::convert::to_u64(row.try_get::<i64, _>(2)?),
                    });
                }
                let rows = sqlx::query(
                    "SELECT c.name, s.stream, CAST(SUM(s.extracted) AS BIGINT), CAST(SUM(s.pushed) AS BIGINT), \
                     CAST(SUM(CASE WHEN s.status = 'failed' THEN 1 ELSE 0 END) AS BIGINT), \
                     MAX(CASE WHEN s.status = 'ok' THEN s.updated_at END) \
                     FROM run_streams s JOIN runs r ON r.id = s.run_id JOIN connections c ON c.id = r.connection_id \
                     GROUP BY c.name, s.stream ORDER BY c.name, s.stream",
                )
                .fetch_all(&self.pool)
                .await?;
                for row in &rows {
                    let last_ok: Option<String> = row.try_get(5)?;
                    let u = |i: usize| -> Result<u64, StoreError> {
                        Ok(crate::backend::convert::to_u64(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0)))
                    };
                    totals.streams.push(StreamTotals {
                        connection: row.try_get(0)?,
                        stream: row.try_get(1)?,
                        extracted: u(2)?,
                        pushed: u(3)?,
                        failed_runs: u(4)?,
                        last_ok_at: last_ok.as_deref().map(parse_ts).transpose()?,
                    });
                }
                Ok(totals)
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

            fn run_from_row(row: &<$db as sqlx::Database>::Row) -> Result<RunRecord, StoreError> {
                let status: String = row.try_get(3)?;
                let started: String = row.try_get(4)?;
                let finished: Option<String> = row.try_get(5)?;
                let summary: String = row.try_get(6)?;
                Ok(RunRecord {
                    id: RunId(row.try_get(0)?),
                    connection: row.try_get(1)?,
                    trigger: row.try_get(2)?,
                    status: crate::backend::convert::parse_enum(&status)?,
                    started_at: parse_ts(&started)?,
                    finished_at: finished.as_deref().map(parse_ts).transpose()?,
                    summary: serde_json::from_str(&summary)
                        .map_err(|e| StoreError::Corrupt(format!("run summary: {e}")))?,
                })
            }
        }
    };
}
pub(crate) use impl_runs;
