//! Connections and their credentials: creating a connection (with the genesis head of its audit
//! chain), the name → id cache through which every other job finds a connection, and the sealed
//! credentials kept per connection.
//!
//! Credentials live with connections because they are rows of a connection and of nothing else;
//! sealing and opening them is `crate::crypto`'s job, not the store's.

macro_rules! impl_connections {
    ($ty:ident, $db:ty) => {
        impl $ty {
            async fn cid(&self, name: &str) -> Result<i64, StoreError> {
                if let Some(id) = self.cache.lock().expect("cache lock").get(name) {
                    return Ok(*id);
                }
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM connections WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                let id = id.ok_or_else(|| StoreError::UnknownConnection(name.to_string()))?;
                self.cache.lock().expect("cache lock").insert(name.to_string(), id);
                Ok(id)
            }

            async fn ensure_connection(&self, name: &str) -> Result<ConnectionId, StoreError> {
                if name.trim().is_empty() {
                    return Err(StoreError::Invalid("a connection name must not be empty".into()));
                }
                let mut tx = self.begin_write().await?;
                sqlx::query("INSERT INTO connections (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(ts(self.now()))
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar("SELECT id FROM connections WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO audit_head (connection_id, last_seq, last_hash) VALUES ($1, 0, $2) \
                     ON CONFLICT (connection_id) DO NOTHING",
                )
                .bind(id)
                .bind(&GENESIS[..])
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                self.cache.lock().expect("cache lock").insert(name.to_string(), id);
                Ok(ConnectionId(id))
            }

            async fn list_connections(&self) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT name FROM connections ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn put_credential(
                &self,
                connection: &str,
                kind: &str,
                sealed: SealedSecret,
                public_fields: serde_json::Value,
            ) -> Result<(), StoreError> {
                let cred = Credential {
                    connection: connection.to_string(),
                    kind: kind.to_string(),
                    sealed,
                    public_fields,
                    updated_at: self.now(),
                };
                self.replace_credentials(vec![cred]).await
            }

            async fn get_credential(&self, connection: &str, kind: &str) -> Result<Option<Credential>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT c.name, k.kind, k.key_fingerprint, k.nonce, k.ciphertext, k.public_fields, k.updated_at \
                     FROM credentials k JOIN connections c ON c.id = k.connection_id \
                     WHERE k.connection_id = $1 AND k.kind = $2",
                )
                .bind(cid)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::credential_from_row).transpose()
            }

            async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError> {
                let rows = sqlx::query(
                    "SELECT c.name, k.kind, k.key_fingerprint, k.nonce, k.ciphertext, k.public_fields, k.updated_at \
                     FROM credentials k JOIN connections c ON c.id = k.connection_id ORDER BY c.name, k.kind",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::credential_from_row).collect()
            }

            async fn delete_credential(&self, connection: &str, kind: &str) -> Result<bool, StoreError> {
                let cid = self.cid(connection).await?;
                let r = sqlx::query("DELETE FROM credentials WHERE connection_id = $1 AND kind = $2")
                    .bind(cid)
                    .bind(kind)
                    .execute(self.writer())
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn replace_credentials(&self, creds: Vec<Credential>) -> Result<(), StoreError> {
                let mut ids = Vec::with_capacity(creds.len());
                for c in &creds {
                    ids.push(self.cid(&c.connection).await?);
                }
                let mut tx = self.begin_write().await?;
                for (c, cid) in creds.iter().zip(ids) {
                    let public = serde_json::to_string(&c.public_fields)
                        .map_err(|e| StoreError::Invalid(format!("credential public fields: {e}")))?;
                    sqlx::query(
                        "INSERT INTO credentials (connection_id, kind, key_fingerprint, nonce, ciphertext, public_fields, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (connection_id, kind) DO UPDATE SET \
                         key_fingerprint = excluded.key_fingerprint, nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                         public_fields = excluded.public_fields, updated_at = excluded.updated_at",
                    )
                    .bind(cid)
                    .bind(c.kind.as_str())
                    .bind(c.sealed.key_fingerprint.as_str())
                    .bind(&c.sealed.nonce[..])
                    .bind(c.sealed.ciphertext.as_slice())
                    .bind(public)
                    .bind(ts(self.now()))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            fn credential_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Credential, StoreError> {
                let nonce: Vec<u8> = row.try_get(3)?;
                let public: String = row.try_get(5)?;
                let updated: String = row.try_get(6)?;
                Ok(Credential {
                    connection: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    sealed: SealedSecret {
                        key_fingerprint: row.try_get(2)?,
                        nonce: nonce
                            .try_into()
                            .map_err(|_| StoreError::Corrupt("credential nonce is not 24 bytes".into()))?,
                        ciphertext: row.try_get(4)?,
                    },
                    public_fields: serde_json::from_str(&public)
                        .map_err(|e| StoreError::Corrupt(format!("credential public fields: {e}")))?,
                    updated_at: parse_ts(&updated)?,
                })
            }
        }
    };
}
pub(crate) use impl_connections;
