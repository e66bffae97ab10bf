//! `/v1/operators`: Flotilla's own users (admins only, see `authz::ROUTES`). A token is shown
//! once, in the answer to `POST`; only its SHA-256 hash is stored, and no answer shows either.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    ApiJson, ApiQuery, AppState, Page, PageParams, parse_id, ts, validate_labels, validate_name,
};
use crate::audit::AuditInfo;
use crate::auth::{self, Operator, OperatorRow};
use crate::authz::ROLES;
use crate::error::{ApiError, ApiResult};

/// Body of `POST /v1/operators`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperator {
    /// Display name (1 to 200 characters, not blank, no control characters).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// `admin`, `manager`, `sdr` or `viewer`.
    #[schema(pattern = "^(admin|manager|sdr|viewer)$")]
    pub role: String,
    /// Label scope: the operator sees and acts only on workspaces carrying one of these.
    /// Empty (the default) = every workspace.
    #[serde(default)]
    #[schema(schema_with = super::labels_schema)]
    pub labels: Vec<String>,
}

/// An operator (never its token or the token's hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Label scope (empty = every workspace).
    pub labels: Vec<String>,
    /// The bootstrap admin (its token is `FLOTILLA_ADMIN_TOKEN`).
    pub bootstrap: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Revoked (its token no longer works).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The answer to `POST /v1/operators`: the operator and its token, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedOperator {
    /// The operator.
    #[serde(flatten)]
    pub operator: OperatorView,
    /// Bearer token; only its hash is stored, so it cannot be shown again.
    pub token: String,
}

fn view(o: OperatorRow) -> OperatorView {
    OperatorView {
        id: o.id,
        name: o.name,
        role: o.role,
        labels: o.labels,
        bootstrap: o.bootstrap,
        created_at: ts(o.created_at),
        revoked_at: o.revoked_at.map(ts),
    }
}

/// Validates a role name.
pub fn validate_role(role: &str) -> ApiResult<String> {
    if ROLES.contains(&role) {
        return Ok(role.to_string());
    }
    Err(
        ApiError::unprocessable("invalid_role", format!("role must be one of {ROLES:?}"))
            .with_details(json!({ "field": "role", "allowed": ROLES })),
    )
}

/// Create an operator; the answer holds its token, shown once.
#[utoipa::path(post, path = "/v1/operators", request_body = CreateOperator, tag = "operators", responses(
    (status = 201, description = "created; `token` is shown only here", body = CreatedOperator),
    (status = 403, description = "not an admin", body = super::ErrorBody),
    (status = 422, description = "invalid name, role or labels", body = super::ErrorBody),
))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Operator,
    ApiJson(body): ApiJson<CreateOperator>,
) -> ApiResult<impl IntoResponse> {
    let name = validate_name(&body.name, "name")?;
    let role = validate_role(&body.role)?;
    let labels = validate_labels(&body.labels, "labels")?;
    let token = auth::new_token();
    let id = auth::insert_operator(&state.store, &name, &role, &labels, &token, false).await?;
    tracing::info!(operator.id = %id, role = %role, "operator created");
    let row = auth::operator(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("operator"))?;
    let info = AuditInfo {
        detail: Some(json!({ "operator_id": id, "role": role })),
        ..Default::default()
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/operators/{id}"))],
        axum::Extension(info),
        Json(CreatedOperator {
            operator: view(row),
            token: token.expose_secret().to_string(),
        }),
    ))
}

/// List operators (revoked ones included, with `revoked_at`).
#[utoipa::path(get, path = "/v1/operators", params(PageParams), tag = "operators", responses(
    (status = 200, description = "a page of operators", body = Page<OperatorView>),
    (status = 403, description = "not an admin", body = super::ErrorBody),
))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Operator,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<OperatorView>>> {
    let limit = q.limit()?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| parse_id(c, "cursor"))
        .transpose()?;
    let mut rows = auth::list_operators(&state.store, cursor, limit + 1).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|o| o.id.to_string())
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor: next,
    }))
}

/// Read one operator.
#[utoipa::path(get, path = "/v1/operators/{id}", params(("id" = Uuid, Path)), tag = "operators", responses(
    (status = 200, description = "the operator", body = OperatorView),
    (status = 404, description = "no such operator", body = super::ErrorBody),
))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<OperatorView>> {
    let id = parse_id(&id, "operator")?;
    let row = auth::operator(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("operator"))?;
    Ok(Json(view(row)))
}

/// Revoke an operator at once: its token's next request is refused (401). Revoking an already
/// revoked operator is a no-op (204). The last live unscoped admin cannot be revoked (409).
#[utoipa::path(delete, path = "/v1/operators/{id}", params(("id" = Uuid, Path)), tag = "operators", responses(
    (status = 204, description = "revoked"),
    (status = 404, description = "no such operator", body = super::ErrorBody),
    (status = 409, description = "the last admin", body = super::ErrorBody),
))]
pub async fn revoke(
    State(state): State<AppState>,
    _admin: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "operator")?;
    let row = auth::operator(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("operator"))?;
    if row.revoked_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Without an unscoped admin nobody could manage workspaces or operators any more.
    if row.role == "admin"
        && row.labels.is_empty()
        && auth::other_full_admins(&state.store, id).await? == 0
    {
        return Err(ApiError::conflict(
            "last_admin",
            "this is the last admin with access to every workspace",
        ));
    }
    auth::revoke_operator(&state.store, id).await?;
    tracing::info!(operator.id = %id, "operator revoked");
    Ok(StatusCode::NO_CONTENT)
}
