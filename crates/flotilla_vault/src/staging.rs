//! Staged secrets: keys uploaded in bulk (the service's workspace import) that wait, encrypted,
//! until their row is processed. Same envelope encryption as credentials (a fresh data key per
//! row, wrapped by the primary KEK, AAD binding the row and workspace ids); a staged secret is
//! never an access credential and is deleted once its row is registered or fails.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::crypto::{self, Binding};
use crate::error::{Error, Result};
use crate::vault::Vault;

impl Vault {
    /// Encrypts and stores `secret` for the (not yet registered) workspace `workspace_id`, in the
    /// caller's transaction. Returns the key's fingerprint. One staged secret per workspace id.
    pub async fn stage_secret(
        &self,
        conn: &mut AnyConnection,
        workspace_id: Uuid,
        secret: &SecretString,
    ) -> Result<String> {
        let id = Uuid::now_v7();
        let fingerprint = Vault::fingerprint(secret);
        let kek = self.keyring().primary();
        let sealed = crypto::seal(
            kek,
            Binding {
                credential_id: id,
                workspace_id,
                kek_id: &kek.id,
            },
            secret.expose_secret().as_bytes(),
        );
        sqlx::query(
            "INSERT INTO vault_staged_secret (id, workspace_id, fingerprint, ciphertext, wrapped_key, kek_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(workspace_id.to_string())
        .bind(&fingerprint)
        .bind(sealed.ciphertext)
        .bind(sealed.wrapped_key)
        .bind(kek.id.as_str())
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *conn)
        .await?;
        Ok(fingerprint)
    }

    /// The staged secret of `workspace_id`, decrypted; `None` when nothing is staged (the row
    /// was already processed).
    pub async fn staged_secret(&self, workspace_id: Uuid) -> Result<Option<SecretString>> {
        let row = sqlx::query(
            "SELECT id, ciphertext, wrapped_key, kek_id FROM vault_staged_secret WHERE workspace_id = $1",
        )
        .bind(workspace_id.to_string())
        .fetch_optional(self.db().pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let raw_id: String = row.try_get(0)?;
        let id = Uuid::parse_str(&raw_id).map_err(|_| Error::Corrupt {
            row: raw_id.clone(),
            detail: "staged secret id is not a uuid".into(),
        })?;
        let ciphertext: Vec<u8> = row.try_get(1)?;
        let wrapped: Vec<u8> = row.try_get(2)?;
        let kek_id: String = row.try_get(3)?;
        let kek = self
            .keyring()
            .get(&kek_id)
            .ok_or_else(|| Error::MissingKek {
                missing: vec![kek_id.clone()],
                configured: self.keyring().ids().map(str::to_owned).collect(),
            })?;
        let binding = Binding {
            credential_id: id,
            workspace_id,
            kek_id: &kek_id,
        };
        let plaintext =
            crypto::open(kek, binding, &ciphertext, &wrapped).map_err(|stage| Error::Tampered {
                credential_id: id,
                stage,
            })?;
        let text = std::str::from_utf8(&plaintext).map_err(|_| Error::Corrupt {
            row: raw_id,
            detail: "staged secret is not UTF-8".into(),
        })?;
        // Exact-size copy, as in `Vault::decrypt`: `plaintext` is wiped on drop.
        let mut exact = String::with_capacity(text.len());
        exact.push_str(text);
        Ok(Some(SecretString::from(exact)))
    }

    /// Deletes the staged secret of `workspace_id` (its ciphertext and wrapped data key go with
    /// the row) in the caller's transaction. Returns whether one existed.
    pub async fn discard_staged(
        &self,
        conn: &mut AnyConnection,
        workspace_id: Uuid,
    ) -> Result<bool> {
        let n = sqlx::query("DELETE FROM vault_staged_secret WHERE workspace_id = $1")
            .bind(workspace_id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Number of staged secrets (for status and tests).
    pub async fn staged_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM vault_staged_secret")
            .fetch_one(self.db().pool())
            .await?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Re-wraps staged secrets not under the primary KEK (part of [`Vault::rotate`]). Returns the
    /// number of rows moved. Staged rows are few and short-lived, so one transaction suffices.
    pub(crate) async fn rotate_staged(&self) -> Result<u64> {
        let ring = self.keyring();
        let primary = ring.primary();
        let mut tx = self.db().pool().begin().await?;
        let rows = sqlx::query(
            "SELECT id, workspace_id, kek_id, wrapped_key FROM vault_staged_secret WHERE kek_id <> $1 ORDER BY id",
        )
        .bind(primary.id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut moved = 0;
        for row in &rows {
            let raw_id: String = row.try_get(0)?;
            let raw_ws: String = row.try_get(1)?;
            let old_id: String = row.try_get(2)?;
            let wrapped: Vec<u8> = row.try_get(3)?;
            let corrupt = |what: &str| Error::Corrupt {
                row: raw_id.clone(),
                detail: format!("{what} is not a uuid"),
            };
            let id = Uuid::parse_str(&raw_id).map_err(|_| corrupt("id"))?;
            let workspace_id = Uuid::parse_str(&raw_ws).map_err(|_| corrupt("workspace_id"))?;
            let old = ring.get(&old_id).ok_or_else(|| Error::MissingKek {
                missing: vec![old_id.clone()],
                configured: ring.ids().map(str::to_owned).collect(),
            })?;
            let new_wrapped =
                crypto::rewrap(old, primary, id, workspace_id, &wrapped).map_err(|stage| {
                    Error::Tampered {
                        credential_id: id,
                        stage,
                    }
                })?;
            moved += sqlx::query(
                "UPDATE vault_staged_secret SET wrapped_key = $1, kek_id = $2 WHERE id = $3 AND kek_id = $4",
            )
            .bind(new_wrapped)
            .bind(primary.id.as_str())
            .bind(id.to_string())
            .bind(old_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(moved)
    }
}
