//! `/audit-logs` (instantly-api.md §10).

use serde_json::Value;

use super::validate::{after, paginate};
use super::{Ctx, to_value};
use crate::error::{Error, Result};
use crate::model::AuditLog;
use crate::state::lock;

/// Names of the activity types (instantly-api.md §10), used by `search`.
fn activity_name(t: i64) -> &'static str {
    match t {
        1 => "User login",
        2 => "Lead deletion",
        3 => "Campaign deletion",
        4 => "Campaign launch",
        5 => "Campaign pause",
        6 => "Account addition",
        7 => "Account deletion",
        8 => "Lead moved",
        9 => "Lead added",
        10 => "Lead merged",
        11 => "Campaign update",
        12 => "Subsequence update",
        18 => "Webhook created",
        19 => "Webhook updated",
        20 => "Webhook marked as error",
        21 => "Webhook resumed",
        36 => "Account update",
        37 => "API key created",
        38 => "API key deleted",
        _ => "",
    }
}

/// instantly-api.md §10 [UNK]: search semantics are unknown; we match case-insensitively on the
/// activity name, user name, IP address and metadata.
fn matches_search(log: &AuditLog, needle: &str) -> bool {
    activity_name(log.activity_type)
        .to_lowercase()
        .contains(needle)
        || log
            .user_name
            .as_deref()
            .is_some_and(|u| u.to_lowercase().contains(needle))
        || log.ip_address.contains(needle)
        || log
            .audit_metadata
            .to_string()
            .to_lowercase()
            .contains(needle)
}

pub(super) fn list(ctx: &Ctx<'_>) -> Result<Value> {
    // instantly-api.md §10 [OFF]: audit logs allow limit up to 1000.
    let limit = ctx.limit(1000)?;
    let activity_type = ctx.query.int("activity_type")?;
    let search = ctx.query.text("search").map(str::to_lowercase);
    let start = ctx.query.date("start_date")?;
    let end = ctx.query.date("end_date")?;
    if matches!((start, end), (Some(s), Some(e)) if s > e) {
        return Err(Error::bad_request(
            "start_date must be before or equal to end_date",
        ));
    }
    let ws = lock(&ctx.ws);
    // instantly-api.md §10 [UNK]: date bounds are inclusive whole UTC days (our choice).
    let rest = ws
        .audit_logs
        .range::<str, _>(after(ctx.starting_after()))
        .map(|(_, l)| l)
        .filter(|l| activity_type.is_none_or(|t| l.activity_type == t))
        .filter(|l| search.as_ref().is_none_or(|s| matches_search(l, s)))
        .filter(|l| start.is_none_or(|s| l.timestamp.date_naive() >= s))
        .filter(|l| end.is_none_or(|e| l.timestamp.date_naive() <= e))
        .map(to_value);
    Ok(paginate(
        rest,
        limit,
        ctx.starting_after(),
        ctx.last_page,
        "id",
    ))
}
