//! The service's tables: workspaces and labels, operations, targets and their lanes, operators and
//! the audit trail. One SQL text serves both backends (`$n` placeholders, BIGINT unix-ms
//! timestamps, TEXT ids and JSON); the few places that differ branch on [`Backend`].

use std::collections::BTreeMap;

use flotilla_vault::db::{Backend, Database};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub use flotilla_vault::placeholders;

/// Target states.
pub mod state {
    /// Waiting to be claimed (possibly after a backoff).
    pub const PENDING: &str = "pending";
    /// Claimed by an engine under a lease.
    pub const RUNNING: &str = "running";
    /// Done; every change applied (or, for a dry run, recorded).
    pub const SUCCEEDED: &str = "succeeded";
    /// Failed permanently or ran out of attempts.
    pub const FAILED: &str = "failed";
    /// Nothing to do for this workspace (e.g. the kind does not apply to it).
    pub const SKIPPED: &str = "skipped";
    /// Stopped before it ran: the operation was cancelled or exceeded its failure tolerance.
    pub const CANCELLED: &str = "cancelled";
    /// Every state, in display order.
    pub const ALL: [&str; 6] = [PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED];
}

/// Operation statuses.
pub mod op_status {
    /// No target has started yet.
    pub const PENDING: &str = "pending";
    /// At least one target started and some are not finished.
    pub const RUNNING: &str = "running";
    /// Every target succeeded or was skipped.
    pub const SUCCEEDED: &str = "succeeded";
    /// Some targets succeeded, some failed or were cancelled.
    pub const PARTIALLY_SUCCEEDED: &str = "partially_succeeded";
    /// No target succeeded, or the failure tolerance was exceeded.
    pub const FAILED: &str = "failed";
    /// Cancelled by an operator.
    pub const CANCELLED: &str = "cancelled";
    /// Every status.
    pub const ALL: [&str; 6] = [
        PENDING,
        RUNNING,
        SUCCEEDED,
        PARTIALLY_SUCCEEDED,
        FAILED,
        CANCELLED,
    ];
}

/// A workspace row with its labels.
#[derive(Debug, Clone)]
pub struct WorkspaceRow {
    /// Flotilla's id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The Instantly workspace this one is bound to.
    pub instantly_workspace_id: String,
    /// `direct` or `delegated`.
    pub mode: String,
    /// For delegated workspaces: the admin workspace whose key acts for it.
    pub admin_workspace_id: Option<Uuid>,
    /// Labels, sorted.
    pub labels: Vec<String>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last update (unix ms).
    pub updated_at: i64,
}

fn parse_uuid(s: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn workspace_from_row(row: &AnyRow) -> Result<WorkspaceRow, sqlx::Error> {
    let admin: Option<String> = row.try_get("admin_workspace_id")?;
    Ok(WorkspaceRow {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        name: row.try_get("name")?,
        instantly_workspace_id: row.try_get("instantly_workspace_id")?,
        mode: row.try_get("mode")?,
        admin_workspace_id: admin.as_deref().map(parse_uuid).transpose()?,
        labels: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Filter for listing workspaces.
#[derive(Debug, Default, Clone)]
pub struct WorkspaceFilter {
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// Only workspaces of this mode.
    pub mode: Option<String>,
    /// Only workspaces carrying one of these labels (an operator's label scope); `None` = all.
    pub visible_labels: Option<Vec<String>>,
}

/// An operation row.
#[derive(Debug, Clone)]
pub struct OperationRow {
    /// Id (UUID v7, time-ordered).
    pub id: Uuid,
    /// Kind, e.g. `members.invite`.
    pub kind: String,
    /// Validated params.
    pub params: Value,
    /// The target spec as submitted.
    pub targets: Value,
    /// Dry run: read and diff only.
    pub dry_run: bool,
    /// Most targets of this operation running at once.
    pub max_concurrency: Option<i64>,
    /// Failure tolerance as submitted (`3` or `"10%"`).
    pub failure_tolerance: Option<Value>,
    /// Materialised status.
    pub status: String,
    /// Why it stopped early (`cancelled`, `failure_tolerance`).
    pub stop_reason: Option<String>,
    /// Number of targets.
    pub total: i64,
    /// Operation this one retries.
    pub retry_of: Option<Uuid>,
    /// Operator who created it.
    pub created_by: Option<Uuid>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// First claim (unix ms).
    pub started_at: Option<i64>,
    /// Last target finished (unix ms).
    pub finished_at: Option<i64>,
    /// Idempotency key and request hash, when given.
    pub request_hash: Option<String>,
}

fn operation_from_row(row: &AnyRow) -> Result<OperationRow, sqlx::Error> {
    let json = |col: &str| -> Result<Value, sqlx::Error> {
        let s: String = row.try_get(col)?;
        serde_json::from_str(&s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let tolerance: Option<String> = row.try_get("failure_tolerance")?;
    let retry_of: Option<String> = row.try_get("retry_of")?;
    let created_by: Option<String> = row.try_get("created_by")?;
    Ok(OperationRow {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        kind: row.try_get("kind")?,
        params: json("params")?,
        targets: json("targets")?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
        max_concurrency: row.try_get("max_concurrency")?,
        failure_tolerance: tolerance.and_then(|t| serde_json::from_str(&t).ok()),
        status: row.try_get("status")?,
        stop_reason: row.try_get("stop_reason")?,
        total: row.try_get("total")?,
        retry_of: retry_of.as_deref().map(parse_uuid).transpose()?,
        created_by: created_by.as_deref().map(parse_uuid).transpose()?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        request_hash: row.try_get("request_hash")?,
    })
}

/// A target row.
#[derive(Debug, Clone)]
pub struct TargetRow {
    /// Operation it belongs to.
    pub operation_id: Uuid,
    /// Workspace it acts on.
    pub workspace_id: Uuid,
    /// Position in the operation.
    pub seq: i64,
    /// State (see [`state`]).
    pub state: String,
    /// Attempts started so far.
    pub attempts: i64,
    /// Earliest time of the next attempt (unix ms).
    pub next_attempt_at: i64,
    /// Stable result code.
    pub code: Option<String>,
    /// Human message.
    pub message: Option<String>,
    /// Per-item changes (JSON array).
    pub changes: Option<Value>,
    /// Kind-specific progress saved between attempts.
    pub checkpoint: Option<Value>,
    /// First start (unix ms).
    pub started_at: Option<i64>,
    /// Finish (unix ms).
    pub finished_at: Option<i64>,
    /// Last change of this row (unix ms).
    pub updated_at: i64,
}

pub(crate) fn target_from_row(row: &AnyRow) -> Result<TargetRow, sqlx::Error> {
    let json = |col: &str| -> Result<Option<Value>, sqlx::Error> {
        let s: Option<String> = row.try_get(col)?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(TargetRow {
        operation_id: parse_uuid(&row.try_get::<String, _>("operation_id")?)?,
        workspace_id: parse_uuid(&row.try_get::<String, _>("workspace_id")?)?,
        seq: row.try_get("seq")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        code: row.try_get("code")?,
        message: row.try_get("message")?,
        changes: json("changes")?,
        checkpoint: json("checkpoint")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A new operation, validated, with its frozen target list.
#[derive(Debug, Clone)]
pub struct NewOperation {
    /// Kind.
    pub kind: String,
    /// Validated params.
    pub params: Value,
    /// Target spec as submitted.
    pub targets: Value,
    /// Dry run.
    pub dry_run: bool,
    /// Per-operation concurrency.
    pub max_concurrency: Option<i64>,
    /// Failure tolerance as submitted.
    pub failure_tolerance: Option<Value>,
    /// Idempotency key (already namespaced by operator).
    pub idempotency_key: Option<String>,
    /// Hash of the request body, to detect a key reused with another body.
    pub request_hash: Option<String>,
    /// The operation this retries.
    pub retry_of: Option<Uuid>,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Resolved target workspaces, in order.
    pub workspace_ids: Vec<Uuid>,
}

/// A claimed target, ready to run.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Operation id.
    pub operation_id: Uuid,
    /// Workspace id.
    pub workspace_id: Uuid,
    /// Attempt number of this run (1-based).
    pub attempt: i64,
    /// Lease owner (this replica).
    pub owner: String,
    /// The target was taken over from a process whose lease expired.
    pub reclaimed: bool,
    /// Progress saved by an earlier attempt of this target.
    pub checkpoint: Option<Value>,
}

/// How a finished attempt ends.
#[derive(Debug, Clone)]
pub struct Finish {
    /// `succeeded`, `failed` or `skipped`.
    pub state: &'static str,
    /// Stable code.
    pub code: String,
    /// Human message.
    pub message: String,
    /// Per-item changes.
    pub changes: Value,
}

/// Access to the service's tables.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Wraps a connected, migrated database.
    pub fn new(db: Database) -> Store {
        Store { db }
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    /// Begins a transaction that will write (`BEGIN IMMEDIATE` on SQLite, so writers queue on
    /// the busy timeout instead of failing when a read lock cannot be upgraded).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        self.db.begin_write().await.map_err(|e| match e {
            flotilla_vault::VaultError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })
    }

    // ---------------------------------------------------------------- workspaces

    /// Inserts a workspace and its labels inside `conn`'s transaction.
    pub async fn insert_workspace(
        conn: &mut AnyConnection,
        ws: &WorkspaceRow,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into workspace (id, name, instantly_workspace_id, mode, admin_workspace_id, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ws.id.to_string())
        .bind(&ws.name)
        .bind(&ws.instantly_workspace_id)
        .bind(&ws.mode)
        .bind(ws.admin_workspace_id.map(|u| u.to_string()))
        .bind(ws.created_at)
        .bind(ws.updated_at)
        .execute(&mut *conn)
        .await?;
        Self::set_labels(conn, ws.id, &ws.labels).await
    }

    /// Replaces a workspace's labels inside `conn`'s transaction.
    pub async fn set_labels(
        conn: &mut AnyConnection,
        id: Uuid,
        labels: &[String],
    ) -> Result<(), sqlx::Error> {
        sqlx::query("delete from workspace_label where workspace_id = $1")
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        for label in labels {
            sqlx::query("insert into workspace_label (workspace_id, label) values ($1, $2)")
                .bind(id.to_string())
                .bind(label)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Updates name and touch time inside `conn`'s transaction.
    pub async fn update_workspace_name(
        conn: &mut AnyConnection,
        id: Uuid,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("update workspace set name = $2, updated_at = $3 where id = $1")
            .bind(id.to_string())
            .bind(name)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Touches `updated_at`.
    pub async fn touch_workspace(conn: &mut AnyConnection, id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("update workspace set updated_at = $2 where id = $1")
            .bind(id.to_string())
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Deletes a workspace row (labels cascade) inside `conn`'s transaction.
    pub async fn delete_workspace(conn: &mut AnyConnection, id: Uuid) -> Result<u64, sqlx::Error> {
        sqlx::query("delete from workspace_label where workspace_id = $1")
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        let done = sqlx::query("delete from workspace where id = $1")
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected())
    }

    async fn attach_labels(&self, rows: &mut [WorkspaceRow]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        // Rows come sorted by id, so one range query fetches every label of the page.
        let first = rows.iter().map(|w| w.id).min().unwrap_or_default();
        let last = rows.iter().map(|w| w.id).max().unwrap_or_default();
        let labels = sqlx::query(
            "select workspace_id, label from workspace_label where workspace_id >= $1 and workspace_id <= $2 \
             order by workspace_id, label",
        )
        .bind(first.to_string())
        .bind(last.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut by_ws: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in labels {
            by_ws
                .entry(row.try_get("workspace_id")?)
                .or_default()
                .push(row.try_get("label")?);
        }
        for ws in rows {
            ws.labels = by_ws.remove(&ws.id.to_string()).unwrap_or_default();
        }
        Ok(())
    }

    /// One workspace by id, if visible under `visible_labels`.
    pub async fn workspace(
        &self,
        id: Uuid,
        visible_labels: Option<&[String]>,
    ) -> Result<Option<WorkspaceRow>, sqlx::Error> {
        let row = sqlx::query("select * from workspace where id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut rows = vec![workspace_from_row(&row)?];
        self.attach_labels(&mut rows).await?;
        let ws = rows.pop().expect("one row");
        if let Some(visible) = visible_labels
            && !ws.labels.iter().any(|l| visible.contains(l))
        {
            return Ok(None);
        }
        Ok(Some(ws))
    }

    /// The workspaces among `ids` that exist, with their labels, in two queries per 500 ids
    /// (the engine loads a whole claim batch at once).
    pub async fn workspaces_in(
        &self,
        ids: &[Uuid],
    ) -> Result<BTreeMap<Uuid, WorkspaceRow>, sqlx::Error> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(500) {
            let list = placeholders(1, chunk.len());
            let mut rows = Vec::with_capacity(chunk.len());
            // Not kept as prepared statements: the list length varies with every batch, and a
            // cached statement per length would fill every connection's statement cache.
            let sql = format!("select * from workspace where id in ({list})");
            let mut query = sqlx::query(&sql).persistent(false);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                rows.push(workspace_from_row(&row)?);
            }
            let sql = format!(
                "select workspace_id, label from workspace_label where workspace_id in ({list}) \
                 order by workspace_id, label"
            );
            let mut query = sqlx::query(&sql).persistent(false);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let mut labels: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for row in query.fetch_all(self.pool()).await? {
                labels
                    .entry(row.try_get("workspace_id")?)
                    .or_default()
                    .push(row.try_get("label")?);
            }
            for mut ws in rows {
                ws.labels = labels.remove(&ws.id.to_string()).unwrap_or_default();
                out.insert(ws.id, ws);
            }
        }
        Ok(out)
    }

    /// A page of workspaces ordered by id, after `cursor`.
    pub async fn list_workspaces(
        &self,
        filter: &WorkspaceFilter,
        cursor: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<WorkspaceRow>, sqlx::Error> {
        let mut sql = String::from("select w.* from workspace w where w.id > $1");
        let mut binds: Vec<String> = vec![cursor.map(|c| c.to_string()).unwrap_or_default()];
        if let Some(label) = &filter.label {
            binds.push(label.clone());
            sql += &format!(
                " and exists (select 1 from workspace_label l where l.workspace_id = w.id and l.label = ${})",
                binds.len()
            );
        }
        if let Some(mode) = &filter.mode {
            binds.push(mode.clone());
            sql += &format!(" and w.mode = ${}", binds.len());
        }
        if let Some(visible) = &filter.visible_labels {
            if visible.is_empty() {
                return Ok(Vec::new());
            }
            sql += &format!(
                " and exists (select 1 from workspace_label v where v.workspace_id = w.id and v.label in ({}))",
                placeholders(binds.len() + 1, visible.len())
            );
            binds.extend(visible.iter().cloned());
        }
        sql += &format!(" order by w.id limit {}", limit);
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut out = rows
            .iter()
            .map(workspace_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_labels(&mut out).await?;
        Ok(out)
    }

    /// Every workspace id with its labels (for target resolution), ordered by id.
    pub async fn all_workspace_labels(&self) -> Result<Vec<(Uuid, Vec<String>)>, sqlx::Error> {
        let rows = sqlx::query(
            "select w.id as id, l.label as label from workspace w left join workspace_label l on l.workspace_id = w.id \
             order by w.id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<(Uuid, Vec<String>)> = Vec::new();
        for row in rows {
            let id = parse_uuid(&row.try_get::<String, _>("id")?)?;
            let label: Option<String> = row.try_get("label")?;
            match out.last_mut() {
                Some((last, labels)) if *last == id => labels.extend(label),
                _ => out.push((id, label.into_iter().collect())),
            }
        }
        Ok(out)
    }

    /// Workspaces that delegate to `admin_id`.
    pub async fn delegated_of(&self, admin_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
        let rows =
            sqlx::query("select id from workspace where admin_workspace_id = $1 order by id")
                .bind(admin_id.to_string())
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>("id")?))
            .collect()
    }

    // ---------------------------------------------------------------- operations

    /// Looks an operation up by idempotency key.
    pub async fn operation_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<OperationRow>, sqlx::Error> {
        let row = sqlx::query("select * from operation where idempotency_key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(operation_from_row).transpose()
    }

    /// Inserts an operation and all its targets in one transaction.
    pub async fn insert_operation(&self, op: &NewOperation) -> Result<Uuid, sqlx::Error> {
        let id = Uuid::now_v7();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into operation (id, kind, params, targets, dry_run, max_concurrency, failure_tolerance, status, \
             total, idempotency_key, request_hash, retry_of, created_by, created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $12, $13)",
        )
        .bind(id.to_string())
        .bind(&op.kind)
        .bind(op.params.to_string())
        .bind(op.targets.to_string())
        .bind(op.dry_run as i64)
        .bind(op.max_concurrency)
        .bind(op.failure_tolerance.as_ref().map(|v| v.to_string()))
        .bind(op.workspace_ids.len() as i64)
        .bind(op.idempotency_key.clone())
        .bind(op.request_hash.clone())
        .bind(op.retry_of.map(|u| u.to_string()))
        .bind(op.created_by.map(|u| u.to_string()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Multi-row inserts keep creating a 10,000-target operation to a few dozen statements.
        const CHUNK: usize = 400;
        for (chunk_index, chunk) in op.workspace_ids.chunks(CHUNK).enumerate() {
            let mut sql = String::from(
                "insert into target (operation_id, workspace_id, seq, state, attempts, next_attempt_at, updated_at) values ",
            );
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, ${}, 'pending', 0, $2, $2)", 3 + 2 * i, 4 + 2 * i))
                .collect();
            sql += &values.join(", ");
            let mut query = sqlx::query(&sql).bind(id.to_string()).bind(now);
            for (i, ws) in chunk.iter().enumerate() {
                query = query
                    .bind(ws.to_string())
                    .bind((chunk_index * CHUNK + i) as i64);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// One operation.
    pub async fn operation(&self, id: Uuid) -> Result<Option<OperationRow>, sqlx::Error> {
        let row = sqlx::query("select * from operation where id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(operation_from_row).transpose()
    }

    /// A page of operations, newest first.
    pub async fn list_operations(
        &self,
        status: Option<&str>,
        kind: Option<&str>,
        cursor: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<OperationRow>, sqlx::Error> {
        let mut sql = String::from("select * from operation where 1 = 1");
        let mut binds = Vec::new();
        if let Some(c) = cursor {
            binds.push(c.to_string());
            sql += &format!(" and id < ${}", binds.len());
        }
        if let Some(s) = status {
            binds.push(s.to_string());
            sql += &format!(" and status = ${}", binds.len());
        }
        if let Some(k) = kind {
            binds.push(k.to_string());
            sql += &format!(" and kind = ${}", binds.len());
        }
        sql += &format!(" order by id desc limit {limit}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(operation_from_row).collect()
    }

    /// Target counts per state.
    pub async fn target_counts(
        &self,
        operation_id: Uuid,
    ) -> Result<BTreeMap<String, i64>, sqlx::Error> {
        let rows = sqlx::query(
            "select state, count(*) as n from target where operation_id = $1 group by state",
        )
        .bind(operation_id.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut counts: BTreeMap<String, i64> =
            state::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        for row in rows {
            counts.insert(row.try_get("state")?, row.try_get("n")?);
        }
        Ok(counts)
    }

    /// A page of targets ordered by `seq`.
    pub async fn list_targets(
        &self,
        operation_id: Uuid,
        state_filter: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TargetRow>, sqlx::Error> {
        let mut sql = String::from("select * from target where operation_id = $1 and seq > $2");
        if state_filter.is_some() {
            sql += " and state = $3";
        }
        sql += &format!(" order by seq limit {limit}");
        let mut query = sqlx::query(&sql)
            .bind(operation_id.to_string())
            .bind(after_seq.unwrap_or(-1));
        if let Some(s) = state_filter {
            query = query.bind(s.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(target_from_row).collect()
    }

    /// One target.
    pub async fn target(
        &self,
        operation_id: Uuid,
        workspace_id: Uuid,
    ) -> Result<Option<TargetRow>, sqlx::Error> {
        let row = sqlx::query("select * from target where operation_id = $1 and workspace_id = $2")
            .bind(operation_id.to_string())
            .bind(workspace_id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(target_from_row).transpose()
    }

    /// Workspaces of targets in the given states, in order (for retry).
    pub async fn target_workspaces_in(
        &self,
        operation_id: Uuid,
        states: &[&str],
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let sql = format!(
            "select workspace_id from target where operation_id = $1 and state in ({}) order by seq",
            placeholders(2, states.len())
        );
        let mut query = sqlx::query(&sql).bind(operation_id.to_string());
        for s in states {
            query = query.bind(s.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>("workspace_id")?))
            .collect()
    }

    /// Cancels an operation: pending targets become cancelled; running ones finish their attempt.
    /// Returns false when the operation had already finished.
    pub async fn cancel_operation(&self, id: Uuid, reason: &str) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "update operation set stop_reason = coalesce(stop_reason, $2) where id = $1 \
             and status in ('pending', 'running')",
        )
        .bind(id.to_string())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "update target set state = 'cancelled', code = $2, message = $3, updated_at = $4, finished_at = $4 \
             where operation_id = $1 and state = 'pending'",
        )
        .bind(id.to_string())
        .bind(reason)
        .bind(if reason == "cancelled" {
            "operation cancelled before this target ran"
        } else {
            "operation stopped: failure tolerance exceeded"
        })
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.finalize_if_done(id).await?;
        Ok(true)
    }

    /// When no target of the operation is pending or running, writes its final status.
    pub async fn finalize_if_done(&self, id: Uuid) -> Result<(), sqlx::Error> {
        // `exists`-style probe, not a count: it is asked after every finished batch, and a count
        // of the open targets would make a large operation quadratic.
        let open = sqlx::query(
            "select 1 as open from target where operation_id = $1 and state in ('pending', 'running') limit 1",
        )
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        if open.is_some() {
            return Ok(());
        }
        let Some(op) = self.operation(id).await? else {
            return Ok(());
        };
        let counts = self.target_counts(id).await?;
        let status = final_status(&counts, op.stop_reason.as_deref());
        sqlx::query(
            "update operation set status = $2, finished_at = $3 where id = $1 and status in ('pending', 'running')",
        )
        .bind(id.to_string())
        .bind(status)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Finalizes every open operation none of whose targets is still pending or running (its
    /// last finish was written but the finalization after it failed). Returns how many.
    pub async fn finalize_stranded(&self) -> Result<usize, sqlx::Error> {
        let rows = sqlx::query(
            "select o.id from operation o where o.status in ('pending', 'running') \
             and not exists (select 1 from target t where t.operation_id = o.id \
             and t.state in ('pending', 'running'))",
        )
        .fetch_all(self.pool())
        .await?;
        for row in &rows {
            self.finalize_if_done(parse_uuid(&row.try_get::<String, _>("id")?)?)
                .await?;
        }
        Ok(rows.len())
    }

    // ---------------------------------------------------------------- engine

    /// Claims up to `max` runnable targets for `owner`, at most one per workspace across all
    /// operations and replicas (the per-workspace lane), honouring per-operation concurrency.
    ///
    /// Targets whose lease expired (their process died) are claimable again. On Postgres the
    /// candidate rows are locked with `FOR UPDATE SKIP LOCKED` so replicas never claim the same
    /// target; the lane upsert makes the per-workspace exclusion atomic on both backends.
    pub async fn claim(
        &self,
        owner: &str,
        max: usize,
        lease_ms: i64,
        max_attempts: i64,
    ) -> Result<(Vec<Claim>, Vec<Uuid>), sqlx::Error> {
        if max == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let now = now_ms();
        let expires = now + lease_ms;
        let mut tx = self.begin_write().await?;
        let lock = match self.db.backend() {
            Backend::Postgres => " for update of t skip locked",
            Backend::Sqlite => "",
        };
        // Targets running under a live lease, per operation with a concurrency limit. Operations
        // at their limit are left out of the candidates: otherwise one slow operation with a low
        // limit and many targets would fill every batch with targets it may not start, and no
        // other operation would be claimed until it had nearly finished.
        let mut running_per_op: BTreeMap<String, i64> = BTreeMap::new();
        let mut saturated = Vec::new();
        for row in sqlx::query(
            "select t.operation_id, count(*) as n, o.max_concurrency from target t \
             join operation o on o.id = t.operation_id \
             where t.state = 'running' and t.lease_expires_at >= $1 and o.max_concurrency is not null \
             group by t.operation_id, o.max_concurrency",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?
        {
            let op: String = row.try_get("operation_id")?;
            let n: i64 = row.try_get("n")?;
            if n >= row.try_get::<i64, _>("max_concurrency")? {
                saturated.push(op.clone());
            }
            running_per_op.insert(op, n);
        }
        let not_saturated = match saturated.len() {
            0 => String::new(),
            n => format!(" and t.operation_id not in ({})", placeholders(3, n)),
        };
        // Two index-ordered reads that stop at the batch size (see migration 0007): targets whose
        // lease expired (their process died; few), then due pending targets in order.
        let columns =
            "t.operation_id, t.workspace_id, t.attempts, t.state, t.checkpoint, o.max_concurrency";
        let expired = format!(
            "select {columns} from target t join operation o on o.id = t.operation_id \
             where t.state = 'running' and t.lease_expires_at < $1 limit $2{lock}"
        );
        let due = format!(
            "select {columns} from target t join operation o on o.id = t.operation_id \
             where t.state = 'pending' and t.next_attempt_at <= $1{not_saturated} \
             order by t.next_attempt_at, t.operation_id, t.seq limit $2{lock}"
        );
        let mut candidates = Vec::new();
        for (sql, exclude) in [(expired, &[][..]), (due, &saturated[..])] {
            let want = (max * 4).saturating_sub(candidates.len());
            if want == 0 {
                break;
            }
            let mut query = sqlx::query(&sql).bind(now).bind(want as i64);
            for op in exclude {
                query = query.bind(op);
            }
            candidates.extend(query.fetch_all(&mut *tx).await?);
        }
        let mut rows = Vec::with_capacity(candidates.len());
        for row in &candidates {
            rows.push((
                row.try_get::<String, _>("operation_id")?,
                row.try_get::<String, _>("workspace_id")?,
                row.try_get::<i64, _>("attempts")?,
                row.try_get::<String, _>("state")?,
                row.try_get::<Option<i64>, _>("max_concurrency")?,
                row.try_get::<Option<String>, _>("checkpoint")?,
            ));
        }
        // A consistent lock order on lanes keeps two replicas from deadlocking.
        rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));

        let mut claims = Vec::new();
        let mut touched_ops = Vec::new();
        for (op, ws, attempts, st, max_conc, checkpoint) in rows {
            if claims.len() >= max {
                break;
            }
            if st == state::RUNNING && attempts >= max_attempts {
                // Its process died during the last allowed attempt: fail it rather than run again.
                sqlx::query(
                    "update target set state = 'failed', code = 'attempts_exhausted', \
                     message = 'the engine running this target stopped during its last attempt', \
                     lease_owner = null, lease_expires_at = null, finished_at = $3, updated_at = $3 \
                     where operation_id = $1 and workspace_id = $2",
                )
                .bind(&op)
                .bind(&ws)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "delete from workspace_lane where workspace_id = $1 and lease_expires_at < $2",
                )
                .bind(&ws)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                touched_ops.push(parse_uuid(&op)?);
                continue;
            }
            if let Some(limit) = max_conc {
                let running = running_per_op.get(&op).copied().unwrap_or(0);
                if running >= limit {
                    running_per_op.insert(op.clone(), running);
                    continue;
                }
                running_per_op.insert(op.clone(), running + 1);
            }
            let lane = sqlx::query(
                "insert into workspace_lane (workspace_id, operation_id, lease_owner, lease_expires_at) \
                 values ($1, $2, $3, $4) \
                 on conflict (workspace_id) do update set operation_id = excluded.operation_id, \
                 lease_owner = excluded.lease_owner, lease_expires_at = excluded.lease_expires_at \
                 where workspace_lane.lease_expires_at < $5 returning workspace_id",
            )
            .bind(&ws)
            .bind(&op)
            .bind(owner)
            .bind(expires)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if lane.is_none() {
                if let Some(n) = running_per_op.get_mut(&op) {
                    *n -= 1;
                }
                continue;
            }
            sqlx::query(
                "update target set state = 'running', lease_owner = $3, lease_expires_at = $4, \
                 attempts = attempts + 1, started_at = coalesce(started_at, $5), updated_at = $5 \
                 where operation_id = $1 and workspace_id = $2",
            )
            .bind(&op)
            .bind(&ws)
            .bind(owner)
            .bind(expires)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            claims.push(Claim {
                operation_id: parse_uuid(&op)?,
                workspace_id: parse_uuid(&ws)?,
                attempt: attempts + 1,
                owner: owner.to_string(),
                reclaimed: st == state::RUNNING,
                checkpoint: checkpoint.and_then(|c| serde_json::from_str(&c).ok()),
            });
        }
        let mut started: Vec<&Uuid> = claims.iter().map(|c| &c.operation_id).collect();
        started.sort();
        started.dedup();
        for op in started {
            sqlx::query(
                "update operation set status = 'running', started_at = $2 where id = $1 and status = 'pending'",
            )
            .bind(op.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((claims, touched_ops))
    }

    /// Extends a claim's lease; false when the lease was lost (another process took it over).
    pub async fn heartbeat(&self, claim: &Claim, lease_ms: i64) -> Result<bool, sqlx::Error> {
        let expires = now_ms() + lease_ms;
        let mut tx = self.begin_write().await?;
        let t = sqlx::query(
            "update target set lease_expires_at = $4 where operation_id = $1 and workspace_id = $2 \
             and lease_owner = $3 and state = 'running'",
        )
        .bind(claim.operation_id.to_string())
        .bind(claim.workspace_id.to_string())
        .bind(&claim.owner)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update workspace_lane set lease_expires_at = $3 where workspace_id = $1 and lease_owner = $2",
        )
        .bind(claim.workspace_id.to_string())
        .bind(&claim.owner)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(t.rows_affected() == 1)
    }

    /// Saves kind-specific progress for a running target.
    pub async fn save_checkpoint(
        &self,
        claim: &Claim,
        checkpoint: &Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "update target set checkpoint = $4, updated_at = $5 where operation_id = $1 and workspace_id = $2 \
             and lease_owner = $3",
        )
        .bind(claim.operation_id.to_string())
        .bind(claim.workspace_id.to_string())
        .bind(&claim.owner)
        .bind(checkpoint.to_string())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the end of an attempt and frees the workspace's lane. Returns false when the
    /// lease had been lost, in which case nothing is written.
    pub async fn finish(&self, claim: &Claim, finish: &Finish) -> Result<bool, sqlx::Error> {
        Ok(self.finish_many(&[(claim, finish)]).await?[0])
    }

    /// [`Store::finish`] for many attempts in one transaction (the engine's group commit: one
    /// write transaction per batch of finished targets instead of one each). Returns, per item,
    /// whether it was written.
    pub async fn finish_many(&self, items: &[(&Claim, &Finish)]) -> Result<Vec<bool>, sqlx::Error> {
        let now = now_ms();
        let mut done = Vec::with_capacity(items.len());
        if items.is_empty() {
            return Ok(done);
        }
        let mut tx = self.begin_write().await?;
        for (claim, finish) in items {
            let written = sqlx::query(
                "update target set state = $4, code = $5, message = $6, changes = $7, lease_owner = null, \
                 lease_expires_at = null, finished_at = $8, updated_at = $8 \
                 where operation_id = $1 and workspace_id = $2 and lease_owner = $3 and state = 'running'",
            )
            .bind(claim.operation_id.to_string())
            .bind(claim.workspace_id.to_string())
            .bind(&claim.owner)
            .bind(finish.state)
            .bind(&finish.code)
            .bind(&finish.message)
            .bind(finish.changes.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            done.push(written.rows_affected() == 1);
        }
        // Lanes are freed whether or not the target row was still ours (as in `release_lane`);
        // every claim of one engine has the same owner, grouped so it is one statement per owner.
        let mut by_owner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (claim, _) in items {
            by_owner
                .entry(claim.owner.as_str())
                .or_default()
                .push(claim.workspace_id.to_string());
        }
        for (owner, workspaces) in by_owner {
            for chunk in workspaces.chunks(500) {
                let sql = format!(
                    "delete from workspace_lane where lease_owner = $1 and workspace_id in ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&sql).persistent(false).bind(owner);
                for ws in chunk {
                    query = query.bind(ws);
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Puts a target back to pending after a transient failure, to run again at `next_attempt_at`.
    pub async fn reschedule(
        &self,
        claim: &Claim,
        next_attempt_at: i64,
        code: &str,
        message: &str,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "update target set state = 'pending', next_attempt_at = $4, code = $5, message = $6, \
             lease_owner = null, lease_expires_at = null, updated_at = $7 \
             where operation_id = $1 and workspace_id = $2 and lease_owner = $3 and state = 'running'",
        )
        .bind(claim.operation_id.to_string())
        .bind(claim.workspace_id.to_string())
        .bind(&claim.owner)
        .bind(next_attempt_at)
        .bind(code)
        .bind(message)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        Self::release_lane(&mut tx, claim).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claim back untouched (graceful shutdown): the target is pending again at once and
    /// the attempt is not counted.
    pub async fn release(&self, claim: &Claim) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update target set state = 'pending', attempts = attempts - 1, lease_owner = null, \
             lease_expires_at = null, updated_at = $4 \
             where operation_id = $1 and workspace_id = $2 and lease_owner = $3 and state = 'running'",
        )
        .bind(claim.operation_id.to_string())
        .bind(claim.workspace_id.to_string())
        .bind(&claim.owner)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        Self::release_lane(&mut tx, claim).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_lane(conn: &mut AnyConnection, claim: &Claim) -> Result<(), sqlx::Error> {
        sqlx::query("delete from workspace_lane where workspace_id = $1 and lease_owner = $2")
            .bind(claim.workspace_id.to_string())
            .bind(&claim.owner)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Targets per state and operations per status, across the database (for `/metrics`).
    pub async fn state_counts(
        &self,
    ) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), sqlx::Error> {
        let mut out = (Vec::new(), Vec::new());
        for (sql, into) in [
            (
                "select state as k, count(*) as n from target group by state",
                &mut out.0,
            ),
            (
                "select status as k, count(*) as n from operation group by status",
                &mut out.1,
            ),
        ] {
            for row in sqlx::query(sql).fetch_all(self.pool()).await? {
                into.push((row.try_get("k")?, row.try_get("n")?));
            }
        }
        Ok(out)
    }

    /// Number of failed targets of an operation.
    pub async fn failed_count(&self, operation_id: Uuid) -> Result<i64, sqlx::Error> {
        sqlx::query("select count(*) as n from target where operation_id = $1 and state = 'failed'")
            .bind(operation_id.to_string())
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }
}

/// The final status of an operation from its target counts.
pub fn final_status(counts: &BTreeMap<String, i64>, stop_reason: Option<&str>) -> &'static str {
    let get = |s: &str| counts.get(s).copied().unwrap_or(0);
    let ok = get(state::SUCCEEDED) + get(state::SKIPPED);
    let bad = get(state::FAILED) + get(state::CANCELLED);
    match stop_reason {
        Some("cancelled") => op_status::CANCELLED,
        Some("failure_tolerance") => op_status::FAILED,
        _ if bad == 0 => op_status::SUCCEEDED,
        _ if ok == 0 => op_status::FAILED,
        _ => op_status::PARTIALLY_SUCCEEDED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn final_status_table() {
        assert_eq!(
            final_status(&counts(&[("succeeded", 3)]), None),
            "succeeded"
        );
        assert_eq!(
            final_status(&counts(&[("succeeded", 2), ("skipped", 1)]), None),
            "succeeded"
        );
        assert_eq!(
            final_status(&counts(&[("succeeded", 2), ("failed", 1)]), None),
            "partially_succeeded"
        );
        assert_eq!(final_status(&counts(&[("failed", 2)]), None), "failed");
        assert_eq!(
            final_status(
                &counts(&[("succeeded", 1), ("cancelled", 2)]),
                Some("cancelled")
            ),
            "cancelled"
        );
        assert_eq!(
            final_status(
                &counts(&[("succeeded", 5), ("failed", 2), ("cancelled", 3)]),
                Some("failure_tolerance")
            ),
            "failed"
        );
    }

    #[test]
    fn placeholders_are_numbered_from_start() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }
}
