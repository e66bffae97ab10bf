//! `inventory.sync`: read every resource the reports need from one workspace and store it as
//! that workspace's snapshot. It writes nothing at Instantly, so it implements [`Runner`]
//! directly instead of [`super::Kind`] (there is no diff to apply or verify); a dry run reads
//! everything, records the counts as `would_sync`, and stores nothing.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use flotilla_instantly::{
    ErrorKind, ListAccounts, ListAuditLogs, ListCampaigns, ListCustomTags, ListTagMappings,
};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Limits, Runner};
use crate::engine::{Change, Outcome, TargetCtx, TargetError};
use crate::error::ApiError;
use crate::inventory::{
    AccountRow, ApiKeyRow, AuditRow, CampaignRow, GroupMemberRow, Inventory, MemberRow,
    ResourceState, Snapshot, TagMappingRow, TagRow, resource,
};
use crate::store::now_ms;

/// The kind's name.
pub const NAME: &str = "inventory.sync";

/// Params of `inventory.sync`: none (an empty object).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncParams {}

/// The `inventory.sync` runner.
pub struct SyncInventory;

impl Runner for SyncInventory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn validate(&self, params: Value, _limits: &Limits) -> Result<Value, ApiError> {
        let params = if params.is_null() {
            Value::Object(Default::default())
        } else {
            params
        };
        let parsed: SyncParams = serde_json::from_value(params).map_err(|e| {
            ApiError::bad_request("invalid_params", format!("params for {NAME}: {e}"))
        })?;
        serde_json::to_value(parsed).map_err(|e| ApiError::Internal(e.into()))
    }

    fn run<'a>(
        &'a self,
        ctx: &'a TargetCtx,
        _params: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, TargetError>> {
        Box::pin(sync(ctx, dry_run))
    }
}

fn ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// Why a resource cannot be read, for a 402 or 403; `None` for every other error.
fn unavailable_reason(err: &flotilla_instantly::Error) -> Option<String> {
    match err.kind() {
        ErrorKind::Forbidden => Some(match err.required_scope() {
            Some(scope) => format!("missing scope {scope}"),
            None => format!("forbidden: {}", err.message()),
        }),
        ErrorKind::PaymentRequired => Some(format!("payment required: {}", err.message())),
        _ => None,
    }
}

/// Reads one resource: `Ok(Some(items))`, `Ok(None)` with the reason recorded when the plan or
/// key cannot read it, or the error that should decide the target.
async fn read<T>(
    name: &'static str,
    fut: impl Future<Output = flotilla_instantly::Result<Vec<T>>>,
    states: &mut BTreeMap<&'static str, ResourceState>,
) -> Result<Option<Vec<T>>, flotilla_instantly::Error> {
    match fut.await {
        Ok(items) => {
            states.insert(name, ResourceState::Synced(items.len() as i64));
            Ok(Some(items))
        }
        Err(err) => match unavailable_reason(&err) {
            Some(reason) => {
                states.insert(name, ResourceState::Unavailable(reason));
                Ok(None)
            }
            None => Err(err),
        },
    }
}

async fn sync(ctx: &TargetCtx, dry_run: bool) -> Result<Outcome, TargetError> {
    let db_error = |e: sqlx::Error| TargetError::transient("database_error", e.to_string());
    let inventory = Inventory::new(ctx.store.db().clone());
    let cursor = inventory
        .audit_cursor(ctx.workspace.id)
        .await
        .map_err(db_error)?;
    // instantly-api.md §10/§14 [UNK]: start_date is a day whose inclusivity and timezone are
    // unknown. Asking from the day before the newest entry seen covers any interpretation;
    // the overlap is de-duplicated by id when stored.
    let start_date = cursor
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| (t - ChronoDuration::days(1)).date_naive());
    let client = &ctx.client;
    let synced_at = now_ms();

    // The reads of one workspace run concurrently; the client's per-workspace pacer keeps them
    // under Instantly's limits.
    let mut s_members = BTreeMap::new();
    let mut s_keys = BTreeMap::new();
    let mut s_tags = BTreeMap::new();
    let mut s_maps = BTreeMap::new();
    let mut s_camps = BTreeMap::new();
    let mut s_accts = BTreeMap::new();
    let mut s_groups = BTreeMap::new();
    let mut s_audit = BTreeMap::new();
    let audit_query = ListAuditLogs {
        start_date,
        ..ListAuditLogs::default()
    };
    let (members, keys, tags, maps, camps, accts, groups, audit) = futures::join!(
        read(
            resource::MEMBERS,
            client.list_members().try_collect::<Vec<_>>(),
            &mut s_members
        ),
        read(
            resource::API_KEYS,
            client.list_api_keys().try_collect::<Vec<_>>(),
            &mut s_keys
        ),
        read(
            resource::TAGS,
            client
                .list_custom_tags(&ListCustomTags::default())
                .try_collect::<Vec<_>>(),
            &mut s_tags
        ),
        read(
            resource::TAG_MAPPINGS,
            client
                .list_custom_tag_mappings(&ListTagMappings::default())
                .try_collect::<Vec<_>>(),
            &mut s_maps
        ),
        read(
            resource::CAMPAIGNS,
            client
                .list_campaigns(&ListCampaigns::default())
                .try_collect::<Vec<_>>(),
            &mut s_camps
        ),
        read(
            resource::ACCOUNTS,
            client
                .list_accounts(&ListAccounts::default())
                .try_collect::<Vec<_>>(),
            &mut s_accts
        ),
        read(
            resource::WORKSPACE_GROUPS,
            client.list_group_members().try_collect::<Vec<_>>(),
            &mut s_groups
        ),
        read(
            resource::AUDIT_LOGS,
            client.list_audit_logs(&audit_query).try_collect::<Vec<_>>(),
            &mut s_audit
        ),
    );
    let mut states = BTreeMap::new();
    for s in [
        s_members, s_keys, s_tags, s_maps, s_camps, s_accts, s_groups, s_audit,
    ] {
        states.extend(s);
    }
    // Any other failure (401, 429, 5xx, transport) decides the whole target: a transient one is
    // retried by the engine (the next attempt re-reads everything), a permanent one fails it.
    let mut first_err: Option<flotilla_instantly::Error> = None;
    macro_rules! take {
        ($r:expr) => {
            match $r {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    if first_err
                        .as_ref()
                        .is_none_or(|f: &flotilla_instantly::Error| {
                            f.is_transient() && !e.is_transient()
                        })
                    {
                        first_err = Some(e);
                    }
                    Vec::new()
                }
            }
        };
    }
    let members = take!(members);
    let keys = take!(keys);
    let tags = take!(tags);
    let maps = take!(maps);
    let camps = take!(camps);
    let accts = take!(accts);
    let groups = take!(groups);
    let audit = take!(audit);
    if let Some(err) = first_err {
        return Err(err.into());
    }

    let mut audit_by_id: BTreeMap<String, AuditRow> = BTreeMap::new();
    for a in audit {
        audit_by_id.entry(a.id.clone()).or_insert_with(|| AuditRow {
            log_id: a.id,
            // An entry without a timestamp (not seen, but the field is optional) sorts as now.
            at: ms(a.timestamp).unwrap_or(synced_at),
            activity_type: a.activity_type.0,
            user_id: a.user_id,
            user_name: a.user_name,
            ip_address: a.ip_address,
            from_api: a.from_api,
            campaign_id: a.campaign_id,
            api_key_id: a.api_key_id,
            affected_count: a.affected_count,
            metadata: a.audit_metadata.map(|m| m.to_string()),
        });
    }
    let snapshot = Snapshot {
        workspace_id: ctx.workspace.id,
        synced_at,
        operation_id: Some(ctx.operation.id),
        resources: states.clone(),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                member_id: m.id,
                email: m.email.to_ascii_lowercase(),
                role: m.role.as_str().to_string(),
                accepted: m.accepted,
                user_id: Some(m.user_id).filter(|u| !u.is_empty()),
                created_at: ms(m.timestamp_created),
            })
            .collect(),
        api_keys: keys
            .into_iter()
            .map(|k| ApiKeyRow {
                key_id: k.id,
                name: k.name,
                scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
                created_at: ms(k.timestamp_created),
                updated_at: ms(k.timestamp_updated),
            })
            .collect(),
        tags: tags
            .into_iter()
            .map(|t| TagRow {
                tag_id: t.id,
                label: t.label,
                description: t.description,
            })
            .collect(),
        tag_mappings: maps
            .into_iter()
            .map(|m| TagMappingRow {
                mapping_id: m.id,
                tag_id: m.tag_id,
                resource_type: m.resource_type.code(),
                resource_id: m.resource_id,
            })
            .collect(),
        campaigns: camps
            .into_iter()
            .map(|c| CampaignRow {
                campaign_id: c.id,
                name: c.name,
                status: c.status.0,
            })
            .collect(),
        accounts: accts
            .into_iter()
            .map(|a| AccountRow {
                email: a.email,
                status: a.status.0,
            })
            .collect(),
        groups: groups
            .into_iter()
            .map(|g| GroupMemberRow {
                group_member_id: g.id,
                admin_workspace_id: g.admin_workspace_id,
                sub_workspace_id: g.sub_workspace_id,
                status: g.status.as_str().to_string(),
                admin_workspace_name: g.admin_workspace_name,
                sub_workspace_name: g.sub_workspace_name,
            })
            .collect(),
        audit_logs: audit_by_id.into_values().collect(),
    };

    let mut changes = Vec::new();
    for name in resource::ALL {
        let change = match states.get(name) {
            Some(ResourceState::Synced(n)) => {
                Change::new(name, "synced").with_detail(n.to_string())
            }
            Some(ResourceState::Unavailable(reason)) => {
                Change::new(name, "unavailable").with_detail(reason.clone())
            }
            None => continue,
        };
        let change = if dry_run && change.action == "synced" {
            change.planned()
        } else {
            change
        };
        changes.push(change);
    }
    if dry_run {
        return Ok(Outcome::new(changes, "dry_run"));
    }
    // A replica that lost this target's lease may store the same workspace concurrently; both
    // snapshots are fresh reads and each replacement is one transaction, so the last one wins.
    inventory
        .replace_snapshot(&snapshot)
        .await
        .map_err(db_error)?;
    Ok(Outcome::new(changes, "synced"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_an_empty_object() {
        let limits = Limits { max_items: 10 };
        assert_eq!(
            SyncInventory
                .validate(serde_json::json!({}), &limits)
                .unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            SyncInventory.validate(Value::Null, &limits).unwrap(),
            serde_json::json!({})
        );
        assert_eq!(
            SyncInventory
                .validate(serde_json::json!({"x": 1}), &limits)
                .unwrap_err()
                .code(),
            "invalid_params"
        );
    }
}
