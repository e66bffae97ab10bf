//! `api_keys.create` and `api_keys.revoke`: Instantly API keys per workspace.
//!
//! Creating a key cannot be made idempotent at Instantly (no client-chosen id), so the created
//! key carries a name that is deterministic per operation and workspace; the secret, shown once,
//! goes straight into the vault as an issued credential. A re-run finds the key by name and
//! reconciles: stored in the vault → `already_exists`; not stored (the process died between the
//! create and the store) → the orphan is deleted at Instantly and the key created again
//! (`recreated`). The secret never leaves a `SecretString` outside the vault.

use flotilla_instantly::{ApiKey, CreateApiKey, ErrorKind, Scope};
use flotilla_vault::{CredentialSource, NewCredential, Purpose};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Kind, Limits, Plan};
use crate::engine::{Change, TargetCtx, TargetError};
use crate::error::ApiError;

/// The scope presets of `api_keys.create`: the agency access matrix (DESIGN.md, Operators and
/// roles; `authz::level`) turned into Instantly scopes (instantly-api.md §5). A preset grants
/// exactly its role's columns, one Instantly resource per column, and nothing else:
///
/// | Preset  | Campaigns `campaigns:` | Leads `leads:`        | Accounts `accounts:` | Webhooks `webhooks:` | API Keys `api_keys:` | Members `workspace_members:` |
/// |---------|------------------------|-----------------------|----------------------|----------------------|----------------------|------------------------------|
/// | admin   | Full: `all`            | Full: `all`           | Full: `all`          | Full: `all`          | Full: `all`          | Full: `all`                  |
/// | manager | Create/Edit: `read create update` | Create/Edit: `read create update` | View: `read` | Create: `read create` | View: `read` | View: `read`               |
/// | sdr     | Launch/Pause: `read update` | Import: `read create` | View: `read`     | -                    | -                    | -                            |
/// | viewer  | View: `read`           | View: `read`          | View: `read`         | -                    | -                    | -                            |
///
/// Level → actions: Full = `<r>:all`; Create/Edit = read + create + update (no delete); Create =
/// read + create; View = read. Launch/Pause is `campaigns:update` because Instantly's campaign
/// pause/activate endpoints require `update` (§5: action POSTs map to `update`); Instantly has no
/// narrower scope, so an SDR key can also edit campaign settings: the nearest grant available.
/// No preset holds a cross-resource `all:*` scope, not even admin.
pub const PRESETS: &[(&str, &[&str])] = &[
    (
        "admin",
        &[
            "campaigns:all",
            "leads:all",
            "accounts:all",
            "webhooks:all",
            "api_keys:all",
            "workspace_members:all",
        ],
    ),
    (
        "manager",
        &[
            "campaigns:read",
            "campaigns:create",
            "campaigns:update",
            "leads:read",
            "leads:create",
            "leads:update",
            "accounts:read",
            "webhooks:read",
            "webhooks:create",
            "api_keys:read",
            "workspace_members:read",
        ],
    ),
    (
        "sdr",
        &[
            "campaigns:read",
            "campaigns:update",
            "leads:read",
            "leads:create",
            "accounts:read",
        ],
    ),
    ("viewer", &["campaigns:read", "leads:read", "accounts:read"]),
];

/// The scopes of a preset, or `None` for an unknown preset.
pub fn preset_scopes(preset: &str) -> Option<&'static [&'static str]> {
    PRESETS
        .iter()
        .find(|(name, _)| *name == preset)
        .map(|(_, scopes)| *scopes)
}

/// Longest `name` accepted. Instantly's limit is unknown (instantly-api.md §8 [UNK]); this keeps
/// the full name, suffix included, well under any plausible limit.
pub const MAX_NAME_LEN: usize = 100;

/// Params of `api_keys.create`: a name and either explicit scopes or a preset.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// The key's name; Flotilla appends ` [flotilla:<operation>]` so that a re-run finds it.
    pub name: String,
    /// Instantly scopes (instantly-api.md §5), e.g. `["campaigns:read"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `admin`, `manager`, `sdr` or `viewer` ([`PRESETS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
}

impl CreateParams {
    /// The scopes to grant (the preset's, or the explicit list).
    pub fn resolved_scopes(&self) -> Vec<Scope> {
        match (&self.scopes, &self.preset) {
            (Some(scopes), _) => scopes.iter().map(|s| Scope::new(s.clone())).collect(),
            (None, Some(p)) => preset_scopes(p)
                .unwrap_or_default()
                .iter()
                .map(|s| Scope::new(*s))
                .collect(),
            (None, None) => Vec::new(),
        }
    }
}

fn field_error(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message).with_details(json!({ "field": field }))
}

/// Checks a list of scopes against the full scope list of instantly-api.md §5.
fn validate_scopes(
    scopes: Vec<String>,
    field: &str,
    limits: &Limits,
) -> Result<Vec<String>, ApiError> {
    if scopes.is_empty() {
        return Err(field_error(
            "invalid_params",
            field,
            format!("{field} must not be empty"),
        ));
    }
    if scopes.len() > limits.max_items {
        return Err(ApiError::unprocessable(
            "too_many_items",
            format!("{field} has too many items"),
        )
        .with_details(json!({ "field": field, "limit": limits.max_items })));
    }
    if let Some(scope) = scopes.iter().find(|s| !Scope::is_known_str(s)) {
        return Err(ApiError::bad_request(
            "invalid_scope",
            format!("unknown Instantly scope {scope:?}"),
        )
        .with_details(json!({ "field": field, "scope": scope })));
    }
    Ok(super::unique_in_order(scopes))
}

/// The deterministic name of the key an operation creates in a workspace: the requested name
/// plus a suffix from the operation id. The suffix is the *last* 12 hex digits of the id: the
/// ids are UUIDv7, whose leading digits are a timestamp that two operations created within the
/// same minute would share, while the trailing digits are random.
pub fn key_name(name: &str, operation_id: uuid::Uuid) -> String {
    let simple = operation_id.simple().to_string();
    format!("{name} [flotilla:{}]", &simple[simple.len() - 12..])
}

/// What `api_keys.create` does in one workspace.
pub enum CreateAction {
    /// Create the key and store its secret.
    Create,
    /// Delete these orphans (same name, secret never stored), then create and store.
    Recreate(Vec<String>),
}

/// `api_keys.create`: one key per workspace, its secret stored in the vault.
pub struct Create;

impl Create {
    /// Creates the key at Instantly and stores its secret as an issued credential at once.
    async fn create_and_store(
        ctx: &TargetCtx,
        params: &CreateParams,
        name: &str,
    ) -> Result<ApiKey, TargetError> {
        let req = CreateApiKey {
            name: name.to_string(),
            scopes: params.resolved_scopes(),
        };
        let created = ctx.client.create_api_key(&req).await?;
        let stored = async {
            let mut conn = ctx
                .vault
                .db()
                .pool()
                .acquire()
                .await
                .map_err(flotilla_vault::VaultError::from)?;
            ctx.vault
                .store(
                    &mut conn,
                    NewCredential {
                        workspace_id: ctx.workspace.id,
                        instantly_workspace_id: &ctx.workspace.instantly_workspace_id,
                        purpose: Purpose::Issued {
                            instantly_key_id: created.key.id.clone(),
                        },
                        source: CredentialSource::Direct(&created.secret),
                    },
                )
                .await
        }
        .await;
        if let Err(err) = stored {
            // The secret is lost with this attempt. Leave the orphan for the re-run to delete
            // (it finds the key by name and no vault row), and say so without the secret.
            tracing::warn!(operation.id = %ctx.operation.id, workspace.id = %ctx.workspace.id,
                key.id = %created.key.id, error = %err, "storing a created key failed; the re-run will recreate it");
            return Err(TargetError::transient(
                "vault_store_failed",
                format!("storing the created key failed: {err}"),
            ));
        }
        Ok(created.key)
    }
}

impl Kind for Create {
    const NAME: &'static str = "api_keys.create";
    type Params = CreateParams;
    type Action = CreateAction;

    fn validate(params: CreateParams, limits: &Limits) -> Result<CreateParams, ApiError> {
        let name = params.name.trim().to_string();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(field_error(
                "invalid_name",
                "params.name",
                format!(
                    "params.name must be 1-{MAX_NAME_LEN} characters without control characters"
                ),
            ));
        }
        match (params.scopes, params.preset) {
            (Some(_), Some(_)) | (None, None) => Err(field_error(
                "invalid_params",
                "params.scopes",
                "give exactly one of params.scopes and params.preset",
            )),
            (Some(scopes), None) => {
                Ok(CreateParams { name, scopes: Some(validate_scopes(scopes, "params.scopes", limits)?), preset: None })
            }
            (None, Some(preset)) => match preset_scopes(&preset) {
                Some(_) => Ok(CreateParams { name, scopes: None, preset: Some(preset) }),
                None => Err(ApiError::bad_request("invalid_preset", format!("unknown preset {preset:?}"))
                    .with_details(json!({ "field": "params.preset", "allowed": PRESETS.iter().map(|p| p.0).collect::<Vec<_>>() }))),
            },
        }
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &CreateParams,
    ) -> Result<Plan<CreateAction>, TargetError> {
        let name = key_name(&params.name, ctx.operation.id);
        let keys: Vec<ApiKey> = ctx.client.list_api_keys().try_collect().await?;
        let mut orphans = Vec::new();
        let mut plan = Plan::default();
        for key in keys.iter().filter(|k| k.name == name) {
            let stored = ctx
                .vault
                .find_issued(ctx.workspace.id, &key.id)
                .await
                .map_err(|e| TargetError::transient("vault_error", e.to_string()))?;
            if stored.is_some() {
                plan.unchanged.push(
                    Change::new(&name, "already_exists").with_detail(format!("key {}", key.id)),
                );
                return Ok(plan);
            }
            orphans.push(key.id.clone());
        }
        let scopes = params
            .resolved_scopes()
            .iter()
            .map(|s| s.as_str().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        if orphans.is_empty() {
            plan.actions.push((
                CreateAction::Create,
                Change::new(&name, "created").with_detail(scopes),
            ));
        } else {
            let detail = format!(
                "replacing orphan key(s) {} whose secret was never stored",
                orphans.join(", ")
            );
            plan.actions.push((
                CreateAction::Recreate(orphans),
                Change::new(&name, "recreated").with_detail(detail),
            ));
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        params: &CreateParams,
        action: &CreateAction,
    ) -> Result<Change, TargetError> {
        let name = key_name(&params.name, ctx.operation.id);
        let verb = match action {
            CreateAction::Create => "created",
            CreateAction::Recreate(orphans) => {
                for id in orphans {
                    match ctx.client.delete_api_key(id).await {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                "recreated"
            }
        };
        let key = Self::create_and_store(ctx, params, &name).await?;
        Ok(Change::new(&name, verb).with_detail(format!("key {}", key.id)))
    }
}

/// Params of `api_keys.revoke`: exactly one selector.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeParams {
    /// Instantly key ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ids: Option<Vec<String>>,
    /// Every key whose name starts with this (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Every key holding any of these scopes verbatim, e.g. `["all:all", "all:update"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_any: Option<Vec<String>>,
}

/// A key to revoke: (id, name).
pub type RevokeAction = (String, String);

/// Whether Instantly refused to delete a key because it is the calling key.
///
/// instantly-api.md §8 [UNK]: "whether a key can delete itself" is unknown. The simulator
/// refuses with 400 "An API key cannot delete itself"; we read a 400 whose message says so as
/// "this is Flotilla's own key". Any other refusal stays an item failure, so an unexpected
/// wording fails loudly rather than teaching Flotilla a wrong own-key id.
fn is_self_delete_refusal(err: &flotilla_instantly::Error) -> bool {
    let message = err.message().to_ascii_lowercase();
    err.status() == Some(400)
        && (message.contains("itself") || message.contains("own key") || message.contains("in use"))
}

/// `api_keys.revoke`: delete matching keys, never the one Flotilla uses.
///
/// Flotilla's own key is known by the access credential's `instantly_key_id`. Keys registered by
/// hand come without it, and Instantly lists keys with `key: ""` (instantly-api.md §13.5), so the
/// secret cannot be matched; then Instantly's refusal to let a key delete itself identifies it
/// ([`is_self_delete_refusal`]). The refusal is recorded as `skipped_own_credential` and the id is
/// remembered in the vault (`learn_access_key_id`), so the verification and later runs skip it
/// without asking. Until then a dry run cannot tell Flotilla's key apart and lists it as
/// `would_revoke`. Caveat: should Instantly allow a key to delete itself, a filter selecting
/// Flotilla's own unidentified key would revoke it; register keys with a known id to be safe.
pub struct Revoke;

impl Kind for Revoke {
    const NAME: &'static str = "api_keys.revoke";
    type Params = RevokeParams;
    type Action = RevokeAction;

    fn validate(params: RevokeParams, limits: &Limits) -> Result<RevokeParams, ApiError> {
        let given = [
            params.key_ids.is_some(),
            params.name_prefix.is_some(),
            params.scopes_any.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            let field = match (&params.key_ids, &params.name_prefix, &params.scopes_any) {
                (Some(_), _, _) => "params.key_ids",
                (None, Some(_), _) => "params.name_prefix",
                _ => "params.key_ids",
            };
            return Err(field_error(
                "invalid_params",
                field,
                "give exactly one of params.key_ids, params.name_prefix and params.scopes_any",
            ));
        }
        if let Some(ids) = params.key_ids {
            if ids.is_empty() {
                return Err(field_error(
                    "invalid_params",
                    "params.key_ids",
                    "params.key_ids must not be empty",
                ));
            }
            if ids.len() > limits.max_items {
                return Err(ApiError::unprocessable(
                    "too_many_items",
                    "params.key_ids has too many items",
                )
                .with_details(json!({ "field": "params.key_ids", "limit": limits.max_items })));
            }
            // instantly-api.md §1: ids are UUID strings; they go into a URL path.
            let ids = ids
                .iter()
                .map(|id| {
                    uuid::Uuid::parse_str(id)
                        .map(|u| u.hyphenated().to_string())
                        .map_err(|_| {
                            ApiError::bad_request(
                                "invalid_key_id",
                                format!("not an Instantly key id: {id:?}"),
                            )
                            .with_details(json!({ "field": "params.key_ids", "value": id }))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(RevokeParams {
                key_ids: Some(super::unique_in_order(ids)),
                name_prefix: None,
                scopes_any: None,
            });
        }
        if let Some(prefix) = params.name_prefix {
            if prefix.trim().is_empty() || prefix.len() > MAX_NAME_LEN {
                return Err(field_error(
                    "invalid_params",
                    "params.name_prefix",
                    format!("params.name_prefix must be 1-{MAX_NAME_LEN} characters"),
                ));
            }
            return Ok(RevokeParams {
                key_ids: None,
                name_prefix: Some(prefix),
                scopes_any: None,
            });
        }
        let scopes = validate_scopes(
            params.scopes_any.unwrap_or_default(),
            "params.scopes_any",
            limits,
        )?;
        Ok(RevokeParams {
            key_ids: None,
            name_prefix: None,
            scopes_any: Some(scopes),
        })
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &RevokeParams,
    ) -> Result<Plan<RevokeAction>, TargetError> {
        let own = ctx
            .vault
            .meta(ctx.workspace.id)
            .await
            .map_err(|e| TargetError::transient("vault_error", e.to_string()))?
            .and_then(|m| m.instantly_key_id);
        let keys: Vec<ApiKey> = ctx.client.list_api_keys().try_collect().await?;
        let mut plan = Plan::default();
        let selected: Vec<&ApiKey> = if let Some(ids) = &params.key_ids {
            let mut found = Vec::new();
            for id in ids {
                match keys.iter().find(|k| k.id.eq_ignore_ascii_case(id)) {
                    Some(key) => found.push(key),
                    None => plan.unchanged.push(Change::new(id, "not_found")),
                }
            }
            found
        } else if let Some(prefix) = &params.name_prefix {
            keys.iter()
                .filter(|k| k.name.starts_with(prefix.as_str()))
                .collect()
        } else {
            let scopes = params.scopes_any.as_deref().unwrap_or_default();
            keys.iter()
                .filter(|k| {
                    k.scopes
                        .iter()
                        .any(|s| scopes.iter().any(|w| w == s.as_str()))
                })
                .collect()
        };
        for key in selected {
            if own.as_deref() == Some(key.id.as_str()) {
                plan.unchanged.push(
                    Change::new(&key.id, "skipped_own_credential")
                        .with_detail(format!("{}: the key Flotilla itself uses", key.name)),
                );
            } else {
                plan.actions.push((
                    (key.id.clone(), key.name.clone()),
                    Change::new(&key.id, "revoked").with_detail(&key.name),
                ));
            }
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &RevokeParams,
        action: &RevokeAction,
    ) -> Result<Change, TargetError> {
        let (id, name) = action;
        let change = match ctx.client.delete_api_key(id).await {
            Ok(_) => Change::new(id, "revoked").with_detail(name),
            // Gone between our read and the delete: the wanted state holds.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Change::new(id, "not_found").with_detail("already gone")
            }
            Err(e) if is_self_delete_refusal(&e) => {
                let learned = ctx
                    .vault
                    .learn_access_key_id(ctx.workspace.id, id)
                    .await
                    .map_err(|e| TargetError::transient("vault_error", e.to_string()))?;
                tracing::info!(workspace.id = %ctx.workspace.id, key.id = %id, learned,
                    "Instantly refused to let Flotilla's key revoke itself; skipped");
                return Ok(
                    Change::new(id, "skipped_own_credential").with_detail(format!(
                        "{name}: Instantly refused (a key cannot revoke itself)"
                    )),
                );
            }
            Err(e) => return Err(e.into()),
        };
        // The key no longer exists: its issued credential (if Flotilla created it) goes too.
        let issued = ctx
            .vault
            .find_issued(ctx.workspace.id, id)
            .await
            .map_err(|e| TargetError::transient("vault_error", e.to_string()))?;
        if let Some(meta) = issued {
            let mut conn = ctx
                .vault
                .db()
                .pool()
                .acquire()
                .await
                .map_err(|e| TargetError::transient("vault_error", e.to_string()))?;
            ctx.vault
                .delete_credential(&mut conn, meta.id)
                .await
                .map_err(|e| TargetError::transient("vault_error", e.to_string()))?;
        }
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Area, Level, ROLES, level};

    const COLUMNS: [(Area, &str); 6] = [
        (Area::Campaigns, "campaigns"),
        (Area::Leads, "leads"),
        (Area::Accounts, "accounts"),
        (Area::Webhooks, "webhooks"),
        (Area::ApiKeys, "api_keys"),
        (Area::Members, "workspace_members"),
    ];

    #[test]
    fn presets_grant_exactly_the_matrix_columns() {
        assert_eq!(PRESETS.iter().map(|p| p.0).collect::<Vec<_>>(), ROLES);
        for (role, scopes) in PRESETS {
            for scope in *scopes {
                assert!(Scope::is_known_str(scope), "{role}: {scope}");
                let resource = scope.split_once(':').unwrap().0;
                assert!(
                    COLUMNS.iter().any(|(_, r)| *r == resource),
                    "{role}: {scope} is outside the matrix"
                );
            }
            for (area, resource) in COLUMNS {
                let mut actions: Vec<&str> = scopes
                    .iter()
                    .filter_map(|s| s.split_once(':'))
                    .filter(|(r, _)| *r == resource)
                    .map(|(_, a)| a)
                    .collect();
                actions.sort();
                let expected: Vec<&str> = match level(role, area) {
                    Level::None => vec![],
                    Level::View => vec!["read"],
                    Level::Operate if area == Area::Campaigns => vec!["read", "update"],
                    Level::Operate | Level::Create => vec!["create", "read"],
                    Level::Edit => vec!["create", "read", "update"],
                    Level::Full => vec!["all"],
                };
                assert_eq!(actions, expected, "{role} on {area:?}");
            }
        }
    }

    #[test]
    fn create_params_need_exactly_one_of_scopes_and_preset() {
        let limits = Limits { max_items: 10 };
        let p = |v: serde_json::Value| serde_json::from_value::<CreateParams>(v).unwrap();
        let err = Create::validate(p(json!({"name": "x"})), &limits).unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        let err = Create::validate(
            p(json!({"name": "x", "preset": "sdr", "scopes": ["leads:read"]})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        let err = Create::validate(
            p(json!({"name": "x", "scopes": ["leads:read", "leads:fly"]})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_scope");
        let err =
            Create::validate(p(json!({"name": "x", "preset": "owner"})), &limits).unwrap_err();
        assert_eq!(err.code(), "invalid_preset");
        let err = Create::validate(p(json!({"name": " ", "preset": "sdr"})), &limits).unwrap_err();
        assert_eq!(err.code(), "invalid_name");
        let ok =
            Create::validate(p(json!({"name": "CRM sync", "preset": "viewer"})), &limits).unwrap();
        assert_eq!(ok.resolved_scopes().len(), 3);
    }

    #[test]
    fn key_names_differ_between_operations_created_together() {
        let a = uuid::Uuid::now_v7();
        let b = uuid::Uuid::now_v7();
        assert_ne!(key_name("x", a), key_name("x", b));
        assert_eq!(key_name("x", a), key_name("x", a));
        assert!(key_name("CRM", a).starts_with("CRM [flotilla:"));
    }

    #[test]
    fn revoke_params_need_exactly_one_selector() {
        let limits = Limits { max_items: 10 };
        let p = |v: serde_json::Value| serde_json::from_value::<RevokeParams>(v).unwrap();
        assert_eq!(
            Revoke::validate(p(json!({})), &limits).unwrap_err().code(),
            "invalid_params"
        );
        assert_eq!(
            Revoke::validate(p(json!({"key_ids": [], "name_prefix": "x"})), &limits)
                .unwrap_err()
                .code(),
            "invalid_params"
        );
        assert_eq!(
            Revoke::validate(p(json!({"key_ids": ["nope"]})), &limits)
                .unwrap_err()
                .code(),
            "invalid_key_id"
        );
        assert_eq!(
            Revoke::validate(p(json!({"scopes_any": ["all:al"]})), &limits)
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
        assert!(Revoke::validate(p(json!({"scopes_any": ["all:all"]})), &limits).is_ok());
    }
}
