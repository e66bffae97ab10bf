//! Flotilla's own audit trail: one append-only `audit_event` row for every `/v1` request that
//! could change something (POST, PATCH, PUT, DELETE) and every refusal (401, 403), written by one
//! middleware ([`record`]) after the handler answered.
//!
//! A row holds when, which operator (from the token, as `authz::enforce` resolved it), the action
//! (from [`crate::authz::ROUTES`], plus `:<kind>` for operations), the workspace or operation
//! concerned (from the path, or from an [`AuditInfo`] the handler put in its response), the HTTP
//! status, the outcome (`ok`, `denied`, `error`) and the error code. Never a body, header or
//! message: bodies may carry Instantly API keys, and messages are free text.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use crate::api::AppState;
use crate::auth::Operator;
use crate::error::ErrorCode;
use crate::store::{Store, now_ms};

/// What a handler adds to its response for the audit trail (as an `axum::Extension`).
#[derive(Debug, Clone, Default)]
pub struct AuditInfo {
    /// The operation kind, appended to the action (`operations.create:members.invite`).
    pub kind: Option<String>,
    /// The operation created or acted on.
    pub operation_id: Option<Uuid>,
    /// The workspaces concerned (e.g. the one just registered).
    pub workspace_ids: Vec<Uuid>,
    /// Extra ids (never a secret), e.g. `{"retry_of": …}`.
    pub detail: Option<Value>,
}

/// One audit event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Id (UUID v7).
    pub id: Uuid,
    /// When (unix ms).
    pub at: i64,
    /// Operator, when the token was valid.
    pub operator_id: Option<Uuid>,
    /// Operator name at the time.
    pub operator_name: Option<String>,
    /// Stable action name, e.g. `workspaces.register`.
    pub action: String,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// HTTP status answered.
    pub status: i64,
    /// Operation concerned.
    pub operation_id: Option<Uuid>,
    /// Workspaces concerned.
    pub workspace_ids: Vec<Uuid>,
    /// Error code, missing permission, other ids.
    pub detail: Option<Value>,
}

/// `ok` for 2xx/3xx, `denied` for 401/403, `error` otherwise.
pub fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => "denied",
        s if s < 400 => "ok",
        _ => "error",
    }
}

fn is_mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    )
}

/// The `{id}` of `path` where `pattern` has it.
fn path_id(pattern: &str, path: &str) -> Option<Uuid> {
    pattern
        .split('/')
        .zip(path.split('/'))
        .find(|(p, _)| *p == "{id}")
        .and_then(|(_, v)| Uuid::parse_str(v).ok())
}

/// The audit middleware (a `route_layer` on `/v1`, outside `authz::enforce` so that it sees
/// its 401s and 403s).
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    if !is_mutating(&method)
        && status != StatusCode::UNAUTHORIZED
        && status != StatusCode::FORBIDDEN
    {
        return resp;
    }
    let pattern = pattern.unwrap_or_else(|| path.clone());
    let info = resp
        .extensions()
        .get::<AuditInfo>()
        .cloned()
        .unwrap_or_default();
    let operator = resp.extensions().get::<Operator>();
    let mut action = match crate::authz::route(&method, &pattern) {
        Some(r) => r.action.to_string(),
        None => format!("{method} {pattern}"),
    };
    if let Some(kind) = &info.kind {
        action = format!("{action}:{kind}");
    }
    let id_in_path = path_id(&pattern, &path);
    let mut workspace_ids = info.workspace_ids.clone();
    let mut operation_id = info.operation_id;
    let mut detail = info.detail.clone().unwrap_or_else(|| json!({}));
    match pattern.split('/').nth(2) {
        Some("workspaces") => {
            workspace_ids.extend(id_in_path.filter(|id| !workspace_ids.contains(id)))
        }
        Some("operations") => operation_id = operation_id.or(id_in_path),
        Some("operators") => {
            if let Some(id) = id_in_path {
                detail["operator_id"] = json!(id);
            }
        }
        _ => {}
    }
    if let Some(code) = resp.extensions().get::<ErrorCode>() {
        detail["code"] = json!(code.code);
        if let Some(p) = &code.permission {
            detail["permission"] = json!(p);
        }
    }
    let event = AuditEvent {
        id: Uuid::now_v7(),
        at: now_ms(),
        operator_id: operator.map(|o| o.id),
        operator_name: operator.map(|o| o.name.clone()),
        action,
        outcome: outcome(status).to_string(),
        status: i64::from(status.as_u16()),
        operation_id,
        workspace_ids,
        detail: detail
            .as_object()
            .is_some_and(|o| !o.is_empty())
            .then_some(detail),
    };
    // The effect (if any) has happened; failing the answer now would only hide it. The gap is
    // logged loudly and counted instead.
    if let Err(err) = insert(&state.store, &event).await {
        metrics::counter!("flotilla_audit_write_failures_total").increment(1);
        tracing::error!(error = %err, action = %event.action, status = event.status, "audit event not recorded");
    }
    resp
}

/// Appends one event.
pub async fn insert(store: &Store, e: &AuditEvent) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_event (id, at, operator_id, operator_name, action, outcome, status, operation_id, \
         workspace_ids, detail) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(e.id.to_string())
    .bind(e.at)
    .bind(e.operator_id.map(|u| u.to_string()))
    .bind(e.operator_name.clone())
    .bind(&e.action)
    .bind(&e.outcome)
    .bind(e.status)
    .bind(e.operation_id.map(|u| u.to_string()))
    .bind(serde_json::to_string(&e.workspace_ids).expect("ids serialise"))
    .bind(e.detail.as_ref().map(Value::to_string))
    .execute(store.db().pool())
    .await?;
    Ok(())
}

/// Filter of [`list`].
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only this operator's events.
    pub operator_id: Option<Uuid>,
    /// Only this action, or the actions it prefixes before a `:` (`operations.create` matches
    /// `operations.create:members.invite`).
    pub action: Option<String>,
    /// At or after (unix ms).
    pub since: Option<i64>,
    /// Before (unix ms).
    pub until: Option<i64>,
}

fn parse_uuid(s: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A page of events, newest first, strictly before `cursor` (`(at, id)`).
pub async fn list(
    store: &Store,
    filter: &AuditFilter,
    cursor: Option<(i64, Uuid)>,
    limit: usize,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    #[derive(Clone)]
    enum B {
        S(String),
        I(i64),
    }
    let mut binds: Vec<B> = Vec::new();
    let mut sql = String::from("select * from audit_event where 1 = 1");
    if let Some((at, id)) = cursor {
        binds.push(B::I(at));
        binds.push(B::S(id.to_string()));
        let (a, i) = (binds.len() - 1, binds.len());
        sql += &format!(" and (at < ${a} or (at = ${a} and id < ${i}))");
    }
    if let Some(op) = filter.operator_id {
        binds.push(B::S(op.to_string()));
        sql += &format!(" and operator_id = ${}", binds.len());
    }
    if let Some(action) = &filter.action {
        binds.push(B::S(action.clone()));
        // Actions are [a-z0-9_.:] (checked by the handler); only `_` needs escaping for LIKE.
        binds.push(B::S(format!("{}:%", action.replace('_', "\\_"))));
        sql += &format!(
            " and (action = ${} or action like ${} escape '\\')",
            binds.len() - 1,
            binds.len()
        );
    }
    if let Some(since) = filter.since {
        binds.push(B::I(since));
        sql += &format!(" and at >= ${}", binds.len());
    }
    if let Some(until) = filter.until {
        binds.push(B::I(until));
        sql += &format!(" and at < ${}", binds.len());
    }
    sql += &format!(" order by at desc, id desc limit {limit}");
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = match b {
            B::S(s) => query.bind(s),
            B::I(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(store.db().pool()).await?;
    rows.iter()
        .map(|row| {
            let operator_id: Option<String> = row.try_get("operator_id")?;
            let operation_id: Option<String> = row.try_get("operation_id")?;
            let workspace_ids: String = row.try_get("workspace_ids")?;
            let detail: Option<String> = row.try_get("detail")?;
            Ok(AuditEvent {
                id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                at: row.try_get("at")?,
                operator_id: operator_id.as_deref().map(parse_uuid).transpose()?,
                operator_name: row.try_get("operator_name")?,
                action: row.try_get("action")?,
                outcome: row.try_get("outcome")?,
                status: row.try_get("status")?,
                operation_id: operation_id.as_deref().map(parse_uuid).transpose()?,
                workspace_ids: serde_json::from_str(&workspace_ids).unwrap_or_default(),
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_path_ids() {
        assert_eq!(outcome(StatusCode::CREATED), "ok");
        assert_eq!(outcome(StatusCode::NO_CONTENT), "ok");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "denied");
        assert_eq!(outcome(StatusCode::FORBIDDEN), "denied");
        assert_eq!(outcome(StatusCode::NOT_FOUND), "error");
        assert_eq!(outcome(StatusCode::UNPROCESSABLE_ENTITY), "error");
        let id = Uuid::now_v7();
        assert_eq!(
            path_id(
                "/v1/operations/{id}/cancel",
                &format!("/v1/operations/{id}/cancel")
            ),
            Some(id)
        );
        assert_eq!(
            path_id("/v1/workspaces/{id}", "/v1/workspaces/not-a-uuid"),
            None
        );
        assert_eq!(path_id("/v1/workspaces", "/v1/workspaces"), None);
    }
}
