//! `/v1/workspaces`: register client workspaces (verified live), list, read, relabel, remove.

use std::fmt;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use flotilla_instantly::{Client, ClientConfig, ErrorKind};
use flotilla_vault::{CredentialMeta, CredentialSource, NewCredential, Purpose, Vault};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::{
    ApiJson, ApiQuery, AppState, Page, PageParams, parse_id, ts, validate_labels, validate_name,
};
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult, on_constraint};
use crate::store::{Store, WorkspaceFilter, WorkspaceRow, now_ms};

/// An Instantly API key in a request body: held as a `SecretString` from the moment it is
/// parsed, so it cannot reach a log or an error message.
pub struct ApiKeyInput(pub SecretString);

impl fmt::Debug for ApiKeyInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyInput([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for ApiKeyInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(ApiKeyInput(SecretString::from(raw)))
    }
}

impl utoipa::PartialSchema for ApiKeyInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "The workspace's Instantly API key (write-only; never returned)",
            ))
            .min_length(Some(1))
            .max_length(Some(512))
            .into()
    }
}

impl utoipa::ToSchema for ApiKeyInput {}

/// Checks the shape of a key before any network call.
fn check_key_shape(key: &SecretString) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    let k = key.expose_secret();
    if k.is_empty() || k.len() > 512 || !k.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "invalid_api_key",
            "api_key must be 1-512 printable ASCII characters without spaces",
        )
        .with_details(serde_json::json!({ "field": "api_key" })));
    }
    Ok(())
}

/// Body of `POST /v1/workspaces`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWorkspace {
    /// Display name (1 to 200 characters, not blank, no control characters).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// The workspace's own Instantly API key.
    pub api_key: ApiKeyInput,
    /// Labels, e.g. `["east", "tier-1"]`.
    #[serde(default)]
    #[schema(schema_with = super::labels_schema)]
    pub labels: Vec<String>,
}

/// Body of `PATCH /v1/workspaces/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWorkspace {
    /// New name (1 to 200 characters, not blank, no control characters).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    /// New labels (replace the old ones).
    pub labels: Option<Vec<String>>,
}

/// Body of `PUT /v1/workspaces/{id}/credential`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    /// The new API key for the same Instantly workspace.
    pub api_key: ApiKeyInput,
}

/// Key metadata (never the key).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialInfo {
    /// `sha256:` + 16 hex characters of the key.
    pub fingerprint: Option<String>,
    /// Instantly's id of the key, when Flotilla created it.
    pub instantly_key_id: Option<String>,
    /// When stored.
    pub created_at: DateTime<Utc>,
    /// When last verified live.
    pub last_verified_at: Option<DateTime<Utc>>,
}

/// A client workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    /// Flotilla's id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The Instantly workspace it is bound to.
    pub instantly_workspace_id: String,
    /// `direct` (its own key) or `delegated` (through an admin workspace).
    pub mode: String,
    /// The admin workspace of a delegated workspace.
    pub admin_workspace_id: Option<Uuid>,
    /// Labels.
    pub labels: Vec<String>,
    /// The stored credential's metadata.
    pub credential: Option<CredentialInfo>,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// The API view of a workspace row and its credential's metadata.
pub(crate) fn view(ws: WorkspaceRow, meta: Option<CredentialMeta>) -> Workspace {
    Workspace {
        id: ws.id,
        name: ws.name,
        instantly_workspace_id: ws.instantly_workspace_id,
        mode: ws.mode,
        admin_workspace_id: ws.admin_workspace_id,
        labels: ws.labels,
        credential: meta.map(|m| CredentialInfo {
            fingerprint: m.fingerprint,
            instantly_key_id: m.instantly_key_id,
            created_at: m.created_at,
            last_verified_at: m.last_verified_at,
        }),
        created_at: ts(ws.created_at),
        updated_at: ts(ws.updated_at),
    }
}

const INSTANTLY_ID_UNIQUE: &[&str] =
    &["workspace_instantly_id", "workspace.instantly_workspace_id"];

/// Calls `GET /workspaces/current` with `key` and returns the Instantly workspace id it acts on.
pub async fn verify_key(state: &AppState, key: &SecretString) -> Result<String, ApiError> {
    let config = ClientConfig::new(state.config.instantly_base_url.clone(), key.clone());
    let client =
        Client::with_http(config, state.http.clone()).map_err(|e| ApiError::Internal(e.into()))?;
    match client.current_workspace().await {
        Ok(ws) => Ok(ws.id),
        Err(err) => Err(match err.kind() {
            ErrorKind::Unauthorized => {
                ApiError::unprocessable("invalid_api_key", "Instantly refused this API key (401)")
            }
            ErrorKind::Forbidden => ApiError::unprocessable(
                "api_key_lacks_scope",
                "this API key may not read the workspace (it needs workspaces:read)",
            ),
            ErrorKind::PaymentRequired => ApiError::unprocessable(
                "workspace_not_paid",
                "Instantly says this workspace has no active paid plan (402)",
            ),
            ErrorKind::RateLimited
            | ErrorKind::Server
            | ErrorKind::Transport
            | ErrorKind::Timeout => {
                ApiError::Upstream(format!("verifying the key failed: {:?}", err.kind()))
            }
            _ => ApiError::unprocessable(
                "api_key_verification_failed",
                format!("verifying the key failed: {}", err.message()),
            ),
        }),
    }
}

async fn load(store: &Store, vault: &Vault, id: Uuid, operator: &Operator) -> ApiResult<Workspace> {
    let ws = store
        .workspace(id, operator.visible_labels())
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let meta = vault.meta(id).await?;
    Ok(view(ws, meta))
}

/// Register a client workspace with its own API key, verified live.
#[utoipa::path(post, path = "/v1/workspaces", request_body = RegisterWorkspace, tag = "workspaces", responses(
    (status = 201, description = "registered", body = Workspace),
    (status = 409, description = "workspace or key already registered", body = super::ErrorBody),
    (status = 422, description = "invalid input or key refused by Instantly", body = super::ErrorBody),
))]
pub async fn register(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<RegisterWorkspace>,
) -> ApiResult<impl IntoResponse> {
    let name = validate_name(&body.name, "name")?;
    let labels = validate_labels(&body.labels, "labels")?;
    let key = body.api_key.0;
    check_key_shape(&key)?;
    let fingerprint = Vault::fingerprint(&key);
    if state
        .vault
        .find_by_fingerprint(&fingerprint)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "duplicate_api_key",
            "this API key is already registered",
        ));
    }
    let instantly_id = verify_key(&state, &key).await?;
    let now = now_ms();
    let row = WorkspaceRow {
        id: Uuid::now_v7(),
        name,
        instantly_workspace_id: instantly_id.clone(),
        mode: "direct".into(),
        admin_workspace_id: None,
        labels,
        created_at: now,
        updated_at: now,
    };
    let already = || {
        ApiError::conflict(
            "workspace_already_registered",
            "this Instantly workspace is already registered",
        )
    };
    let mut tx = state.store.begin_write().await?;
    Store::insert_workspace(&mut tx, &row)
        .await
        .map_err(on_constraint(INSTANTLY_ID_UNIQUE, already()))?;
    state
        .vault
        .store(
            &mut tx,
            NewCredential {
                workspace_id: row.id,
                instantly_workspace_id: &instantly_id,
                purpose: Purpose::Access,
                source: CredentialSource::Direct(&key),
            },
        )
        .await?;
    tx.commit()
        .await
        .map_err(on_constraint(INSTANTLY_ID_UNIQUE, already()))?;
    state.vault.mark_verified(row.id).await?;
    tracing::info!(workspace.id = %row.id, instantly.workspace = %instantly_id, "workspace registered");
    let ws = load(&state.store, &state.vault, row.id, &operator).await?;
    let audit = crate::audit::AuditInfo {
        workspace_ids: vec![ws.id],
        ..Default::default()
    };
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("/v1/workspaces/{}", ws.id),
        )],
        axum::Extension(audit),
        Json(ws),
    ))
}

/// Query of `GET /v1/workspaces`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only `direct` or `delegated` workspaces.
    pub mode: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// List client workspaces.
#[utoipa::path(get, path = "/v1/workspaces", params(ListQuery), tag = "workspaces", responses(
    (status = 200, description = "a page of workspaces", body = Page<Workspace>),
))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Workspace>>> {
    let limit = PageParams {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| parse_id(c, "cursor"))
        .transpose()?;
    if let Some(mode) = &q.mode
        && mode != "direct"
        && mode != "delegated"
    {
        return Err(ApiError::bad_request(
            "invalid_mode",
            "mode must be direct or delegated",
        ));
    }
    let filter = WorkspaceFilter {
        label: q.label.clone(),
        mode: q.mode.clone(),
        visible_labels: operator.visible_labels().map(<[String]>::to_vec),
    };
    let mut rows = state
        .store
        .list_workspaces(&filter, cursor, limit + 1)
        .await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|w| w.id.to_string())
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for ws in rows {
        let meta = state.vault.meta(ws.id).await?;
        items.push(view(ws, meta));
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// Read one workspace.
#[utoipa::path(get, path = "/v1/workspaces/{id}", params(("id" = Uuid, Path)), tag = "workspaces", responses(
    (status = 200, description = "the workspace", body = Workspace),
    (status = 404, description = "no such workspace", body = super::ErrorBody),
))]
pub async fn get_one(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Workspace>> {
    let id = parse_id(&id, "workspace")?;
    Ok(Json(load(&state.store, &state.vault, id, &operator).await?))
}

/// Rename or relabel a workspace.
#[utoipa::path(patch, path = "/v1/workspaces/{id}", params(("id" = Uuid, Path)), request_body = PatchWorkspace,
    tag = "workspaces", responses(
    (status = 200, description = "updated", body = Workspace),
    (status = 404, description = "no such workspace", body = super::ErrorBody),
))]
pub async fn patch(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchWorkspace>,
) -> ApiResult<Json<Workspace>> {
    let id = parse_id(&id, "workspace")?;
    let name = body
        .name
        .as_deref()
        .map(|n| validate_name(n, "name"))
        .transpose()?;
    let labels = body
        .labels
        .as_deref()
        .map(|l| validate_labels(l, "labels"))
        .transpose()?;
    state
        .store
        .workspace(id, operator.visible_labels())
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let mut tx = state.store.begin_write().await?;
    if let Some(name) = &name {
        Store::update_workspace_name(&mut tx, id, name).await?;
    }
    if let Some(labels) = &labels {
        Store::set_labels(&mut tx, id, labels).await?;
        Store::touch_workspace(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(Json(load(&state.store, &state.vault, id, &operator).await?))
}

/// Query of `DELETE /v1/workspaces/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Also remove the delegated workspaces that act through this (admin) workspace.
    #[serde(default)]
    pub cascade: bool,
}

/// Remove a workspace; its stored credential is destroyed (crypto-shredded).
#[utoipa::path(delete, path = "/v1/workspaces/{id}", params(("id" = Uuid, Path), DeleteQuery), tag = "workspaces",
    responses(
    (status = 204, description = "removed"),
    (status = 404, description = "no such workspace", body = super::ErrorBody),
    (status = 409, description = "delegated workspaces depend on it", body = super::ErrorBody),
))]
pub async fn delete(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "workspace")?;
    state
        .store
        .workspace(id, operator.visible_labels())
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    let dependents = state.store.delegated_of(id).await?;
    if !dependents.is_empty() && !q.cascade {
        return Err(ApiError::conflict(
            "has_delegated_workspaces",
            format!("{} delegated workspace(s) act through this one; pass ?cascade=true to remove them too", dependents.len()),
        )
        .with_details(serde_json::json!({ "delegated_workspaces": dependents })));
    }
    let mut tx = state.store.begin_write().await?;
    for dep in dependents.iter().chain(std::iter::once(&id)) {
        state.vault.delete_workspace(&mut tx, *dep).await?;
        Store::delete_workspace(&mut tx, *dep).await?;
    }
    tx.commit().await?;
    tracing::info!(workspace.id = %id, removed_delegated = dependents.len(), "workspace removed; credential shredded");
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a workspace's stored key (verified live; must act on the same Instantly workspace).
#[utoipa::path(put, path = "/v1/workspaces/{id}/credential", params(("id" = Uuid, Path)), request_body = PutCredential,
    tag = "workspaces", responses(
    (status = 200, description = "replaced", body = Workspace),
    (status = 404, description = "no such workspace", body = super::ErrorBody),
    (status = 422, description = "key refused or bound to another workspace", body = super::ErrorBody),
))]
pub async fn put_credential(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PutCredential>,
) -> ApiResult<Json<Workspace>> {
    let id = parse_id(&id, "workspace")?;
    let ws = state
        .store
        .workspace(id, operator.visible_labels())
        .await?
        .ok_or_else(|| ApiError::not_found("workspace"))?;
    if ws.mode != "direct" {
        return Err(ApiError::unprocessable(
            "delegated_workspace",
            "a delegated workspace has no key of its own; replace the admin workspace's credential",
        ));
    }
    let key = body.api_key.0;
    check_key_shape(&key)?;
    if let Some(existing) = state
        .vault
        .find_by_fingerprint(&Vault::fingerprint(&key))
        .await?
        && existing.workspace_id != id
    {
        return Err(ApiError::conflict(
            "duplicate_api_key",
            "this API key is registered for another workspace",
        ));
    }
    let instantly_id = verify_key(&state, &key).await?;
    if instantly_id != ws.instantly_workspace_id {
        return Err(ApiError::unprocessable(
            "workspace_mismatch",
            "this key belongs to a different Instantly workspace than the one registered",
        ));
    }
    let mut tx = state.store.begin_write().await?;
    state.vault.replace_access(&mut tx, id, &key, None).await?;
    Store::touch_workspace(&mut tx, id).await?;
    tx.commit().await?;
    state.vault.mark_verified(id).await?;
    Ok(Json(load(&state.store, &state.vault, id, &operator).await?))
}
