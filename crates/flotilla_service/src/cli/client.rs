//! A small client of Flotilla's own REST API: bearer auth, the error envelope, list paging.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Why a CLI command failed; each maps to an exit code ([`CliError::exit_code`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with its error envelope (or another non-2xx answer).
    #[error("{code} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope's snake_case code.
        code: String,
        /// The envelope's message.
        message: String,
        /// The envelope's details, if any.
        details: Option<Value>,
    },
    /// The service could not be reached or the connection broke.
    #[error("cannot reach Flotilla at {url}: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What went wrong (reqwest's error chain; it never contains the token).
        reason: String,
    },
    /// Bad command-line input detected before calling the API.
    #[error("{0}")]
    Usage(String),
    /// A watched operation finished in a status other than `succeeded`.
    #[error("operation {id} finished {status}")]
    NotSucceeded {
        /// Operation id.
        id: String,
        /// Its final status.
        status: String,
    },
    /// Anything else (I/O on local files, unexpected answers).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// 1 for API and transport errors, 2 for usage errors, 3 for an operation that did not
    /// succeed (so scripts can tell "the call failed" from "the work failed").
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::NotSucceeded { .. } => 3,
            _ => 1,
        }
    }

    /// Builds the error for a non-2xx answer from its body: the envelope's code and message
    /// when the body is one, else `http_<status>` and the start of the body.
    pub fn from_response(status: StatusCode, body: &str) -> CliError {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let envelope = parsed.as_ref().and_then(|v| v.get("error"));
        match envelope {
            Some(e) if e.get("code").and_then(Value::as_str).is_some() => CliError::Api {
                status: status.as_u16(),
                code: e["code"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
                details: e.get("details").filter(|d| !d.is_null()).cloned(),
            },
            _ => CliError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: body.chars().take(200).collect(),
                details: None,
            },
        }
    }
}

/// Result of a CLI step.
pub type CliResult<T> = Result<T, CliError>;

/// The API client: base URL, operator token, one connection pool.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Timeout of an ordinary call; event streams have none.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with an operator token.
    pub fn new(base: &str, token: SecretString) -> CliResult<Api> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "FLOTILLA_URL must start with http:// or https://, got {base:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("flotilla-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Other(e.into()))?;
        Ok(Api { http, base, token })
    }

    /// The full URL of an API path (`/v1/...`, query included).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, path: &str, err: reqwest::Error) -> CliError {
        // reqwest's Display names the URL and cause; walk the chain for the root cause.
        let mut reason = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        CliError::Unreachable {
            url: self.url(path),
            reason,
        }
    }

    /// A request with the bearer token (marked sensitive by reqwest).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.token.expose_secret())
    }

    /// Sends a request and returns the status and body text, turning non-2xx into
    /// [`CliError::Api`].
    pub async fn send(
        &self,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> CliResult<(StatusCode, String)> {
        let resp = req
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(path, e))?;
        if !status.is_success() {
            return Err(CliError::from_response(status, &text));
        }
        Ok((status, text))
    }

    /// Sends a request and parses a JSON answer (`null` for an empty body).
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        let (_, text) = self.send(path, req).await?;
        parse_json(&text)
    }

    /// `GET` a JSON resource.
    pub async fn get(&self, path: &str) -> CliResult<Value> {
        self.json(Method::GET, path, None).await
    }

    /// `POST` a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// `GET` a text resource (CSV reports).
    pub async fn get_text(&self, path: &str) -> CliResult<String> {
        let (_, text) = self.send(path, self.request(Method::GET, path)).await?;
        Ok(text)
    }

    /// Follows `next_cursor` through every page of a list; returns the items and the last page
    /// (reports carry extra fields such as `missing_snapshots` on each page).
    pub async fn all_pages(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> CliResult<(Vec<Value>, Value)> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        // A server that repeats a cursor must not make the CLI loop forever.
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.get(&with_query(path, &q)).await?;
            if let Some(list) = page["items"].as_array() {
                items.extend(list.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(c) if !c.is_empty() && seen.insert(c.to_string()) => {
                    cursor = Some(c.to_string())
                }
                _ => return Ok((items, page)),
            }
        }
    }

    /// Opens a server-sent event stream (no overall timeout).
    pub async fn events(&self, path: &str) -> CliResult<reqwest::Response> {
        let resp = self
            .request(Method::GET, path)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(CliError::from_response(status, &text));
        }
        Ok(resp)
    }
}

fn parse_json(text: &str) -> CliResult<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        CliError::Other(anyhow::anyhow!(
            "the service answered with invalid JSON: {e}"
        ))
    })
}

/// `path?k=v&…` with the values percent-encoded; pairs with empty values are left out.
pub fn with_query(path: &str, query: &[(&str, String)]) -> String {
    let mut out = path.to_string();
    let mut first = !path.contains('?');
    for (k, v) in query {
        if v.is_empty() {
            continue;
        }
        out.push(if first { '?' } else { '&' });
        first = false;
        out.push_str(k);
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_keep_code_message_and_details() {
        let body =
            r#"{"error":{"code":"no_targets","message":"none","details":{"field":"targets"}}}"#;
        match CliError::from_response(StatusCode::UNPROCESSABLE_ENTITY, body) {
            CliError::Api {
                status,
                code,
                message,
                details,
            } => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (422, "no_targets", "none")
                );
                assert_eq!(details.unwrap()["field"], "targets");
            }
            other => panic!("{other:?}"),
        }
        match CliError::from_response(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") {
            CliError::Api { code, message, .. } => {
                assert_eq!(code, "http_502");
                assert!(message.contains("bad gateway"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_are_encoded_and_empty_values_dropped() {
        let q = [
            ("label", "a b&c".to_string()),
            ("state", String::new()),
            ("limit", "5".into()),
        ];
        assert_eq!(with_query("/v1/x", &q), "/v1/x?label=a+b%26c&limit=5");
        assert_eq!(
            with_query("/v1/x?format=csv", &q[2..]),
            "/v1/x?format=csv&limit=5"
        );
    }

    #[test]
    fn urls_need_a_scheme_and_lose_trailing_slashes() {
        assert!(matches!(
            Api::new("localhost:8080", SecretString::from("t")),
            Err(CliError::Usage(_))
        ));
        let api = Api::new("http://h:1/", SecretString::from("flt_secret")).unwrap();
        assert_eq!(api.url("/v1/a"), "http://h:1/v1/a");
        assert!(!format!("{api:?}").contains("flt_secret"));
    }
}
