//! Leases: which worker may sync a connection. Taking one is a single guarded upsert (it takes
//! over only an expired lease), so two workers never both win; expiry is computed from the store's
//! injected clock, so tests can move time.

macro_rules! impl_leases {
    ($ty:ident) => {
        impl $ty {
            async fn try_acquire_lease(&self, connection: &str, worker_id: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                let now = self.now();
                let expires_at = crate::backend::leases::lease_expiry(now, ttl)?;
                let token = uuid::Uuid::new_v4().to_string();
                // One atomic statement: insert, or take over only a lease that has expired.
                let got: Option<String> = sqlx::query_scalar(
                    "INSERT INTO leases (connection_id, worker_id, token, expires_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (connection_id) DO UPDATE SET worker_id = excluded.worker_id, token = excluded.token, \
                     expires_at = excluded.expires_at WHERE leases.expires_at <= $5 RETURNING token",
                )
                .bind(cid)
                .bind(worker_id)
                .bind(token.as_str())
                .bind(ts(expires_at))
                .bind(ts(now))
                .fetch_optional(self.writer())
                .await?;
                Ok(got.map(|token| Lease {
                    connection: connection.to_string(),
                    worker_id: worker_id.to_string(),
                    token,
                    expires_at: parse_ts(&ts(expires_at)).unwrap_or(expires_at),
                }))
            }

            async fn renew_lease(&self, connection: &str, token: &str, ttl: Duration) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                let expires_at = crate::backend::leases::lease_expiry(self.now(), ttl)?;
                // Still ours while the token matches, even just past expiry: nobody took it over.
                let worker: Option<String> = sqlx::query_scalar(
                    "UPDATE leases SET expires_at = $3 WHERE connection_id = $1 AND token = $2 RETURNING worker_id",
                )
                .bind(cid)
                .bind(token)
                .bind(ts(expires_at))
                .fetch_optional(self.writer())
                .await?;
                Ok(worker.map(|worker_id| Lease {
                    connection: connection.to_string(),
                    worker_id,
                    token: token.to_string(),
                    expires_at: parse_ts(&ts(expires_at)).unwrap_or(expires_at),
                }))
            }

            async fn release_lease(&self, connection: &str, token: &str) -> Result<bool, StoreError> {
                let cid = self.cid(connection).await?;
                let r = sqlx::query("DELETE FROM leases WHERE connection_id = $1 AND token = $2")
                    .bind(cid)
                    .bind(token)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn current_lease(&self, connection: &str) -> Result<Option<Lease>, StoreError> {
                let cid = self.cid(connection).await?;
                self.lease_row(cid, connection).await
            }

            async fn lease_row(&self, cid: i64, connection: &str) -> Result<Option<Lease>, StoreError> {
                let row = sqlx::query("SELECT worker_id, token, expires_at FROM leases WHERE connection_id = $1")
                    .bind(cid)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        let exp: String = row.try_get(2)?;
                        Ok(Some(Lease {
                            connection: connection.to_string(),
                            worker_id: row.try_get(0)?,
                            token: row.try_get(1)?,
                            expires_at: parse_ts(&exp)?,
                        }))
                    }
                }
            }
        }
    };
}
pub(crate) use impl_leases;

pub(crate) fn lease_expiry(
    now: chrono::DateTime<chrono::Utc>,
    ttl: std::time::Duration,
) -> Result<chrono::DateTime<chrono::Utc>, crate::StoreError> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| crate::StoreError::Invalid(format!("lease ttl {ttl:?} is too large")))
}
