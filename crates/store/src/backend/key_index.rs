//! The audit trail's key index (`audit_keys`): which entries hold a record key, for search by key
//! and for replay as of a run.
//!
//! It lags the chain on purpose (migration 0005 says why): entries are indexed in batches, outside
//! the appender's transaction, once `KEY_INDEX_LAG` of them are behind or a run finishes; a search
//! reads the unindexed tail off the chain itself.

/// Seqs of a chain whose keys go into `audit_keys` in one statement. SQLite's sort of a batch
/// takes ~500 bytes an entry (10 MB here; 50,000 took 24 MB more at the peak, for no less CPU).
pub(crate) const KEY_INDEX_BATCH: i64 = 20_000;

/// How far an append lets its chain run ahead of `audit_keys` before it indexes the rest: bounds
/// what a search by key reads off the chain itself (migration 0005 says why the index lags).
pub(crate) const KEY_INDEX_LAG: i64 = 100_000;

macro_rules! impl_key_index {
    ($ty:ident, $conn:ty) => {
        impl $ty {
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
        }
    };
}
pub(crate) use impl_key_index;
