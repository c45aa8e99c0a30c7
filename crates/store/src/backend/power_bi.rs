//! What the store keeps for Power BI: a connection's dataset (its ids and the schema pushed), and
//! the POSTs sent to each dataset, by which processes sharing one store pace their pushes.

macro_rules! impl_power_bi {
    ($ty:ident, anonymous_placeholders = $anon:literal) => {
        impl $ty {
            async fn save_dataset(&self, connection: &str, s: &DatasetState) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                sqlx::query(
                    "INSERT INTO datasets (connection_id, group_id, dataset_id, schema_json, schema_hash, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (connection_id) DO UPDATE SET group_id = excluded.group_id, \
                     dataset_id = excluded.dataset_id, schema_json = excluded.schema_json, \
                     schema_hash = excluded.schema_hash, updated_at = excluded.updated_at",
                )
                .bind(cid)
                .bind(s.group_id.as_str())
                .bind(s.dataset_id.as_str())
                .bind(s.schema_json.as_str())
                .bind(s.schema_hash.as_str())
                .bind(ts(self.now()))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn dataset(&self, connection: &str) -> Result<Option<DatasetState>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT group_id, dataset_id, schema_json, schema_hash FROM datasets WHERE connection_id = $1",
                )
                .bind(cid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(DatasetState {
                        group_id: r.try_get(0)?,
                        dataset_id: r.try_get(1)?,
                        schema_json: r.try_get(2)?,
                        schema_hash: r.try_get(3)?,
                    })
                })
                .transpose()
            }

            async fn save_dataset_migration(&self, connection: &str, m: Option<&DatasetMigration>) -> Result<(), StoreError> {
                let cid = self.cid(connection).await?;
                let Some(m) = m else {
                    sqlx::query("DELETE FROM dataset_migrations WHERE connection_id = $1")
                        .bind(cid)
                        .execute(self.writer())
                        .await?;
                    return Ok(());
                };
                sqlx::query(
                    "INSERT INTO dataset_migrations (connection_id, group_id, from_dataset_id, to_dataset_id, started_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection_id) DO UPDATE SET group_id = excluded.group_id, \
                     from_dataset_id = excluded.from_dataset_id, to_dataset_id = excluded.to_dataset_id, \
                     started_at = excluded.started_at",
                )
                .bind(cid)
                .bind(m.group_id.as_str())
                .bind(m.from_dataset_id.as_str())
                .bind(m.to_dataset_id.as_deref())
                .bind(ts(m.started_at))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn dataset_migration(&self, connection: &str) -> Result<Option<DatasetMigration>, StoreError> {
                let cid = self.cid(connection).await?;
                let row = sqlx::query(
                    "SELECT group_id, from_dataset_id, to_dataset_id, started_at FROM dataset_migrations WHERE connection_id = $1",
                )
                .bind(cid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    let started: String = r.try_get(3)?;
                    Ok(DatasetMigration {
                        group_id: r.try_get(0)?,
                        from_dataset_id: r.try_get(1)?,
                        to_dataset_id: r.try_get(2)?,
                        started_at: parse_ts(&started)?,
                    })
                })
                .transpose()
            }

            async fn record_posts(&self, dataset_id: &str, posts: &[PushPost], forget_before: DateTime<Utc>) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM push_log WHERE dataset_id = $1 AND sent_at < $2")
                    .bind(dataset_id)
                    .bind(ts(forget_before))
                    .execute(&mut *tx)
                    .await?;
                static SQL: OnceLock<String> = OnceLock::new();
                for chunk in posts.chunks(CHUNK) {
                    let sql = MultiRow::values(
                        "INSERT INTO push_log (dataset_id, sent_at, row_count) VALUES ",
                        3,
                    )
                    .sql(&SQL, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 3 * chunk.len());
                    for p in chunk {
                        q = q.bind(dataset_id).bind(ts(p.at)).bind(crate::backend::convert::to_i64(p.rows));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn recent_posts(&self, dataset_id: &str, since: DateTime<Utc>) -> Result<Vec<PushPost>, StoreError> {
                let rows = sqlx::query(
                    "SELECT sent_at, row_count FROM push_log WHERE dataset_id = $1 AND sent_at >= $2 ORDER BY sent_at",
                )
                .bind(dataset_id)
                .bind(ts(since))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let at: String = r.try_get(0)?;
                        Ok(PushPost { at: parse_ts(&at)?, rows: crate::backend::convert::to_u64(r.try_get(1)?) })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use impl_power_bi;
