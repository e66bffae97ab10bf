//! `/v1/operations`: start bulk operations (202), follow them, cancel and retry them.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{ApiJson, ApiQuery, AppState, Page, PageParams, parse_id, ts, validate_labels};
use crate::auth::Operator;
use crate::authz;
use crate::engine::kinds::{self, Limits};
use crate::engine::{Change, Tolerance};
use crate::error::{ApiError, ApiResult};
use crate::store::{NewOperation, OperationRow, TargetRow, op_status, state as tstate};

/// Which workspaces an operation targets. Resolved and frozen when the operation is created.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Explicit workspace ids.
    #[serde(default)]
    pub workspaces: Vec<Uuid>,
    /// Workspaces carrying these labels (any of them, or all with `label_match: "all"`).
    #[serde(default)]
    #[schema(schema_with = super::labels_schema)]
    pub labels: Vec<String>,
    /// `any` (default) or `all`.
    #[serde(default)]
    #[schema(pattern = "^(any|all)$")]
    pub label_match: Option<String>,
    /// Every workspace the operator can see.
    #[serde(default)]
    pub all: bool,
    /// Workspaces to leave out.
    #[serde(default)]
    pub exclude: Vec<Uuid>,
}

/// Body of `POST /v1/operations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperation {
    /// The kind, e.g. `members.invite`.
    pub kind: String,
    /// Target workspaces.
    pub targets: TargetSpec,
    /// Kind-specific params.
    #[schema(value_type = Object)]
    pub params: Value,
    /// Read and diff only; write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Most targets of this operation running at once.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_concurrency: Option<i64>,
    /// Stop once more than this many targets failed: a count (`3`) or a percentage (`"10%"`).
    #[schema(value_type = Option<Object>)]
    pub failure_tolerance: Option<Value>,
}

/// Progress figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// Targets finished (any terminal state).
    pub done: i64,
    /// Targets in all.
    pub total: i64,
    /// Finished targets per second since the first started.
    pub rate_per_second: Option<f64>,
    /// Estimated seconds left at that rate.
    pub eta_seconds: Option<f64>,
}

/// An operation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Operation {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// `pending`, `running`, `succeeded`, `partially_succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Why it stopped early: `cancelled` or `failure_tolerance`.
    pub stop_reason: Option<String>,
    /// Dry run.
    pub dry_run: bool,
    /// Params as validated.
    #[schema(value_type = Object)]
    pub params: Value,
    /// The target spec as submitted.
    #[schema(value_type = Object)]
    pub targets: Value,
    /// Targets per state.
    pub counts: BTreeMap<String, i64>,
    /// Progress.
    pub progress: Progress,
    /// Per-operation concurrency.
    pub max_concurrency: Option<i64>,
    /// Failure tolerance as submitted.
    #[schema(value_type = Option<Object>)]
    pub failure_tolerance: Option<Value>,
    /// The operation this one retries.
    pub retry_of: Option<Uuid>,
    /// Operator who started it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// First target started.
    pub started_at: Option<DateTime<Utc>>,
    /// Last target finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One workspace's part of an operation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Target {
    /// Workspace.
    pub workspace_id: Uuid,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped` or `cancelled`.
    pub state: String,
    /// Attempts started.
    pub attempts: i64,
    /// Stable result code.
    pub code: Option<String>,
    /// Human message.
    pub message: Option<String>,
    /// Per-item changes.
    pub changes: Vec<Change>,
    /// Next attempt (pending targets).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// First started.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

fn target_view(t: TargetRow) -> Target {
    let changes = t
        .changes
        .and_then(|c| serde_json::from_value::<Vec<Change>>(c).ok())
        .unwrap_or_default();
    Target {
        workspace_id: t.workspace_id,
        next_attempt_at: (t.state == tstate::PENDING).then(|| ts(t.next_attempt_at)),
        state: t.state,
        attempts: t.attempts,
        code: t.code,
        message: t.message,
        changes,
        started_at: t.started_at.map(ts),
        finished_at: t.finished_at.map(ts),
    }
}

/// The operation as `visible` (an operator's label scope) may see it: counts and the ids in its
/// target spec cover only the workspaces in scope (see `scope.rs`).
pub async fn operation_view(
    state: &AppState,
    op: OperationRow,
    visible: Option<&[String]>,
) -> ApiResult<Operation> {
    let counts = state.store.target_counts_visible(op.id, visible).await?;
    let total = if visible.is_some() {
        counts.values().sum()
    } else {
        op.total
    };
    let mut targets = op.targets;
    if visible.is_some() {
        crate::scope::redact_spec(
            &mut targets,
            &state.store.visible_workspace_ids(visible).await?,
        );
    }
    let done: i64 = [
        tstate::SUCCEEDED,
        tstate::FAILED,
        tstate::SKIPPED,
        tstate::CANCELLED,
    ]
    .iter()
    .map(|s| counts.get(*s).copied().unwrap_or(0))
    .sum();
    let rate = op.started_at.and_then(|start| {
        let end = op.finished_at.unwrap_or_else(crate::store::now_ms);
        let secs = (end - start) as f64 / 1000.0;
        (secs > 0.0 && done > 0).then(|| done as f64 / secs)
    });
    let eta = rate
        .filter(|_| op.finished_at.is_none())
        .map(|r| (total - done) as f64 / r);
    Ok(Operation {
        id: op.id,
        kind: op.kind,
        status: op.status,
        stop_reason: op.stop_reason,
        dry_run: op.dry_run,
        params: op.params,
        targets,
        counts,
        progress: Progress {
            done,
            total,
            rate_per_second: rate,
            eta_seconds: eta,
        },
        max_concurrency: op.max_concurrency,
        failure_tolerance: op.failure_tolerance,
        retry_of: op.retry_of,
        created_by: op.created_by,
        created_at: ts(op.created_at),
        started_at: op.started_at.map(ts),
        finished_at: op.finished_at.map(ts),
    })
}

/// Resolves a target spec to workspace ids, within the operator's label scope.
pub async fn resolve_targets(
    state: &AppState,
    operator: &Operator,
    spec: &TargetSpec,
) -> ApiResult<Vec<Uuid>> {
    let labels = validate_labels(&spec.labels, "targets.labels")?;
    let match_all = match spec.label_match.as_deref() {
        None | Some("any") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_label_match",
                format!("label_match must be any or all, not {other:?}"),
            ));
        }
    };
    if spec.workspaces.is_empty() && labels.is_empty() && !spec.all {
        return Err(ApiError::unprocessable(
            "no_targets",
            "targets must name workspaces, labels, or all: true",
        ));
    }
    let visible = operator.visible_labels();
    let all = state.store.all_workspace_labels().await?;
    let in_scope =
        |ws_labels: &[String]| visible.is_none_or(|v| ws_labels.iter().any(|l| v.contains(l)));
    let known: BTreeMap<Uuid, &Vec<String>> = all
        .iter()
        .filter(|(_, l)| in_scope(l))
        .map(|(id, l)| (*id, l))
        .collect();
    let mut chosen: BTreeSet<Uuid> = BTreeSet::new();
    for id in &spec.workspaces {
        if !known.contains_key(id) {
            return Err(ApiError::unprocessable(
                "unknown_workspace",
                format!("workspace {id} not found"),
            )
            .with_details(json!({ "field": "targets.workspaces", "workspace_id": id })));
        }
        chosen.insert(*id);
    }
    for (id, ws_labels) in &known {
        let by_label = !labels.is_empty()
            && if match_all {
                labels.iter().all(|l| ws_labels.contains(l))
            } else {
                labels.iter().any(|l| ws_labels.contains(l))
            };
        if spec.all || by_label {
            chosen.insert(*id);
        }
    }
    for id in &spec.exclude {
        chosen.remove(id);
    }
    if chosen.is_empty() {
        return Err(ApiError::unprocessable(
            "no_targets",
            "the targets resolve to no workspace",
        ));
    }
    if chosen.len() > state.config.max_targets {
        return Err(ApiError::unprocessable(
            "too_many_targets",
            format!(
                "{} targets; the limit is {}",
                chosen.len(),
                state.config.max_targets
            ),
        )
        .with_details(json!({ "limit": state.config.max_targets })));
    }
    Ok(chosen.into_iter().collect())
}

fn validate_common(body: &CreateOperation) -> ApiResult<()> {
    if let Some(n) = body.max_concurrency
        && !(1..=10_000).contains(&n)
    {
        return Err(ApiError::bad_request(
            "invalid_max_concurrency",
            "max_concurrency must be 1..=10000",
        )
        .with_details(json!({ "field": "max_concurrency" })));
    }
    if let Some(t) = &body.failure_tolerance
        && Tolerance::from_json(t).is_none()
    {
        return Err(ApiError::bad_request(
            "invalid_failure_tolerance",
            "failure_tolerance must be a non-negative count or a percentage like \"10%\"",
        )
        .with_details(json!({ "field": "failure_tolerance" })));
    }
    Ok(())
}

fn location(id: Uuid) -> [(header::HeaderName, String); 1] {
    [(header::LOCATION, format!("/v1/operations/{id}"))]
}

/// Start a bulk operation. Answers 202 at once; the engine runs it.
#[utoipa::path(post, path = "/v1/operations", request_body = CreateOperation, tag = "operations",
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: the same key and body return the first operation")),
    responses(
    (status = 202, description = "accepted", body = Operation),
    (status = 200, description = "repeat of an earlier request with the same Idempotency-Key", body = Operation),
    (status = 400, description = "bad params", body = super::ErrorBody),
    (status = 422, description = "targets or params refused", body = super::ErrorBody),
))]
pub async fn create(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateOperation>,
) -> axum::response::Response {
    // The audit trail names the kind even when the request is refused.
    let mut info = crate::audit::AuditInfo {
        kind: Some(body.kind.clone()),
        ..Default::default()
    };
    let mut resp = match create_inner(&state, &operator, &headers, body).await {
        Ok((id, resp)) => {
            info.operation_id = Some(id);
            resp
        }
        Err(err) => err.into_response(),
    };
    resp.extensions_mut().insert(info);
    resp
}

async fn create_inner(
    state: &AppState,
    operator: &Operator,
    headers: &HeaderMap,
    body: CreateOperation,
) -> ApiResult<(Uuid, axum::response::Response)> {
    let state = state.clone();
    let runner = kinds::runner(&body.kind).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_kind",
            format!("unknown operation kind {:?}", body.kind),
        )
        .with_details(json!({ "field": "kind", "known": kinds::names() }))
    })?;
    authz::require_kind(operator, &body.kind, &body.params, body.dry_run)?;
    validate_common(&body)?;
    let limits = Limits {
        max_items: state.config.max_items,
    };
    let params = runner.validate(body.params.clone(), &limits)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| {
                !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic())
            });
            Some(
                key.ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1-200 printable ASCII characters",
                    )
                })?
                .to_string(),
            )
        }
    };
    let targets_json =
        serde_json::to_value(&body.targets).map_err(|e| ApiError::Internal(e.into()))?;
    let request_hash = {
        let canonical = json!({
            "kind": body.kind, "targets": targets_json, "params": params, "dry_run": body.dry_run,
            "max_concurrency": body.max_concurrency, "failure_tolerance": body.failure_tolerance,
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    };
    let scoped_key = idempotency_key
        .as_ref()
        .map(|k| format!("{}:{k}", operator.id));
    if let Some(key) = &scoped_key
        && let Some(existing) = state.store.operation_by_idempotency_key(key).await?
    {
        return repeat(&state, existing, &request_hash, operator).await;
    }
    let workspace_ids = resolve_targets(&state, operator, &body.targets).await?;
    let new = NewOperation {
        kind: body.kind.clone(),
        params,
        targets: targets_json,
        dry_run: body.dry_run,
        max_concurrency: body.max_concurrency,
        failure_tolerance: body.failure_tolerance.clone(),
        idempotency_key: scoped_key.clone(),
        request_hash: Some(request_hash.clone()),
        retry_of: None,
        created_by: Some(operator.id),
        workspace_ids,
    };
    let id = match state.store.insert_operation(&new).await {
        Ok(id) => id,
        // Two requests with one key raced: the loser answers with the winner's operation.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && scoped_key.is_some() => {
            let key = scoped_key.as_deref().unwrap_or_default();
            let existing = state
                .store
                .operation_by_idempotency_key(key)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("idempotency conflict without a row"))
                })?;
            return repeat(&state, existing, &request_hash, operator).await;
        }
        Err(e) => return Err(e.into()),
    };
    state.notify.notify_one();
    tracing::info!(operation.id = %id, kind = %body.kind, targets = new.workspace_ids.len(), dry_run = body.dry_run,
        operator = %operator.name, "operation created");
    let op = state
        .store
        .operation(id)
        .await?
        .ok_or_else(|| ApiError::not_found("operation"))?;
    let view = operation_view(&state, op, operator.visible_labels()).await?;
    Ok((
        id,
        (StatusCode::ACCEPTED, location(id), Json(view)).into_response(),
    ))
}

async fn repeat(
    state: &AppState,
    existing: OperationRow,
    request_hash: &str,
    operator: &Operator,
) -> ApiResult<(Uuid, axum::response::Response)> {
    if existing.request_hash.as_deref() != Some(request_hash) {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        ));
    }
    let id = existing.id;
    let view = operation_view(state, existing, operator.visible_labels()).await?;
    Ok((
        id,
        (StatusCode::OK, location(id), Json(view)).into_response(),
    ))
}

/// Query of `GET /v1/operations`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only operations with this status.
    pub status: Option<String>,
    /// Only operations of this kind.
    pub kind: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// List operations, newest first.
#[utoipa::path(get, path = "/v1/operations", params(ListQuery), tag = "operations", responses(
    (status = 200, description = "a page of operations", body = Page<Operation>),
))]
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Operation>>> {
    let limit = PageParams {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let mut cursor = q
        .cursor
        .as_deref()
        .map(|c| parse_id(c, "cursor"))
        .transpose()?;
    if let Some(s) = &q.status
        && !op_status::ALL.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_status",
            format!("status must be one of {:?}", op_status::ALL),
        ));
    }
    // Operations the operator may not view (kind area, label scope) are left out; a page is
    // filled from as many batches as that takes.
    let visible = operator.visible_labels();
    let mut rows = Vec::new();
    loop {
        let batch = state
            .store
            .list_operations(q.status.as_deref(), q.kind.as_deref(), cursor, limit + 1)
            .await?;
        let exhausted = batch.len() <= limit;
        for op in batch {
            cursor = Some(op.id);
            if authz::require_kind_view(&operator, &op.kind, &op.params).is_err()
                || !state.store.operation_visible(op.id, visible).await?
            {
                continue;
            }
            rows.push(op);
            if rows.len() > limit {
                break;
            }
        }
        if exhausted || rows.len() > limit {
            break;
        }
    }
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|o| o.id.to_string())
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for op in rows {
        items.push(operation_view(&state, op, visible).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: next,
    }))
}

/// Loads an operation the operator may see: 404 outside their label scope (as if it did not
/// exist), 403 when their role may not view its kind.
async fn load(state: &AppState, raw: &str, operator: &Operator) -> ApiResult<OperationRow> {
    let op = load_in_scope(state, raw, operator).await?;
    authz::require_kind_view(operator, &op.kind, &op.params)?;
    Ok(op)
}

/// Loads an operation within the operator's label scope (404 outside it), without a role check:
/// cancel and retry check the kind's run permission instead, so a 403 names that one.
async fn load_in_scope(
    state: &AppState,
    raw: &str,
    operator: &Operator,
) -> ApiResult<OperationRow> {
    let id = parse_id(raw, "operation")?;
    let op = state
        .store
        .operation(id)
        .await?
        .ok_or_else(|| ApiError::not_found("operation"))?;
    if !state
        .store
        .operation_visible(op.id, operator.visible_labels())
        .await?
    {
        return Err(ApiError::not_found("operation"));
    }
    Ok(op)
}

/// Read one operation: status, counts per target state, progress and timings.
#[utoipa::path(get, path = "/v1/operations/{id}", params(("id" = Uuid, Path)), tag = "operations", responses(
    (status = 200, description = "the operation", body = Operation),
    (status = 404, description = "no such operation", body = super::ErrorBody),
))]
pub async fn get_one(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Operation>> {
    let op = load(&state, &id, &operator).await?;
    Ok(Json(
        operation_view(&state, op, operator.visible_labels()).await?,
    ))
}

/// Query of `GET /v1/operations/{id}/targets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TargetsQuery {
    /// Only targets in this state.
    pub state: Option<String>,
    /// Page size.
    pub limit: Option<i64>,
    /// Cursor.
    pub cursor: Option<String>,
}

/// Per-workspace rows of an operation.
#[utoipa::path(get, path = "/v1/operations/{id}/targets", params(("id" = Uuid, Path), TargetsQuery), tag = "operations",
    responses(
    (status = 200, description = "a page of targets", body = Page<Target>),
    (status = 404, description = "no such operation", body = super::ErrorBody),
))]
pub async fn targets(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<TargetsQuery>,
) -> ApiResult<Json<Page<Target>>> {
    let op = load(&state, &id, &operator).await?;
    let limit = PageParams {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    if let Some(s) = &q.state
        && !tstate::ALL.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_state",
            format!("state must be one of {:?}", tstate::ALL),
        ));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is not valid"))?,
        ),
    };
    let mut rows = state
        .store
        .list_targets_visible(
            op.id,
            q.state.as_deref(),
            after,
            limit + 1,
            operator.visible_labels(),
        )
        .await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|t| t.seq.to_string())
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(target_view).collect(),
        next_cursor: next,
    }))
}

/// Server-sent progress: a `progress` event whenever the counts change, then one `done` event.
#[utoipa::path(get, path = "/v1/operations/{id}/events", params(("id" = Uuid, Path)), tag = "operations",
    responses(
    (status = 200, description = "text/event-stream of progress events", content_type = "text/event-stream"),
    (status = 404, description = "no such operation", body = super::ErrorBody),
))]
pub async fn events(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let op = load(&state, &id, &operator).await?;
    let id = op.id;
    let visible = operator.visible_labels().map(<[String]>::to_vec);
    let stream = async_stream::stream! {
        let mut last: Option<String> = None;
        loop {
            let op = match state.store.operation(id).await {
                Ok(Some(op)) => op,
                _ => break,
            };
            let finished = op.finished_at.is_some();
            let Ok(view) = operation_view(&state, op, visible.as_deref()).await else { break };
            let payload = json!({
                "id": view.id, "status": view.status, "counts": view.counts, "progress": view.progress,
            })
            .to_string();
            if last.as_deref() != Some(payload.as_str()) {
                yield Ok(Event::default().event("progress").data(payload.clone()));
                last = Some(payload.clone());
            }
            if finished {
                yield Ok(Event::default().event("done").data(payload));
                break;
            }
            // Polling the database keeps every replica able to serve any operation's events.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Cancel an operation: pending targets become cancelled; running ones finish their attempt.
#[utoipa::path(post, path = "/v1/operations/{id}/cancel", params(("id" = Uuid, Path)), tag = "operations", responses(
    (status = 200, description = "cancelled", body = Operation),
    (status = 404, description = "no such operation", body = super::ErrorBody),
    (status = 409, description = "already finished", body = super::ErrorBody),
))]
pub async fn cancel(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> axum::response::Response {
    let mut info = crate::audit::AuditInfo::default();
    let mut resp = cancel_inner(&state, &operator, &id, &mut info)
        .await
        .into_response();
    resp.extensions_mut().insert(info);
    resp
}

async fn cancel_inner(
    state: &AppState,
    operator: &Operator,
    id: &str,
    info: &mut crate::audit::AuditInfo,
) -> ApiResult<Json<Operation>> {
    let (state, operator, id) = (state.clone(), operator.clone(), id.to_string());
    let op = load_in_scope(&state, &id, &operator).await?;
    info.kind = Some(op.kind.clone());
    authz::require_kind(&operator, &op.kind, &op.params, op.dry_run)?;
    // Cancelling stops every target; a scoped operator may do that only to operations that
    // touch nothing outside their scope.
    if !state
        .store
        .operation_fully_visible(op.id, operator.visible_labels())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_label_scope",
            "this operation also targets workspaces outside your label scope",
        ));
    }
    let cancelled = state.store.cancel_operation(op.id, "cancelled").await?;
    // Cancelled import rows must not keep their uploaded keys staged.
    crate::engine::kinds::import::sweep_staged(&state.store).await?;
    if !cancelled {
        return Err(ApiError::conflict(
            "operation_finished",
            "the operation has already finished",
        ));
    }
    tracing::info!(operation.id = %op.id, operator = %operator.name, "operation cancelled");
    let op = load(&state, &id, &operator).await?;
    Ok(Json(
        operation_view(&state, op, operator.visible_labels()).await?,
    ))
}

/// Start a new operation over the failed and cancelled targets of this one.
#[utoipa::path(post, path = "/v1/operations/{id}/retry", params(("id" = Uuid, Path)), tag = "operations", responses(
    (status = 202, description = "the new operation", body = Operation),
    (status = 404, description = "no such operation", body = super::ErrorBody),
    (status = 409, description = "still running", body = super::ErrorBody),
    (status = 422, description = "nothing to retry", body = super::ErrorBody),
))]
pub async fn retry(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> axum::response::Response {
    let mut info = crate::audit::AuditInfo::default();
    let mut resp = retry_inner(&state, &operator, &id, &mut info)
        .await
        .into_response();
    resp.extensions_mut().insert(info);
    resp
}

async fn retry_inner(
    state: &AppState,
    operator: &Operator,
    id: &str,
    info: &mut crate::audit::AuditInfo,
) -> ApiResult<axum::response::Response> {
    let (state, operator) = (state.clone(), operator.clone());
    let op = load_in_scope(&state, id, &operator).await?;
    info.kind = Some(op.kind.clone());
    authz::require_kind(&operator, &op.kind, &op.params, op.dry_run)?;
    if op.finished_at.is_none() {
        return Err(ApiError::conflict(
            "operation_running",
            "wait for the operation to finish (or cancel it) first",
        ));
    }
    let mut workspace_ids = state
        .store
        .target_workspaces_in(op.id, &[tstate::FAILED, tstate::CANCELLED])
        .await?;
    // Workspaces removed since, or outside the operator's scope, are not retried.
    let visible = operator.visible_labels();
    let mut kept = Vec::with_capacity(workspace_ids.len());
    for ws in workspace_ids.drain(..) {
        if state.store.workspace(ws, visible).await?.is_some() {
            kept.push(ws);
        }
    }
    if kept.is_empty() {
        return Err(ApiError::unprocessable(
            "nothing_to_retry",
            "no failed or cancelled targets to retry",
        ));
    }
    let new = NewOperation {
        kind: op.kind.clone(),
        params: op.params.clone(),
        targets: json!({ "workspaces": kept }),
        dry_run: op.dry_run,
        max_concurrency: op.max_concurrency,
        failure_tolerance: op.failure_tolerance.clone(),
        idempotency_key: None,
        request_hash: None,
        retry_of: Some(op.id),
        created_by: Some(operator.id),
        workspace_ids: kept,
    };
    let new_id = state.store.insert_operation(&new).await?;
    state.notify.notify_one();
    info.operation_id = Some(new_id);
    info.detail = Some(json!({ "retry_of": op.id }));
    let created = state
        .store
        .operation(new_id)
        .await?
        .ok_or_else(|| ApiError::not_found("operation"))?;
    let view = operation_view(&state, created, operator.visible_labels()).await?;
    Ok((StatusCode::ACCEPTED, location(new_id), Json(view)).into_response())
}
