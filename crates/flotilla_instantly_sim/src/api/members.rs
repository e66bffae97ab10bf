//! `/workspace-members` (instantly-api.md §7) and `/api-keys` (§8).

use chrono::Utc;
use http::StatusCode;
use serde_json::{Value, json};

use super::validate::{self, after, object, paginate, uuid_param};
use super::{Ctx, api_audit, to_value};
use crate::error::{Error, Result};
use crate::model::{ApiKeyMeta, Member};
use crate::state::{lock, new_id};

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let accepted = ctx.query.bool("accepted")?;
    let search = ctx.query.text("search").map(str::to_lowercase);
    let ws = lock(&ctx.ws);
    let rest = ws
        .members
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, m)| m)
        .filter(|m| accepted.is_none_or(|a| m.accepted == a))
        .filter(|m| {
            search
                .as_ref()
                .is_none_or(|s| m.email.to_lowercase().contains(s))
        })
        .map(to_value);
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "id",
    ))
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    let ws = lock(&ctx.ws);
    ws.members
        .get(id)
        .map(to_value)
        .ok_or_else(Error::not_found)
}

pub(super) fn create(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(
        ctx.body.as_ref(),
        &["email", "role", "user_email", "permissions", "nickname"],
        &["email", "role"],
    )?;
    let email = validate::str_field(map, "email", false)?.unwrap_or_default();
    if !validate::is_email(email) {
        return Err(Error::bad_request("body/email must match format \"email\""));
    }
    let role = validate::assignable_role(map)?.unwrap_or_default();
    let user_email = validate::str_field(map, "user_email", true)?.map(str::to_owned);
    let permissions = validate::permissions(map)?.unwrap_or_default();
    let nickname = validate::str_field(map, "nickname", true)?.map(str::to_owned);

    let mut ws = lock(&ctx.ws);
    if ws
        .members
        .values()
        .any(|m| m.email.eq_ignore_ascii_case(email))
    {
        // instantly-api.md §7 [UNK]: duplicate-invite behaviour is unknown; we choose 409
        // (pending invitations count as members).
        return Err(Error::api(
            StatusCode::CONFLICT,
            format!("A member with email {email} already exists in this workspace"),
        ));
    }
    let id = new_id();
    let member = Member {
        id: id.clone(),
        email: email.to_owned(),
        user_id: uuid::Uuid::new_v4().to_string(),
        user_email,
        name: None,
        role,
        timestamp_created: Utc::now(),
        workspace_id: ws.id.clone(),
        // instantly-api.md §15: new invites are not accepted.
        accepted: false,
        issuer_id: Some(ws.owner_user_id.clone()),
        permissions,
        nickname,
    };
    let out = to_value(&member);
    ws.members.insert(id, member);
    Ok(out)
}

pub(super) fn patch(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    let map = object(ctx.body.as_ref(), &["role", "nickname", "permissions"], &[])?;
    let role = validate::assignable_role(map)?;
    let permissions = validate::permissions(map)?;
    let nickname = match map.get("nickname") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(validate::str_field(map, "nickname", true)?.map(str::to_owned)),
    };
    let mut ws = lock(&ctx.ws);
    let member = ws.members.get_mut(id).ok_or_else(Error::not_found)?;
    if let Some(role) = role {
        if member.role == "owner" {
            // instantly-api.md §7/§11 [UNK]: we refuse demoting the owner here; ownership moves
            // only through change-owner.
            return Err(Error::bad_request(
                "The workspace owner's role cannot be changed; use change-owner",
            ));
        }
        member.role = role;
    }
    if let Some(p) = permissions {
        member.permissions = p;
    }
    if let Some(n) = nickname {
        member.nickname = n;
    }
    Ok(to_value(member))
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    validate::no_body(ctx.body.as_ref())?;
    let mut ws = lock(&ctx.ws);
    let member = ws.members.get(id).ok_or_else(Error::not_found)?;
    if member.role == "owner" {
        // instantly-api.md §7 [UNK]: whether the owner can be removed is unknown; we refuse.
        return Err(Error::bad_request("The workspace owner cannot be removed"));
    }
    let member = ws.members.remove(id).ok_or_else(Error::not_found)?;
    Ok(to_value(&member))
}

/// An API key as the API shows it: `key` is `""` except in the create response
/// (instantly-api.md §8, §13.5).
fn key_json(meta: &ApiKeyMeta, key: &str) -> Value {
    let mut v = to_value(meta);
    if let Value::Object(m) = &mut v {
        m.insert("key".into(), json!(key));
    }
    v
}

pub(super) fn list_keys(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let ws = lock(&ctx.ws);
    let rest = ws
        .api_keys
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, k)| key_json(&k.meta, ""));
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "id",
    ))
}

pub(super) fn create_key(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(ctx.body.as_ref(), &["name", "scopes"], &["name", "scopes"])?;
    let name = validate::non_empty_str(map, "name")?.unwrap_or_default();
    let scopes = validate::str_array(map, "scopes", false)?.unwrap_or_default();
    if scopes.is_empty() {
        // instantly-api.md §8 [UNK]: whether an empty scope list is accepted; we refuse.
        return Err(Error::bad_request(
            "body/scopes must NOT have fewer than 1 items",
        ));
    }
    if let Some(i) = scopes.iter().position(|s| !validate::is_known_scope(s)) {
        return Err(Error::bad_request(format!(
            "body/scopes/{i} must be equal to one of the allowed values"
        )));
    }
    // instantly-api.md §8 [UNK]: a key may create a key broader than itself; we allow it.
    let created = ctx.shared.create_key(&ctx.ws_id, name, &scopes)?;
    let mut ws = lock(&ctx.ws);
    let meta = ws
        .api_keys
        .get(&created.id)
        .map(|k| k.meta.clone())
        .ok_or_else(Error::not_found)?;
    let entry = api_audit(
        ctx,
        &ws,
        37,
        json!({ "api_key_id": meta.id, "name": meta.name }),
    );
    ws.audit(entry);
    Ok(key_json(&meta, &created.key))
}

pub(super) fn delete_key(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    validate::no_body(ctx.body.as_ref())?;
    if id == ctx.key_id {
        // instantly-api.md §8 [UNK]: whether a key can delete itself is unknown; we refuse with
        // 400 so a caller never locks itself out by accident.
        return Err(Error::bad_request("An API key cannot delete itself"));
    }
    let stored = {
        let mut ws = lock(&ctx.ws);
        let stored = ws.api_keys.remove(id).ok_or_else(Error::not_found)?;
        let entry = api_audit(
            ctx,
            &ws,
            38,
            json!({ "api_key_id": id, "name": stored.meta.name }),
        );
        ws.audit(entry);
        stored
    };
    ctx.shared.unindex_key(&stored.secret);
    Ok(key_json(&stored.meta, ""))
}
