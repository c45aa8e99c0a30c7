//! One Intacct record on its way to the store: typed, keyed, hashed and encoded as its row, and
//! the version checks that keep an older version of a record from replacing a newer one when
//! parallel chains deliver pages out of order.

use std::collections::HashSet;

use foldhash::{HashMapExt, HashSetExt};

use chrono::NaiveDateTime;
use ml_intacct::{Record, RecordShape};
use ml_powerbi::schema::RowEncoder;
use ml_store::StagedRecord;

use crate::catalogue::StreamKind;
use crate::pipeline::error::PipelineError;
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::transform::{self, TimeContext, TypedRecord};

pub(super) fn typed_record(
    record: &Record,
    plan: &StreamPlan,
    time: &TimeContext,
) -> Result<TypedRecord, PipelineError> {
    let key = record_key(record, plan);
    Ok(transform::transform(
        key,
        |f| record.get(f),
        &plan.columns,
        time,
    )?)
}

pub(super) fn record_key(record: &Record, plan: &StreamPlan) -> String {
    match plan.kind {
        StreamKind::Balances => [
            "ACCOUNTNO",
            "PERIOD",
            "BOOKID",
            "CURRENCY",
            "DEPARTMENTID",
            "LOCATIONID",
        ]
        .iter()
        .map(|f| record.get(f).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("|"),
        _ => record.get("RECORDNO").unwrap_or("").trim().to_string(),
    }
}

/// Keys a pull has seen: RECORDNOs (the usual key) in a compressed bitmap, ~130 KB for a million
/// keys, anything else in a set. No times are kept here: a record read a second time is rare (it
/// changed during the read) and is compared with the version staged, which the mirror holds
/// (`VersionCheck`).
#[derive(Default)]
pub(super) struct Seen {
    pub(super) numbers: roaring::RoaringBitmap,
    pub(super) other: HashSet<String>,
}

impl Seen {
    /// Records the key; false when it was seen before.
    pub(super) fn insert(&mut self, key: &str) -> bool {
        match canonical_number(key).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => self.numbers.insert(n),
            None => self.other.insert(key.to_string()),
        }
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        match canonical_number(key).and_then(|n| u32::try_from(n).ok()) {
            Some(n) => self.numbers.contains(n),
            None => self.other.contains(key),
        }
    }
}

/// One page's decision on which records to stage: a version older than one already staged in this
/// pull (from an earlier page, or earlier in this page) is not staged over it. Pages of parallel
/// chains come in any order, so a record changed during the read can arrive as its new version
/// before its old one.
pub(super) struct VersionCheck<'p> {
    /// Newest WHENMODIFIED (Unix seconds, `i64::MIN` for never modified) of each key of the page so
    /// far: the mirror's version for a key seen in an earlier page, none yet for a new key.
    pub(super) newest: foldhash::HashMap<&'p str, i64>,
}

impl<'p> VersionCheck<'p> {
    /// Takes the page's keys, marks them seen, and finds the versions this pull admitted before of
    /// those seen in an earlier page (usually none): in `gathered`, the records of earlier pages
    /// not staged yet, else in the mirror.
    pub(super) async fn new(
        store: &dyn ml_store::Store,
        connection: &str,
        stream: &str,
        seen: &mut Seen,
        gathered: &[StagedRecord],
        keys: impl ExactSizeIterator<Item = &'p str>,
    ) -> Result<VersionCheck<'p>, PipelineError> {
        // Every key of the page starts as "never modified", older than any version: a key new to the
        // pull keeps that, one seen in an earlier page takes its admitted version below.
        let mut newest = foldhash::HashMap::with_capacity(keys.len());
        let mut again: Vec<&'p str> = Vec::new();
        for key in keys {
            if let std::collections::hash_map::Entry::Vacant(slot) = newest.entry(key) {
                slot.insert(i64::MIN);
                if !seen.insert(key) {
                    again.push(key);
                }
            }
        }
        if again.is_empty() {
            return Ok(VersionCheck { newest });
        }
        // A version gathered and not staged yet was admitted over the mirror's: it is the newer one.
        let mut in_batch = foldhash::HashSet::new();
        for r in gathered {
            if let Some(slot) = newest.get_mut(r.key.as_str()) {
                *slot = (*slot).max(staged_version_time(r.when_modified.as_deref()));
                in_batch.insert(r.key.as_str());
            }
        }
        let ask: Vec<String> = again
            .iter()
            .filter(|k| !in_batch.contains(**k))
            .map(|k| k.to_string())
            .collect();
        if !ask.is_empty() {
            for (key, when_modified) in store.mirror_versions(connection, stream, &ask).await? {
                if let Some(slot) = newest.get_mut(key.as_str()) {
                    *slot = staged_version_time(when_modified.as_deref());
                }
            }
        }
        Ok(VersionCheck { newest })
    }

    /// Whether this version of `key` may be staged: not when a strictly newer one came before.
    pub(super) fn admit(&mut self, key: &'p str, when_modified: Option<&str>) -> bool {
        let wm = version_time(when_modified.and_then(transform::parse_intacct_datetime));
        let slot = self.newest.entry(key).or_insert(i64::MIN);
        if *slot > wm {
            return false;
        }
        *slot = wm;
        true
    }
}

/// A version's WHENMODIFIED as a number to compare: never modified (none) is older than any
/// modification.
pub(super) fn version_time(when_modified: Option<NaiveDateTime>) -> i64 {
    when_modified.map_or(i64::MIN, |t| t.and_utc().timestamp())
}

/// [`version_time`] of a staged record's WHENMODIFIED, in the store's ISO form.
pub(super) fn staged_version_time(when_modified: Option<&str>) -> i64 {
    version_time(when_modified.and_then(transform::parse_iso_seconds))
}

/// The number a key spells when it is one canonically (so that number and text are the same key).
/// Checked on the text rather than by printing the number back: this runs for every record of a
/// full pull, and the round trip allocated a string each time.
pub(super) fn canonical_number(key: &str) -> Option<i64> {
    let n: i64 = key.parse().ok()?;
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = !digits.starts_with('+')
        && if digits.starts_with('0') {
            key == "0"
        } else {
            true
        };
    canonical.then_some(n)
}

/// Where a stream's columns are in the records of a page, resolved once per record shape.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) shape: Option<RecordShape>,
    pub(super) columns: Vec<Option<usize>>,
    pub(super) when_modified: Option<usize>,
    pub(super) recordno: Option<usize>,
}

/// One record's texts in column order.
pub(super) struct Texts<'r> {
    pub(super) key: std::borrow::Cow<'r, str>,
    pub(super) columns: Vec<&'r str>,
    pub(super) when_modified: Option<&'r str>,
}

impl Fields {
    pub(super) fn texts<'r>(&mut self, record: &'r Record, plan: &StreamPlan) -> Texts<'r> {
        if !self.shape.as_ref().is_some_and(|s| s.fits(record)) {
            let shape = record.shape();
            self.columns = plan
                .columns
                .iter()
                .map(|c| shape.position(&c.field))
                .collect();
            self.when_modified = shape.position("WHENMODIFIED");
            self.recordno = shape.position("RECORDNO");
            self.shape = Some(shape);
        }
        let at = |i: Option<usize>| i.and_then(|i| record.value_at(i));
        Texts {
            key: match plan.kind {
                StreamKind::Balances => record_key(record, plan).into(),
                _ => at(self.recordno).unwrap_or("").trim().into(),
            },
            columns: self.columns.iter().map(|i| at(*i).unwrap_or("")).collect(),
            when_modified: at(self.when_modified),
        }
    }
}

pub(super) fn staged_record(
    encoder: &RowEncoder,
    typed: TypedRecord,
) -> Result<StagedRecord, PipelineError> {
    let encoded = encoder.encode(&typed.values).map_err(|e| {
        let hint = match &e {
            ml_powerbi::ValueError::DecimalScale { column, .. } => format!(
                " (set column_types = {{ {column} = \"Double\" }} on this stream to keep every decimal)"
            ),
            _ => String::new(),
        };
        PipelineError::Other(format!("record {}: cannot be encoded for Power BI: {e}{hint}", typed.key))
    })?;
    if !encoded.truncated.is_empty() {
        tracing::warn!(
            record = %typed.key,
            columns = ?encoded.truncated,
            "values longer than Power BI's 4,000 characters were truncated"
        );
    }
    Ok(StagedRecord {
        key: typed.key,
        when_modified: typed
            .when_modified
            .as_ref()
            .map(transform::format_iso_seconds),
        source_hash: typed.source_hash,
        row_json: encoded.json,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use ml_store::Store as _;
    use ml_store::{StageMode, StagePage};

    #[test]
    fn a_key_is_a_number_only_when_it_spells_one_canonically() {
        for (key, want) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-0", None),
            ("042", None),
            ("-042", None),
            ("00", None),
            ("+5", None),
            (" 5", None),
            ("5 ", None),
            ("", None),
            ("V-1", None),
            ("9223372036854775808", None),
        ] {
            assert_eq!(canonical_number(key), want, "key {key:?}");
            // The same answer as printing the number back.
            let printed = key.parse::<i64>().ok().filter(|n| n.to_string() == key);
            assert_eq!(canonical_number(key), printed, "key {key:?}");
        }
    }

    #[test]
    fn seen_keys_are_numbers_when_canonical_and_text_otherwise() {
        let mut seen = Seen::default();
        assert!(seen.insert("42"));
        assert!(!seen.insert("42"));
        assert!(seen.insert("V-1"));
        // Beyond 32 bits, negative, or not canonical: kept as text, exactly.
        assert!(seen.insert("9876543210"));
        assert!(seen.insert("-5"));
        assert!(seen.insert("042"));
        assert!(!seen.insert("9876543210"));
        for key in ["42", "V-1", "9876543210", "-5", "042"] {
            assert!(seen.contains(key), "{key}");
        }
        // "042" is another key than "42", and "43" was never seen.
        assert!(!seen.contains("43") && !seen.contains("0042"));
        assert!(seen.insert("4294967295") && seen.contains("4294967295"));
    }

    /// A record as the pipeline stages it: its Intacct WHENMODIFIED in the store's ISO form.
    fn store_record(key: &str, when_modified: Option<&str>) -> StagedRecord {
        StagedRecord {
            key: key.to_string(),
            when_modified: when_modified
                .and_then(transform::parse_intacct_datetime)
                .map(|t| transform::format_iso_seconds(&t)),
            source_hash: format!("h-{key}-{when_modified:?}"),
            row_json: "{}".to_string(),
        }
    }

    /// A SQLite store in a temp dir (kept alive by the returned guard) with connection "acme" and
    /// a run of it.
    async fn store_with_run() -> (tempfile::TempDir, ml_store::SqliteStore, ml_store::RunId) {
        let dir = tempfile::tempdir().unwrap();
        let store = ml_store::SqliteStore::open(
            &dir.path().join("state.db"),
            std::sync::Arc::new(ml_store::SystemClock),
        )
        .await
        .unwrap();
        store.ensure_connection("acme").await.unwrap();
        let run = store.begin_run("acme", "test").await.unwrap();
        (dir, store, run)
    }

    /// Stages `records` of VENDOR (replace mode) as the pipeline does once it admitted them.
    async fn stage_admitted(
        store: &ml_store::SqliteStore,
        run: ml_store::RunId,
        records: Vec<StagedRecord>,
    ) {
        store
            .stage_page(StagePage {
                connection: "acme".into(),
                run,
                stream: "VENDOR".into(),
                mode: StageMode::Replace,
                records,
                deletes: vec![],
                failed: vec![],
                pending_cursor: None,
            })
            .await
            .unwrap();
    }

    /// A record read twice during one pull (it changed while the chains ran): a version older than
    /// one staged before, in an earlier page (the mirror's) or earlier in the same page, is refused.
    #[tokio::test]
    async fn an_older_version_arriving_after_a_newer_one_is_refused() {
        let (_dir, store, run) = store_with_run().await;
        let mut seen = Seen::default();

        // Page 1: 42 in its new version (read first by one chain), 7 never modified, 9 as it was.
        let page1 = ["42", "7", "9"];
        let mut check =
            VersionCheck::new(&store, "acme", "VENDOR", &mut seen, &[], page1.into_iter())
                .await
                .unwrap();
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("7", None));
        assert!(check.admit("9", Some("01/02/2017 08:00:00")));
        // The pipeline stages what it admitted.
        stage_admitted(
            &store,
            run,
            vec![
                store_record("42", Some("07/24/2017 15:19:46")),
                store_record("7", None),
                store_record("9", Some("01/02/2017 08:00:00")),
            ],
        )
        .await;

        // Page 2, from the other chain: 42 in its old version, then twice again; 7 now modified;
        // 9 never modified (older than any modification); 11 new, twice, the older one last.
        let page2 = ["42", "7", "9", "11", "11", "42", "42"];
        let mut check =
            VersionCheck::new(&store, "acme", "VENDOR", &mut seen, &[], page2.into_iter())
                .await
                .unwrap();
        assert!(
            !check.admit("42", Some("07/24/2017 15:19:45")),
            "older than the mirror's"
        );
        assert!(
            check.admit("7", Some("07/24/2017 15:19:46")),
            "a modification is newer"
        );
        assert!(
            !check.admit("9", None),
            "never modified is older than a modification"
        );
        assert!(check.admit("11", Some("03/01/2017 00:00:00")));
        assert!(
            !check.admit("11", Some("02/01/2017 00:00:00")),
            "older than earlier in the page"
        );
        // The same version again is harmless (it stages as unchanged); a newer one goes.
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("42", Some("07/25/2017 00:00:00")));
        for key in ["42", "7", "9", "11"] {
            assert!(seen.contains(key));
        }
        assert!(!seen.contains("12"));
        store.close().await;
    }

    /// Pages gathered into one staging batch are not in the mirror yet: a record read again in a
    /// later page of the same batch is compared with the gathered version, not the mirror's.
    #[tokio::test]
    async fn an_older_version_is_refused_against_a_gathered_page_not_yet_staged() {
        let (_dir, store, run) = store_with_run().await;
        // The mirror holds 42 as it was before the pull.
        stage_admitted(
            &store,
            run,
            vec![store_record("42", Some("01/01/2017 00:00:00"))],
        )
        .await;
        let mut seen = Seen::default();

        // Page 1 admits 42's new version and 7; both wait in the batch, unstaged.
        let mut check = VersionCheck::new(
            &store,
            "acme",
            "VENDOR",
            &mut seen,
            &[],
            ["42", "7"].into_iter(),
        )
        .await
        .unwrap();
        assert!(check.admit("42", Some("07/24/2017 15:19:46")));
        assert!(check.admit("7", Some("03/01/2017 00:00:00")));
        let gathered = vec![
            store_record("42", Some("07/24/2017 15:19:46")),
            store_record("7", Some("03/01/2017 00:00:00")),
        ];

        // Page 2 of the same batch: 42 in a version newer than the mirror's but older than the
        // gathered one is refused; 7 in the same version again goes (it stages as unchanged), a
        // newer 42 goes.
        let mut check = VersionCheck::new(
            &store,
            "acme",
            "VENDOR",
            &mut seen,
            &gathered,
            ["42", "7", "8"].into_iter(),
        )
        .await
        .unwrap();
        assert!(
            !check.admit("42", Some("06/01/2017 00:00:00")),
            "older than the gathered version, though newer than the mirror's"
        );
        assert!(check.admit("7", Some("03/01/2017 00:00:00")));
        assert!(check.admit("8", None), "a key new to the pull");
        assert!(check.admit("42", Some("07/25/2017 00:00:00")));
        store.close().await;
    }
}
