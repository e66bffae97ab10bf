//! The one error type of the REST API and its JSON envelope.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered by the REST API as `{"error": {"code", "message", "details"}}`.
///
/// Client errors carry a stable snake_case `code` that names the problem; server errors are
/// logged with their cause and answered with a generic message (causes are never echoed).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A 4xx answer with its own code.
    #[error("{code}: {message}")]
    Client {
        /// HTTP status (4xx).
        status: StatusCode,
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable message; never contains a secret.
        message: String,
        /// Optional structured details (field names, limits, …).
        details: Option<Value>,
    },
    /// Instantly could not be reached or answered with a transient error while a request waited on it.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Anything else: logged, answered as 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Put in an error response's extensions: its code and, for a 403, the missing permission.
#[derive(Debug, Clone)]
pub struct ErrorCode {
    /// The error's code.
    pub code: &'static str,
    /// `details.permission`, when present.
    pub permission: Option<String>,
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 4xx error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A 400 error.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 422 error.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A 404 error for a resource kind (`"workspace"`, `"operation"`, …).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// A 409 error.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Adds structured details to a client error.
    pub fn with_details(mut self, value: Value) -> Self {
        if let ApiError::Client { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Client { code, .. } => code,
            ApiError::Upstream(_) => "instantly_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(err))
    }
}

impl From<flotilla_vault::VaultError> for ApiError {
    fn from(err: flotilla_vault::VaultError) -> Self {
        match err {
            flotilla_vault::VaultError::Duplicate { .. } => {
                ApiError::conflict("duplicate_api_key", "this API key is already registered")
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Maps a unique-constraint violation to `err`, any other error to a 500. `names` lists the
/// index name (what Postgres reports) and `table.column` (what SQLite's message says).
pub fn on_constraint(
    names: &'static [&'static str],
    err: ApiError,
) -> impl FnOnce(sqlx::Error) -> ApiError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            if names
                .iter()
                .any(|n| db.constraint() == Some(*n) || msg.contains(n))
            {
                err
            } else {
                ApiError::from(e)
            }
        }
        _ => ApiError::from(e),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, details) = match &self {
            ApiError::Client {
                code,
                message,
                details,
                ..
            } => (*code, message.clone(), details.clone()),
            ApiError::Upstream(msg) => {
                tracing::warn!(error = %msg, "upstream unavailable");
                (
                    "instantly_unavailable",
                    format!("Instantly could not be reached: {msg}"),
                    None,
                )
            }
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                ("internal", "internal error".to_string(), None)
            }
        };
        // The audit trail records the code and a missing permission, never the message.
        let permission = details
            .as_ref()
            .and_then(|d| d.get("permission"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let Some(details) = details {
            body["error"]["details"] = details;
        }
        let mut resp = (status, Json(body)).into_response();
        resp.extensions_mut().insert(ErrorCode { code, permission });
        resp
    }
}
