//! Values going into and out of the vault.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

/// What a credential is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// The key Flotilla itself uses for the workspace. Exactly one per workspace.
    Access,
    /// A key Flotilla created for someone else through `api_keys.create`; several per
    /// workspace; never used as Flotilla's access key.
    Issued {
        /// Instantly's id of the created key.
        instantly_key_id: String,
    },
}

impl Purpose {
    /// `"access"` or `"issued"` (the stored value).
    pub fn as_str(&self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Issued { .. } => "issued",
        }
    }
}

/// How Flotilla reaches a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialMode {
    /// The workspace's own API key, stored encrypted.
    Direct,
    /// An agency admin workspace's key acting through `x-as-workspace`; nothing secret stored.
    Delegated,
}

impl CredentialMode {
    /// `"direct"` or `"delegated"` (the stored value).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialMode::Direct => "direct",
            CredentialMode::Delegated => "delegated",
        }
    }
}

/// Where the secret of a new credential comes from.
#[derive(Debug, Clone, Copy)]
pub enum CredentialSource<'a> {
    /// Store this key (encrypted).
    Direct(&'a SecretString),
    /// Act through this admin workspace's access key (it must be a direct credential).
    Delegated {
        /// Flotilla's id of the admin workspace.
        admin_workspace_id: Uuid,
    },
}

/// A credential to store.
#[derive(Debug, Clone)]
pub struct NewCredential<'a> {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// The Instantly workspace the credential is bound to.
    pub instantly_workspace_id: &'a str,
    /// Access (one per workspace) or issued.
    pub purpose: Purpose,
    /// The key, or the admin workspace to delegate through (access credentials only).
    pub source: CredentialSource<'a>,
}

/// A decrypted access credential, ready to build an Instantly client. `Debug` redacts the
/// secret; no `Serialize`.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The API key to send (the admin's key for a delegated workspace).
    pub secret: SecretString,
    /// `x-as-workspace` value: the sub workspace's Instantly id when delegated.
    pub as_workspace: Option<String>,
    /// The Instantly workspace this credential acts on.
    pub instantly_workspace_id: String,
    /// Flotilla's id of the admin workspace whose key is used, when delegated.
    pub admin_workspace_id: Option<Uuid>,
    /// Fingerprint of the key in `secret`.
    pub fingerprint: String,
    /// Instantly's id of the key in `secret`, when known.
    pub instantly_key_id: Option<String>,
}

/// Everything about a stored credential except the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialMeta {
    /// The credential row id (uuid v7).
    pub id: Uuid,
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// The Instantly workspace the credential is bound to.
    pub instantly_workspace_id: String,
    /// Direct or delegated.
    pub mode: CredentialMode,
    /// Access or issued.
    pub purpose: Purpose,
    /// Flotilla's id of the admin workspace, for delegated credentials.
    pub admin_workspace_id: Option<Uuid>,
    /// Instantly's id of the stored key, when known.
    pub instantly_key_id: Option<String>,
    /// `sha256:` + 16 hex chars of the key; `None` for delegated rows (they store no key).
    pub fingerprint: Option<String>,
    /// The KEK wrapping the data key; `None` for delegated rows.
    pub kek_id: Option<String>,
    /// When stored.
    pub created_at: DateTime<Utc>,
    /// When last verified live against Instantly.
    pub last_verified_at: Option<DateTime<Utc>>,
}

/// Result of [`crate::Vault::rotate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// The KEK every moved row is now wrapped with.
    pub primary_kek_id: String,
    /// Rows re-wrapped by this call.
    pub rotated: u64,
    /// Transactions committed by this call.
    pub batches: u64,
    /// Rows still wrapped by another KEK afterwards (non-zero only when stopped early).
    pub remaining: u64,
}

/// Result of [`crate::Vault::status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultStatus {
    /// The keyring's primary KEK id.
    pub primary_kek_id: String,
    /// Number of rows wrapped by each KEK id.
    pub rows_per_kek: BTreeMap<String, u64>,
    /// Delegated rows (no key material, no KEK).
    pub delegated_rows: u64,
    /// Rows not yet on the primary KEK.
    pub pending_rotation: u64,
}
