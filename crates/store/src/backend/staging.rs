//! Staging one page of a pull, in one transaction: each record classified against the mirror
//! (inserted, updated, unchanged), live deletes found, the page's audit entries chained, the
//! mirror written (pointing at the entries that hold the rows), the outbox (append streams) or the
//! dirty flag (replace streams), and the pending cursor.
//!
//! Records found unchanged get no entry each: their rows are already in the trail (the mirror
//! still points at the entries that staged them), and a stream read whole every run (GL balances)
//! would otherwise add an entry per record per run. The page gets one `unchanged` entry instead,
//! with no record key, whose `detail` holds their count, first and last keys and a digest of their
//! keys and hashes (`crate::audit::UnchangedDigest`), chained like every entry.
//!
//! One long function on purpose: it is the pipeline's hot path, and its steps share the page's
//! borrowed keys and the audit entries while they stream through a chunk at a time. Split into
//! functions, the steps would have to collect or copy what they now pass along (BENCHMARKS.md has
//! the measurements behind its choices).

macro_rules! impl_staging {
    ($ty:ident, anonymous_placeholders = $anon:literal) => {
        impl $ty {
            async fn stage_page(&self, page: StagePage) -> Result<StageSummary, StoreError> {
                let StagePage { connection, run, stream, mode, mut records, mut deletes, mut failed, pending_cursor } = page;
                // Records, deletes and failures are each chained in key order (stable: a key's records keep
                // their page order). The audit trail's key index then takes a page's entries in order, as
                // the mirror's takes the upserts, instead of all over itself (BENCHMARKS.md, "the audit
                // trail's key index"). Sorted in place: no second copy of the page's entries.
                records.sort_by(|a, b| a.key.cmp(&b.key));
                deletes.sort();
                failed.sort_by(|a, b| a.key.cmp(&b.key));
                if records.iter().map(|r| &r.key).chain(&deletes).chain(failed.iter().map(|f| &f.key)).any(|k| k.is_empty()) {
                    return Err(StoreError::Invalid("a staged record key must not be empty".into()));
                }
                let cid = self.cid(&connection).await?;
                let created = ts(self.now());
                let mut tx = self.begin_write().await?;
                let mut head = Self::lock_head(&mut tx, cid).await?;

                // The mirror's hash of every key this page touches (absent = new record), read into
                // `known` and looked up by borrowed key: no key or hash is copied per record.
                let known = {
                    let mut seen = foldhash::HashSet::with_capacity(records.len() + deletes.len());
                    let keys: Vec<&str> = records
                        .iter()
                        .map(|r| r.key.as_str())
                        .chain(deletes.iter().map(String::as_str))
                        .filter(|k| seen.insert(*k))
                        .collect();
                    Self::mirror_column(&mut tx, cid, &stream, &keys, MirrorColumn::SourceHash).await?
                };

                // Classify in page order. Entries are the changed records first, then deletes, then
                // failures, then the page's summary of its unchanged records; `last` maps a key to the
                // entry holding its final row (None: deleted).
                let mut summary = StageSummary::default();
                let mut actions: Vec<AuditAction> = Vec::with_capacity(records.len());
                let mut deleting: Vec<bool> = Vec::with_capacity(deletes.len());
                let mut upserts: Vec<usize> = Vec::new();
                let mut removed: Vec<String> = Vec::new();
                let mut unchanged_entry: Option<NewEntry> = None;
                {
                    let mut current: foldhash::HashMap<&str, Option<&str>> =
                        known.iter().map(|(k, h)| (k.as_str(), h.as_deref())).collect();
                    let mut last: foldhash::HashMap<&str, Option<usize>> =
                        foldhash::HashMap::with_capacity(records.len() + deletes.len());
                    let mut unchanged = UnchangedDigest::default();
                    // The first and last unchanged keys, and the entries of changed records so far.
                    let mut range: Option<(&str, &str)> = None;
                    let mut entry = 0usize;
                    for r in &records {
                        let action = match current.get(r.key.as_str()) {
                            Some(Some(h)) if *h == r.source_hash => AuditAction::Unchanged,
                            Some(Some(_)) => AuditAction::Updated,
                            _ => AuditAction::Inserted,
                        };
                        match action {
                            AuditAction::Unchanged => summary.unchanged += 1,
                            AuditAction::Inserted => summary.inserted += 1,
                            _ => summary.updated += 1,
                        }
                        if action == AuditAction::Unchanged {
                            unchanged.add(&r.key, &r.source_hash);
                            range = Some((range.map_or(r.key.as_str(), |(first, _)| first), r.key.as_str()));
                        } else {
                            current.insert(&r.key, Some(&r.source_hash));
                            last.insert(&r.key, Some(entry));
                            entry += 1;
                        }
                        actions.push(action);
                    }
                    if let Some((first, last_key)) = range {
                        let mut e = NewEntry::new(AuditAction::Unchanged);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.detail = Some(unchanged.detail(first, last_key));
                        unchanged_entry = Some(e);
                    }
                    for key in &deletes {
                        let live = matches!(current.get(key.as_str()), Some(Some(_)));
                        if live {
                            current.insert(key, None);
                            last.insert(key, None);
                            summary.deleted += 1;
                        }
                        deleting.push(live);
                    }
                    for (key, at) in last {
                        match at {
                            Some(i) => upserts.push(i),
                            None => removed.push(key.to_string()),
                        }
                    }
                }
                summary.failed = failed.len() as u64;

                // The page's entries in chain order: changed records, then live deletes, then
                // failures, then the summary of the unchanged records. They are built, chained and
                // written a chunk at a time, so a page of 10,000 records never holds all its entries
                // at once (a few MB each time, which the allocator would map and fault in anew for
                // every page).
                let mut entries = records
                    .into_iter()
                    .zip(actions)
                    .filter(|(_, action)| *action != AuditAction::Unchanged)
                    .map(|(r, action)| {
                        let mut e = NewEntry::new(action);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.when_modified = r.when_modified;
                        e.row_json = Some(r.row_json);
                        e.record_key = Some(r.key);
                        e.source_hash = Some(r.source_hash);
                        e
                    })
                    .chain(deletes.into_iter().zip(deleting).filter(|(_, live)| *live).map(|(key, _)| {
                        let mut e = NewEntry::new(AuditAction::Deleted);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.record_key = Some(key);
                        e
                    }))
                    .chain(failed.into_iter().map(|f| {
                        let mut e = NewEntry::new(AuditAction::Failed);
                        e.run = Some(run);
                        e.stream = Some(stream.clone());
                        e.record_key = Some(f.key);
                        e.when_modified = f.when_modified;
                        e.source_hash = f.source_hash;
                        e.error = Some(f.error);
                        e
                    }))
                    .chain(unchanged_entry);

                let changed = summary.inserted + summary.updated + summary.deleted > 0;
                if changed {
                    // The mirror changed: a new version (an interrupted rebuild of the table then
                    // starts over rather than resuming), and a replace table is dirty. One statement
                    // a changed page; append streams' mirrors count too, should the mode change.
                    sqlx::query(if mode == StageMode::Replace {
                        "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows, mirror_version) \
                         VALUES ($1, $2, 1, NULL, 0, 1) ON CONFLICT (connection_id, stream) DO UPDATE SET dirty = 1, \
                         mirror_version = stream_state.mirror_version + 1"
                    } else {
                        "INSERT INTO stream_state (connection_id, stream, dirty, last_loaded_run, table_rows, mirror_version) \
                         VALUES ($1, $2, 0, NULL, 0, 1) ON CONFLICT (connection_id, stream) DO UPDATE SET \
                         mirror_version = stream_state.mirror_version + 1"
                    })
                    .bind(cid)
                    .bind(stream.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                // Mirror writes point at the chained entries that hold their rows (migration 0007),
                // in key order (the records') so that neighbouring keys land on the same index pages.
                upserts.sort_unstable();
                let mut upserts = upserts.into_iter().peekable();
                // Positions of the current chunk's entries in the page: base..end.
                let mut end = 0usize;
                loop {
                    let chunk: Vec<NewEntry> = entries.by_ref().take(CHUNK).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    let base = end;
                    end += chunk.len();
                    let mut chained = Self::append(&mut tx, cid, &connection, &mut head, &created, chunk).await?;
                    if mode == StageMode::Append {
                        // The outbox points at the staging entry, which holds the row: one copy of it, not two.
                        static SQL: OnceLock<String> = OnceLock::new();
                        let rows: Vec<&ChainedEntry> = chained
                            .iter()
                            .filter(|e| matches!(e.entry.action, AuditAction::Inserted | AuditAction::Updated))
                            .collect();
                        if !rows.is_empty() {
                            let sql = MultiRow::values(
                                "INSERT INTO outbox (connection_id, stream, record_key, audit_seq) VALUES ",
                                4,
                            )
                            .sql(&SQL, $anon, rows.len());
                            let mut q = Self::with_room(&sql, 4 * rows.len());
                            for e in rows {
                                q = q.bind(cid).bind(stream.as_str()).bind(e.entry.record_key.as_deref()).bind(e.seq);
                            }
                            q.execute(&mut *tx).await?;
                        }
                    }
                    // The upserts whose final row is in this chunk, by their place in `chained`.
                    let mut mine: Vec<usize> = Vec::new();
                    while let Some(i) = upserts.next_if(|i| *i < end) {
                        mine.push(i - base);
                    }
                    if mine.is_empty() {
                        continue;
                    }
                    static UPSERT: OnceLock<String> = OnceLock::new();
                    let sql = MultiRow::values(
                        "INSERT INTO mirror (connection_id, stream, record_key, when_modified, source_hash, row_seq) VALUES ",
                        6,
                    )
                    .with_tail(" ON CONFLICT (connection_id, stream, record_key) DO UPDATE SET when_modified = excluded.when_modified, \
                         source_hash = excluded.source_hash, row_seq = excluded.row_seq, row_json = NULL")
                    .sql(&UPSERT, $anon, mine.len());
                    let mut q = Self::with_room(&sql, 6 * mine.len());
                    for i in mine {
                        let c = &mut chained[i];
                        q = q
                            .bind(cid)
                            .bind(stream.as_str())
                            .bind(c.entry.record_key.take())
                            .bind(c.entry.when_modified.take())
                            .bind(c.entry.source_hash.take())
                            .bind(c.seq);
                    }
                    q.execute(&mut *tx).await?;
                }
                static DELETE: OnceLock<String> = OnceLock::new();
                for chunk in removed.chunks(CHUNK) {
                    let sql = MultiRow::keys_after_two(
                        "DELETE FROM mirror WHERE connection_id = $1 AND stream = $2 AND record_key IN (",
                    )
                    .sql(&DELETE, $anon, chunk.len());
                    let mut q = Self::with_room(&sql, 2 + chunk.len()).bind(cid).bind(stream.as_str());
                    for k in chunk {
                        q = q.bind(k.as_str());
                    }
                    q.execute(&mut *tx).await?;
                }
                if let Some(c) = &pending_cursor {
                    sqlx::query(
                        "INSERT INTO cursors (connection_id, stream, pending_wm, pending_recno) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (connection_id, stream) DO UPDATE SET pending_wm = excluded.pending_wm, \
                         pending_recno = excluded.pending_recno",
                    )
                    .bind(cid)
                    .bind(stream.as_str())
                    .bind(c.when_modified.as_str())
                    .bind(c.recordno)
                    .execute(&mut *tx)
                    .await?;
                }
                let keys_behind = head.seq - Self::keys_through(&mut tx, cid).await?;
                tx.commit().await?;
                if keys_behind >= KEY_INDEX_LAG {
                    self.index_keys(cid, KEY_INDEX_LAG).await?;
                }
                self.after_stage(summary.inserted + summary.updated + summary.unchanged + summary.deleted).await?;
                Ok(summary)
            }
        }
    };
}
pub(crate) use impl_staging;
