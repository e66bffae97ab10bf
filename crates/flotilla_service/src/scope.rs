//! Label scope for operations. An operator limited to labels sees an operation when at least one
//! of its targets is a workspace they can see; within it, they see only those targets (rows,
//! counts and the ids in its target spec). They may cancel it only when every target is theirs.
//! Unscoped operators (`visible_labels() == None`) see everything.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::store::{Store, TargetRow, placeholders, state, target_from_row};

/// `t.workspace_id` carries one of the labels bound from `$start` on.
fn visible_clause(start: usize, n: usize) -> String {
    format!(
        "exists (select 1 from workspace_label l where l.workspace_id = t.workspace_id and l.label in ({}))",
        placeholders(start, n)
    )
}

impl Store {
    /// Whether an operator with `visible` labels may see operation `id` (one target in scope).
    pub async fn operation_visible(
        &self,
        id: Uuid,
        visible: Option<&[String]>,
    ) -> Result<bool, sqlx::Error> {
        match visible {
            None => Ok(true),
            Some([]) => Ok(false),
            Some(visible) => self.has_target_where(id, visible, "").await,
        }
    }

    /// Whether every target of operation `id` is within `visible` (for cancel by a scoped operator).
    pub async fn operation_fully_visible(
        &self,
        id: Uuid,
        visible: Option<&[String]>,
    ) -> Result<bool, sqlx::Error> {
        match visible {
            None => Ok(true),
            Some([]) => Ok(false),
            Some(visible) => Ok(!self.has_target_where(id, visible, "not").await?),
        }
    }

    /// Whether operation `id` has a target whose workspace carries (`negate` = "") or does not
    /// carry (`negate` = "not") one of `visible`.
    async fn has_target_where(
        &self,
        id: Uuid,
        visible: &[String],
        negate: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "select 1 as one from target t where t.operation_id = $1 and {negate} {} limit 1",
            visible_clause(2, visible.len())
        );
        let mut query = sqlx::query(&sql).bind(id.to_string());
        for l in visible {
            query = query.bind(l.clone());
        }
        Ok(query.fetch_optional(self.db().pool()).await?.is_some())
    }

    /// Target counts per state over the targets visible under `visible` (all when `None`).
    pub async fn target_counts_visible(
        &self,
        id: Uuid,
        visible: Option<&[String]>,
    ) -> Result<BTreeMap<String, i64>, sqlx::Error> {
        let Some(visible) = visible else {
            return self.target_counts(id).await;
        };
        let mut counts: BTreeMap<String, i64> =
            state::ALL.iter().map(|s| (s.to_string(), 0)).collect();
        if visible.is_empty() {
            return Ok(counts);
        }
        let sql = format!(
            "select t.state as state, count(*) as n from target t where t.operation_id = $1 and {} group by t.state",
            visible_clause(2, visible.len())
        );
        let mut query = sqlx::query(&sql).bind(id.to_string());
        for l in visible {
            query = query.bind(l.clone());
        }
        for row in query.fetch_all(self.db().pool()).await? {
            counts.insert(row.try_get("state")?, row.try_get("n")?);
        }
        Ok(counts)
    }

    /// A page of the targets visible under `visible`, ordered by `seq`.
    pub async fn list_targets_visible(
        &self,
        id: Uuid,
        state_filter: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
        visible: Option<&[String]>,
    ) -> Result<Vec<TargetRow>, sqlx::Error> {
        let Some(visible) = visible else {
            return self.list_targets(id, state_filter, after_seq, limit).await;
        };
        if visible.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds: Vec<String> = vec![id.to_string()];
        let mut sql = String::from("select t.* from target t where t.operation_id = $1");
        if let Some(s) = state_filter {
            binds.push(s.to_string());
            sql += &format!(" and t.state = ${}", binds.len());
        }
        sql += &format!(
            " and t.seq > {} and {}",
            after_seq.unwrap_or(-1),
            visible_clause(binds.len() + 1, visible.len())
        );
        binds.extend(visible.iter().cloned());
        sql += &format!(" order by t.seq limit {limit}");
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(self.db().pool()).await?;
        rows.iter().map(target_from_row).collect()
    }

    /// Ids of the workspaces visible under `visible` (every one when `None`).
    pub async fn visible_workspace_ids(
        &self,
        visible: Option<&[String]>,
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let all = self.all_workspace_labels().await?;
        Ok(all
            .into_iter()
            .filter(|(_, labels)| visible.is_none_or(|v| labels.iter().any(|l| v.contains(l))))
            .map(|(id, _)| id)
            .collect())
    }
}

/// Leaves out of a target spec (`workspaces`, `exclude`) the ids outside `visible_ids`, so an
/// operation's spec never names a workspace a scoped operator may not know of.
pub fn redact_spec(spec: &mut Value, visible_ids: &[Uuid]) {
    for field in ["workspaces", "exclude"] {
        if let Some(Value::Array(ids)) = spec.get_mut(field) {
            ids.retain(|v| {
                v.as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .is_some_and(|id| visible_ids.contains(&id))
            });
        }
    }
}
