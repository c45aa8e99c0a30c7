//! The audit chain: canonical encoding, hashing and verification. Pure; shared by both back ends.
//!
//! Each connection has its own chain. Entry `seq = n` stores `prev_hash` (the hash of entry `n-1`,
//! or of the pruning anchor, or 32 zero bytes for the first) and
//! `hash = SHA-256(prev_hash || canonical(fields))`. The canonical encoding is length-prefixed and
//! covers every field including `seq`, so an edited field, a removed entry (gap / prev_hash
//! mismatch) and two entries swapped in place all break the chain. The head (`last_seq`,
//! `last_hash`) is stored separately so that truncating the newest entries is detected too.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{AuditAction, AuditEntry, RunId, ts};

/// Hash of "no previous entry".
pub const GENESIS: [u8; 32] = [0u8; 32];

/// An entry before it is chained (no seq, no hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    pub run: Option<RunId>,
    pub stream: Option<String>,
    pub record_key: Option<String>,
    pub when_modified: Option<String>,
    pub source_hash: Option<String>,
    pub action: AuditAction,
    pub row_json: Option<String>,
    pub ref_seq: Option<i64>,
    pub batch_id: Option<String>,
    pub request_id: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub detail: Option<String>,
}

impl NewEntry {
    pub fn new(action: AuditAction) -> Self {
        NewEntry {
            run: None,
            stream: None,
            record_key: None,
            when_modified: None,
            source_hash: None,
            action,
            row_json: None,
            ref_seq: None,
            batch_id: None,
            request_id: None,
            outcome: None,
            error: None,
            detail: None,
        }
    }
}

/// An entry with its place in the chain, ready to insert.
#[derive(Clone, Debug)]
pub struct ChainedEntry {
    pub seq: i64,
    pub created_at: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub entry: NewEntry,
}

/// The newest entry of a chain (or the anchor, or genesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: GENESIS,
    };

    /// Appends `entry`, advancing the head.
    pub fn chain(&mut self, connection: &str, created_at: &str, entry: NewEntry) -> ChainedEntry {
        let seq = self.seq + 1;
        let hash = entry_hash(&self.hash, connection, seq, created_at, &entry);
        let out = ChainedEntry {
            seq,
            created_at: created_at.to_string(),
            prev_hash: self.hash,
            hash,
            entry,
        };
        self.seq = seq;
        self.hash = hash;
        out
    }
}

struct Enc(Sha256);

impl Enc {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_be_bytes());
        self.0.update(b);
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.update([0u8]),
            Some(s) => {
                self.0.update([1u8]);
                self.bytes(s.as_bytes());
            }
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.0.update([0u8]),
            Some(v) => {
                self.0.update([1u8]);
                self.0.update(v.to_be_bytes());
            }
        }
    }
}

/// `SHA-256(prev || "mlc-audit-v1" || fields...)` with every field length-prefixed and optional
/// fields tagged, so no two different entries share an encoding.
pub fn entry_hash(
    prev: &[u8; 32],
    connection: &str,
    seq: i64,
    created_at: &str,
    e: &NewEntry,
) -> [u8; 32] {
    let mut h = Enc(Sha256::new());
    h.0.update(prev);
    h.bytes(b"mlc-audit-v1");
    h.bytes(connection.as_bytes());
    h.0.update(seq.to_be_bytes());
    h.bytes(created_at.as_bytes());
    h.opt_i64(e.run.map(|r| r.0));
    h.opt_str(e.stream.as_deref());
    h.opt_str(e.record_key.as_deref());
    h.opt_str(e.when_modified.as_deref());
    h.opt_str(e.source_hash.as_deref());
    h.bytes(e.action.as_str().as_bytes());
    h.opt_str(e.row_json.as_deref());
    h.opt_i64(e.ref_seq);
    h.opt_str(e.batch_id.as_deref());
    h.opt_str(e.request_id.as_deref());
    h.opt_str(e.outcome.as_deref());
    h.opt_str(e.error.as_deref());
    h.opt_str(e.detail.as_deref());
    h.0.finalize().into()
}

/// The records a staged page found unchanged, summed up for the page's one `unchanged` entry
/// instead of an entry each: their count, their first and last keys, and a SHA-256 digest of their
/// `(key, source hash)` pairs in key order (`SHA-256("mlc-unchanged-v1" || pairs...)`, each part
/// length-prefixed), so that the set of records a run found unchanged is fixed in the chain. Their
/// rows are already in the trail, in the entries that staged them.
pub struct UnchangedDigest {
    hasher: Sha256,
    count: u64,
}

impl Default for UnchangedDigest {
    fn default() -> Self {
        let mut hasher = Sha256::new();
        hasher.update((16u64).to_be_bytes());
        hasher.update(b"mlc-unchanged-v1");
        UnchangedDigest { hasher, count: 0 }
    }
}

impl UnchangedDigest {
    /// Adds a record; records are added in key order (the staged page's order).
    pub fn add(&mut self, key: &str, source_hash: &str) {
        for part in [key, source_hash] {
            self.hasher.update((part.len() as u64).to_be_bytes());
            self.hasher.update(part.as_bytes());
        }
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The summary entry's `detail`: `{"count":…,"first_key":…,"last_key":…,"digest":"<hex>"}`.
    pub fn detail(self, first_key: &str, last_key: &str) -> String {
        serde_json::json!({
            "count": self.count,
            "first_key": first_key,
            "last_key": last_key,
            "digest": hex::encode(self.hasher.finalize()),
        })
        .to_string()
    }
}

/// Raw stored form of an entry as read back for verification.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub seq: i64,
    pub created_at: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub entry: NewEntry,
}

/// Walks a chain in seq order and reports the first break.
pub struct Verifier {
    connection: String,
    expected: ChainHead,
    checked: u64,
}

impl Verifier {
    /// Starts after `anchor` (the last pruned entry) or at genesis.
    pub fn new(connection: &str, anchor: Option<ChainHead>) -> Self {
        Verifier {
            connection: connection.to_string(),
            expected: anchor.unwrap_or(ChainHead::GENESIS),
            checked: 0,
        }
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The last entry verified so far (the anchor before any).
    pub fn head(&self) -> ChainHead {
        self.expected
    }

    /// Checks the next entry; `Err((seq, reason))` on the first break.
    pub fn check(&mut self, s: &StoredEntry) -> Result<(), (i64, String)> {
        let want_seq = self.expected.seq + 1;
        if s.seq != want_seq {
            return Err((
                want_seq,
                format!(
                    "entry {want_seq} is missing (next stored entry is {}): entries were deleted",
                    s.seq
                ),
            ));
        }
        if s.prev_hash.as_slice() != self.expected.hash {
            return Err((
                s.seq,
                "prev_hash does not match the previous entry's hash: entries were removed, reordered or replaced"
                    .into(),
            ));
        }
        let h = entry_hash(
            &self.expected.hash,
            &self.connection,
            s.seq,
            &s.created_at,
            &s.entry,
        );
        if s.hash.as_slice() != h {
            return Err((
                s.seq,
                "content does not match its hash: the entry was edited".into(),
            ));
        }
        self.expected = ChainHead {
            seq: s.seq,
            hash: h,
        };
        self.checked += 1;
        Ok(())
    }

    /// Compares the end of the walk with the stored head (detects removed newest entries).
    pub fn finish(&self, head: ChainHead) -> Result<(), (i64, String)> {
        if head.seq != self.expected.seq {
            return Err((
                self.expected.seq + 1,
                format!(
                    "the chain ends at entry {} but the head says {}: the newest entries were deleted",
                    self.expected.seq, head.seq
                ),
            ));
        }
        if head.hash != self.expected.hash {
            return Err((
                head.seq,
                "the last entry's hash differs from the recorded head".into(),
            ));
        }
        Ok(())
    }
}

/// Builds the public form of a chained entry.
pub fn to_public(
    id: i64,
    connection: &str,
    s: StoredEntry,
) -> Result<AuditEntry, crate::StoreError> {
    let created_at: DateTime<Utc> = crate::model::parse_ts(&s.created_at)?;
    Ok(AuditEntry {
        id,
        connection: connection.to_string(),
        seq: s.seq,
        run: s.entry.run,
        stream: s.entry.stream,
        record_key: s.entry.record_key,
        when_modified: s.entry.when_modified,
        source_hash: s.entry.source_hash,
        action: s.entry.action,
        row_json: s.entry.row_json,
        ref_seq: s.entry.ref_seq,
        batch_id: s.entry.batch_id,
        request_id: s.entry.request_id,
        outcome: s.entry.outcome,
        error: s.entry.error,
        detail: s.entry.detail,
        created_at,
        prev_hash: hex::encode(&s.prev_hash),
        hash: hex::encode(&s.hash),
    })
}

/// Current time in the stored text form.
pub fn now_text(now: DateTime<Utc>) -> String {
    ts(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<StoredEntry> {
        let mut head = ChainHead::GENESIS;
        (0..n)
            .map(|i| {
                let mut e = NewEntry::new(AuditAction::Inserted);
                e.record_key = Some(format!("k{i}"));
                e.row_json = Some(format!("{{\"n\":{i}}}"));
                let c = head.chain("acme", "2026-01-01T00:00:00.000000Z", e);
                StoredEntry {
                    seq: c.seq,
                    created_at: c.created_at,
                    prev_hash: c.prev_hash.to_vec(),
                    hash: c.hash.to_vec(),
                    entry: c.entry,
                }
            })
            .collect()
    }

    fn verify(es: &[StoredEntry]) -> Result<(), (i64, String)> {
        let mut v = Verifier::new("acme", None);
        for e in es {
            v.check(e)?;
        }
        Ok(())
    }

    #[test]
    fn intact_chain_verifies() {
        assert!(verify(&entries(5)).is_ok());
    }

    #[test]
    fn edit_delete_swap_are_detected() {
        let mut es = entries(5);
        es[2].entry.row_json = Some("{\"n\":99}".into());
        assert_eq!(verify(&es).unwrap_err().0, 3);

        let mut es = entries(5);
        es.remove(1);
        assert_eq!(verify(&es).unwrap_err().0, 2);

        let mut es = entries(5);
        let (a, b) = (es[1].entry.clone(), es[2].entry.clone());
        es[1].entry = b;
        es[2].entry = a;
        assert_eq!(verify(&es).unwrap_err().0, 2);
    }

    #[test]
    fn encoding_is_unambiguous() {
        let mut a = NewEntry::new(AuditAction::Inserted);
        a.stream = Some("ab".into());
        a.record_key = Some("c".into());
        let mut b = NewEntry::new(AuditAction::Inserted);
        b.stream = Some("a".into());
        b.record_key = Some("bc".into());
        assert_ne!(
            entry_hash(&GENESIS, "x", 1, "t", &a),
            entry_hash(&GENESIS, "x", 1, "t", &b)
        );
        let mut c = NewEntry::new(AuditAction::Inserted);
        c.stream = Some(String::new());
        let d = NewEntry::new(AuditAction::Inserted);
        assert_ne!(
            entry_hash(&GENESIS, "x", 1, "t", &c),
            entry_hash(&GENESIS, "x", 1, "t", &d)
        );
    }

    #[test]
    fn unchanged_digest_covers_each_key_and_hash_in_order() {
        let digest = |pairs: &[(&str, &str)]| {
            let mut d = UnchangedDigest::default();
            for (k, h) in pairs {
                d.add(k, h);
            }
            assert_eq!(d.count(), pairs.len() as u64);
            let v: serde_json::Value = serde_json::from_str(&d.detail("a", "z")).unwrap();
            assert_eq!(v["count"], pairs.len() as u64);
            v["digest"].as_str().unwrap().to_string()
        };
        let base = digest(&[("1", "h1"), ("2", "h2")]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, digest(&[("1", "h1"), ("2", "h2")]));
        assert_ne!(base, digest(&[("2", "h2"), ("1", "h1")]));
        assert_ne!(base, digest(&[("1", "h1"), ("2", "h3")]));
        assert_ne!(base, digest(&[("1", "h1")]));
        assert_ne!(digest(&[("1h", "1")]), digest(&[("1", "h1")]));
    }
}
