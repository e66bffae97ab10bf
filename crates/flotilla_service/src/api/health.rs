//! Liveness, readiness, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use utoipa::OpenApi;

use super::{ApiDoc, AppState};
use crate::error::ApiError;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "alive")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", security(()), responses(
    (status = 200, description = "ready"),
    (status = 503, description = "database unreachable", body = super::ErrorBody)
))]
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match state.store.db().ping().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database does not answer",
            ))
        }
    }
}

/// Prometheus metrics. Target and operation counts are read from the database at scrape time,
/// so every replica reports the same, whole picture.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.state_counts().await {
        Ok((targets, operations)) => {
            for s in crate::store::state::ALL {
                let n = targets
                    .iter()
                    .find(|(k, _)| k == s)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                metrics::gauge!("flotilla_targets", "state" => s).set(n as f64);
            }
            for s in crate::store::op_status::ALL {
                let n = operations
                    .iter()
                    .find(|(k, _)| k == s)
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                metrics::gauge!("flotilla_operations", "status" => s).set(n as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "metrics: counting targets failed"),
    }
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// The OpenAPI 3 document of the v1 API.
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
