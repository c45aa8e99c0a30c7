//! A destination's own per-stream state, as JSON the destination defines (migration 0010).

macro_rules! impl_destination_state {
    ($ty:ident) => {
        impl $ty {
            async fn destination_state(&self, connection: &str, destination: &str, stream: &str) -> Result<Option<String>, StoreError> {
                let cid = self.cid(connection).await?;
                Ok(sqlx::query_scalar(
                    "SELECT state_json FROM destination_state WHERE connection_id = $1 AND destination = $2 AND stream = $3",
                )
                .bind(cid)
                .bind(destination)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn save_destination_state(&self, connection: &str, destination: &str, stream: &str, state: &str) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                sqlx::query(
                    "INSERT INTO destination_state (connection_id, destination, stream, state_json, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection_id, destination, stream) DO UPDATE SET \
                     state_json = excluded.state_json, updated_at = excluded.updated_at",
                )
                .bind(cid)
                .bind(destination)
                .bind(stream)
                .bind(state)
                .bind(ts(self.now()))
                .execute(self.writer())
                .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_destination_state;
