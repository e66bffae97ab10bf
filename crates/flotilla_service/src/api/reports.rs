//! `/v1/reports/*`: cross-workspace reports over the snapshots kept by `inventory.sync`.
//!
//! Every report answers JSON (`{items, next_cursor, missing_snapshots, unavailable}`, paginated
//! with `limit`/`cursor`) or, with `?format=csv`, one streamed CSV document with a header row
//! (no pagination). Each row carries `snapshot_at` and `snapshot_age_seconds`. Workspaces in
//! scope that were never synced are listed in `missing_snapshots` (CSV: rows with status
//! `missing_snapshot`); resources the workspace's plan or key could not read are listed in
//! `unavailable` with the reason (CSV: rows with status `unavailable`), never shown as empty.
//!
//! Permissions (the access matrix): access → Members View; api-keys → ApiKeys View; tags and
//! audit-logs → Campaigns View (Instantly's audit log is mostly campaign activity). Every
//! report keeps to the operator's label scope.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{AppState, PageParams, validate_labels};
use crate::auth::Operator;
use crate::authz::{self, Area, Level};
use crate::error::{ApiError, ApiResult};
use crate::inventory::{
    AccessRow, ApiKeyReportRow, AuditReportRow, Inventory, KEY_FLAGS, MissingSnapshot,
    TagsReportRow, Unavailable, WorkspaceScope, report_now, resource,
};

/// A page of a report.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportPage<T> {
    /// This page's rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Workspaces in scope with no snapshot yet (run `inventory.sync`).
    pub missing_snapshots: Vec<MissingSnapshot>,
    /// Resources this report needs that a workspace's plan or key could not read.
    pub unavailable: Vec<Unavailable>,
}

/// Query of `GET /v1/reports/access`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// Only this member email (case-insensitive).
    pub email: Option<String>,
    /// Only this role: `owner`, `admin`, `editor`, `view` or `client`.
    pub role: Option<String>,
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Page size, 1..=500 (default 100; JSON only).
    pub limit: Option<i64>,
    /// Cursor from `next_cursor` (JSON only).
    pub cursor: Option<String>,
}

/// Query of `GET /v1/reports/api-keys`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysQuery {
    /// Only keys carrying one of these flags (comma-separated): `all_all`, `all_scope`,
    /// `all_update`, `writes_api_keys`, `writes_members`, `older_than_max_age`,
    /// `not_created_by_flotilla`.
    pub flag: Option<String>,
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Page size, 1..=500 (default 100; JSON only).
    pub limit: Option<i64>,
    /// Cursor from `next_cursor` (JSON only).
    pub cursor: Option<String>,
}

/// Query of `GET /v1/reports/tags`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TagsQuery {
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Workspaces per page, 1..=500 (default 100; JSON only).
    pub limit: Option<i64>,
    /// Cursor from `next_cursor` (JSON only).
    pub cursor: Option<String>,
}

/// Query of `GET /v1/reports/audit-logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditLogsQuery {
    /// Only this activity type (instantly-api.md §10, e.g. 4 = campaign launch).
    pub activity_type: Option<String>,
    /// Entries at or after this time (RFC 3339, or a `YYYY-MM-DD` day in UTC).
    pub since: Option<String>,
    /// Entries at or before this time (RFC 3339, or a `YYYY-MM-DD` day in UTC, inclusive).
    pub until: Option<String>,
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Page size, 1..=500 (default 100; JSON only).
    pub limit: Option<i64>,
    /// Cursor from `next_cursor` (JSON only).
    pub cursor: Option<String>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn format(raw: Option<&str>) -> ApiResult<Format> {
    match raw {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::bad_request(
            "invalid_format",
            format!("format must be json or csv, not {other:?}"),
        )
        .with_details(json!({ "field": "format", "allowed": ["json", "csv"] }))),
    }
}

fn scope(
    operator: &Operator,
    label: Option<&str>,
    workspace_id: Option<&str>,
) -> ApiResult<WorkspaceScope> {
    let label = match label {
        // A bad filter is a bad request (400), not an unprocessable body (422).
        Some(l) => validate_labels(&[l.to_string()], "label")
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_label",
                    format!("{l:?} is not a label (1-64 of A-Z a-z 0-9 _ . : -)"),
                )
                .with_details(json!({ "field": "label" }))
            })?
            .pop(),
        None => None,
    };
    let workspace_id = match workspace_id {
        Some(raw) => Some(Uuid::parse_str(raw).map_err(|_| {
            ApiError::bad_request("invalid_id", "workspace_id must be a UUID")
                .with_details(json!({ "field": "workspace_id" }))
        })?),
        None => None,
    };
    Ok(WorkspaceScope {
        workspace_id,
        label,
        visible: operator.visible_labels().map(<[String]>::to_vec),
    })
}

fn encode_cursor(parts: &[String]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(parts).unwrap_or_default())
}

fn decode_cursor(raw: Option<&str>, parts: usize) -> ApiResult<Option<Vec<String>>> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || {
        ApiError::bad_request("invalid_cursor", "cursor is not one this report issued")
            .with_details(json!({ "field": "cursor" }))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let v: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if v.len() != parts {
        return Err(bad());
    }
    Ok(Some(v))
}

fn ts_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A report row: its CSV records and its position (the cursor after it).
trait ReportRow: Serialize + Send + 'static {
    /// The CSV header.
    const COLUMNS: &'static [&'static str];
    /// This row's CSV records (the tags report writes several per workspace).
    fn records(&self) -> Vec<Vec<String>>;
    /// Cursor parts after this row.
    fn cursor(&self) -> Vec<String>;
}

impl ReportRow for AccessRow {
    const COLUMNS: &'static [&'static str] = &[
        "workspace_id",
        "workspace_name",
        "email",
        "role",
        "accepted",
        "member_id",
        "user_id",
        "snapshot_at",
        "snapshot_age_seconds",
        "status",
        "reason",
    ];
    fn records(&self) -> Vec<Vec<String>> {
        vec![vec![
            self.workspace_id.to_string(),
            self.workspace_name.clone(),
            self.email.clone(),
            self.role.clone(),
            self.accepted.to_string(),
            self.member_id.clone(),
            opt(&self.user_id),
            ts_text(&self.age.snapshot_at),
            self.age.snapshot_age_seconds.to_string(),
            "ok".into(),
            String::new(),
        ]]
    }
    fn cursor(&self) -> Vec<String> {
        vec![
            self.workspace_id.to_string(),
            self.email.clone(),
            self.member_id.clone(),
        ]
    }
}

impl ReportRow for ApiKeyReportRow {
    const COLUMNS: &'static [&'static str] = &[
        "workspace_id",
        "workspace_name",
        "key_id",
        "name",
        "scopes",
        "created_at",
        "flags",
        "flotilla_credential",
        "snapshot_at",
        "snapshot_age_seconds",
        "status",
        "reason",
    ];
    fn records(&self) -> Vec<Vec<String>> {
        vec![vec![
            self.workspace_id.to_string(),
            self.workspace_name.clone(),
            self.key_id.clone(),
            self.name.clone(),
            self.scopes.join(" "),
            self.created_at.as_ref().map(ts_text).unwrap_or_default(),
            self.flags.join(" "),
            self.flotilla_credential.to_string(),
            ts_text(&self.age.snapshot_at),
            self.age.snapshot_age_seconds.to_string(),
            "ok".into(),
            String::new(),
        ]]
    }
    fn cursor(&self) -> Vec<String> {
        vec![self.workspace_id.to_string(), self.key_id.clone()]
    }
}

impl ReportRow for TagsReportRow {
    const COLUMNS: &'static [&'static str] = &[
        "workspace_id",
        "workspace_name",
        "tag_id",
        "tag_label",
        "resource_type",
        "resource_id",
        "resource_name",
        "snapshot_at",
        "snapshot_age_seconds",
        "status",
        "reason",
    ];
    fn records(&self) -> Vec<Vec<String>> {
        let row = |tag_id: &str, label: &str, rtype: &str, id: &str, name: &str, status: &str| {
            vec![
                self.workspace_id.to_string(),
                self.workspace_name.clone(),
                tag_id.to_string(),
                label.to_string(),
                rtype.to_string(),
                id.to_string(),
                name.to_string(),
                ts_text(&self.age.snapshot_at),
                self.age.snapshot_age_seconds.to_string(),
                status.to_string(),
                String::new(),
            ]
        };
        let mut out = Vec::new();
        for t in &self.tags {
            if t.campaigns.is_empty() && t.accounts.is_empty() {
                out.push(row(&t.tag_id, &t.label, "", "", "", "ok"));
            }
            for c in &t.campaigns {
                out.push(row(&t.tag_id, &t.label, "campaign", &c.id, &c.name, "ok"));
            }
            for a in &t.accounts {
                out.push(row(&t.tag_id, &t.label, "account", &a.id, &a.name, "ok"));
            }
        }
        for c in &self.untagged_campaigns {
            out.push(row("", "", "campaign", &c.id, &c.name, "untagged"));
        }
        for a in &self.untagged_accounts {
            out.push(row("", "", "account", &a.id, &a.name, "untagged"));
        }
        out
    }
    fn cursor(&self) -> Vec<String> {
        vec![self.workspace_id.to_string()]
    }
}

impl ReportRow for AuditReportRow {
    const COLUMNS: &'static [&'static str] = &[
        "workspace_id",
        "workspace_name",
        "id",
        "timestamp",
        "activity_type",
        "user_id",
        "user_name",
        "ip_address",
        "from_api",
        "campaign_id",
        "api_key_id",
        "affected_count",
        "snapshot_at",
        "snapshot_age_seconds",
        "status",
        "reason",
    ];
    fn records(&self) -> Vec<Vec<String>> {
        vec![vec![
            self.workspace_id.to_string(),
            self.workspace_name.clone(),
            self.id.clone(),
            ts_text(&self.timestamp),
            self.activity_type.to_string(),
            opt(&self.user_id),
            opt(&self.user_name),
            opt(&self.ip_address),
            self.from_api.to_string(),
            opt(&self.campaign_id),
            opt(&self.api_key_id),
            self.affected_count
                .map(|n| n.to_string())
                .unwrap_or_default(),
            ts_text(&self.age.snapshot_at),
            self.age.snapshot_age_seconds.to_string(),
            "ok".into(),
            String::new(),
        ]]
    }
    fn cursor(&self) -> Vec<String> {
        vec![
            self.timestamp.timestamp_millis().to_string(),
            self.workspace_id.to_string(),
            self.id.clone(),
        ]
    }
}

/// Fetches up to `limit` rows after a cursor.
type Fetch<R> = Arc<
    dyn Fn(Option<Vec<String>>, usize) -> BoxFuture<'static, Result<Vec<R>, sqlx::Error>>
        + Send
        + Sync,
>;

/// The status rows that close a CSV report: unavailable resources, then missing snapshots.
fn status_records(
    columns: usize,
    unavailable: &[Unavailable],
    missing: &[MissingSnapshot],
) -> Vec<Vec<String>> {
    let blanks = columns - 6;
    let mut out = Vec::new();
    for u in unavailable {
        let mut r = vec![u.workspace_id.to_string(), u.workspace_name.clone()];
        r.extend(std::iter::repeat_n(String::new(), blanks));
        r.extend([
            ts_text(&u.age.snapshot_at),
            u.age.snapshot_age_seconds.to_string(),
            "unavailable".into(),
            format!("{}: {}", u.resource, u.reason),
        ]);
        out.push(r);
    }
    for m in missing {
        let mut r = vec![m.workspace_id.to_string(), m.workspace_name.clone()];
        r.extend(std::iter::repeat_n(String::new(), blanks));
        r.extend([
            String::new(),
            String::new(),
            "missing_snapshot".into(),
            "no snapshot yet: run inventory.sync".into(),
        ]);
        out.push(r);
    }
    out
}

fn csv_chunk(records: &[Vec<String>]) -> Result<bytes::Bytes, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(records.len() * 128));
    for r in records {
        w.write_record(r)?;
    }
    let buf = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes::Bytes::from(buf))
}

// Rows per database round trip while streaming CSV.
const CSV_BATCH: usize = 1000;

#[allow(clippy::too_many_arguments)]
async fn respond<R: ReportRow>(
    inventory: Inventory,
    scope: WorkspaceScope,
    resources: &'static [&'static str],
    fmt: Format,
    page: PageParams,
    cursor_parts: usize,
    fetch: Fetch<R>,
    name: &'static str,
) -> ApiResult<Response> {
    let limit = page.limit()?;
    let cursor = decode_cursor(page.cursor.as_deref(), cursor_parts)?;
    let now = report_now();
    let missing = inventory.missing_snapshots(&scope).await?;
    let unavailable = inventory.unavailable(&scope, resources, now).await?;
    if fmt == Format::Json {
        let mut items = fetch(cursor, limit + 1).await?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| encode_cursor(&r.cursor()))
        } else {
            None
        };
        let page = ReportPage {
            items,
            next_cursor,
            missing_snapshots: missing,
            unavailable,
        };
        return Ok(Json(page).into_response());
    }
    // CSV: the whole report, streamed in batches (keyset pagination), so memory stays flat
    // however many workspaces there are.
    let stream = async_stream::stream! {
        yield csv_chunk(&[R::COLUMNS.iter().map(|c| c.to_string()).collect()]);
        let mut cursor: Option<Vec<String>> = None;
        loop {
            let rows = match fetch(cursor.clone(), CSV_BATCH).await {
                Ok(rows) => rows,
                Err(err) => {
                    // Headers are sent: abort the body so the client sees a truncated download.
                    tracing::error!(error = %err, report = name, "streaming a CSV report failed");
                    yield Err(std::io::Error::other("report query failed"));
                    return;
                }
            };
            let records: Vec<Vec<String>> = rows.iter().flat_map(|r| r.records()).collect();
            yield csv_chunk(&records);
            if rows.len() < CSV_BATCH {
                break;
            }
            cursor = rows.last().map(|r| r.cursor());
        }
        yield csv_chunk(&status_records(R::COLUMNS.len(), &unavailable, &missing));
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Who is a member of which workspace, with which role: one row per (email, workspace).
#[utoipa::path(get, path = "/v1/reports/access", params(AccessQuery), tag = "reports", responses(
    (status = 200, description = "a page of (email, workspace) rows; CSV with `?format=csv`", body = ReportPage<AccessRow>),
    (status = 400, description = "bad filter", body = super::ErrorBody),
    (status = 403, description = "needs Members View", body = super::ErrorBody),
))]
pub async fn access(
    State(state): State<AppState>,
    operator: Operator,
    q: Result<Query<AccessQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::require(&operator, Area::Members, Level::View)?;
    let q = query(q)?;
    let fmt = format(q.format.as_deref())?;
    let scope = scope(&operator, q.label.as_deref(), q.workspace_id.as_deref())?;
    let email = match q.email.as_deref().map(str::trim) {
        Some(e) if e.is_empty() || !e.contains('@') || e.chars().any(char::is_control) => {
            return Err(ApiError::bad_request(
                "invalid_email",
                format!("not an email address: {e:?}"),
            )
            .with_details(json!({ "field": "email" })));
        }
        Some(e) => Some(e.to_ascii_lowercase()),
        None => None,
    };
    const ROLES: [&str; 5] = ["owner", "admin", "editor", "view", "client"];
    if let Some(r) = q.role.as_deref()
        && !ROLES.contains(&r)
    {
        return Err(
            ApiError::bad_request("invalid_role", format!("unknown role {r:?}"))
                .with_details(json!({ "field": "role", "allowed": ROLES })),
        );
    }
    let inventory = Inventory::new(state.store.db().clone());
    let fetch: Fetch<AccessRow> = {
        let (inv, scope, role) = (inventory.clone(), scope.clone(), q.role.clone());
        Arc::new(move |cursor, limit| {
            let (inv, scope, email, role) =
                (inv.clone(), scope.clone(), email.clone(), role.clone());
            Box::pin(async move {
                inv.access_page(
                    &scope,
                    email.as_deref(),
                    role.as_deref(),
                    cursor.as_deref(),
                    limit,
                    report_now(),
                )
                .await
            })
        })
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    respond(
        inventory,
        scope,
        &[resource::MEMBERS],
        fmt,
        page,
        3,
        fetch,
        "access",
    )
    .await
}

/// Every API key in every workspace, with its scopes and risk flags.
#[utoipa::path(get, path = "/v1/reports/api-keys", params(ApiKeysQuery), tag = "reports", responses(
    (status = 200, description = "a page of keys; CSV with `?format=csv`", body = ReportPage<ApiKeyReportRow>),
    (status = 400, description = "bad filter", body = super::ErrorBody),
    (status = 403, description = "needs ApiKeys View", body = super::ErrorBody),
))]
pub async fn api_keys(
    State(state): State<AppState>,
    operator: Operator,
    q: Result<Query<ApiKeysQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::require(&operator, Area::ApiKeys, Level::View)?;
    let q = query(q)?;
    let fmt = format(q.format.as_deref())?;
    let scope = scope(&operator, q.label.as_deref(), q.workspace_id.as_deref())?;
    let mut flags: Vec<String> = Vec::new();
    for f in q
        .flag
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        if !KEY_FLAGS.contains(&f) {
            return Err(
                ApiError::bad_request("invalid_flag", format!("unknown flag {f:?}"))
                    .with_details(json!({ "field": "flag", "allowed": KEY_FLAGS })),
            );
        }
        flags.push(f.to_string());
    }
    let max_age_ms = (state.config.key_max_age_days as i64).saturating_mul(86_400_000);
    let inventory = Inventory::new(state.store.db().clone());
    let fetch: Fetch<ApiKeyReportRow> = {
        let (inv, scope) = (inventory.clone(), scope.clone());
        Arc::new(move |cursor, limit| {
            let (inv, scope, flags) = (inv.clone(), scope.clone(), flags.clone());
            Box::pin(async move {
                let now = report_now();
                inv.api_keys_page(
                    &scope,
                    &flags,
                    now.saturating_sub(max_age_ms),
                    cursor.as_deref(),
                    limit,
                    now,
                )
                .await
            })
        })
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    respond(
        inventory,
        scope,
        &[resource::API_KEYS],
        fmt,
        page,
        2,
        fetch,
        "api-keys",
    )
    .await
}

/// Per workspace: each tag with the campaigns and accounts it covers, and what carries no tag.
#[utoipa::path(get, path = "/v1/reports/tags", params(TagsQuery), tag = "reports", responses(
    (status = 200, description = "a page of workspaces; CSV (one row per tag and resource) with `?format=csv`", body = ReportPage<TagsReportRow>),
    (status = 400, description = "bad filter", body = super::ErrorBody),
    (status = 403, description = "needs Campaigns View", body = super::ErrorBody),
))]
pub async fn tags(
    State(state): State<AppState>,
    operator: Operator,
    q: Result<Query<TagsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::require(&operator, Area::Campaigns, Level::View)?;
    let q = query(q)?;
    let fmt = format(q.format.as_deref())?;
    let scope = scope(&operator, q.label.as_deref(), q.workspace_id.as_deref())?;
    let inventory = Inventory::new(state.store.db().clone());
    let fetch: Fetch<TagsReportRow> = {
        let (inv, scope) = (inventory.clone(), scope.clone());
        Arc::new(move |cursor, limit| {
            let (inv, scope) = (inv.clone(), scope.clone());
            Box::pin(async move {
                let after = cursor.and_then(|c| c.into_iter().next());
                inv.tags_page(&scope, after.as_deref(), limit, report_now())
                    .await
            })
        })
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    const RESOURCES: &[&str] = &[
        resource::TAGS,
        resource::TAG_MAPPINGS,
        resource::CAMPAIGNS,
        resource::ACCOUNTS,
    ];
    respond(inventory, scope, RESOURCES, fmt, page, 1, fetch, "tags").await
}

fn parse_time(raw: &str, field: &'static str, end_of_day: bool) -> ApiResult<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis();
        return Ok(if end_of_day {
            start + 86_400_000 - 1
        } else {
            start
        });
    }
    Err(ApiError::bad_request(
        "invalid_time",
        format!("{field} must be RFC 3339 or YYYY-MM-DD, not {raw:?}"),
    )
    .with_details(json!({ "field": field })))
}

/// Instantly audit entries across workspaces, newest first.
#[utoipa::path(get, path = "/v1/reports/audit-logs", params(AuditLogsQuery), tag = "reports", responses(
    (status = 200, description = "a page of audit entries, newest first; CSV with `?format=csv`", body = ReportPage<AuditReportRow>),
    (status = 400, description = "bad filter", body = super::ErrorBody),
    (status = 403, description = "needs Campaigns View", body = super::ErrorBody),
))]
pub async fn audit_logs(
    State(state): State<AppState>,
    operator: Operator,
    q: Result<Query<AuditLogsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    authz::require(&operator, Area::Campaigns, Level::View)?;
    let q = query(q)?;
    let fmt = format(q.format.as_deref())?;
    let scope = scope(&operator, q.label.as_deref(), q.workspace_id.as_deref())?;
    let activity_type = match q.activity_type.as_deref() {
        Some(raw) => Some(raw.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_activity_type",
                format!("activity_type must be an integer, not {raw:?}"),
            )
            .with_details(json!({ "field": "activity_type" }))
        })?),
        None => None,
    };
    let since = q
        .since
        .as_deref()
        .map(|s| parse_time(s, "since", false))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|s| parse_time(s, "until", true))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(
            ApiError::bad_request("invalid_time_range", "since must not be after until")
                .with_details(json!({ "field": "since" })),
        );
    }
    let inventory = Inventory::new(state.store.db().clone());
    let fetch: Fetch<AuditReportRow> = {
        let (inv, scope) = (inventory.clone(), scope.clone());
        Arc::new(move |cursor, limit| {
            let (inv, scope) = (inv.clone(), scope.clone());
            Box::pin(async move {
                inv.audit_page(
                    &scope,
                    activity_type,
                    since,
                    until,
                    cursor.as_deref(),
                    limit,
                    report_now(),
                )
                .await
            })
        })
    };
    let page = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    respond(
        inventory,
        scope,
        &[resource::AUDIT_LOGS],
        fmt,
        page,
        3,
        fetch,
        "audit-logs",
    )
    .await
}
