//! Operators and their bearer tokens. Tokens are random, shown once, and stored as SHA-256
//! hashes (a token is 256 random bits, so a fast hash is enough: there is nothing to brute-force).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::api::AppState;
use crate::error::ApiError;
use crate::store::{Store, now_ms};

/// The operator a request authenticated as.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `admin`, `manager`, `sdr` or `viewer`.
    pub role: String,
    /// Label scope: when non-empty, the operator sees only workspaces carrying one of these.
    pub labels: Vec<String>,
}

impl Operator {
    /// The label scope for store queries (`None` = every workspace).
    pub fn visible_labels(&self) -> Option<&[String]> {
        if self.labels.is_empty() {
            None
        } else {
            Some(&self.labels)
        }
    }
}

/// A new random operator token (`flt_` + 43 base64url characters).
pub fn new_token() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    SecretString::from(format!(
        "flt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Inserts an operator; returns its id.
pub async fn insert_operator(
    store: &Store,
    name: &str,
    role: &str,
    labels: &[String],
    token: &SecretString,
    bootstrap: bool,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into operator (id, name, role, labels, token_hash, bootstrap, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(name)
    .bind(role)
    .bind(serde_json::to_string(labels).expect("labels serialise"))
    .bind(hash_token(token.expose_secret()))
    .bind(bootstrap as i64)
    .bind(now_ms())
    .execute(store.db().pool())
    .await?;
    Ok(id)
}

/// Makes sure the bootstrap admin exists. With `configured` (from `FLOTILLA_ADMIN_TOKEN`) its
/// token is exactly that one; without, a token is generated on first start and returned so the
/// caller can print it once. Returns `None` when nothing new must be shown.
pub async fn ensure_bootstrap_admin(
    store: &Store,
    configured: Option<&SecretString>,
) -> Result<Option<SecretString>, sqlx::Error> {
    let existing = sqlx::query(
        "select id, token_hash from operator where bootstrap = $1 and revoked_at is null",
    )
    .bind(1i64)
    .fetch_optional(store.db().pool())
    .await?;
    match (configured, existing) {
        (Some(token), Some(row)) => {
            let hash = hash_token(token.expose_secret());
            let current: String = row.try_get("token_hash")?;
            if current != hash {
                // The configured token is the only one that works: a changed variable replaces it.
                sqlx::query("update operator set token_hash = $2 where id = $1")
                    .bind(row.try_get::<String, _>("id")?)
                    .bind(hash)
                    .execute(store.db().pool())
                    .await?;
            }
            Ok(None)
        }
        (Some(token), None) => {
            insert_operator(store, "bootstrap-admin", "admin", &[], token, true).await?;
            Ok(None)
        }
        (None, Some(_)) => Ok(None),
        (None, None) => {
            let token = new_token();
            insert_operator(store, "bootstrap-admin", "admin", &[], &token, true).await?;
            Ok(Some(token))
        }
    }
}

/// Finds the live operator holding `token`.
pub async fn operator_by_token(
    store: &Store,
    token: &str,
) -> Result<Option<Operator>, sqlx::Error> {
    let row = sqlx::query(
        "select id, name, role, labels from operator where token_hash = $1 and revoked_at is null",
    )
    .bind(hash_token(token))
    .fetch_optional(store.db().pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let labels: String = row.try_get("labels")?;
    Ok(Some(Operator {
        id: Uuid::parse_str(&row.try_get::<String, _>("id")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    }))
}

/// Authenticates a request's `Authorization: Bearer <token>` header: 401 `missing_token` without
/// one, 401 `invalid_token` for a malformed, unknown or revoked token.
pub async fn authenticate(
    headers: &axum::http::HeaderMap,
    store: &Store,
) -> Result<Operator, ApiError> {
    let unauthorized =
        |code: &'static str, msg: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, msg);
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing_token",
            "send Authorization: Bearer <operator token>",
        ));
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256 && t.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            unauthorized(
                "invalid_token",
                "the Authorization header is not a bearer token",
            )
        })?;
    match operator_by_token(store, token).await? {
        Some(op) => Ok(op),
        None => Err(unauthorized("invalid_token", "unknown or revoked token")),
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // `authz::enforce` has usually authenticated the request already.
        if let Some(op) = parts.extensions.get::<Operator>() {
            return Ok(op.clone());
        }
        let op = authenticate(&parts.headers, &state.store).await?;
        parts.extensions.insert(op.clone());
        Ok(op)
    }
}

/// An operator as stored, without its token hash.
#[derive(Debug, Clone)]
pub struct OperatorRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Label scope (empty = every workspace).
    pub labels: Vec<String>,
    /// The bootstrap admin (`FLOTILLA_ADMIN_TOKEN`).
    pub bootstrap: bool,
    /// Created (unix ms).
    pub created_at: i64,
    /// Revoked (unix ms).
    pub revoked_at: Option<i64>,
}

// Never `select *`: the token hash stays in the database.
const OPERATOR_COLUMNS: &str = "id, name, role, labels, bootstrap, created_at, revoked_at";

fn operator_from_row(row: &sqlx::any::AnyRow) -> Result<OperatorRow, sqlx::Error> {
    let labels: String = row.try_get("labels")?;
    Ok(OperatorRow {
        id: Uuid::parse_str(&row.try_get::<String, _>("id")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        bootstrap: row.try_get::<i64, _>("bootstrap")? != 0,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// One operator by id (revoked ones included).
pub async fn operator(store: &Store, id: Uuid) -> Result<Option<OperatorRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "select {OPERATOR_COLUMNS} from operator where id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(store.db().pool())
    .await?;
    row.as_ref().map(operator_from_row).transpose()
}

/// A page of operators ordered by id, after `cursor`.
pub async fn list_operators(
    store: &Store,
    cursor: Option<Uuid>,
    limit: usize,
) -> Result<Vec<OperatorRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "select {OPERATOR_COLUMNS} from operator where id > $1 order by id limit {limit}"
    ))
    .bind(cursor.map(|c| c.to_string()).unwrap_or_default())
    .fetch_all(store.db().pool())
    .await?;
    rows.iter().map(operator_from_row).collect()
}

/// Live unscoped admins other than `except`.
pub async fn other_full_admins(store: &Store, except: Uuid) -> Result<usize, sqlx::Error> {
    let rows = sqlx::query(
        "select labels from operator where role = $1 and revoked_at is null and id <> $2",
    )
    .bind("admin")
    .bind(except.to_string())
    .fetch_all(store.db().pool())
    .await?;
    Ok(rows
        .iter()
        .filter(|r| {
            r.try_get::<String, _>("labels")
                .map(|l| {
                    serde_json::from_str::<Vec<String>>(&l)
                        .unwrap_or_default()
                        .is_empty()
                })
                .unwrap_or(false)
        })
        .count())
}

/// Revokes an operator at once (its token's next request is 401). Returns false when it was
/// already revoked.
pub async fn revoke_operator(store: &Store, id: Uuid) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("update operator set revoked_at = $2 where id = $1 and revoked_at is null")
            .bind(id.to_string())
            .bind(now_ms())
            .execute(store.db().pool())
            .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.expose_secret().starts_with("flt_"));
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_ne!(hash_token(a.expose_secret()), a.expose_secret());
        assert_eq!(hash_token("x").len(), 64);
    }
}
