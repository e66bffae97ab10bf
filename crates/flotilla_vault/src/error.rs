//! The vault's error type.

use uuid::Uuid;

/// Which AEAD step failed an integrity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Unwrapping the data key with the KEK failed: the wrapped key was altered, copied from
    /// another row, or the KEK configured under this id has different key bytes.
    UnwrapDataKey,
    /// Decrypting the credential with its data key failed: the ciphertext was altered or
    /// copied from another row.
    DecryptCredential,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::UnwrapDataKey => "unwrapping the data key",
            Stage::DecryptCredential => "decrypting the credential",
        })
    }
}

/// Every way a vault or database call can fail. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database call failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Running the migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is not `sqlite:` or `postgres:`.
    #[error("unsupported database url scheme (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// Key configuration (a variable or a key file) is malformed; `source_name` names it.
    #[error("{source_name}: {message}")]
    Config {
        /// The variable or file the bad value came from, e.g. `FLOTILLA_VAULT_KEYS`.
        source_name: String,
        /// What is wrong (never the key bytes).
        message: String,
    },
    /// Reading or writing a key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Stored credentials need KEKs that the keyring does not have. Nothing was changed.
    #[error(
        "vault rows are wrapped by KEK id(s) {} that are not configured (configured: {}); \
         add them to FLOTILLA_VAULT_KEYS / FLOTILLA_VAULT_KEY_FILE",
        missing.join(", "), configured.join(", ")
    )]
    MissingKek {
        /// KEK ids used by stored rows but absent from the keyring.
        missing: Vec<String>,
        /// KEK ids the keyring has.
        configured: Vec<String>,
    },
    /// A KEK id is configured with key bytes that differ from the ones it was first used with.
    #[error(
        "KEK id {kek_id} is configured with different key bytes than the vault was written with"
    )]
    KekMismatch {
        /// The KEK id whose check value did not verify.
        kek_id: String,
    },
    /// A stored credential failed its AEAD integrity check (tampered, copied between rows, or
    /// wrong key bytes for its KEK id).
    #[error("credential {credential_id} failed its integrity check while {stage}")]
    Tampered {
        /// The credential row.
        credential_id: Uuid,
        /// The step that failed.
        stage: Stage,
    },
    /// A credential with the same fingerprint is already stored, for `workspace_id`.
    #[error("this key is already stored (workspace {workspace_id})")]
    Duplicate {
        /// The workspace that already holds the key.
        workspace_id: Uuid,
    },
    /// The workspace already has its access credential (use `replace_access`).
    #[error("workspace {workspace_id} already has an access credential")]
    AccessExists {
        /// The workspace.
        workspace_id: Uuid,
    },
    /// The workspace has no access credential.
    #[error("workspace {workspace_id} has no credential")]
    NotFound {
        /// The workspace.
        workspace_id: Uuid,
    },
    /// A delegated credential names an admin workspace that cannot act for it.
    #[error("admin workspace {admin_workspace_id} cannot be used for delegation: {reason}")]
    InvalidAdmin {
        /// The admin workspace named.
        admin_workspace_id: Uuid,
        /// Why not.
        reason: &'static str,
    },
    /// The request itself is invalid (e.g. an issued credential in delegated mode).
    #[error("invalid credential: {0}")]
    Invalid(&'static str),
    /// A stored row does not have the shape the vault writes.
    #[error("corrupt vault row {row}: {detail}")]
    Corrupt {
        /// The row id (or workspace id) concerned.
        row: String,
        /// What is wrong.
        detail: String,
    },
}

/// `Result` with the vault's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(source_name: &str, message: impl Into<String>) -> Error {
        Error::Config {
            source_name: source_name.to_owned(),
            message: message.into(),
        }
    }

    /// True when the error is a unique-constraint violation in the database.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
