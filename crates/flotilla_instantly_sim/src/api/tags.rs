//! `/custom-tags` and `/custom-tag-mappings` (instantly-api.md §9).

use chrono::Utc;
use serde_json::{Value, json};
use std::collections::HashSet;

use super::validate::{self, after, object, paginate, uuid_param};
use super::{Ctx, to_value};
use crate::error::{Error, Result};
use crate::model::CustomTag;
use crate::state::{lock, new_id};

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let search = ctx.query.text("search").map(str::to_lowercase);
    let tag_ids: HashSet<String> = ctx.query.ids("tag_ids").into_iter().collect();
    let resource_ids: HashSet<String> = ctx.query.ids("resource_ids").into_iter().collect();
    let ws = lock(&ctx.ws);
    let mapped: Option<HashSet<&str>> = (!resource_ids.is_empty()).then(|| {
        ws.tag_mappings
            .values()
            .filter(|m| resource_ids.contains(&m.resource_id))
            .map(|m| m.tag_id.as_str())
            .collect()
    });
    let rest = ws
        .tags
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, t)| t)
        .filter(|t| {
            search
                .as_ref()
                .is_none_or(|s| t.label.to_lowercase().contains(s))
        })
        .filter(|t| tag_ids.is_empty() || tag_ids.contains(&t.id))
        .filter(|t| mapped.as_ref().is_none_or(|m| m.contains(t.id.as_str())))
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
    ws.tags.get(id).map(to_value).ok_or_else(Error::not_found)
}

pub(super) fn create(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(ctx.body.as_ref(), &["label", "description"], &["label"])?;
    let label = validate::non_empty_str(map, "label")?.unwrap_or_default();
    let description = validate::str_field(map, "description", true)?.map(str::to_owned);
    let mut ws = lock(&ctx.ws);
    // instantly-api.md §9 [UNK]: label uniqueness is not documented; we allow duplicates, so a
    // client that forgets to read first is visible in tests.
    let id = new_id();
    let now = Utc::now();
    let tag = CustomTag {
        id: id.clone(),
        timestamp_created: now,
        timestamp_updated: now,
        organization_id: ws.id.clone(),
        label: label.to_owned(),
        description,
    };
    let out = to_value(&tag);
    ws.tags.insert(id, tag);
    Ok(out)
}

pub(super) fn patch(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    let map = object(ctx.body.as_ref(), &["label", "description"], &[])?;
    let label = validate::non_empty_str(map, "label")?.map(str::to_owned);
    let description = match map.get("description") {
        None => None,
        Some(_) => Some(validate::str_field(map, "description", true)?.map(str::to_owned)),
    };
    let mut ws = lock(&ctx.ws);
    let tag = ws.tags.get_mut(id).ok_or_else(Error::not_found)?;
    if let Some(l) = label {
        tag.label = l;
    }
    if let Some(d) = description {
        tag.description = d;
    }
    tag.timestamp_updated = Utc::now();
    Ok(to_value(tag))
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Value> {
    uuid_param(id)?;
    validate::no_body(ctx.body.as_ref())?;
    let mut ws = lock(&ctx.ws);
    let tag = ws.tags.remove(id).ok_or_else(Error::not_found)?;
    ws.tag_mappings.retain(|_, m| m.tag_id != id);
    Ok(to_value(&tag))
}

/// `POST /custom-tags/toggle-resource`.
pub(super) fn toggle(ctx: &Ctx<'_>) -> Result<Value> {
    let map = object(
        ctx.body.as_ref(),
        &[
            "tag_ids",
            "resource_type",
            "resource_ids",
            "assign",
            "selected_all",
            "filter",
            "excluded_resource_ids",
            "search",
        ],
        &["tag_ids", "resource_type", "assign"],
    )?;
    let tag_ids = validate::str_array(map, "tag_ids", false)?.unwrap_or_default();
    let resource_type = validate::int_field(map, "resource_type")?.unwrap_or_default();
    if resource_type != 1 && resource_type != 2 {
        return Err(Error::bad_request(
            "body/resource_type must be equal to one of the allowed values",
        ));
    }
    let assign = validate::bool_field(map, "assign")?.unwrap_or_default();
    let selected_all = validate::bool_field(map, "selected_all")?.unwrap_or(false);
    let resource_ids = validate::str_array(map, "resource_ids", true)?;
    // instantly-api.md §9: resource_ids is required in the Mar-2026 page, optional in the newest
    // spec; we require it unless selected_all is set.
    if resource_ids.is_none() && !selected_all {
        return Err(Error::bad_request(
            "body must have required property 'resource_ids'",
        ));
    }
    let excluded: HashSet<String> = validate::str_array(map, "excluded_resource_ids", true)?
        .unwrap_or_default()
        .into_iter()
        .collect();
    let search = validate::str_field(map, "search", true)?
        .map(str::to_owned)
        .or_else(|| {
            map.get("filter")
                .and_then(|f| f.get("search"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .map(|s| s.to_lowercase());

    let mut ws = lock(&ctx.ws);
    if let Some(missing) = tag_ids.iter().find(|t| !ws.tags.contains_key(t.as_str())) {
        // instantly-api.md §9 [UNK]: an unknown tag id in the body; we choose 400.
        return Err(Error::bad_request(format!(
            "Custom tag {missing} not found"
        )));
    }
    let targets: Vec<String> = if selected_all {
        let matches = |name: &str| {
            search
                .as_ref()
                .is_none_or(|s| name.to_lowercase().contains(s))
        };
        if resource_type == 2 {
            ws.campaigns
                .values()
                .filter(|c| matches(&c.name))
                .map(|c| c.id.clone())
                .collect()
        } else {
            ws.accounts
                .iter()
                .filter(|a| matches(&a.email))
                .map(|a| a.email.clone())
                .collect()
        }
    } else {
        // instantly-api.md §9 [UNK]: account resource ids may be emails or uuids; any string is
        // accepted, and account filters match on the email.
        resource_ids.unwrap_or_default()
    };
    for resource in targets.iter().filter(|r| !excluded.contains(*r)) {
        for tag in &tag_ids {
            if assign {
                ws.map_tag(tag, resource_type, resource);
            } else {
                ws.tag_mappings.retain(|_, m| {
                    !(m.tag_id == *tag
                        && m.resource_type == resource_type
                        && m.resource_id == *resource)
                });
            }
        }
    }
    Ok(json!({ "success": true }))
}

pub(super) fn list_mappings(ctx: &Ctx<'_>) -> Result<Value> {
    let limit = ctx.limit(100)?;
    let resource_ids: HashSet<String> = ctx.query.ids("resource_ids").into_iter().collect();
    let tag_ids: HashSet<String> = ctx.query.ids("tag_ids").into_iter().collect();
    let ws = lock(&ctx.ws);
    let rest = ws
        .tag_mappings
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, m)| m)
        .filter(|m| resource_ids.is_empty() || resource_ids.contains(&m.resource_id))
        .filter(|m| tag_ids.is_empty() || tag_ids.contains(&m.tag_id))
        .map(to_value);
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "id",
    ))
}
