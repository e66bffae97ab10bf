//! The REST API (v1): routing, shared state, extractors and the list envelope.

pub mod audit;
pub mod health;
pub mod onboarding;
pub mod operations;
pub mod operators;
pub mod reports;
pub mod workspaces;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use flotilla_vault::Vault;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::config::{Config, ProcessRole};
use crate::error::ApiError;
use crate::store::Store;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Service tables.
    pub store: Store,
    /// Credentials.
    pub vault: Vault,
    /// Configuration.
    pub config: Arc<Config>,
    /// Shared HTTP connection pool for calls to Instantly.
    pub http: reqwest::Client,
    /// Wakes this process's engine when an operation is created.
    pub notify: Arc<Notify>,
    /// Prometheus recorder handle, when metrics are installed.
    pub metrics: Option<PrometheusHandle>,
}

/// Builds the router for `state`. An engine-only process serves only health and metrics.
pub fn router(state: AppState) -> Router {
    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi));
    let v1 = Router::new()
        .route(
            "/v1/workspaces",
            post(workspaces::register).get(workspaces::list),
        )
        .route(
            "/v1/workspaces/{id}",
            get(workspaces::get_one)
                .patch(workspaces::patch)
                .delete(workspaces::delete),
        )
        .route(
            "/v1/workspaces/{id}/credential",
            put(workspaces::put_credential),
        )
        .route("/v1/workspaces/import", post(onboarding::import))
        .route("/v1/workspaces/discover", post(onboarding::discover))
        .route(
            "/v1/operations",
            post(operations::create).get(operations::list),
        )
        .route("/v1/operations/{id}", get(operations::get_one))
        .route("/v1/operations/{id}/targets", get(operations::targets))
        .route("/v1/operations/{id}/events", get(operations::events))
        .route("/v1/operations/{id}/cancel", post(operations::cancel))
        .route("/v1/operations/{id}/retry", post(operations::retry))
        .route(
            "/v1/operators",
            post(operators::create).get(operators::list),
        )
        .route(
            "/v1/operators/{id}",
            get(operators::get_one).delete(operators::revoke),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/reports/access", get(reports::access))
        .route("/v1/reports/api-keys", get(reports::api_keys))
        .route("/v1/reports/tags", get(reports::tags))
        .route("/v1/reports/audit-logs", get(reports::audit_logs));
    // After every `/v1` route (route_layer covers only the routes added before it): tokens and the
    // access matrix first, the audit trail around them so it sees their refusals.
    let v1 = v1
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::authz::enforce,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record,
        ));
    let app = if state.config.role == ProcessRole::Engine {
        ops
    } else {
        ops.merge(v1)
    };
    app.fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(record_http_metrics))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .with_state(state)
}

/// Records `flotilla_http_request_duration_seconds{method, route, status}`. The route is the
/// matched pattern (`/v1/operations/{id}`), never the raw path, so ids do not explode cardinality.
async fn record_http_metrics(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    metrics::histogram!("flotilla_http_request_duration_seconds",
        "method" => method, "route" => route, "status" => response.status().as_str().to_owned())
    .record(started.elapsed().as_secs_f64());
    response
}

/// The OpenAPI document of the whole v1 API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Flotilla", description = "Govern many Instantly.ai client workspaces at once."),
    paths(
        workspaces::register, workspaces::list, workspaces::get_one, workspaces::patch,
        workspaces::delete, workspaces::put_credential,
        onboarding::import, onboarding::discover,
        operations::create, operations::list, operations::get_one, operations::targets,
        operations::events, operations::cancel, operations::retry,
        operators::create, operators::list, operators::get_one, operators::revoke,
        audit::list,
        health::healthz, health::readyz,
        reports::access, reports::api_keys, reports::tags, reports::audit_logs,
    ),
    components(schemas(ErrorBody, ErrorDetail, operators::CreatedOperator, operators::OperatorView, audit::AuditEventView)),
    modifiers(&ApiConventions),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Adds what every v1 operation shares: bearer auth, and the error answers any route may give
/// (bad input, auth, size, media type), all in the error envelope.
struct ApiConventions;

impl utoipa::Modify for ApiConventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let has_params = path.contains('{');
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let has_body = op.request_body.is_some();
                let mut add = |code: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(description).into());
                };
                add("400", "malformed input");
                add("401", "missing, malformed, unknown or revoked token");
                add("403", "the operator's role lacks the permission");
                add("422", "input refused");
                if has_params {
                    add("404", "not found");
                }
                if has_body {
                    add("413", "body over the limit");
                    add("415", "body is not application/json");
                }
            }
        }
    }
}

/// The error envelope.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code naming the problem.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Every list answers `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// This page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor` query parameters shared by every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Page size, 1..=500 (default 100).
    pub limit: Option<i64>,
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The validated page size.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=500).contains(&n) => Ok(n as usize),
            Some(n) => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1..=500, got {n}"),
            )),
        }
    }
}

/// Parses a path id as a UUID with its own error code.
pub fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{what} id must be a UUID")))
}

/// A JSON body whose rejections use the error envelope with specific codes.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Query parameters whose rejections use the error envelope (`invalid_query`).
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let code = if text.contains("unknown field") {
                "unknown_field"
            } else if text.contains("UUID") {
                "invalid_id"
            } else if text.contains("missing field") {
                "missing_field"
            } else {
                "invalid_field"
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, text)
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is over the limit",
                )
            } else {
                ApiError::bad_request("unreadable_body", e.body_text())
            }
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// The OpenAPI schema of a label list, stating the rules of [`validate_labels`] so that clients
/// and generated tests know them (the no-control-characters rule of names stays in the code).
pub fn labels_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(LABEL_PATTERN)),
        )
        .max_items(Some(50))
        .build()
}

/// What a label is, as a regular expression (ECMA-262).
pub const LABEL_PATTERN: &str = "^[A-Za-z0-9_.:-]{1,64}$";

/// Validates a workspace or operator name: 1..=200 characters, no control characters.
pub fn validate_name(name: &str, field: &'static str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("{field} must be 1 to 200 characters without control characters"),
        )
        .with_details(serde_json::json!({ "field": field })));
    }
    Ok(trimmed.to_string())
}

/// Validates labels: each 1..=64 of `[A-Za-z0-9_.:-]`, at most 50; de-duplicated and sorted.
pub fn validate_labels(labels: &[String], field: &'static str) -> Result<Vec<String>, ApiError> {
    if labels.len() > 50 {
        return Err(ApiError::unprocessable(
            "too_many_labels",
            format!("{field}: at most 50 labels"),
        ));
    }
    let mut out = Vec::with_capacity(labels.len());
    for label in labels {
        let ok = !label.is_empty()
            && label.len() <= 64
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if !ok {
            return Err(ApiError::unprocessable(
                "invalid_label",
                format!("{field}: {label:?} is not a label (1-64 of A-Z a-z 0-9 _ . : -)"),
            )
            .with_details(serde_json::json!({ "field": field })));
        }
        out.push(label.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Milliseconds to RFC 3339.
pub fn ts(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_states_the_label_and_name_rules() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("RegisterWorkspace", "labels"),
            ("CreateOperator", "labels"),
            ("Discover", "labels"),
            ("TargetSpec", "labels"),
        ] {
            let labels = &schemas[schema]["properties"][field];
            assert_eq!(labels["maxItems"], 50, "{schema}.{field}: {labels}");
            assert_eq!(
                labels["items"]["pattern"], LABEL_PATTERN,
                "{schema}.{field}"
            );
        }
        let name = &schemas["RegisterWorkspace"]["properties"]["name"];
        assert_eq!(
            (name["minLength"].as_u64(), name["maxLength"].as_u64()),
            (Some(1), Some(200))
        );
        // The documented rules are the enforced ones, at their edges.
        let at_edge = "a".repeat(64);
        assert!(validate_labels(std::slice::from_ref(&at_edge), "labels").is_ok());
        assert!(validate_labels(&[format!("{at_edge}a")], "labels").is_err());
        assert!(validate_labels(&["east west".into()], "labels").is_err());
        assert!(validate_labels(&vec!["a".to_string(); 51], "labels").is_err());
        assert!(validate_name(&"n".repeat(200), "name").is_ok());
        assert!(validate_name(&"n".repeat(201), "name").is_err());
        assert!(validate_name("   ", "name").is_err());
    }
}
