//! Errors of the simulator: refusals of the simulated API and misuse of the control surface.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal of the simulated Instantly API, rendered as its Fastify-style envelope
    /// `{"statusCode", "error", "message"}` (instantly-api.md §3).
    #[error("{status} {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Instantly's `message`.
        message: String,
    },
    /// A control call named a workspace the simulator does not hold.
    #[error("workspace {0} not found")]
    UnknownWorkspace(String),
    /// A control call named an object the simulator does not hold.
    #[error("{0} not found")]
    NotFound(String),
    /// A control call with unusable input.
    #[error("{0}")]
    InvalidInput(String),
}

impl Error {
    /// A simulated API refusal with `status` and `message`.
    pub fn api(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Api {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::api(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found() -> Self {
        // instantly-api.md §3 [SPEC]: the 404 message seen in examples.
        Self::api(StatusCode::NOT_FOUND, "Resource not found")
    }

    /// The body Instantly would send for this error.
    pub fn envelope(&self) -> serde_json::Value {
        let (status, message) = match self {
            Error::Api { status, message } => (*status, message.clone()),
            Error::UnknownWorkspace(_) | Error::NotFound(_) => {
                (StatusCode::NOT_FOUND, self.to_string())
            }
            Error::InvalidInput(m) => (StatusCode::BAD_REQUEST, m.clone()),
        };
        envelope(status, &message)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Api { status, .. } => *status,
            Error::UnknownWorkspace(_) | Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::InvalidInput(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The Fastify error envelope.
pub(crate) fn envelope(status: StatusCode, message: &str) -> serde_json::Value {
    json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (self.status(), Json(self.envelope())).into_response()
    }
}
