//! Bulk onboarding: `POST /v1/workspaces/import` (CSV or JSON rows → a `workspaces.import`
//! operation, one target per row) and `POST /v1/workspaces/discover` (register an admin
//! workspace's accepted sub workspaces as delegated workspaces).
//!
//! Uploaded keys are parsed straight into `SecretString`s, staged encrypted in the vault, and
//! never echoed: row errors name the row and the field, never a value from it.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use flotilla_instantly::{Client, ClientConfig, ErrorKind, GroupMember, GroupMemberStatus};
use flotilla_vault::{CredentialSource, NewCredential, Purpose, Vault};
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::workspaces::{Workspace, view};
use super::{ApiJson, AppState, validate_labels, validate_name};
use crate::auth::Operator;
use crate::engine::kinds::import::{self, NewRow, RowInput};
use crate::error::{ApiError, ApiResult};
use crate::store::{Store, WorkspaceRow, now_ms};

const COLUMNS: [&str; 3] = ["name", "api_key", "labels"];

/// One row as uploaded, before validation. `Err` = refused while parsing.
struct RawRow {
    line: i64,
    parsed: Result<RawFields, (&'static str, String)>,
}

struct RawFields {
    name: String,
    api_key: SecretString,
    labels: Vec<String>,
}

fn row_err(
    code: &'static str,
    message: impl Into<String>,
) -> Result<RawFields, (&'static str, String)> {
    Err((code, message.into()))
}

fn missing_header() -> ApiError {
    // Never echo the first line: without a header it is a data row, key included.
    ApiError::bad_request(
        "missing_header",
        "the first line must be the header name,api_key,labels (labels optional, any order)",
    )
    .with_details(json!({ "expected": COLUMNS }))
}

/// Parses CSV: a header naming `name`, `api_key` and optionally `labels` (any order), then one
/// row per record; labels are `;`-separated. Quoted fields may contain commas and newlines; a
/// row's line is the line its record starts on (the header is line 1).
fn parse_csv(body: &[u8]) -> ApiResult<Vec<RawRow>> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        _ => return Err(missing_header()),
    };
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    for (i, field) in header.iter().enumerate() {
        let name = std::str::from_utf8(field)
            .unwrap_or("")
            .to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if !index.contains_key(c) => {
                index.insert(c, i);
            }
            _ => return Err(missing_header()),
        }
    }
    let (Some(&name_at), Some(&key_at)) = (index.get("name"), index.get("api_key")) else {
        return Err(missing_header());
    };
    let labels_at = index.get("labels").copied();
    let width = header.len();
    let mut rows = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                // Only I/O-level failures remain with `flexible`; the reader cannot go on.
                let line = e.position().map(|p| p.line() as i64).unwrap_or(0);
                rows.push(RawRow {
                    line,
                    parsed: row_err("malformed_row", "the file could not be read from here on"),
                });
                break;
            }
        };
        let line = record.position().map(|p| p.line() as i64).unwrap_or(0);
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        let parsed = if record.len() != width {
            row_err(
                "malformed_row",
                format!(
                    "expected {width} fields like the header, found {}",
                    record.len()
                ),
            )
        } else if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            row_err("malformed_row", "the row is not valid UTF-8")
        } else {
            let text = |i: usize| String::from_utf8_lossy(&record[i]).into_owned();
            let labels = labels_at
                .map(|i| {
                    text(i)
                        .split(';')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Ok(RawFields {
                name: text(name_at),
                api_key: SecretString::from(text(key_at)),
                labels,
            })
        };
        rows.push(RawRow { line, parsed });
    }
    Ok(rows)
}

/// A field name safe to echo (a key pasted as a field name must not come back).
fn echo_field(name: &str) -> Option<&str> {
    (name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(name)
}

fn json_row(value: Value) -> Result<RawFields, (&'static str, String)> {
    let Value::Object(mut map) = value else {
        return row_err(
            "malformed_row",
            "the row must be an object with name, api_key and labels",
        );
    };
    if let Some(unknown) = map.keys().find(|k| !COLUMNS.contains(&k.as_str())) {
        let field = echo_field(unknown)
            .map(|f| format!("unknown field {f:?}"))
            .unwrap_or_else(|| "an unknown field".into());
        return row_err(
            "unknown_field",
            format!("{field}; rows have name, api_key and labels"),
        );
    }
    let take_str = |map: &mut Map<String, Value>, field: &'static str| match map.remove(field) {
        None | Some(Value::Null) => Err(("missing_field", format!("{field} is missing"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(("invalid_field", format!("{field} must be a string"))),
    };
    let name = take_str(&mut map, "name")?;
    let api_key = SecretString::from(take_str(&mut map, "api_key")?);
    let labels = match map.remove("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => out.push(s),
                    _ => return row_err("invalid_field", "labels must be an array of strings"),
                }
            }
            out
        }
        Some(_) => return row_err("invalid_field", "labels must be an array of strings"),
    };
    Ok(RawFields {
        name,
        api_key,
        labels,
    })
}

/// Parses a JSON array of `{name, api_key, labels}`; a row's "line" is its 1-based position.
fn parse_json(body: &[u8]) -> ApiResult<Vec<RawRow>> {
    // serde_json's syntax errors name a position only, never the input.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
    })?;
    let Value::Array(items) = value else {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "the body must be a JSON array of rows",
        ));
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, v)| RawRow {
            line: i as i64 + 1,
            parsed: json_row(v),
        })
        .collect())
}

fn key_shape_ok(key: &SecretString) -> bool {
    let k = key.expose_secret();
    !k.is_empty() && k.len() <= 512 && k.chars().all(|c| c.is_ascii_graphic())
}

/// Validates one parsed row's values. Messages name the field, never the value.
fn check_fields(fields: &RawFields) -> Result<(String, Vec<String>), (&'static str, String)> {
    let name = validate_name(&fields.name, "name").map_err(|e| {
        (
            e.code(),
            "name must be 1 to 200 characters without control characters".to_string(),
        )
    })?;
    if fields.labels.len() > 50 {
        return Err(("too_many_labels", "at most 50 labels".into()));
    }
    for (i, label) in fields.labels.iter().enumerate() {
        if validate_labels(std::slice::from_ref(label), "labels").is_err() {
            return Err((
                "invalid_label",
                format!(
                    "label {} is not a label (1-64 of A-Z a-z 0-9 _ . : -)",
                    i + 1
                ),
            ));
        }
    }
    let labels = validate_labels(&fields.labels, "labels")
        .map_err(|e| (e.code(), "invalid labels".to_string()))?;
    if fields.api_key.expose_secret().is_empty() {
        return Err(("missing_field", "api_key is missing".into()));
    }
    if !key_shape_ok(&fields.api_key) {
        return Err((
            "invalid_api_key",
            "api_key must be 1-512 printable ASCII characters without spaces".into(),
        ));
    }
    Ok((name, labels))
}

/// Bulk-register client workspaces from CSV (`text/csv`: header `name,api_key,labels`, labels
/// `;`-separated) or JSON (`application/json`: `[{"name", "api_key", "labels": [...]}]`).
/// Answers 202 with a `workspaces.import` operation: one target per row, each naming its line
/// (`line N` for CSV, `row N` for JSON) in its message and changes. Rows refused at upload
/// (malformed, bad label, key already in the file or already registered) are failed targets
/// from the start; the others verify their key live and register.
#[utoipa::path(post, path = "/v1/workspaces/import", tag = "workspaces",
    request_body(content = String, description = "CSV (text/csv) or a JSON array (application/json) of rows",
        content_type = "text/csv"),
    responses(
    (status = 202, description = "accepted: the import operation", body = super::operations::Operation),
    (status = 400, description = "no header / malformed JSON", body = super::ErrorBody),
    (status = 415, description = "neither text/csv nor application/json", body = super::ErrorBody),
    (status = 422, description = "no rows / too many rows / not an array", body = super::ErrorBody),
))]
pub async fn import(
    State(state): State<AppState>,
    operator: Operator,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let format = match content_type.as_str() {
        "text/csv" | "application/csv" => "csv",
        "application/json" => "json",
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the rows as text/csv or application/json",
            )
            .with_details(json!({ "accepted": ["text/csv", "application/json"] })));
        }
    };
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is over the limit",
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })?;
    let raw = if format == "csv" {
        parse_csv(&body)?
    } else {
        parse_json(&body)?
    };
    drop(body);
    if raw.is_empty() {
        return Err(ApiError::unprocessable("no_rows", "the upload has no rows"));
    }
    if raw.len() > state.config.max_targets {
        return Err(ApiError::unprocessable(
            "too_many_rows",
            format!(
                "{} rows; the limit is {}",
                raw.len(),
                state.config.max_targets
            ),
        )
        .with_details(json!({ "limit": state.config.max_targets })));
    }
    let mut first_line_of: HashMap<String, i64> = HashMap::new();
    let mut rows = Vec::with_capacity(raw.len());
    for RawRow { line, parsed } in raw {
        let mut row = NewRow {
            line,
            name: String::new(),
            labels: Vec::new(),
            fingerprint: None,
            input: RowInput::Failed {
                code: "",
                message: String::new(),
            },
        };
        let checked = parsed.and_then(|fields| {
            let (name, labels) = check_fields(&fields)?;
            row.name = name;
            row.labels = labels;
            Ok(fields.api_key)
        });
        row.input = match checked {
            Err((code, message)) => RowInput::Failed { code, message },
            Ok(key) => {
                let fp = Vault::fingerprint(&key);
                row.fingerprint = Some(fp.clone());
                if let Some(first) = first_line_of.get(&fp) {
                    RowInput::Failed {
                        code: "duplicate_api_key_in_file",
                        message: format!(
                            "the same API key is on {}",
                            import::row_label(format, *first)
                        ),
                    }
                } else {
                    first_line_of.insert(fp.clone(), line);
                    if state.vault.find_by_fingerprint(&fp).await?.is_some() {
                        RowInput::Failed {
                            code: "duplicate_api_key",
                            message: "this API key is already registered".into(),
                        }
                    } else {
                        RowInput::Pending(key)
                    }
                }
            }
        };
        rows.push(row);
    }
    let rejected = rows
        .iter()
        .filter(|r| matches!(r.input, RowInput::Failed { .. }))
        .count();
    let total = rows.len();
    let id = import::insert_import(&state.store, &state.vault, format, operator.id, rows).await?;
    // Housekeeping: keys of rows that ended without running (a cancelled import).
    import::sweep_staged(&state.store).await?;
    state.notify.notify_one();
    tracing::info!(operation.id = %id, rows = total, rejected, format, operator = %operator.name, "import accepted");
    let op = state
        .store
        .operation(id)
        .await?
        .ok_or_else(|| ApiError::not_found("operation"))?;
    let view = super::operations::operation_view(&state, op, operator.visible_labels()).await?;
    let audit = crate::audit::AuditInfo {
        kind: Some(import::NAME.to_string()),
        operation_id: Some(id),
        ..Default::default()
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/operations/{id}"))],
        axum::Extension(audit),
        Json(view),
    ))
}

/// Body of `POST /v1/workspaces/discover`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Discover {
    /// Flotilla's id of the registered (direct) admin workspace of the workspace group.
    pub admin_workspace_id: Uuid,
    /// Labels for every workspace registered now.
    #[serde(default)]
    #[schema(schema_with = super::labels_schema)]
    pub labels: Vec<String>,
}

/// A group member that was not registered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkippedMember {
    /// The sub workspace's Instantly id.
    pub sub_workspace_id: String,
    /// Its group status at Instantly: `pending`, `accepted`, `rejected`, …
    pub status: String,
    /// `not_accepted` (pending or rejected invitation) or `already_registered`.
    pub reason: String,
    /// For `already_registered`: Flotilla's id of the workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Uuid>,
}

/// Answer of `POST /v1/workspaces/discover`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Discovered {
    /// Workspaces registered by this call (mode `delegated`).
    pub registered: Vec<Workspace>,
    /// Members not registered, with why.
    pub skipped: Vec<SkippedMember>,
}

async fn workspace_by_instantly_id(
    store: &Store,
    instantly_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query("select id from workspace where instantly_workspace_id = $1")
        .bind(instantly_id)
        .fetch_optional(store.db().pool())
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<String, _>("id").ok())
        .and_then(|s| Uuid::parse_str(&s).ok()))
}

/// Register the accepted sub workspaces of a registered admin workspace as delegated workspaces
/// (they act through the admin's key with `x-as-workspace`; no key of their own is stored).
/// Pending and rejected members, and subs already registered, are reported, not registered.
#[utoipa::path(post, path = "/v1/workspaces/discover", request_body = Discover, tag = "workspaces", responses(
    (status = 200, description = "registered and skipped members", body = Discovered),
    (status = 404, description = "no such admin workspace", body = super::ErrorBody),
    (status = 422, description = "the admin workspace is delegated, or its key was refused", body = super::ErrorBody),
))]
pub async fn discover(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<Discover>,
) -> ApiResult<impl IntoResponse> {
    let labels = validate_labels(&body.labels, "labels")?;
    let admin = state
        .store
        .workspace(body.admin_workspace_id, operator.visible_labels())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("workspace").with_details(json!({ "field": "admin_workspace_id" }))
        })?;
    if admin.mode != "direct" {
        return Err(ApiError::unprocessable(
            "admin_not_direct",
            "the admin workspace must be registered with its own key (mode direct)",
        )
        .with_details(json!({ "field": "admin_workspace_id" })));
    }
    let credential = state.vault.access_credential(admin.id).await?;
    let mut config = ClientConfig::new(state.config.instantly_base_url.clone(), credential.secret);
    config.user_agent = format!("flotilla/{}", env!("CARGO_PKG_VERSION"));
    let client =
        Client::with_http(config, state.http.clone()).map_err(|e| ApiError::Internal(e.into()))?;
    let members: Vec<GroupMember> = client.list_group_members().try_collect().await.map_err(|err| match err.kind() {
        ErrorKind::Unauthorized => {
            ApiError::unprocessable("admin_key_refused", "Instantly refused the admin workspace's stored key (401)")
        }
        ErrorKind::Forbidden => ApiError::unprocessable(
            "api_key_lacks_scope",
            "the admin workspace's key may not list group members (it needs workspace_group_members:read)",
        ),
        ErrorKind::PaymentRequired => {
            ApiError::unprocessable("workspace_not_paid", "Instantly says the admin workspace has no active paid plan (402)")
        }
        ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Transport | ErrorKind::Timeout | ErrorKind::Decode => {
            ApiError::Upstream(format!("listing group members failed: {:?}", err.kind()))
        }
        _ => ApiError::unprocessable("discovery_failed", format!("listing group members failed: {}", err.message())),
    })?;
    let mut registered = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for member in members {
        // The list also shows a record where this workspace is the sub (instantly-api.md §12);
        // only its own subs are for discovery.
        if member.admin_workspace_id != admin.instantly_workspace_id
            || !seen.insert(member.sub_workspace_id.clone())
        {
            continue;
        }
        let status = member.status.as_str().to_string();
        if member.status != GroupMemberStatus::Accepted {
            skipped.push(SkippedMember {
                sub_workspace_id: member.sub_workspace_id,
                status,
                reason: "not_accepted".into(),
                workspace_id: None,
            });
            continue;
        }
        if let Some(existing) =
            workspace_by_instantly_id(&state.store, &member.sub_workspace_id).await?
        {
            skipped.push(SkippedMember {
                sub_workspace_id: member.sub_workspace_id,
                status,
                reason: "already_registered".into(),
                workspace_id: Some(existing),
            });
            continue;
        }
        let name = member
            .sub_workspace_name
            .as_deref()
            .and_then(|n| validate_name(n, "name").ok())
            .unwrap_or_else(|| member.sub_workspace_id.clone());
        let now = now_ms();
        let row = WorkspaceRow {
            id: Uuid::now_v7(),
            name,
            instantly_workspace_id: member.sub_workspace_id.clone(),
            mode: "delegated".into(),
            admin_workspace_id: Some(admin.id),
            labels: labels.clone(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = state.store.db().pool().begin().await?;
        let inserted = Store::insert_workspace(&mut tx, &row).await;
        match inserted {
            Ok(()) => {}
            // Registered concurrently by another request.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let existing =
                    workspace_by_instantly_id(&state.store, &member.sub_workspace_id).await?;
                skipped.push(SkippedMember {
                    sub_workspace_id: member.sub_workspace_id,
                    status,
                    reason: "already_registered".into(),
                    workspace_id: existing,
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let meta = state
            .vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: row.id,
                    instantly_workspace_id: &row.instantly_workspace_id,
                    purpose: Purpose::Access,
                    source: CredentialSource::Delegated {
                        admin_workspace_id: admin.id,
                    },
                },
            )
            .await?;
        tx.commit().await?;
        tracing::info!(workspace.id = %row.id, admin.id = %admin.id, instantly.workspace = %row.instantly_workspace_id,
            "delegated workspace registered");
        registered.push(view(row, Some(meta)));
    }
    let audit = crate::audit::AuditInfo {
        workspace_ids: registered.iter().map(|w| w.id).collect(),
        detail: Some(json!({ "admin_workspace_id": admin.id })),
        ..Default::default()
    };
    Ok((
        axum::Extension(audit),
        Json(Discovered {
            registered,
            skipped,
        }),
    ))
}
