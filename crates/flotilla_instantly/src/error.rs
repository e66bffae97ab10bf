//! The client error: HTTP status, Instantly's error body, a classification, and context.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::scope::Scope;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the terms a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 401: key missing, invalid or revoked.
    Unauthorized,
    /// 403: the key lacks the endpoint's scope ([`Error::required_scope`]), or a proxy
    /// (Cloudflare) refused the request (non-JSON body, no scope named).
    Forbidden,
    /// 402: the workspace has no active paid plan.
    PaymentRequired,
    /// 404.
    NotFound,
    /// 400 and other 4xx not listed here; also 200-with-error bodies (instantly-api.md §3) and
    /// an unusable [`crate::ClientConfig`].
    InvalidRequest,
    /// 409.
    Conflict,
    /// 429: a rate limit tripped.
    RateLimited,
    /// 5xx (or another unexpected status).
    Server,
    /// Connecting or talking to the server failed (no usable response).
    Transport,
    /// The request timed out.
    Timeout,
    /// A success response whose body is not what the endpoint returns.
    Decode,
}

impl ErrorKind {
    /// Classify an HTTP error status.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Unauthorized,
            402 => ErrorKind::PaymentRequired,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::RateLimited,
            // Other 4xx (405, 413, 415, 422, …) are the caller's request being wrong.
            405..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        }
    }

    /// Whether the failure may pass on its own (worth retrying later).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Transport | ErrorKind::Timeout
        )
    }

    /// A stable snake_case code, e.g. `"payment_required"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::PaymentRequired => "payment_required",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::Transport => "transport",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Decode => "decode",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Instantly's error envelope `{statusCode, error, message}` (instantly-api.md §3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApiErrorBody {
    /// `statusCode`.
    pub status_code: Option<u16>,
    /// `error`: the HTTP reason phrase (or, in 200-with-error bodies, a code like `ACC_AUTH_ERROR`).
    pub error: Option<String>,
    /// `message`: the detail, e.g. `body must have required property 'name'`.
    pub message: Option<String>,
}

/// Longest body snippet kept from a non-JSON error response.
pub(crate) const SNIPPET_MAX: usize = 200;

/// An Instantly API call failed.
///
/// Never holds a credential: the key travels only in a sensitive header, and request bodies are
/// not kept.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    /// Classification.
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived.
    pub status: Option<StatusCode>,
    /// Instantly's error body, when the response carried one.
    pub body: Option<ApiErrorBody>,
    /// A short, truncated snippet of a body that was not Instantly's JSON envelope (an HTML page
    /// from a proxy or Cloudflare).
    pub snippet: Option<String>,
    /// The endpoint, e.g. `"POST /api/v2/workspace-members"`.
    pub endpoint: &'static str,
    /// For a 403 answered by Instantly: the scope this endpoint requires.
    pub required_scope: Option<Scope>,
    /// How many attempts were made (1 = no retry).
    pub attempts: u32,
    /// Transport or decode detail.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, endpoint: &'static str) -> Error {
        Error {
            kind,
            status: None,
            body: None,
            snippet: None,
            endpoint,
            required_scope: None,
            attempts: 1,
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        self.source = Some(source.into());
        self
    }

    /// Build the error for a non-success HTTP response.
    pub(crate) fn from_response(
        endpoint: &'static str,
        required: Option<&Scope>,
        status: StatusCode,
        bytes: &[u8],
    ) -> Error {
        let mut e = Error::new(ErrorKind::from_status(status.as_u16()), endpoint);
        e.status = Some(status);
        match parse_envelope(bytes) {
            Some(body) => {
                e.body = Some(body);
                // instantly-api.md §3 [UNK]: the 403 body wording is unknown, so the scope is
                // taken from the endpoint table, not parsed from the message. Only a JSON answer
                // is Instantly's own; an HTML 403 is Cloudflare (§1, §13.1) and names no scope.
                if status == StatusCode::FORBIDDEN {
                    e.required_scope = required.cloned();
                }
            }
            None => e.snippet = snippet(bytes),
        }
        e
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status code, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        self.status.map(|s| s.as_u16())
    }

    /// Whether retrying later may succeed (429, 5xx, transport, timeout).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// For a 403 from Instantly: the scope the endpoint requires.
    pub fn required_scope(&self) -> Option<&Scope> {
        self.required_scope.as_ref()
    }

    /// Instantly's message; else the `error` field, the body snippet, or the transport detail.
    pub fn message(&self) -> String {
        if let Some(b) = &self.body {
            if let Some(m) = b.message.as_deref().filter(|m| !m.is_empty()) {
                return m.to_owned();
            }
            if let Some(m) = b.error.as_deref().filter(|m| !m.is_empty()) {
                return m.to_owned();
            }
        }
        if let Some(s) = &self.snippet {
            return s.clone();
        }
        if let Some(src) = &self.source {
            return src.to_string();
        }
        match self.status {
            Some(s) => s.to_string(),
            None => self.kind.code().to_owned(),
        }
    }

    /// Number of attempts made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The endpoint label.
    pub fn endpoint(&self) -> &'static str {
        self.endpoint
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.endpoint, self.kind)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {})", s.as_u16())?;
        }
        write!(f, ": {}", self.message())?;
        if let Some(scope) = &self.required_scope {
            write!(f, " (the key needs scope {scope} or a broader one)")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

/// Instantly's envelope, if `bytes` is a JSON object that looks like one.
pub(crate) fn parse_envelope(bytes: &[u8]) -> Option<ApiErrorBody> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let obj = v.as_object()?;
    if !(obj.contains_key("message") || obj.contains_key("error") || obj.contains_key("statusCode"))
    {
        return None;
    }
    let text = |k: &str| match obj.get(k)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    Some(ApiErrorBody {
        status_code: obj
            .get("statusCode")
            .and_then(|s| s.as_u64())
            .and_then(|s| u16::try_from(s).ok()),
        error: text("error"),
        message: text("message"),
    })
}

/// A short printable snippet of a non-JSON body: whitespace collapsed, at most
/// [`SNIPPET_MAX`] characters, cut on a char boundary.
pub(crate) fn snippet(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4 * SNIPPET_MAX)]);
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    let mut out: String = collapsed.chars().take(SNIPPET_MAX).collect();
    if out.len() < collapsed.len() || bytes.len() > 4 * SNIPPET_MAX {
        out.push('…');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_statuses() {
        for (s, k) in [
            (400, ErrorKind::InvalidRequest),
            (401, ErrorKind::Unauthorized),
            (402, ErrorKind::PaymentRequired),
            (403, ErrorKind::Forbidden),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Conflict),
            (422, ErrorKind::InvalidRequest),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (502, ErrorKind::Server),
            (503, ErrorKind::Server),
        ] {
            assert_eq!(ErrorKind::from_status(s), k, "{s}");
        }
    }

    #[test]
    fn envelope_and_snippet() {
        let e = Error::from_response(
            "GET /api/v2/api-keys",
            Some(&Scope::API_KEYS_READ),
            StatusCode::FORBIDDEN,
            br#"{"statusCode":403,"error":"Forbidden","message":"nope"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        assert_eq!(e.required_scope(), Some(&Scope::API_KEYS_READ));
        assert_eq!(e.message(), "nope");
        assert!(e.to_string().contains("api_keys:read"));

        let html = format!("<html>\n<body>{}</body></html>", "x".repeat(5000));
        let e = Error::from_response(
            "GET /api/v2/api-keys",
            Some(&Scope::API_KEYS_READ),
            StatusCode::FORBIDDEN,
            html.as_bytes(),
        );
        assert_eq!(e.required_scope(), None);
        assert!(e.body.is_none());
        let s = e.snippet.clone().unwrap();
        assert!(s.starts_with("<html> <body>xxx"));
        assert!(s.chars().count() <= SNIPPET_MAX + 1);
        assert!(s.ends_with('…'));
        assert!(snippet(b"   ").is_none());
    }
}
