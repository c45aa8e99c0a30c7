//! Master key rotation: every credential re-encrypted under the new key in one transaction.

use crate::crypto::{CryptoError, MasterKey, credential_name, open, seal};
use crate::{Store, StoreError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Credentials re-encrypted.
    pub rotated: usize,
    /// Credentials already under the new key (an earlier rotation was interrupted after commit).
    pub already_new: usize,
}

/// Re-encrypts every credential from `old` to `new`. All blobs are opened and re-sealed in memory
/// first and written in one transaction, so a failure (wrong key, a blob under a third key) changes
/// nothing.
pub async fn rotate_key(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<RotateReport, StoreError> {
    let (old_fp, new_fp) = (old.fingerprint(), new.fingerprint());
    let mut report = RotateReport::default();
    let mut out = Vec::new();
    for mut c in store.list_credentials().await? {
        let name = credential_name(&c.connection, &c.kind);
        if c.sealed.key_fingerprint == new_fp {
            report.already_new += 1;
            continue;
        }
        if c.sealed.key_fingerprint != old_fp {
            return Err(CryptoError::MixedKeys {
                name,
                found: c.sealed.key_fingerprint.clone(),
                old: old_fp,
                new: new_fp,
            }
            .into());
        }
        let plain = open(old, &name, &c.sealed)?;
        c.sealed = seal(new, &name, &plain)?;
        out.push(c);
    }
    report.rotated = out.len();
    if !out.is_empty() {
        store.replace_credentials(out).await?;
    }
    Ok(report)
}
