//! `workspaces.import`: bulk onboarding. `POST /v1/workspaces/import` writes one operation with
//! one target per uploaded row; each target verifies its row's key live, binds the Instantly
//! workspace id, and registers the workspace with its labels.
//!
//! A target is keyed by a Flotilla workspace id **pre-allocated** for its row (uuid v7), so the
//! workspace does not exist while the target is pending: [`super::super::Engine::execute`] sends
//! targets of this kind here instead of looking the workspace up. The row's name, labels and
//! line live in `import_row`; its key waits encrypted in the vault's staging table
//! (`Vault::stage_secret`) and is deleted once the row is registered or fails. No key is ever
//! written to the operation, its targets, a log line or an error.

use flotilla_instantly::{Client, ClientConfig, ErrorKind, Pacing};
use flotilla_vault::{CredentialSource, NewCredential, Purpose, VaultError};
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use super::{Limits, Runner};
use crate::engine::{Change, Engine, Outcome, TargetCtx, TargetError};
use crate::error::ApiError;
use crate::store::{Claim, OperationRow, Store, WorkspaceRow, now_ms};

/// The kind's name.
pub const NAME: &str = "workspaces.import";

/// Registry entry. Import operations are created only by `POST /v1/workspaces/import` (they
/// carry rows, not a target spec), so `POST /v1/operations` refuses the kind.
pub struct ImportRunner;

impl Runner for ImportRunner {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, _params: Value, _limits: &Limits) -> Result<Value, ApiError> {
        Err(ApiError::unprocessable(
            "kind_not_submittable",
            "workspaces.import operations are created by POST /v1/workspaces/import",
        )
        .with_details(json!({ "field": "kind" })))
    }

    fn run<'a>(
        &'a self,
        _ctx: &'a TargetCtx,
        _params: &'a Value,
        _dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, TargetError>> {
        // Unreachable in practice: the engine routes this kind to `run_target` before building
        // a `TargetCtx` (there is no workspace yet to build it from).
        Box::pin(async {
            Err(TargetError::permanent(
                "internal",
                "workspaces.import targets run through Engine::execute",
            ))
        })
    }
}

/// How one uploaded row enters the operation.
pub enum RowInput {
    /// Well-formed: its key is staged and a pending target verifies and registers it.
    Pending(SecretString),
    /// Refused at upload (malformed, duplicate…): a failed target with this code and message.
    Failed {
        /// Stable code, e.g. `invalid_label`.
        code: &'static str,
        /// Human message (names the field, never a value from the row).
        message: String,
    },
}

/// One uploaded row, validated.
pub struct NewRow {
    /// The line (CSV) or 1-based position (JSON) of the row.
    pub line: i64,
    /// The name, when valid.
    pub name: String,
    /// Labels, validated and sorted.
    pub labels: Vec<String>,
    /// Fingerprint of the key, when it had a valid shape.
    pub fingerprint: Option<String>,
    /// Pending (with its key) or failed.
    pub input: RowInput,
}

/// How a row is named in results: `line 7` for CSV, `row 7` for a JSON array.
pub fn row_label(format: &str, line: i64) -> String {
    if format == "json" {
        format!("row {line}")
    } else {
        format!("line {line}")
    }
}

/// Writes the operation, its targets, its `import_row`s and the staged keys in one transaction.
/// Rows refused at upload become failed targets right away. Returns the operation id.
pub async fn insert_import(
    store: &Store,
    vault: &flotilla_vault::Vault,
    format: &str,
    created_by: Uuid,
    rows: Vec<NewRow>,
) -> Result<Uuid, ApiError> {
    let id = Uuid::now_v7();
    let now = now_ms();
    let rejected = rows
        .iter()
        .filter(|r| matches!(r.input, RowInput::Failed { .. }))
        .count();
    let params = json!({ "format": format, "rows": rows.len(), "rejected_at_upload": rejected });
    let targets = json!({ "import": { "format": format, "rows": rows.len() } });
    let mut tx = store.db().pool().begin().await?;
    sqlx::query(
        "insert into operation (id, kind, params, targets, dry_run, status, total, created_by, created_at) \
         values ($1, $2, $3, $4, 0, 'pending', $5, $6, $7)",
    )
    .bind(id.to_string())
    .bind(NAME)
    .bind(params.to_string())
    .bind(targets.to_string())
    .bind(rows.len() as i64)
    .bind(created_by.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (seq, row) in rows.iter().enumerate() {
        // Time-ordered ids keep the workspaces in upload order when listed by id.
        let ws = Uuid::now_v7();
        let item = row_label(format, row.line);
        match &row.input {
            RowInput::Pending(secret) => {
                sqlx::query(
                    "insert into target (operation_id, workspace_id, seq, state, attempts, next_attempt_at, updated_at) \
                     values ($1, $2, $3, 'pending', 0, $4, $4)",
                )
                .bind(id.to_string())
                .bind(ws.to_string())
                .bind(seq as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                vault.stage_secret(&mut tx, ws, secret).await?;
            }
            RowInput::Failed { code, message } => {
                let changes = json!([Change::new(&item, "failed").with_detail(*code)]);
                sqlx::query(
                    "insert into target (operation_id, workspace_id, seq, state, attempts, next_attempt_at, code, \
                     message, changes, finished_at, updated_at) \
                     values ($1, $2, $3, 'failed', 0, $4, $5, $6, $7, $4, $4)",
                )
                .bind(id.to_string())
                .bind(ws.to_string())
                .bind(seq as i64)
                .bind(now)
                .bind(*code)
                .bind(format!("{item}: {message}"))
                .bind(changes.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "insert into import_row (operation_id, workspace_id, line, name, labels, fingerprint) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(ws.to_string())
        .bind(row.line)
        .bind(&row.name)
        .bind(json!(row.labels).to_string())
        .bind(row.fingerprint.clone())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // Every row may have been refused at upload: then the operation is already over.
    store.finalize_if_done(id).await?;
    Ok(id)
}

/// Deletes staged keys whose row has finished (failed, cancelled, or left behind by a process
/// that died during a row's last attempt). Cheap; run after cancels and at engine start.
pub async fn sweep_staged(store: &Store) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from vault_staged_secret where workspace_id in (select r.workspace_id from import_row r \
         join target t on t.operation_id = r.operation_id and t.workspace_id = r.workspace_id \
         where t.state not in ('pending', 'running'))",
    )
    .execute(store.db().pool())
    .await?;
    Ok(done.rows_affected())
}

struct ImportRowData {
    line: i64,
    name: String,
    labels: Vec<String>,
}

async fn load_row(store: &Store, op: Uuid, ws: Uuid) -> Result<Option<ImportRowData>, sqlx::Error> {
    let row = sqlx::query(
        "select line, name, labels from import_row where operation_id = $1 and workspace_id = $2",
    )
    .bind(op.to_string())
    .bind(ws.to_string())
    .fetch_optional(store.db().pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let labels: String = row.try_get("labels")?;
    Ok(Some(ImportRowData {
        line: row.try_get("line")?,
        name: row.try_get("name")?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    }))
}

/// Why an Instantly workspace cannot be registered again: already registered before this import
/// (`workspace_already_registered`), or by another row of the same file (`duplicate_workspace_in_file`).
async fn already_registered(
    store: &Store,
    op: &OperationRow,
    instantly_id: &str,
) -> Result<Option<(&'static str, String)>, sqlx::Error> {
    let holder = sqlx::query("select id from workspace where instantly_workspace_id = $1")
        .bind(instantly_id)
        .fetch_optional(store.db().pool())
        .await?;
    let Some(holder) = holder else {
        return Ok(None);
    };
    let holder: String = holder.try_get("id")?;
    let sibling =
        sqlx::query("select line from import_row where operation_id = $1 and workspace_id = $2")
            .bind(op.id.to_string())
            .bind(&holder)
            .fetch_optional(store.db().pool())
            .await?;
    let format = op.params["format"].as_str().unwrap_or("csv");
    Ok(Some(match sibling {
        Some(r) => (
            "duplicate_workspace_in_file",
            format!(
                "{} of this file already registered the same Instantly workspace with another key",
                row_label(format, r.try_get("line")?)
            ),
        ),
        None => (
            "workspace_already_registered",
            format!("this Instantly workspace is already registered as {holder}"),
        ),
    }))
}

/// Runs one import target: verify the staged key, bind and register the workspace.
pub(crate) async fn run_target(
    engine: &Engine,
    claim: &Claim,
    op: &OperationRow,
) -> Result<Outcome, TargetError> {
    let internal = |e: sqlx::Error| TargetError::transient("database_error", e.to_string());
    let Some(row) = load_row(&engine.store, op.id, claim.workspace_id)
        .await
        .map_err(internal)?
    else {
        return Err(TargetError::permanent(
            "import_row_missing",
            "the uploaded row is no longer stored",
        ));
    };
    let format = op.params["format"].as_str().unwrap_or("csv");
    let item = row_label(format, row.line);
    // A process that died after registering but before recording the result: the workspace exists
    // under the pre-allocated id, so the row is done.
    if let Some(ws) = engine
        .store
        .workspace(claim.workspace_id, None)
        .await
        .map_err(internal)?
    {
        return Ok(registered(&item, &ws));
    }
    let secret = match engine.vault.staged_secret(claim.workspace_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(TargetError::permanent(
                "staged_key_missing",
                format!("{item}: the uploaded key is no longer staged; upload the row again"),
            ));
        }
        Err(e) => return Err(TargetError::transient("vault_error", e.to_string())),
    };
    let result = register(engine, claim, op, &row, &item, &secret).await;
    let last_attempt = claim.attempt >= engine.config.target_attempts as i64;
    if let Err(err) = &result
        && (!err.transient || last_attempt)
    {
        // The row is over: the uploaded key must not outlive it.
        if let Ok(mut conn) = engine.store.db().pool().acquire().await
            && let Err(e) = engine
                .vault
                .discard_staged(&mut conn, claim.workspace_id)
                .await
        {
            tracing::warn!(error = %e, workspace.id = %claim.workspace_id, "discarding a staged key failed; the sweep will retry");
        }
    }
    result.map_err(|e| {
        let code = e.code.clone();
        TargetError {
            message: format!("{item}: {}", e.message),
            ..e
        }
        .with_changes(vec![Change::new(&item, "failed").with_detail(code)])
    })
}

fn registered(item: &str, ws: &WorkspaceRow) -> Outcome {
    Outcome::new(
        vec![Change::new(item, "registered").with_detail(format!(
            "{} as {} (Instantly workspace {})",
            ws.name, ws.id, ws.instantly_workspace_id
        ))],
        "registered",
    )
}

async fn register(
    engine: &Engine,
    claim: &Claim,
    op: &OperationRow,
    row: &ImportRowData,
    item: &str,
    secret: &SecretString,
) -> Result<Outcome, TargetError> {
    let internal = |e: sqlx::Error| TargetError::transient("database_error", e.to_string());
    let fingerprint = flotilla_vault::Vault::fingerprint(secret);
    let mut config = ClientConfig::new(engine.config.instantly_base_url.clone(), secret.clone());
    config.user_agent = format!("flotilla/{} ({})", env!("CARGO_PKG_VERSION"), engine.owner);
    // The Instantly workspace is not known before this call; pace on the key instead.
    config.pacing = Some(Pacing {
        pacer: engine.pacer.clone(),
        keys: vec![format!("key:{fingerprint}")],
    });
    let client = Client::with_http(config, engine.http.clone())
        .map_err(|e| TargetError::permanent("client_error", e.to_string()))?;
    let current = client
        .current_workspace()
        .await
        .map_err(|err| match err.kind() {
            ErrorKind::Unauthorized => {
                TargetError::permanent("invalid_api_key", "Instantly refused this API key (401)")
            }
            ErrorKind::Forbidden => TargetError::permanent(
                "api_key_lacks_scope",
                "this API key may not read the workspace (it needs workspaces:read)",
            ),
            ErrorKind::PaymentRequired => TargetError::permanent(
                "workspace_not_paid",
                "Instantly says this workspace has no active paid plan (402)",
            ),
            ErrorKind::RateLimited
            | ErrorKind::Server
            | ErrorKind::Transport
            | ErrorKind::Timeout
            | ErrorKind::Decode => TargetError::from(err),
            _ => TargetError::permanent(
                "api_key_verification_failed",
                format!("verifying the key failed: {}", err.message()),
            ),
        })?;
    let instantly_id = current.id;
    if let Some((code, message)) = already_registered(&engine.store, op, &instantly_id)
        .await
        .map_err(internal)?
    {
        return Err(TargetError::permanent(code, message));
    }
    let now = now_ms();
    let ws = WorkspaceRow {
        id: claim.workspace_id,
        name: row.name.clone(),
        instantly_workspace_id: instantly_id.clone(),
        mode: "direct".into(),
        admin_workspace_id: None,
        labels: row.labels.clone(),
        created_at: now,
        updated_at: now,
    };
    let written = async {
        let mut tx = engine
            .store
            .db()
            .pool()
            .begin()
            .await
            .map_err(VaultError::from)?;
        Store::insert_workspace(&mut tx, &ws)
            .await
            .map_err(VaultError::from)?;
        engine
            .vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: ws.id,
                    instantly_workspace_id: &instantly_id,
                    purpose: Purpose::Access,
                    source: CredentialSource::Direct(secret),
                },
            )
            .await?;
        // Registered: the staged copy goes in the same unit of work.
        engine.vault.discard_staged(&mut tx, ws.id).await?;
        tx.commit().await.map_err(VaultError::from)
    }
    .await;
    match written {
        Ok(()) => {}
        Err(VaultError::Duplicate { .. }) => {
            return Err(TargetError::permanent(
                "duplicate_api_key",
                "this API key is already registered",
            ));
        }
        Err(VaultError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            // Another row (or a registration) bound the same Instantly workspace meanwhile.
            return Err(
                match already_registered(&engine.store, op, &instantly_id)
                    .await
                    .map_err(internal)?
                {
                    Some((code, message)) => TargetError::permanent(code, message),
                    None => TargetError::transient(
                        "database_conflict",
                        "a concurrent registration collided; will retry",
                    ),
                },
            );
        }
        Err(e) => return Err(TargetError::transient("database_error", e.to_string())),
    }
    if let Err(e) = engine.vault.mark_verified(ws.id).await {
        tracing::warn!(error = %e, workspace.id = %ws.id, "marking an imported key verified failed");
    }
    tracing::info!(operation.id = %op.id, workspace.id = %ws.id, instantly.workspace = %instantly_id, line = row.line,
        "workspace imported");
    Ok(registered(item, &ws))
}
