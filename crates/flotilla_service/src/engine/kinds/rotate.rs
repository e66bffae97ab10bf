//! `credentials.rotate`: replace Flotilla's own direct key of each workspace with a fresh one.
//!
//! Per workspace, in this order, so that a crash or failure at any instant leaves the workspace
//! reachable with exactly one stored key and a re-run converges:
//!
//! 1. With the stored (old) key: list the workspace's keys; revoke **orphans** — keys named
//!    [`key_name`] for this operation that are not the stored one (created by an attempt that
//!    died before storing them; their secret is lost). Checkpoint the old key's id.
//! 2. Create the new key, named deterministically per operation, with the old key's scopes
//!    (looked up in the list by the vault's `instantly_key_id`) — or `params.scopes` /
//!    `params.preset` when given. When neither is known the target fails `scopes_unknown`
//!    rather than guessing broader rights (we chose not to default to `all:all`).
//! 3. Check the new key answers `GET /workspaces/current` for this workspace *before* storing it
//!    (a key that does not work must never replace one that does), checkpoint its id, then store
//!    it (`Vault::replace_access`, with its Instantly id) and verify it again through the vault.
//! 4. Only then revoke the old key, with the **new** key (Instantly may refuse a key deleting
//!    itself, instantly-api.md §8 [UNK]). The old key's id comes from the checkpoint, since the
//!    vault row now names the new key.
//!
//! A key registered by an operator has no known Instantly id (Instantly lists keys without
//! their secret, §8/§13.5). Its id is then read from the audit log entry of step 2's creation
//! (`api_key_id` names the key that made the call: §10, newer spec only); if the audit log does
//! not tell, the new key is stored and verified and the target fails `old_key_unknown` so an
//! operator revokes the old key by hand. Delegated workspaces hold no key: skipped
//! `delegated_workspace`.

use flotilla_instantly::{
    ActivityType, ApiKey, Client, CreateApiKey, ErrorKind, ListAuditLogs, Scope,
};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Limits, Runner};
use crate::engine::{Change, Outcome, TargetCtx, TargetError};
use crate::error::ApiError;
use crate::store::state;

/// The kind's name.
pub const NAME: &str = "credentials.rotate";

/// Scopes Flotilla's own key needs to keep working: read its workspace (verification) and list,
/// create and delete keys (the next rotation).
const REQUIRED: [&str; 4] = [
    "workspaces:read",
    "api_keys:read",
    "api_keys:create",
    "api_keys:delete",
];

/// Params of `credentials.rotate`. Both optional and exclusive; by default the new key gets the
/// old key's scopes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateParams {
    /// Scopes for the new keys (must include what Flotilla needs: workspaces:read and
    /// api_keys:read/create/delete, directly or through `:all` / `all:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// A role preset for the new keys; only `admin` (`all:all`) grants what Flotilla's own
    /// key needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

impl RotateParams {
    fn validate(self) -> Result<RotateParams, ApiError> {
        let field_err = |code: &'static str, field: &str, msg: String| {
            ApiError::unprocessable(code, msg).with_details(json!({ "field": field }))
        };
        let scopes = match (self.scopes, self.preset.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_params",
                    "give params.scopes or params.preset, not both",
                )
                .with_details(json!({ "field": "params.preset" })));
            }
            (None, None) => return Ok(RotateParams::default()),
            (Some(scopes), None) => {
                if scopes.is_empty() || scopes.len() > 200 {
                    return Err(field_err(
                        "invalid_scopes",
                        "params.scopes",
                        "params.scopes must list 1 to 200 scopes".into(),
                    ));
                }
                if let Some(bad) = scopes.iter().position(|s| !Scope::is_known_str(s)) {
                    return Err(field_err(
                        "invalid_scope",
                        "params.scopes",
                        format!(
                            "params.scopes[{bad}] is not an Instantly scope (instantly-api.md §5)"
                        ),
                    ));
                }
                let mut scopes = scopes;
                scopes.sort();
                scopes.dedup();
                scopes
            }
            (None, Some("admin")) => vec!["all:all".to_string()],
            (None, Some(p @ ("manager" | "sdr" | "viewer"))) => {
                return Err(field_err(
                    "scopes_insufficient",
                    "params.preset",
                    format!(
                        "the {p} preset cannot manage API keys, which Flotilla's own key must do; use admin or scopes"
                    ),
                ));
            }
            (None, Some(_)) => {
                return Err(field_err(
                    "invalid_preset",
                    "params.preset",
                    "preset must be admin, manager, sdr or viewer".into(),
                ));
            }
        };
        let missing = missing_required(&scopes);
        if !missing.is_empty() {
            return Err(ApiError::unprocessable(
                "scopes_insufficient",
                format!("Flotilla's own key needs {}", missing.join(", ")),
            )
            .with_details(json!({ "field": "params.scopes", "missing": missing })));
        }
        Ok(RotateParams {
            scopes: Some(scopes),
            preset: self.preset,
        })
    }
}

fn missing_required(scopes: &[String]) -> Vec<&'static str> {
    let held: Vec<Scope> = scopes.iter().map(|s| Scope::new(s.clone())).collect();
    REQUIRED
        .iter()
        .copied()
        .filter(|r| !Scope::any_grants(&held, &Scope::new(*r)))
        .collect()
}

/// Progress saved between attempts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Instantly id of the key being replaced, when known.
    old_key_id: Option<String>,
    /// Instantly id of the new key, saved just before it is stored.
    new_key_id: Option<String>,
    /// Changes made by earlier attempts.
    #[serde(default)]
    changes: Vec<Change>,
}

/// The deterministic name of the keys one rotation creates: `flotilla [rotate:<12 hex>]`, the
/// random tail of the operation id (the head of a uuid v7 is its timestamp, shared by
/// operations created within a minute).
pub fn key_name(operation_id: uuid::Uuid) -> String {
    let simple = operation_id.simple().to_string();
    format!("flotilla [rotate:{}]", &simple[simple.len() - 12..])
}

/// Registry entry.
pub struct RotateRunner;

impl Runner for RotateRunner {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, params: Value, _limits: &Limits) -> Result<Value, ApiError> {
        let parsed: RotateParams = serde_json::from_value(params).map_err(|e| {
            ApiError::bad_request("invalid_params", format!("params for {NAME}: {e}"))
        })?;
        serde_json::to_value(parsed.validate()?).map_err(|e| ApiError::Internal(e.into()))
    }

    fn run<'a>(
        &'a self,
        ctx: &'a TargetCtx,
        params: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, TargetError>> {
        Box::pin(async move {
            let params: RotateParams = serde_json::from_value(params.clone()).map_err(|e| {
                TargetError::permanent("invalid_params", format!("stored params: {e}"))
            })?;
            rotate(ctx, &params, dry_run).await
        })
    }
}

fn db_err(e: sqlx::Error) -> TargetError {
    TargetError::transient("database_error", e.to_string())
}

fn vault_err(e: flotilla_vault::VaultError) -> TargetError {
    TargetError::transient("vault_error", e.to_string())
}

/// A client like the target's (same base URL, pacing, user agent) with another key.
fn client_with(ctx: &TargetCtx, secret: SecretString) -> Result<Client, TargetError> {
    let mut config = ctx.client.config().clone();
    config.api_key = secret;
    config.as_workspace = None;
    Client::new(config).map_err(|e| TargetError::permanent("client_error", e.to_string()))
}

async fn save(ctx: &TargetCtx, cp: &Checkpoint) -> Result<(), TargetError> {
    ctx.store
        .save_checkpoint(&ctx.claim, &json!(cp))
        .await
        .map_err(db_err)
}

/// Revokes `id`; a key already gone counts as revoked.
async fn revoke(client: &Client, id: &str) -> Result<bool, TargetError> {
    match client.delete_api_key(id).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Checks `client` acts on this target's workspace.
async fn verify(ctx: &TargetCtx, client: &Client) -> Result<(), TargetError> {
    let current = client.current_workspace().await?;
    if current.id != ctx.workspace.instantly_workspace_id {
        return Err(TargetError::permanent(
            "workspace_mismatch",
            "the new key acts on another Instantly workspace than the one registered",
        ));
    }
    Ok(())
}

/// The key that created `new_key_id`, from the audit log (instantly-api.md §10: `api_key_id`
/// exists in the newer spec only; `audit_metadata` is free-form). `None` when it cannot tell.
async fn creator_of(client: &Client, new_key_id: &str, name: &str) -> Option<String> {
    let query = ListAuditLogs {
        activity_type: Some(ActivityType::API_KEY_CREATED),
        start_date: Some((chrono::Utc::now() - chrono::Duration::days(1)).date_naive()),
        ..ListAuditLogs::default()
    };
    let mut entries = Box::pin(client.list_audit_logs(&query).take(5000));
    while let Some(entry) = entries.next().await {
        let entry = entry.ok()?;
        let meta = entry.audit_metadata.as_ref();
        let about_ours = meta.is_some_and(|m| {
            m.get("api_key_id").and_then(Value::as_str) == Some(new_key_id)
                || m.get("name").and_then(Value::as_str) == Some(name)
        });
        // Never take the new key itself for the old one: if `api_key_id` meant "the key
        // created", revoking it would lock Flotilla out.
        if about_ours && let Some(creator) = entry.api_key_id.filter(|id| id != new_key_id) {
            return Some(creator);
        }
    }
    None
}

async fn rotate(
    ctx: &TargetCtx,
    params: &RotateParams,
    dry_run: bool,
) -> Result<Outcome, TargetError> {
    if ctx.workspace.mode != "direct" {
        return Ok(Outcome {
            changes: Vec::new(),
            code: "delegated_workspace",
            state: state::SKIPPED,
        });
    }
    let name = key_name(ctx.operation.id);
    let meta = ctx
        .vault
        .meta(ctx.workspace.id)
        .await
        .map_err(vault_err)?
        .ok_or_else(|| {
            TargetError::permanent(
                "no_credential",
                "no credential is stored for this workspace",
            )
        })?;
    let mut cp: Checkpoint = ctx
        .checkpoint
        .clone()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let stored_id = meta.instantly_key_id.clone();
    // The key in `ctx.client` is the one stored when this attempt began.
    let keys: Vec<ApiKey> = ctx.client.list_api_keys().try_collect().await?;
    let stored_is_ours = stored_id.as_ref().is_some_and(|id| {
        cp.new_key_id.as_ref() == Some(id) || keys.iter().any(|k| &k.id == id && k.name == name)
    });

    if !stored_is_ours {
        let orphans: Vec<&ApiKey> = keys
            .iter()
            .filter(|k| k.name == name && Some(&k.id) != stored_id.as_ref())
            .collect();
        let old_key = stored_id
            .as_ref()
            .and_then(|id| keys.iter().find(|k| &k.id == id));
        let scopes: Vec<Scope> = match (&params.scopes, old_key) {
            (Some(s), _) => s.iter().map(|s| Scope::new(s.clone())).collect(),
            (None, Some(k)) => k.scopes.clone(),
            (None, None) => {
                return Err(TargetError::permanent(
                    "scopes_unknown",
                    "the stored key's scopes are unknown (it was registered without its Instantly id); \
                     pass params.scopes or params.preset",
                ));
            }
        };
        if dry_run {
            let mut changes: Vec<Change> = orphans
                .iter()
                .map(|o| Change::new(&o.id, "would_revoke_orphan"))
                .collect();
            let scope_list = scopes
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            changes.push(Change::new(&name, "would_create_key").with_detail(scope_list));
            changes.push(Change::new(&name, "would_store"));
            changes.push(Change::new(&name, "would_verify"));
            let old = stored_id.clone().unwrap_or_else(|| "the stored key".into());
            changes.push(Change::new(old, "would_revoke_old"));
            return Ok(Outcome::new(changes, "dry_run"));
        }
        for orphan in orphans {
            revoke(&ctx.client, &orphan.id).await?;
            cp.changes
                .push(Change::new(&orphan.id, "revoked_orphan").with_detail(&name));
        }
        // An id found in the audit log by an earlier attempt still names the same stored key.
        cp.old_key_id = stored_id.clone().or(cp.old_key_id.take());
        cp.new_key_id = None;
        // Saved before creating: a crash from here on leaves at worst an orphan, found by name.
        save(ctx, &cp).await?;
        let created = ctx
            .client
            .create_api_key(&CreateApiKey {
                name: name.clone(),
                scopes,
            })
            .await?;
        let new_id = created.key.id.clone();
        cp.changes
            .push(Change::new(&new_id, "created_key").with_detail(&name));
        if cp.old_key_id.is_none() {
            cp.old_key_id = creator_of(&ctx.client, &new_id, &name).await;
        }
        let new_client = client_with(ctx, created.secret.clone())?;
        if let Err(err) = verify(ctx, &new_client).await {
            // Never store a key that does not work; take it back with the old key (if that
            // fails too, the next attempt finds it by name).
            let _ = revoke(&ctx.client, &new_id).await;
            return Err(err.with_changes(cp.changes));
        }
        // Saved before replacing: afterwards the vault names only the new key.
        cp.new_key_id = Some(new_id.clone());
        save(ctx, &cp).await?;
        let mut tx = ctx.store.db().pool().begin().await.map_err(db_err)?;
        // Write first: on SQLite a transaction that reads before writing cannot wait for the
        // write lock (it fails busy at once), and replace_access reads first.
        crate::store::Store::touch_workspace(&mut tx, ctx.workspace.id)
            .await
            .map_err(db_err)?;
        ctx.vault
            .replace_access(&mut tx, ctx.workspace.id, &created.secret, Some(&new_id))
            .await
            .map_err(vault_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(operation.id = %ctx.operation.id, workspace.id = %ctx.workspace.id, key.id = %new_id,
            "rotated key stored");
        cp.changes.push(Change::new(&new_id, "stored"));
        save(ctx, &cp).await?;
    } else if dry_run {
        return Ok(Outcome::new(
            vec![Change::new(
                stored_id.unwrap_or_default(),
                "already_rotated",
            )],
            "dry_run",
        ));
    }

    // The new key is stored: verify it as every later target will use it (through the vault).
    let new_id = meta_key_id(ctx).await?;
    let credential = ctx
        .vault
        .access_credential(ctx.workspace.id)
        .await
        .map_err(vault_err)?;
    let client = client_with(ctx, credential.secret)?;
    verify(ctx, &client)
        .await
        .map_err(|e| e.with_changes(cp.changes.clone()))?;
    ctx.vault
        .mark_verified(ctx.workspace.id)
        .await
        .map_err(vault_err)?;
    push_once(&mut cp.changes, Change::new(&new_id, "verified"));
    // Orphans of earlier attempts that a crash left behind after the new key was stored.
    let keys: Vec<ApiKey> = client
        .list_api_keys()
        .try_collect()
        .await
        .map_err(|e| TargetError::from(e).with_changes(cp.changes.clone()))?;
    for orphan in keys.iter().filter(|k| k.name == name && k.id != new_id) {
        revoke(&client, &orphan.id)
            .await
            .map_err(|e| e.with_changes(cp.changes.clone()))?;
        cp.changes
            .push(Change::new(&orphan.id, "revoked_orphan").with_detail(&name));
    }
    match cp.old_key_id.clone().filter(|old| *old != new_id) {
        Some(old) => {
            let gone_before = !revoke(&client, &old)
                .await
                .map_err(|e| e.with_changes(cp.changes.clone()))?;
            let change = Change::new(&old, "revoked_old");
            push_once(
                &mut cp.changes,
                if gone_before {
                    change.with_detail("already revoked")
                } else {
                    change
                },
            );
        }
        None => {
            return Err(TargetError::permanent(
                "old_key_unknown",
                "the new key is stored and verified, but Flotilla cannot tell which Instantly key it replaced \
                 (it was registered without its id and the audit log does not name it): revoke the old key in Instantly",
            )
            .with_changes(cp.changes));
        }
    }
    save(ctx, &cp).await?;
    Ok(Outcome::new(cp.changes, "rotated"))
}

async fn meta_key_id(ctx: &TargetCtx) -> Result<String, TargetError> {
    ctx.vault
        .meta(ctx.workspace.id)
        .await
        .map_err(vault_err)?
        .and_then(|m| m.instantly_key_id)
        .ok_or_else(|| {
            TargetError::permanent("no_credential", "the stored key has no Instantly id")
        })
}

fn push_once(changes: &mut Vec<Change>, change: Change) {
    if !changes
        .iter()
        .any(|c| c.item == change.item && c.action == change.action)
    {
        changes.push(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_for_what_flotilla_needs() {
        let ok = RotateParams {
            scopes: Some(vec!["all:all".into()]),
            preset: None,
        }
        .validate()
        .unwrap();
        assert_eq!(ok.scopes.unwrap(), vec!["all:all"]);
        let narrow = RotateParams {
            scopes: Some(vec!["api_keys:all".into()]),
            preset: None,
        }
        .validate()
        .unwrap_err();
        assert_eq!(narrow.code(), "scopes_insufficient");
        let enough = RotateParams {
            scopes: Some(vec!["api_keys:all".into(), "workspaces:read".into()]),
            preset: None,
        };
        assert!(enough.validate().is_ok());
        assert_eq!(
            RotateParams {
                scopes: Some(vec!["nope:all".into()]),
                preset: None
            }
            .validate()
            .unwrap_err()
            .code(),
            "invalid_scope"
        );
        assert_eq!(
            RotateParams {
                scopes: None,
                preset: Some("manager".into())
            }
            .validate()
            .unwrap_err()
            .code(),
            "scopes_insufficient"
        );
        assert_eq!(
            RotateParams {
                scopes: None,
                preset: Some("boss".into())
            }
            .validate()
            .unwrap_err()
            .code(),
            "invalid_preset"
        );
        assert_eq!(
            RotateParams {
                scopes: None,
                preset: Some("admin".into())
            }
            .validate()
            .unwrap()
            .scopes
            .unwrap(),
            vec!["all:all"]
        );
        assert!(RotateParams::default().validate().unwrap().scopes.is_none());
    }

    #[test]
    fn key_names_are_per_operation() {
        let a = uuid::Uuid::now_v7();
        let b = uuid::Uuid::now_v7();
        assert_ne!(key_name(a), key_name(b));
        assert_eq!(key_name(a), key_name(a));
        assert!(key_name(a).starts_with("flotilla [rotate:"));
    }
}
