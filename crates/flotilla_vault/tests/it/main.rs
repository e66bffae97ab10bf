//! Integration tests of flotilla_vault; every database test runs on SQLite and Postgres.

mod db;
mod keyring;
mod leak;
mod rotation;
mod tamper;
mod vault;

use flotilla_vault::{
    CredentialMeta, CredentialSource, Database, Keyring, NewCredential, Purpose, Vault,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// A high-entropy fake key that does not look like a real Instantly key.
pub fn test_key() -> SecretString {
    SecretString::from(format!("flotilla-test-key-{}", Uuid::new_v4().simple()))
}

/// Builds a keyring from `id:base64` entries (first is primary).
pub fn ring(entries: &[&SecretString]) -> Keyring {
    let spec = entries
        .iter()
        .map(|e| e.expose_secret())
        .collect::<Vec<_>>()
        .join(",");
    Keyring::parse(&spec, "test").unwrap()
}

/// A vault over `db` with one fresh KEK `k1`.
pub async fn vault(db: &Database) -> Vault {
    Vault::open(db.clone(), Keyring::generate("k1"))
        .await
        .unwrap()
}

/// Stores a direct access credential in its own transaction.
pub async fn store_direct(
    vault: &Vault,
    ws: Uuid,
    instantly_ws: &str,
    key: &SecretString,
) -> CredentialMeta {
    store(
        vault,
        NewCredential {
            workspace_id: ws,
            instantly_workspace_id: instantly_ws,
            purpose: Purpose::Access,
            source: CredentialSource::Direct(key),
        },
    )
    .await
    .unwrap()
}

/// Stores any credential in its own transaction.
pub async fn store(
    vault: &Vault,
    new: NewCredential<'_>,
) -> flotilla_vault::Result<CredentialMeta> {
    let mut tx = vault.db().begin_write().await?;
    let meta = vault.store(&mut tx, new).await?;
    tx.commit().await?;
    Ok(meta)
}
