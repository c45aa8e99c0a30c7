//! A stream's incremental pull position: read, promoted from pending to committed once the
//! stream's load is confirmed, or forgotten (`--full`).
//!
//! The pending position is written by `staging`, not here: it has to commit in the same
//! transaction as the page it ends.

macro_rules! impl_cursors {
    ($ty:ident) => {
        impl $ty {
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
        }
    };
}
pub(crate) use impl_cursors;
