//! The tenant vault: encrypted per-workspace credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row};
use uuid::Uuid;

use crate::crypto::{self, Binding};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::model::{
    Credential, CredentialMeta, CredentialMode, CredentialSource, NewCredential, Purpose,
    RotationReport, VaultStatus,
};

const COLUMNS: &str = "id, workspace_id, instantly_workspace_id, purpose, mode, admin_workspace_id, \
     instantly_key_id, fingerprint, ciphertext, wrapped_key, kek_id, created_at, last_verified_at";

/// The tenant vault. Cheap to clone. Holds the keyring and the database; `Debug` shows KEK ids
/// only.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    keyring: Keyring,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("db", &self.inner.db)
            .field("keyring", &self.inner.keyring)
            .finish()
    }
}

/// One stored row: metadata plus the (still encrypted) key material.
struct StoredRow {
    meta: CredentialMeta,
    ciphertext: Option<Vec<u8>>,
    wrapped_key: Option<Vec<u8>>,
}

impl Vault {
    /// Opens the vault over a migrated database. Fails with [`Error::MissingKek`] (listing the
    /// ids) if any stored row is wrapped by a KEK the keyring lacks, and with
    /// [`Error::KekMismatch`] if a configured KEK id has other key bytes than when first used.
    /// On failure nothing is written. On success it records a check value for each new KEK id.
    pub async fn open(db: Database, keyring: Keyring) -> Result<Vault> {
        let used: Vec<String> = sqlx::query(
            // Staged secrets (bulk import, `staging.rs`) are wrapped by the same KEKs.
            "SELECT kek_id FROM vault_credential WHERE kek_id IS NOT NULL \
             UNION SELECT kek_id FROM vault_staged_secret ORDER BY kek_id",
        )
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        let missing: Vec<String> = used
            .into_iter()
            .filter(|id| !keyring.contains(id))
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingKek {
                missing,
                configured: keyring.ids().map(str::to_owned).collect(),
            });
        }

        let checks = sqlx::query("SELECT id, check_value FROM vault_kek")
            .fetch_all(db.pool())
            .await?;
        let mut known = BTreeSet::new();
        for row in &checks {
            let id: String = row.try_get(0)?;
            let value: Vec<u8> = row.try_get(1)?;
            if keyring
                .get(&id)
                .is_some_and(|kek| !kek.verify_check_value(&value))
            {
                return Err(Error::KekMismatch { kek_id: id });
            }
            known.insert(id);
        }
        for id in keyring.ids().filter(|id| !known.contains(*id)) {
            let kek = keyring.get(id).expect("id from this keyring");
            // Another replica may record the same id concurrently; either check value is valid.
            sqlx::query(
                "INSERT INTO vault_kek (id, check_value, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(kek.check_value())
            .bind(now_ms())
            .execute(db.pool())
            .await?;
        }
        tracing::info!(
            primary_kek = keyring.primary_id(),
            kek_count = keyring.ids().count(),
            "vault opened"
        );
        Ok(Vault {
            inner: Arc::new(Inner { db, keyring }),
        })
    }

    /// The database the vault lives in.
    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    /// The keyring (ids only are observable).
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// `"sha256:"` + the first 16 hex characters (64 bits) of SHA-256 of the key.
    ///
    /// A plain, unkeyed hash is acceptable because API keys are long random strings: the
    /// fingerprint cannot be inverted or brute-forced the way a password hash could, and 64 bits
    /// make an accidental collision between two keys negligible at fleet sizes.
    pub fn fingerprint(secret: &SecretString) -> String {
        // instantly-api.md §8 [EMP]: the key format is opaque (one team saw ~68-char
        // base64-looking strings). We rely only on keys being long random strings, hash the exact
        // UTF-8 bytes and never normalise them.
        let digest = Sha256::digest(secret.expose_secret().as_bytes());
        format!("sha256:{}", &hex::encode(digest)[..16])
    }

    /// Stores a credential inside the caller's transaction (`&mut *tx`).
    ///
    /// Errors: [`Error::Duplicate`] if the key's fingerprint is already stored (naming the
    /// workspace holding it), [`Error::AccessExists`] for a second access credential,
    /// [`Error::InvalidAdmin`] if a delegated credential's admin has no direct access
    /// credential, [`Error::Invalid`] for an issued credential without a key. On Postgres a
    /// constraint error aborts the caller's transaction; roll it back.
    pub async fn store(
        &self,
        conn: &mut AnyConnection,
        new: NewCredential<'_>,
    ) -> Result<CredentialMeta> {
        if new.instantly_workspace_id.trim().is_empty() {
            return Err(Error::Invalid("instantly_workspace_id is empty"));
        }
        let id = Uuid::now_v7();
        let now = now_ms();
        let (purpose, instantly_key_id) = match &new.purpose {
            Purpose::Access => ("access", None),
            Purpose::Issued { instantly_key_id } => ("issued", Some(instantly_key_id.as_str())),
        };
        if new.purpose == Purpose::Access {
            let existing = sqlx::query(
                "SELECT id FROM vault_credential WHERE workspace_id = $1 AND purpose = 'access'",
            )
            .bind(new.workspace_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
            if existing.is_some() {
                return Err(Error::AccessExists {
                    workspace_id: new.workspace_id,
                });
            }
        }
        let mut fingerprint = None;
        let query = match new.source {
            CredentialSource::Direct(secret) => {
                let fp = Vault::fingerprint(secret);
                if let Some(holder) = holder_of(&mut *conn, &fp).await? {
                    return Err(Error::Duplicate {
                        workspace_id: holder,
                    });
                }
                let kek = self.inner.keyring.primary();
                let sealed = crypto::seal(
                    kek,
                    Binding {
                        credential_id: id,
                        workspace_id: new.workspace_id,
                        kek_id: &kek.id,
                    },
                    secret.expose_secret().as_bytes(),
                );
                fingerprint = Some(fp.clone());
                sqlx::query(INSERT)
                    .bind(id.to_string())
                    .bind(new.workspace_id.to_string())
                    .bind(new.instantly_workspace_id)
                    .bind(purpose)
                    .bind("direct")
                    .bind(None::<String>)
                    .bind(instantly_key_id)
                    .bind(Some(fp))
                    .bind(Some(sealed.ciphertext))
                    .bind(Some(sealed.wrapped_key))
                    .bind(Some(kek.id.as_str()))
                    .bind(now)
            }
            CredentialSource::Delegated { admin_workspace_id } => {
                if !matches!(new.purpose, Purpose::Access) {
                    return Err(Error::Invalid("an issued credential must hold its own key"));
                }
                if admin_workspace_id == new.workspace_id {
                    return Err(Error::InvalidAdmin {
                        admin_workspace_id,
                        reason: "a workspace cannot delegate to itself",
                    });
                }
                let admin = fetch_access(&mut *conn, admin_workspace_id).await?;
                match admin {
                    None => {
                        return Err(Error::InvalidAdmin {
                            admin_workspace_id,
                            reason: "it has no stored credential",
                        });
                    }
                    Some(a) if a.meta.mode != CredentialMode::Direct => {
                        return Err(Error::InvalidAdmin {
                            admin_workspace_id,
                            reason: "its own credential is delegated, not a direct key",
                        });
                    }
                    Some(_) => {}
                }
                sqlx::query(INSERT)
                    .bind(id.to_string())
                    .bind(new.workspace_id.to_string())
                    .bind(new.instantly_workspace_id)
                    .bind(purpose)
                    .bind("delegated")
                    .bind(Some(admin_workspace_id.to_string()))
                    .bind(instantly_key_id)
                    .bind(None::<String>)
                    .bind(None::<Vec<u8>>)
                    .bind(None::<Vec<u8>>)
                    .bind(None::<String>)
                    .bind(now)
            }
        };
        if let Err(e) = query.execute(&mut *conn).await {
            let e = Error::from(e);
            return Err(self
                .explain_conflict(e, new.workspace_id, fingerprint.as_deref())
                .await);
        }
        tracing::debug!(
            credential.id = %id,
            workspace.id = %new.workspace_id,
            purpose,
            "credential stored"
        );
        let row = fetch_by_id(&mut *conn, id)
            .await?
            .ok_or_else(|| corrupt(id, "vanished after insert"))?;
        Ok(row.meta)
    }

    // A unique violation slipped past the pre-checks (a concurrent writer): say which one.
    async fn explain_conflict(&self, e: Error, workspace_id: Uuid, fp: Option<&str>) -> Error {
        if !e.is_unique_violation() {
            return e;
        }
        if let Some(fp) = fp {
            // The caller's transaction may be aborted (Postgres), so ask through the pool.
            if let Ok(Some(holder)) = holder_of(self.inner.db.pool(), fp).await {
                return Error::Duplicate {
                    workspace_id: holder,
                };
            }
        }
        Error::AccessExists { workspace_id }
    }

    /// Decrypts the workspace's access credential. A delegated workspace resolves to its admin
    /// workspace's key with `as_workspace` = the workspace's own Instantly id.
    pub async fn access_credential(&self, workspace_id: Uuid) -> Result<Credential> {
        let pool = self.inner.db.pool();
        let row = fetch_access(pool, workspace_id)
            .await?
            .ok_or(Error::NotFound { workspace_id })?;
        let admin = match (row.meta.mode, row.meta.admin_workspace_id) {
            (CredentialMode::Delegated, Some(admin_id)) => fetch_access(pool, admin_id).await?,
            _ => None,
        };
        self.resolve(&row, admin.as_ref())
    }

    /// [`Vault::access_credential`] for many workspaces in a few queries (the engine loads the
    /// credentials of a whole claim batch at once). Each workspace gets its own result, so one
    /// tampered or missing credential fails only its workspace; a database error fails the call.
    pub async fn access_credentials(
        &self,
        workspace_ids: &[Uuid],
    ) -> Result<BTreeMap<Uuid, Result<Credential>>> {
        let pool = self.inner.db.pool();
        let rows = fetch_access_many(pool, workspace_ids).await?;
        let admins_missing: BTreeSet<Uuid> = rows
            .values()
            .filter(|r| r.meta.mode == CredentialMode::Delegated)
            .filter_map(|r| r.meta.admin_workspace_id)
            .filter(|admin| !rows.contains_key(admin))
            .collect();
        let admins_missing: Vec<Uuid> = admins_missing.into_iter().collect();
        let admins = fetch_access_many(pool, &admins_missing).await?;
        let mut out = BTreeMap::new();
        for &workspace_id in workspace_ids {
            let result = match rows.get(&workspace_id) {
                None => Err(Error::NotFound { workspace_id }),
                Some(row) => {
                    let admin = row
                        .meta
                        .admin_workspace_id
                        .and_then(|a| rows.get(&a).or_else(|| admins.get(&a)));
                    self.resolve(row, admin)
                }
            };
            out.insert(workspace_id, result);
        }
        Ok(out)
    }

    /// The credential a stored access row stands for; `admin` is the admin workspace's access
    /// row when `row` is delegated.
    fn resolve(&self, row: &StoredRow, admin: Option<&StoredRow>) -> Result<Credential> {
        // instantly-api.md §12 / §6 [OFF]: a group admin's key acts on a sub workspace through
        // `x-as-workspace: <sub workspace id>`, so a delegated row stores no key of its own and
        // resolves to the admin's access key at every call (a replaced admin key takes effect
        // for all its subs at once).
        match row.meta.mode {
            CredentialMode::Direct => Ok(Credential {
                secret: self.decrypt(row)?,
                as_workspace: None,
                instantly_workspace_id: row.meta.instantly_workspace_id.clone(),
                admin_workspace_id: None,
                fingerprint: row.meta.fingerprint.clone().unwrap_or_default(),
                instantly_key_id: row.meta.instantly_key_id.clone(),
            }),
            CredentialMode::Delegated => {
                let admin_workspace_id = row
                    .meta
                    .admin_workspace_id
                    .ok_or_else(|| corrupt(row.meta.id, "delegated row without admin"))?;
                let admin = admin.ok_or(Error::InvalidAdmin {
                    admin_workspace_id,
                    reason: "it has no stored credential",
                })?;
                if admin.meta.mode != CredentialMode::Direct {
                    return Err(Error::InvalidAdmin {
                        admin_workspace_id,
                        reason: "its own credential is delegated, not a direct key",
                    });
                }
                Ok(Credential {
                    secret: self.decrypt(admin)?,
                    as_workspace: Some(row.meta.instantly_workspace_id.clone()),
                    instantly_workspace_id: row.meta.instantly_workspace_id.clone(),
                    admin_workspace_id: Some(admin_workspace_id),
                    fingerprint: admin.meta.fingerprint.clone().unwrap_or_default(),
                    instantly_key_id: admin.meta.instantly_key_id.clone(),
                })
            }
        }
    }

    fn decrypt(&self, row: &StoredRow) -> Result<SecretString> {
        let id = row.meta.id;
        let (Some(ct), Some(wk), Some(kek_id)) =
            (&row.ciphertext, &row.wrapped_key, &row.meta.kek_id)
        else {
            return Err(corrupt(id, "direct row without key material"));
        };
        let kek = self
            .inner
            .keyring
            .get(kek_id)
            .ok_or_else(|| Error::MissingKek {
                missing: vec![kek_id.clone()],
                configured: self.inner.keyring.ids().map(str::to_owned).collect(),
            })?;
        let binding = Binding {
            credential_id: id,
            workspace_id: row.meta.workspace_id,
            kek_id,
        };
        let plaintext = crypto::open(kek, binding, ct, wk).map_err(|stage| Error::Tampered {
            credential_id: id,
            stage,
        })?;
        let text =
            std::str::from_utf8(&plaintext).map_err(|_| corrupt(id, "credential is not UTF-8"))?;
        // Copy into an exact-size buffer: `SecretString::from(String)` shrinks the allocation,
        // which could leave an unzeroed copy behind. `plaintext` is wiped on drop.
        let mut exact = String::with_capacity(text.len());
        exact.push_str(text);
        Ok(SecretString::from(exact))
    }

    /// Metadata of the workspace's access credential.
    pub async fn meta(&self, workspace_id: Uuid) -> Result<Option<CredentialMeta>> {
        Ok(fetch_access(self.inner.db.pool(), workspace_id)
            .await?
            .map(|r| r.meta))
    }

    /// Every credential row of the workspace (access first, then issued by creation).
    pub async fn list(&self, workspace_id: Uuid) -> Result<Vec<CredentialMeta>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vault_credential WHERE workspace_id = $1 \
             ORDER BY CASE WHEN purpose = 'access' THEN 0 ELSE 1 END, id"
        ))
        .bind(workspace_id.to_string())
        .fetch_all(self.inner.db.pool())
        .await?;
        rows.iter().map(|r| decode(r).map(|s| s.meta)).collect()
    }

    /// Workspaces whose delegated access credential acts through `admin_workspace_id`.
    pub async fn delegated_through(&self, admin_workspace_id: Uuid) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT workspace_id FROM vault_credential WHERE admin_workspace_id = $1 ORDER BY workspace_id",
        )
        .bind(admin_workspace_id.to_string())
        .fetch_all(self.inner.db.pool())
        .await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>(0)?, "workspace_id"))
            .collect()
    }

    /// Replaces the workspace's access credential with a direct key, in the caller's
    /// transaction. The old ciphertext and wrapped key are overwritten (crypto-shredded) and the
    /// row gets a new credential id. [`Error::NotFound`] if there is no access credential,
    /// [`Error::Duplicate`] if the key is already stored.
    pub async fn replace_access(
        &self,
        conn: &mut AnyConnection,
        workspace_id: Uuid,
        secret: &SecretString,
        instantly_key_id: Option<&str>,
    ) -> Result<CredentialMeta> {
        let fp = Vault::fingerprint(secret);
        if let Some(holder) = holder_of(&mut *conn, &fp).await? {
            return Err(Error::Duplicate {
                workspace_id: holder,
            });
        }
        let id = Uuid::now_v7();
        let kek = self.inner.keyring.primary();
        let sealed = crypto::seal(
            kek,
            Binding {
                credential_id: id,
                workspace_id,
                kek_id: &kek.id,
            },
            secret.expose_secret().as_bytes(),
        );
        let now = now_ms();
        let result = sqlx::query(
            "UPDATE vault_credential SET id = $1, mode = 'direct', admin_workspace_id = NULL, \
             instantly_key_id = $2, fingerprint = $3, ciphertext = $4, wrapped_key = $5, kek_id = $6, \
             created_at = $7, updated_at = $7, last_verified_at = NULL \
             WHERE workspace_id = $8 AND purpose = 'access'",
        )
        .bind(id.to_string())
        .bind(instantly_key_id)
        .bind(&fp)
        .bind(sealed.ciphertext)
        .bind(sealed.wrapped_key)
        .bind(kek.id.as_str())
        .bind(now)
        .bind(workspace_id.to_string())
        .execute(&mut *conn)
        .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                return Err(self
                    .explain_conflict(e.into(), workspace_id, Some(&fp))
                    .await);
            }
        };
        if result.rows_affected() == 0 {
            return Err(Error::NotFound { workspace_id });
        }
        tracing::info!(credential.id = %id, workspace.id = %workspace_id, "access credential replaced");
        Ok(fetch_by_id(&mut *conn, id)
            .await?
            .ok_or_else(|| corrupt(id, "vanished after update"))?
            .meta)
    }

    /// Deletes every credential of the workspace (access and issued) in the caller's
    /// transaction: ciphertext and wrapped data key go with the rows (crypto-shredding).
    /// Returns the number of rows deleted. Delegated workspaces acting through this one then
    /// fail with [`Error::InvalidAdmin`] (see [`Vault::delegated_through`]).
    pub async fn delete_workspace(
        &self,
        conn: &mut AnyConnection,
        workspace_id: Uuid,
    ) -> Result<u64> {
        let n = sqlx::query("DELETE FROM vault_credential WHERE workspace_id = $1")
            .bind(workspace_id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        tracing::info!(workspace.id = %workspace_id, rows = n, "workspace credentials shredded");
        Ok(n)
    }

    /// Deletes one credential row (e.g. an issued key that was revoked). Returns whether it
    /// existed.
    pub async fn delete_credential(
        &self,
        conn: &mut AnyConnection,
        credential_id: Uuid,
    ) -> Result<bool> {
        let n = sqlx::query("DELETE FROM vault_credential WHERE id = $1")
            .bind(credential_id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The credential whose key has this fingerprint, if any.
    pub async fn find_by_fingerprint(&self, fingerprint: &str) -> Result<Option<CredentialMeta>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vault_credential WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(self.inner.db.pool())
        .await?;
        row.as_ref()
            .map(decode)
            .transpose()
            .map(|r| r.map(|s| s.meta))
    }

    /// The issued credential of the workspace with this Instantly key id, if any.
    pub async fn find_issued(
        &self,
        workspace_id: Uuid,
        instantly_key_id: &str,
    ) -> Result<Option<CredentialMeta>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vault_credential \
             WHERE workspace_id = $1 AND purpose = 'issued' AND instantly_key_id = $2"
        ))
        .bind(workspace_id.to_string())
        .bind(instantly_key_id)
        .fetch_optional(self.inner.db.pool())
        .await?;
        row.as_ref()
            .map(decode)
            .transpose()
            .map(|r| r.map(|s| s.meta))
    }

    /// Records that the workspace's access credential was just verified live.
    pub async fn mark_verified(&self, workspace_id: Uuid) -> Result<()> {
        let n = sqlx::query(
            "UPDATE vault_credential SET last_verified_at = $1, updated_at = $1 \
             WHERE workspace_id = $2 AND purpose = 'access'",
        )
        .bind(now_ms())
        .bind(workspace_id.to_string())
        .execute(self.inner.db.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::NotFound { workspace_id });
        }
        Ok(())
    }

    /// Records Instantly's id of the key held by the workspace's direct access credential, when
    /// it was not known yet (keys registered by hand come without it). Returns whether a row
    /// changed; a known id is never overwritten.
    pub async fn learn_access_key_id(
        &self,
        workspace_id: Uuid,
        instantly_key_id: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE vault_credential SET instantly_key_id = $1, updated_at = $2 \
             WHERE workspace_id = $3 AND purpose = 'access' AND mode = 'direct' AND instantly_key_id IS NULL",
        )
        .bind(instantly_key_id)
        .bind(now_ms())
        .bind(workspace_id.to_string())
        .execute(self.inner.db.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Re-wraps every data key not yet under the primary KEK, `batch` rows per transaction.
    /// Only data keys are unwrapped and re-wrapped: credential ciphertexts are not touched and no
    /// plaintext credential is produced. Safe to interrupt and to run again, and to run on
    /// several replicas at once (each update is conditional on the row's old KEK id).
    pub async fn rotate(&self, batch: usize) -> Result<RotationReport> {
        self.rotate_at_most(batch, u64::MAX).await
    }

    /// [`Vault::rotate`], stopping after `max_rows` rows (an operator's throttle, and how tests
    /// interrupt a rotation).
    pub async fn rotate_at_most(&self, batch: usize, max_rows: u64) -> Result<RotationReport> {
        let batch = batch.max(1) as u64;
        let ring = &self.inner.keyring;
        let primary = ring.primary();
        let (mut rotated, mut batches) = (0u64, 0u64);
        while rotated < max_rows {
            let take = batch.min(max_rows - rotated);
            let mut tx = self.inner.db.begin_write().await?;
            let rows = sqlx::query(
                "SELECT id, workspace_id, kek_id, wrapped_key FROM vault_credential \
                 WHERE kek_id IS NOT NULL AND kek_id <> $1 ORDER BY id LIMIT $2",
            )
            .bind(primary.id.as_str())
            .bind(i64::try_from(take).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                tx.commit().await?;
                break;
            }
            let mut moved = 0u64;
            for row in &rows {
                let id = parse_uuid(&row.try_get::<String, _>(0)?, "id")?;
                let workspace_id = parse_uuid(&row.try_get::<String, _>(1)?, "workspace_id")?;
                let old_id: String = row.try_get(2)?;
                let wrapped: Vec<u8> = row.try_get(3)?;
                let old = ring.get(&old_id).ok_or_else(|| Error::MissingKek {
                    missing: vec![old_id.clone()],
                    configured: ring.ids().map(str::to_owned).collect(),
                })?;
                let new_wrapped = crypto::rewrap(old, primary, id, workspace_id, &wrapped)
                    .map_err(|stage| Error::Tampered {
                        credential_id: id,
                        stage,
                    })?;
                moved += sqlx::query(
                    "UPDATE vault_credential SET wrapped_key = $1, kek_id = $2, updated_at = $3 \
                     WHERE id = $4 AND kek_id = $5",
                )
                .bind(new_wrapped)
                .bind(primary.id.as_str())
                .bind(now_ms())
                .bind(id.to_string())
                .bind(old_id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            batches += 1;
            rotated += moved;
            tracing::info!(kek = %primary.id, rows = moved, total = rotated, "vault rotation batch committed");
        }
        if rotated < max_rows {
            rotated += self.rotate_staged().await?;
        }
        let remaining = self.status().await?.pending_rotation;
        Ok(RotationReport {
            primary_kek_id: primary.id.clone(),
            rotated,
            batches,
            remaining,
        })
    }

    /// Rows per KEK id, delegated rows, and how many rows still await rotation.
    pub async fn status(&self) -> Result<VaultStatus> {
        let rows = sqlx::query("SELECT kek_id, COUNT(*) FROM vault_credential GROUP BY kek_id")
            .fetch_all(self.inner.db.pool())
            .await?;
        let primary = self.inner.keyring.primary_id();
        let mut status = VaultStatus {
            primary_kek_id: primary.to_owned(),
            rows_per_kek: BTreeMap::new(),
            delegated_rows: 0,
            pending_rotation: 0,
        };
        // Staged secrets (bulk import) count like credentials: they need their KEK too.
        let staged =
            sqlx::query("SELECT kek_id, COUNT(*) FROM vault_staged_secret GROUP BY kek_id")
                .fetch_all(self.inner.db.pool())
                .await?;
        for row in rows.iter().chain(&staged) {
            let kek: Option<String> = row.try_get(0)?;
            let n = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
            match kek {
                None => status.delegated_rows += n,
                Some(k) => {
                    if k != primary {
                        status.pending_rotation += n;
                    }
                    *status.rows_per_kek.entry(k).or_default() += n;
                }
            }
        }
        Ok(status)
    }
}

const INSERT: &str = "INSERT INTO vault_credential (id, workspace_id, instantly_workspace_id, purpose, mode, \
     admin_workspace_id, instantly_key_id, fingerprint, ciphertext, wrapped_key, kek_id, created_at, \
     updated_at, last_verified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, NULL)";

async fn holder_of<'e, E: Executor<'e, Database = Any>>(e: E, fp: &str) -> Result<Option<Uuid>> {
    let row = sqlx::query("SELECT workspace_id FROM vault_credential WHERE fingerprint = $1")
        .bind(fp)
        .fetch_optional(e)
        .await?;
    row.map(|r| parse_uuid(&r.try_get::<String, _>(0)?, "workspace_id"))
        .transpose()
}

async fn fetch_access<'e, E: Executor<'e, Database = Any>>(
    e: E,
    workspace_id: Uuid,
) -> Result<Option<StoredRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM vault_credential WHERE workspace_id = $1 AND purpose = 'access'"
    ))
    .bind(workspace_id.to_string())
    .fetch_optional(e)
    .await?;
    row.as_ref().map(decode).transpose()
}

/// Access rows of many workspaces, by workspace id (in chunks, to stay under both backends'
/// bind-parameter limits).
async fn fetch_access_many(
    pool: &sqlx::AnyPool,
    workspace_ids: &[Uuid],
) -> Result<BTreeMap<Uuid, StoredRow>> {
    let mut out = BTreeMap::new();
    for chunk in workspace_ids.chunks(500) {
        let list = crate::db::placeholders(1, chunk.len());
        let sql = format!(
            "SELECT {COLUMNS} FROM vault_credential WHERE purpose = 'access' AND workspace_id IN ({list})"
        );
        // Not a cached prepared statement: the list length varies with every call.
        let mut query = sqlx::query(&sql).persistent(false);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(pool).await? {
            let row = decode(&row)?;
            out.insert(row.meta.workspace_id, row);
        }
    }
    Ok(out)
}

async fn fetch_by_id<'e, E: Executor<'e, Database = Any>>(
    e: E,
    id: Uuid,
) -> Result<Option<StoredRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM vault_credential WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(e)
    .await?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &AnyRow) -> Result<StoredRow> {
    let id = parse_uuid(&row.try_get::<String, _>("id")?, "id")?;
    let purpose: String = row.try_get("purpose")?;
    let mode: String = row.try_get("mode")?;
    let instantly_key_id: Option<String> = row.try_get("instantly_key_id")?;
    let purpose = match purpose.as_str() {
        "access" => Purpose::Access,
        "issued" => Purpose::Issued {
            instantly_key_id: instantly_key_id
                .clone()
                .ok_or_else(|| corrupt(id, "issued row without key id"))?,
        },
        other => return Err(corrupt(id, format!("unknown purpose {other:?}"))),
    };
    let mode = match mode.as_str() {
        "direct" => CredentialMode::Direct,
        "delegated" => CredentialMode::Delegated,
        other => return Err(corrupt(id, format!("unknown mode {other:?}"))),
    };
    let admin_workspace_id = row
        .try_get::<Option<String>, _>("admin_workspace_id")?
        .map(|s| parse_uuid(&s, "admin_workspace_id"))
        .transpose()?;
    let meta = CredentialMeta {
        id,
        workspace_id: parse_uuid(&row.try_get::<String, _>("workspace_id")?, "workspace_id")?,
        instantly_workspace_id: row.try_get("instantly_workspace_id")?,
        mode,
        purpose,
        admin_workspace_id,
        instantly_key_id,
        fingerprint: row.try_get("fingerprint")?,
        kek_id: row.try_get("kek_id")?,
        created_at: from_ms(row.try_get("created_at")?),
        last_verified_at: row
            .try_get::<Option<i64>, _>("last_verified_at")?
            .map(from_ms),
    };
    Ok(StoredRow {
        meta,
        ciphertext: row.try_get("ciphertext")?,
        wrapped_key: row.try_get("wrapped_key")?,
    })
}

fn parse_uuid(s: &str, column: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::Corrupt {
        row: s.to_owned(),
        detail: format!("{column} is not a uuid"),
    })
}

fn corrupt(id: Uuid, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        row: id.to_string(),
        detail: detail.into(),
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
