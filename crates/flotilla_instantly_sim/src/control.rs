//! The control API under `/_sim/` (no auth): JSON mirrors of the [`crate::Simulator`] methods.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Burst, Faults};
use crate::error::{Error, Result};
use crate::model::{Counters, DemoWorkspace, RequestRecord, WorkspaceState};
use crate::state::{Shared, lock};

type S = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/workspaces", post(create_workspace).get(list_workspaces))
        .route("/workspaces/{id}", get(get_workspace))
        .route("/counters", get(total_counters))
        .route("/workspaces/{id}/counters", get(counters))
        .route("/workspaces/{id}/keys", post(create_key))
        .route("/workspaces/{id}/members", post(seed_member))
        .route("/workspaces/{id}/campaigns", post(seed_campaign))
        .route("/workspaces/{id}/accounts", post(seed_account))
        .route("/workspaces/{id}/tags", post(seed_tag))
        .route("/workspaces/{id}/tag-mappings", post(seed_tag_mapping))
        .route("/workspaces/{id}/audit-logs", post(seed_audit_log))
        .route("/workspaces/{id}/paid", put(set_paid))
        .route("/groups", post(seed_group))
        .route("/groups/{id}", put(set_group_status))
        .route("/faults", put(set_faults))
        .route("/limits", put(set_limits))
        .route("/down", put(set_down))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/seed-demo", post(seed_demo))
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_workspace(State(s): S, Json(b): Json<NameBody>) -> Json<Value> {
    Json(json!({ "id": s.create_workspace(&b.name) }))
}

async fn list_workspaces(State(s): S) -> Json<Vec<String>> {
    Json(lock(&s.workspace_order).clone())
}

async fn get_workspace(State(s): S, Path(id): Path<String>) -> Result<Json<WorkspaceState>> {
    s.snapshot(&id).map(Json).ok_or(Error::UnknownWorkspace(id))
}

async fn total_counters(State(s): S) -> Json<Counters> {
    Json(s.total_counters())
}

async fn counters(State(s): S, Path(id): Path<String>) -> Result<Json<Counters>> {
    s.ws_or_err(&id)?;
    Ok(Json(s.counters(&id)))
}

#[derive(Deserialize)]
struct KeyBody {
    name: String,
    scopes: Vec<String>,
}

async fn create_key(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<KeyBody>,
) -> Result<Json<Value>> {
    let k = s.create_key(&id, &b.name, &b.scopes)?;
    Ok(Json(json!({ "id": k.id, "key": k.key })))
}

#[derive(Deserialize)]
struct MemberBody {
    email: String,
    role: String,
    #[serde(default)]
    accepted: bool,
}

async fn seed_member(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<MemberBody>,
) -> Result<Json<Value>> {
    Ok(Json(
        json!({ "id": s.seed_member(&id, &b.email, &b.role, b.accepted)? }),
    ))
}

#[derive(Deserialize)]
struct CampaignBody {
    name: String,
    #[serde(default)]
    status: i64,
}

async fn seed_campaign(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<CampaignBody>,
) -> Result<Json<Value>> {
    Ok(Json(
        json!({ "id": s.seed_campaign(&id, &b.name, b.status)? }),
    ))
}

#[derive(Deserialize)]
struct AccountBody {
    email: String,
    #[serde(default = "one")]
    status: i64,
}

fn one() -> i64 {
    1
}

async fn seed_account(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<AccountBody>,
) -> Result<Json<Value>> {
    s.seed_account(&id, &b.email, b.status)?;
    Ok(Json(json!({ "email": b.email })))
}

#[derive(Deserialize)]
struct TagBody {
    label: String,
}

async fn seed_tag(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<TagBody>,
) -> Result<Json<Value>> {
    Ok(Json(json!({ "id": s.seed_tag(&id, &b.label)? })))
}

#[derive(Deserialize)]
struct MappingBody {
    tag_id: String,
    resource_type: i64,
    resource_id: String,
}

async fn seed_tag_mapping(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<MappingBody>,
) -> Result<Json<Value>> {
    s.seed_tag_mapping(&id, &b.tag_id, b.resource_type, &b.resource_id)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct AuditBody {
    activity_type: i64,
    timestamp: Option<DateTime<Utc>>,
}

async fn seed_audit_log(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<AuditBody>,
) -> Result<Json<Value>> {
    let ts = b.timestamp.unwrap_or_else(Utc::now);
    Ok(Json(
        json!({ "id": s.seed_audit_log(&id, b.activity_type, ts)? }),
    ))
}

#[derive(Deserialize)]
struct PaidBody {
    paid: bool,
}

async fn set_paid(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<PaidBody>,
) -> Result<Json<Value>> {
    lock(&*s.ws_or_err(&id)?).paid = b.paid;
    Ok(Json(json!({ "paid": b.paid })))
}

#[derive(Deserialize)]
struct GroupBody {
    admin_workspace_id: String,
    sub_workspace_id: String,
    #[serde(default = "accepted")]
    status: String,
}

fn accepted() -> String {
    "accepted".into()
}

async fn seed_group(State(s): S, Json(b): Json<GroupBody>) -> Result<Json<Value>> {
    let id = s.seed_group_member(&b.admin_workspace_id, &b.sub_workspace_id, &b.status)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_group_status(
    State(s): S,
    Path(id): Path<String>,
    Json(b): Json<StatusBody>,
) -> Result<Json<Value>> {
    s.set_group_status(&id, &b.status)?;
    Ok(Json(json!({ "status": b.status })))
}

#[derive(Deserialize)]
struct BurstBody {
    every_ms: u64,
    duration_ms: u64,
}

#[derive(Deserialize)]
struct FaultsBody {
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    fail_rate: f64,
    #[serde(default)]
    drop_rate: f64,
    #[serde(default)]
    proxy_502_rate: f64,
    burst: Option<BurstBody>,
}

async fn set_faults(State(s): S, Json(b): Json<FaultsBody>) -> Json<Value> {
    s.set_faults(Faults {
        latency: Duration::from_millis(b.latency_ms),
        fail_rate: b.fail_rate,
        drop_rate: b.drop_rate,
        burst: b.burst.map(|x| Burst {
            every: Duration::from_millis(x.every_ms),
            duration: Duration::from_millis(x.duration_ms),
        }),
    });
    s.update_runtime(|r| r.proxy_502_rate = b.proxy_502_rate);
    Json(json!({}))
}

#[derive(Deserialize)]
struct LimitsBody {
    rps: u32,
    rpm: u32,
}

async fn set_limits(State(s): S, Json(b): Json<LimitsBody>) -> Json<Value> {
    s.update_runtime(|r| {
        r.rps = b.rps;
        r.rpm = b.rpm;
    });
    Json(json!({ "rps": b.rps, "rpm": b.rpm }))
}

#[derive(Deserialize)]
struct DownBody {
    down: bool,
}

async fn set_down(State(s): S, Json(b): Json<DownBody>) -> Json<Value> {
    s.down.store(b.down, Ordering::Relaxed);
    Json(json!({ "down": b.down }))
}

async fn requests(State(s): S) -> Json<Vec<RequestRecord>> {
    Json(s.request_log())
}

async fn clear_requests(State(s): S) -> Json<Value> {
    lock(&s.log).clear();
    Json(json!({}))
}

#[derive(Deserialize)]
struct DemoBody {
    n: usize,
}

async fn seed_demo(State(s): S, Json(b): Json<DemoBody>) -> Result<Json<Vec<DemoWorkspace>>> {
    if b.n > 100_000 {
        return Err(Error::InvalidInput("n must be at most 100000".into()));
    }
    Ok(Json(crate::demo::seed(&s, b.n)))
}
