//! Replay from the audit trail: the rows Power BI accepted in one run (append streams, in chain
//! order, within the run's span of the chain) and a stream's rows as they stood after a run
//! (replace streams, by key, through the key index).

macro_rules! impl_replay {
    ($ty:ident) => {
        impl $ty {
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
        }
    };
}
pub(crate) use impl_replay;
