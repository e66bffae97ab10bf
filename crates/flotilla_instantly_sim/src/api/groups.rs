//! `/workspace-group-members` (instantly-api.md §12) and `/workspaces/current` (§11).
//!
//! Group records link two workspaces, so they live in `Shared::groups`. Lock order: the groups lock
//! is never held while a workspace lock is taken (records are cloned out first).

use chrono::Utc;
use serde_json::{Value, json};

use super::validate::{self, object, paginate, uuid_param};
use super::{Ctx, to_value};
use crate::error::{Error, Result};
use crate::model::{GroupMember, ts};
use crate::state::{Workspace, lock, new_id};

/// Group records the current workspace is part of (as admin or as sub), in creation order.
///
/// instantly-api.md §12 [INF]: the list is documented for the admin side; a sub workspace also
/// sees its own record (it can leave through DELETE).
fn visible(ctx: &Ctx<'_>) -> Vec<GroupMember> {
    lock(&ctx.shared.groups)
        .values()
        .filter(|g| g.admin_workspace_id == ctx.ws_id || g.sub_workspace_id == ctx.ws_id)
        .cloned()
        .collect()
}

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let cursor = ctx.starting_after();
    let records = visible(ctx);
    let rest = records
        .into_iter()
        .filter(|g| cursor.is_none_or(|c| g.id.as_str() > c))
        .map(|g| to_value(&ctx.shared.render_group(g)));
    Ok(paginate(rest, limit, cursor, ctx.last_page, "id"))
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    let g = visible(ctx)
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(Error::not_found)?;
    Ok(to_value(&ctx.shared.render_group(g)))
}

pub(super) fn create(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(
        ctx.body.as_ref(),
        &["sub_workspace_id"],
        &["sub_workspace_id"],
    )?;
    let sub = validate::uuid_field(map, "sub_workspace_id")?.unwrap_or_default();
    // instantly-api.md §12 [OFF] rules (a workspace cannot be both admin and sub). The status
    // codes and wording of these refusals are [UNK]; we choose 400 with our own messages.
    if sub == ctx.ws_id {
        return Err(Error::bad_request(
            "A workspace cannot add itself to its group",
        ));
    }
    if ctx.shared.ws(&sub).is_none() {
        return Err(Error::bad_request(format!("Workspace {sub} not found")));
    }
    let mut groups = lock(&ctx.shared.groups);
    let live = |g: &&GroupMember| g.status != "rejected";
    if groups
        .values()
        .filter(live)
        .any(|g| g.sub_workspace_id == ctx.ws_id)
    {
        return Err(Error::bad_request(
            "A sub workspace cannot be an admin workspace",
        ));
    }
    if groups
        .values()
        .filter(live)
        .any(|g| g.admin_workspace_id == sub)
    {
        return Err(Error::bad_request(
            "An admin workspace cannot be a sub workspace",
        ));
    }
    if groups
        .values()
        .filter(live)
        .any(|g| g.sub_workspace_id == sub)
    {
        return Err(Error::bad_request(
            "Workspace is already a member of a workspace group",
        ));
    }
    let id = new_id();
    let now = Utc::now();
    let g = GroupMember {
        id: id.clone(),
        admin_workspace_id: ctx.ws_id.clone(),
        sub_workspace_id: sub,
        // instantly-api.md §12 [OFF]: effective only once the sub workspace's owner accepts, which
        // happens in the app; tests flip it with `Simulator::set_group_status`.
        status: "pending".into(),
        timestamp_created: now,
        timestamp_updated: now,
        sub_workspace_name: None,
        admin_workspace_name: None,
    };
    groups.insert(id, g.clone());
    drop(groups);
    Ok(to_value(&ctx.shared.render_group(g)))
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    validate::no_body(ctx.body.as_ref())?;
    let removed = {
        let mut groups = lock(&ctx.shared.groups);
        let allowed = groups
            .get(id)
            .is_some_and(|g| g.admin_workspace_id == ctx.ws_id || g.sub_workspace_id == ctx.ws_id);
        if !allowed {
            return Err(Error::not_found());
        }
        groups.remove(id).ok_or_else(Error::not_found)?
    };
    Ok(to_value(&ctx.shared.render_group(removed)))
}

/// `GET /workspace-group-members/admin`.
pub(super) fn admin(ctx: &Ctx<'_>) -> Result<Value> {
    let link = lock(&ctx.shared.groups)
        .values()
        .find(|g| g.sub_workspace_id == ctx.ws_id && g.status == "accepted")
        .cloned();
    Ok(match link {
        Some(g) => json!({
            "workspace_name": ctx.shared.workspace_name(&g.admin_workspace_id).unwrap_or_else(|| "Undefined".into()),
            "has_admin_workspace": true,
            "workspace_group_member_id": g.id,
        }),
        None => json!({ "workspace_name": "Undefined", "has_admin_workspace": false }),
    })
}

/// The Workspace object (instantly-api.md §11).
fn workspace_json(ws: &Workspace) -> Value {
    json!({
        "id": ws.id,
        "name": ws.name,
        "owner": ws.owner_user_id,
        "timestamp_created": ts::format(&ws.created),
        "timestamp_updated": ts::format(&ws.updated),
        "org_logo_url": ws.org_logo_url,
        "org_client_domain": null,
        "add_unsub_to_block": null,
        "default_opportunity_value": null,
        "plan_id": if ws.paid { Some("pid_hg_v1") } else { None },
        "plan_id_crm": null,
        "plan_id_inbox_placement": null,
        "plan_id_leadfinder": null,
        "plan_id_website_visitor": null,
    })
}

pub(super) fn current(ctx: &Ctx<'_>) -> Result<Value> {
    Ok(workspace_json(&lock(&ctx.ws)))
}

pub(super) fn patch_current(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(ctx.body.as_ref(), &["name", "org_logo_url"], &[])?;
    let name = validate::non_empty_str(map, "name")?.map(str::to_owned);
    let logo = match map.get("org_logo_url") {
        None => None,
        Some(_) => Some(validate::str_field(map, "org_logo_url", true)?.map(str::to_owned)),
    };
    let mut ws = lock(&ctx.ws);
    if let Some(n) = name {
        ws.name = n;
    }
    if let Some(l) = logo {
        ws.org_logo_url = l;
    }
    ws.updated = Utc::now();
    Ok(workspace_json(&ws))
}

/// `POST /workspaces/current/change-owner`.
pub(super) fn change_owner(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(ctx.body.as_ref(), &["email", "sec"], &["email", "sec"])?;
    let email = validate::str_field(map, "email", false)?.unwrap_or_default();
    // instantly-api.md §11 [UNK]: the meaning of `sec` is unknown; any string is accepted.
    validate::str_field(map, "sec", false)?;
    let mut ws = lock(&ctx.ws);
    let new_owner = ws
        .members
        .values()
        .find(|m| m.email.eq_ignore_ascii_case(email))
        .cloned();
    // instantly-api.md §11 [UNK]: validation and the old owner's fate are unknown; we require an
    // accepted member and make the previous owner an admin.
    let Some(new_owner) = new_owner.filter(|m| m.accepted) else {
        return Err(Error::bad_request(format!(
            "{email} is not an accepted member of this workspace"
        )));
    };
    if new_owner.role != "owner" {
        for m in ws.members.values_mut() {
            if m.role == "owner" {
                m.role = "admin".into();
            }
        }
        if let Some(m) = ws.members.get_mut(&new_owner.id) {
            m.role = "owner".into();
        }
        ws.owner_user_id = new_owner.user_id;
        ws.updated = Utc::now();
    }
    Ok(workspace_json(&ws))
}
