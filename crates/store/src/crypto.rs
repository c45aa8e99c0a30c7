//! Credentials at rest: XChaCha20-Poly1305 with a 32-byte master key.
//!
//! Each seal draws a fresh random 24-byte nonce (XChaCha's nonce is large enough for random nonces to
//! be safe for any realistic number of seals). The associated data is the credential's name
//! (`connection/kind`), so a blob copied to another credential's row fails to open. Every blob
//! carries the short fingerprint of the key that sealed it, so a wrong key is reported as such (with
//! both fingerprints, never the key) and key rotation can detect a store holding mixed keys.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Environment variable holding the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "ML_CONNECTOR_MASTER_KEY";

/// Errors of sealing, opening and key handling.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "credential '{name}' was encrypted with master key {sealed_with}, but the key in use is {in_use} \
         (from {source_desc}). Provide the key with fingerprint {sealed_with} (env {env} or the key file), \
         or enter the credential again with `ml-connector credentials set`"
    )]
    WrongKey {
        name: String,
        sealed_with: String,
        in_use: String,
        source_desc: String,
        env: &'static str,
    },
    #[error(
        "credential '{name}' cannot be decrypted with master key {in_use} although the fingerprints match: \
         the stored blob was altered or copied from another credential. Enter the credential again with \
         `ml-connector credentials set`"
    )]
    Corrupt { name: String, in_use: String },
    #[error(
        "the master key from {source_desc} is not valid: {why}. A master key is 32 random bytes written as \
         base64 or hex; create one with `ml-connector init` (key file) or `openssl rand -base64 32`"
    )]
    BadKey { source_desc: String, why: String },
    #[error(
        "the key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}` and retry"
    )]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error(
        "refusing to overwrite the existing key file {0}: it may be the only copy of the key that opens your \
         stored credentials. Move it away first if you really want a new key"
    )]
    KeyFileExists(PathBuf),
    #[error("cannot access the key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no master key at {path}: restore that file from your backup (stored credentials can only be \
         read with the key that sealed them), or set {env} to the key; a new installation creates one \
         with `ml-connector init --key-only` and then stores its credentials again"
    )]
    NoKey { env: &'static str, path: PathBuf },
    #[error(
        "credential '{name}' was encrypted with key {found}, which is neither the old key {old} nor the new \
         key {new}; rotation aborted and nothing was changed. Rotate with the key that opens it"
    )]
    MixedKeys {
        name: String,
        found: String,
        old: String,
        new: String,
    },
    #[error("encryption failed (internal error in the AEAD cipher)")]
    Seal,
}

/// The 32-byte key that encrypts credentials. Zeroized on drop; `Debug` shows the fingerprint only.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    source_desc: String,
}

impl MasterKey {
    /// A key from raw bytes (tests, and key material obtained elsewhere).
    pub fn from_bytes(bytes: [u8; 32], source_desc: impl Into<String>) -> Self {
        MasterKey {
            bytes: Zeroizing::new(bytes),
            source_desc: source_desc.into(),
        }
    }

    /// A new random key (not persisted).
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::fill(&mut b);
        let k = Self::from_bytes(b, "a generated key");
        b.zeroize();
        k
    }

    /// Parses base64 (standard or URL-safe, padded or not) or hex text of exactly 32 bytes.
    pub fn from_encoded(text: &str, source_desc: impl Into<String>) -> Result<Self, CryptoError> {
        let source_desc = source_desc.into();
        let t = text.trim();
        let decoded: Option<Zeroizing<Vec<u8>>> =
            if t.len() == 64 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
                hex::decode(t).ok().map(Zeroizing::new)
            } else {
                [
                    &base64::engine::general_purpose::STANDARD,
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ]
                .iter()
                .find_map(|e| e.decode(t).ok())
                .map(Zeroizing::new)
            };
        let Some(decoded) = decoded else {
            return Err(CryptoError::BadKey {
                source_desc,
                why: "it is neither base64 nor 64 hex digits".into(),
            });
        };
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKey {
                source_desc: source_desc.clone(),
                why: format!("it decodes to {} bytes, not 32", decoded.len()),
            })?;
        Ok(Self::from_bytes(bytes, source_desc))
    }

    /// The key from env [`MASTER_KEY_ENV`], if set.
    pub fn from_env() -> Result<Option<Self>, CryptoError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Self::from_encoded(&v, format!("env {MASTER_KEY_ENV}")).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Reads a key file (base64 or hex text). Refuses a file readable by group or others.
    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::KeyFileTooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Self::from_encoded(&text, format!("key file {}", path.display()))
    }

    /// Env first, then the key file; an error naming both when neither is present.
    pub fn load(key_file: &Path) -> Result<Self, CryptoError> {
        if let Some(k) = Self::from_env()? {
            return Ok(k);
        }
        if key_file.exists() {
            return Self::load_file(key_file);
        }
        Err(CryptoError::NoKey {
            env: MASTER_KEY_ENV,
            path: key_file.to_path_buf(),
        })
    }

    /// Writes a new random key to `path` with mode 0600. Never overwrites an existing file.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                CryptoError::KeyFileExists(path.to_path_buf())
            } else {
                CryptoError::KeyFileIo {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let mut key = Self::generate();
        key.source_desc = format!("key file {}", path.display());
        let text = Zeroizing::new(format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(key.bytes.as_slice())
        ));
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|source| CryptoError::KeyFileIo {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(key)
    }

    /// Short public identifier of the key: 16 hex digits of a domain-separated SHA-256.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"ml-connector master key fingerprint v1\0");
        h.update(self.bytes.as_slice());
        hex::encode(&h.finalize()[..8])
    }

    /// Where the key came from, for messages ("env ML_CONNECTOR_MASTER_KEY", "key file ...").
    pub fn source_desc(&self) -> &str {
        &self.source_desc
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.bytes.as_slice()))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("fingerprint", &self.fingerprint())
            .field("source", &self.source_desc)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

/// An encrypted credential as stored. `Debug` shows the key fingerprint and length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Fingerprint of the key that sealed it ([`MasterKey::fingerprint`]).
    pub key_fingerprint: String,
    pub nonce: [u8; 24],
    /// Ciphertext with the 16-byte Poly1305 tag appended.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_fingerprint", &self.key_fingerprint)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The name a credential is sealed under (its associated data).
pub fn credential_name(connection: &str, kind: &str) -> String {
    format!("{connection}/{kind}")
}

/// Encrypts `plaintext` for the credential called `name` (see [`credential_name`]).
pub fn seal(
    key: &MasterKey,
    name: &str,
    plaintext: &SecretString,
) -> Result<SealedSecret, CryptoError> {
    let mut nonce = [0u8; 24];
    rand::fill(&mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext.expose_secret().as_bytes(),
                aad: name.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Seal)?;
    Ok(SealedSecret {
        key_fingerprint: key.fingerprint(),
        nonce,
        ciphertext,
    })
}

/// Decrypts a credential sealed under `name`.
pub fn open(
    key: &MasterKey,
    name: &str,
    sealed: &SealedSecret,
) -> Result<SecretString, CryptoError> {
    let in_use = key.fingerprint();
    if sealed.key_fingerprint != in_use {
        return Err(CryptoError::WrongKey {
            name: name.to_string(),
            sealed_with: sealed.key_fingerprint.clone(),
            in_use,
            source_desc: key.source_desc.clone(),
            env: MASTER_KEY_ENV,
        });
    }
    let plain = key
        .cipher()
        .decrypt(
            XNonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: name.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Corrupt {
            name: name.to_string(),
            in_use: in_use.clone(),
        })?;
    let plain = Zeroizing::new(plain);
    let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Corrupt {
        name: name.to_string(),
        in_use,
    })?;
    Ok(SecretString::from(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let k = MasterKey::generate();
        let a = seal(&k, "acme/intacct", &secret("pw-123")).unwrap();
        let b = seal(&k, "acme/intacct", &secret("pw-123")).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(
            open(&k, "acme/intacct", &a).unwrap().expose_secret(),
            "pw-123"
        );
    }

    #[test]
    fn blob_moved_to_another_name_fails() {
        let k = MasterKey::generate();
        let a = seal(&k, "acme/intacct", &secret("pw")).unwrap();
        let e = open(&k, "acme/powerbi", &a).unwrap_err();
        assert!(matches!(e, CryptoError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn wrong_key_names_fingerprints_not_key() {
        let k1 = MasterKey::generate();
        let k2 = MasterKey::from_bytes([7u8; 32], "env ML_CONNECTOR_MASTER_KEY");
        let a = seal(&k1, "acme/intacct", &secret("pw")).unwrap();
        let e = open(&k2, "acme/intacct", &a).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, CryptoError::WrongKey { .. }));
        assert!(
            msg.contains(&k1.fingerprint()) && msg.contains(&k2.fingerprint()),
            "{msg}"
        );
        assert!(msg.contains("env ML_CONNECTOR_MASTER_KEY"), "{msg}");
        assert!(!msg.contains(&hex::encode([7u8; 32])));
        assert!(!msg.contains(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])));
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let k = MasterKey::generate();
        let mut a = seal(&k, "x/y", &secret("pw")).unwrap();
        a.ciphertext[0] ^= 1;
        assert!(matches!(
            open(&k, "x/y", &a),
            Err(CryptoError::Corrupt { .. })
        ));
    }

    #[test]
    fn keys_parse_from_hex_and_base64() {
        let raw = [0xABu8; 32];
        let h = MasterKey::from_encoded(&hex::encode(raw), "t").unwrap();
        let b =
            MasterKey::from_encoded(&base64::engine::general_purpose::STANDARD.encode(raw), "t")
                .unwrap();
        assert_eq!(h.fingerprint(), b.fingerprint());
        assert!(MasterKey::from_encoded("c2hvcnQ=", "t").is_err());
        assert!(MasterKey::from_encoded("not a key!", "t").is_err());
    }

    #[test]
    fn debug_redacts() {
        let k = MasterKey::from_bytes([0x42u8; 32], "t");
        let d = format!("{k:?}");
        assert!(
            !d.contains("42, 42") && !d.contains(&hex::encode([0x42u8; 32])),
            "{d}"
        );
        let s = seal(&k, "a/b", &secret("hunter2")).unwrap();
        let d = format!("{s:?}");
        assert!(d.contains(&k.fingerprint()) && !d.contains("nonce"), "{d}");
    }

    #[test]
    fn key_file_is_created_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let k = MasterKey::create_file(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(
            MasterKey::create_file(&p),
            Err(CryptoError::KeyFileExists(_))
        ));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        let loaded = MasterKey::load_file(&p).unwrap();
        assert_eq!(loaded.fingerprint(), k.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::load_file(&p),
                Err(CryptoError::KeyFileTooOpen { .. })
            ));
        }
    }
}
