//! `GET /v1/audit`: Flotilla's own audit trail, newest first (admins only, see `authz::ROUTES`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiQuery, AppState, Page, PageParams, parse_id, ts};
use crate::audit::{self, AuditFilter};
use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};

/// One audit event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    /// Id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Operator (absent for a request without a valid token).
    pub operator_id: Option<Uuid>,
    /// Operator name at the time.
    pub operator_name: Option<String>,
    /// Stable action name, e.g. `workspaces.register`, `operations.create:members.invite`.
    pub action: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// HTTP status answered.
    pub status: i64,
    /// The operation created or acted on.
    pub operation_id: Option<Uuid>,
    /// The workspaces concerned.
    pub workspace_ids: Vec<Uuid>,
    /// Error code, missing permission (`permission`), other ids.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only this operator's events.
    pub operator_id: Option<String>,
    /// Only this action; an action before `:` also matches its kinds (`operations.create`).
    pub action: Option<String>,
    /// At or after this time (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

fn time(raw: &Option<String>, field: &'static str) -> ApiResult<Option<i64>> {
    raw.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_time",
                        format!("{field} must be an RFC 3339 time"),
                    )
                    .with_details(json!({ "field": field }))
                })
        })
        .transpose()
}

fn parse_cursor(raw: &str) -> ApiResult<(i64, Uuid)> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not valid");
    let (at, id) = raw.split_once('_').ok_or_else(bad)?;
    Ok((
        at.parse().map_err(|_| bad())?,
        Uuid::parse_str(id).map_err(|_| bad())?,
    ))
}

/// Flotilla's audit trail: every request that changed something or was refused, newest first.
/// Admins only. A label-scoped admin sees only events whose workspaces and operation are all
/// within their scope.
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), tag = "audit", responses(
    (status = 200, description = "a page of audit events, newest first", body = Page<AuditEventView>),
    (status = 400, description = "bad filter", body = super::ErrorBody),
    (status = 403, description = "not an admin", body = super::ErrorBody),
))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEventView>>> {
    let limit = PageParams {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let mut cursor = q.cursor.as_deref().map(parse_cursor).transpose()?;
    if let Some(a) = &q.action
        && (a.is_empty()
            || a.len() > 100
            || !a
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:".contains(c)))
    {
        return Err(ApiError::bad_request(
            "invalid_action",
            "action must be like operations.create or workspaces.register",
        )
        .with_details(json!({ "field": "action" })));
    }
    let filter = AuditFilter {
        operator_id: q
            .operator_id
            .as_deref()
            .map(|s| parse_id(s, "operator"))
            .transpose()?,
        action: q.action.clone(),
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
    };
    let visible = operator.visible_labels();
    let visible_ids = match visible {
        Some(_) => Some(state.store.visible_workspace_ids(visible).await?),
        None => None,
    };
    let mut items = Vec::new();
    // A scoped admin's page is filled from as many batches as it takes.
    loop {
        let batch = audit::list(&state.store, &filter, cursor, limit + 1).await?;
        let exhausted = batch.len() <= limit;
        for e in batch {
            cursor = Some((e.at, e.id));
            if let Some(ids) = &visible_ids {
                let ws_ok = e.workspace_ids.iter().all(|w| ids.contains(w));
                let op_ok = match e.operation_id {
                    Some(op) => state.store.operation_visible(op, visible).await?,
                    None => true,
                };
                if !(ws_ok && op_ok) {
                    continue;
                }
            }
            items.push(e);
            if items.len() > limit {
                break;
            }
        }
        if exhausted || items.len() > limit {
            break;
        }
    }
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| format!("{}_{}", e.at, e.id))
    } else {
        None
    };
    let items = items
        .into_iter()
        .map(|e| AuditEventView {
            id: e.id,
            at: ts(e.at),
            operator_id: e.operator_id,
            operator_name: e.operator_name,
            action: e.action,
            outcome: e.outcome,
            status: e.status,
            operation_id: e.operation_id,
            workspace_ids: e.workspace_ids,
            detail: e.detail,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}
