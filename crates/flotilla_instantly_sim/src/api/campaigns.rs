//! `/campaigns` and `/accounts` (instantly-api.md §16).

use std::collections::HashSet;

use chrono::Utc;
use serde_json::{Value, json};

use super::validate::{self, after, paginate, uuid_param};
use super::{Ctx, api_audit, to_value};
use crate::error::{Error, Result};
use crate::state::{Workspace, lock};

/// Resource ids of `resource_type` carrying any of `tag_ids`; `None` when no tag filter was sent.
fn tagged(ws: &Workspace, tag_ids: &[String], resource_type: i64) -> Option<HashSet<String>> {
    if tag_ids.is_empty() {
        return None;
    }
    Some(
        ws.tag_mappings
            .values()
            .filter(|m| m.resource_type == resource_type && tag_ids.contains(&m.tag_id))
            .map(|m| m.resource_id.clone())
            .collect(),
    )
}

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let search = ctx.query.text("search").map(str::to_lowercase);
    let status = ctx.query.int("status")?;
    let exclude_status = ctx.query.int("exclude_status")?;
    let tag_ids = ctx.query.ids("tag_ids");
    let ws = lock(&ctx.ws);
    let tagged = tagged(&ws, &tag_ids, 2);
    let rest = ws
        .campaigns
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, c)| c)
        .filter(|c| {
            search
                .as_ref()
                .is_none_or(|s| c.name.to_lowercase().contains(s))
        })
        .filter(|c| status.is_none_or(|s| c.status == s))
        .filter(|c| exclude_status.is_none_or(|s| c.status != s))
        .filter(|c| tagged.as_ref().is_none_or(|t| t.contains(&c.id)))
        .map(to_value);
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "id",
    ))
}

/// Pause (`2`) or activate (`1`), with audit entries 5 (campaign pause) / 4 (campaign launch).
pub(super) fn set_status(ctx: &Ctx<'_>, id: &str, status: i64) -> Result<Value> {
    uuid_param(id)?;
    validate::no_body(ctx.body.as_ref())?;
    let mut ws = lock(&ctx.ws);
    let campaign = ws.campaigns.get_mut(id).ok_or_else(Error::not_found)?;
    // instantly-api.md §16 [UNK]: pausing a paused (or activating an active/completed) campaign;
    // we treat it as a success that sets the status, with no audit entry when nothing changed.
    let changed = campaign.status != status;
    campaign.status = status;
    if changed {
        campaign.timestamp_updated = Utc::now();
    }
    let out = to_value(campaign);
    if changed {
        let activity = if status == 2 { 5 } else { 4 };
        let entry = api_audit(ctx, &ws, activity, json!({ "campaign_id": id }));
        ws.audit(entry);
    }
    Ok(out)
}

pub(super) fn list_accounts(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let search = ctx.query.text("search").map(str::to_lowercase);
    let status = ctx.query.int("status")?;
    let tag_ids = ctx.query.ids("tag_ids");
    let tag_ids_all = ctx.query.ids("tag_ids_all");
    let ws = lock(&ctx.ws);
    let tagged = tagged(&ws, &tag_ids, 1);
    // instantly-api.md §2/§16: the newer cursor format is `timestamp_created&email`. We issue the
    // email as the cursor (a choice) and accept either form, using the part after the last `&`.
    let cursor = ctx
        .starting_after()
        .map(|c| c.rsplit('&').next().unwrap_or(c));
    let start = match cursor {
        None => 0,
        Some(c) => ws
            .accounts
            .iter()
            .position(|a| a.email.eq_ignore_ascii_case(c))
            .map_or(ws.accounts.len(), |i| i + 1),
    };
    let has_all = |email: &str| {
        tag_ids_all.iter().all(|t| {
            ws.tag_mappings
                .values()
                .any(|m| m.resource_type == 1 && &m.tag_id == t && m.resource_id == email)
        })
    };
    let rest = ws.accounts[start..]
        .iter()
        .filter(|a| {
            search
                .as_ref()
                .is_none_or(|s| a.email.to_lowercase().contains(s))
        })
        .filter(|a| status.is_none_or(|s| a.status == s))
        .filter(|a| tagged.as_ref().is_none_or(|t| t.contains(&a.email)))
        .filter(|a| has_all(&a.email))
        .map(to_value);
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "email",
    ))
}
