//! Errors of the store. Messages say what went wrong and what to do; they never carry a secret
//! (credential plaintext never reaches this layer, and database URLs are shown without password).

use crate::crypto::CryptoError;

/// Everything a [`crate::Store`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state store at {location}: {source}. Check that the path is writable or the \
         database URL is reachable and the user may create tables"
    )]
    Open {
        /// Path or URL with any password removed.
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the state store {location} is damaged ({detail}). Restore your last backup with \
         `ml-connector store restore FILE`, or move the file aside to start afresh (the next sync \
         then reads everything from Intacct again and rebuilds the tables; the audit trail starts anew)"
    )]
    Damaged { location: String, detail: String },
    #[error(
        "applying the state store migrations failed: {0}. The database may have been written by a newer \
         ml-connector, or edited by hand; restore it from a backup or point the connector at a new database"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "state store query failed: {0}. Check that the database is reachable and has free space, then retry"
    )]
    Db(#[from] sqlx::Error),
    #[error(
        "unknown connection '{0}' in the state store; it is created on the first run of that connection"
    )]
    UnknownConnection(String),
    #[error("unknown run {0} in the state store; list runs with `ml-connector runs`")]
    UnknownRun(i64),
    #[error(
        "the state store holds an unreadable value ({0}); it may have been edited by hand. Run \
         `ml-connector audit verify` and restore the database from a backup if needed"
    )]
    Corrupt(String),
    #[error("invalid request to the state store: {0}")]
    Invalid(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("cannot write the audit export: {0}. Check the destination path and free space")]
    Io(#[from] std::io::Error),
}

/// Removes the password from a `postgres://user:password@host/db` URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}://{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn password_is_removed_from_urls() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("/tmp/x.db"), "/tmp/x.db");
    }
}
