//! Request validation in the words Instantly's Fastify/AJV stack uses (instantly-api.md §3).

use std::ops::Bound;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use crate::config::LastPageCursor;
use crate::error::{Error, Result};

/// Parsed query string; keeps repeated keys.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(p), String::new()),
            })
            .collect();
        Self { pairs }
    }

    /// First value of `key` (a scalar parameter).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Non-empty string parameter.
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// An id list. instantly-api.md §9 [INF]: the older spec sends one comma-separated string,
    /// go-instantly repeats the parameter; we accept both (and mixtures).
    pub(crate) fn ids(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key || k == &format!("{key}[]"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `limit` in `1..=max`; over or under is a 400, not a clamp (instantly-api.md §2, §13.2).
    pub(crate) fn limit(&self, max: usize, default: usize) -> Result<usize> {
        let Some(raw) = self.get("limit") else {
            return Ok(default.min(max));
        };
        let n: i64 = raw
            .trim()
            .parse()
            .map_err(|_| Error::bad_request("querystring/limit must be integer"))?;
        if n < 1 {
            return Err(Error::bad_request("querystring/limit must be >= 1"));
        }
        if n > max as i64 {
            return Err(Error::bad_request(format!(
                "querystring/limit must be <= {max}"
            )));
        }
        Ok(n as usize)
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.text(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::bad_request(format!("querystring/{key} must be integer"))),
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.text(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Error::bad_request(format!(
                "querystring/{key} must be boolean"
            ))),
        }
    }

    pub(crate) fn date(&self, key: &str) -> Result<Option<NaiveDate>> {
        match self.text(key) {
            None => Ok(None),
            Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    Error::bad_request(format!("querystring/{key} must match format \"date\""))
                }),
        }
    }
}

/// The body of a create/patch call: an object with only `allowed` keys and all `required` keys.
pub(crate) fn object<'a>(
    body: Option<&'a Value>,
    allowed: &[&str],
    required: &[&str],
) -> Result<&'a Map<String, Value>> {
    let Some(Value::Object(map)) = body else {
        return Err(Error::bad_request("body must be object"));
    };
    for r in required {
        if !map.contains_key(*r) {
            return Err(Error::bad_request(format!(
                "body must have required property '{r}'"
            )));
        }
    }
    // instantly-api.md §1 [SPEC]/[INF]: request schemas are additionalProperties: false.
    if map.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::bad_request(
            "body must NOT have additional properties",
        ));
    }
    Ok(map)
}

/// Body of a call that takes none: absent, `null` or `{}` (instantly-api.md §1, §15).
pub(crate) fn no_body(body: Option<&Value>) -> Result<()> {
    match body {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.is_empty() => Ok(()),
        Some(_) => Err(Error::bad_request("body must be null")),
    }
}

/// A string field; `nullable` accepts `null` as absent.
pub(crate) fn str_field<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    nullable: bool,
) -> Result<Option<&'a str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::bad_request(format!("body/{key} must be string"))),
    }
}

/// A string field that must be present (already checked by [`object`]) and non-empty.
pub(crate) fn non_empty_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match str_field(map, key, false)? {
        Some("") => Err(Error::bad_request(format!(
            "body/{key} must NOT have fewer than 1 characters"
        ))),
        other => Ok(other),
    }
}

pub(crate) fn bool_field(map: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::bad_request(format!("body/{key} must be boolean"))),
    }
}

pub(crate) fn int_field(map: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Error::bad_request(format!("body/{key} must be number"))),
    }
}

/// An array of strings; `null` is treated as absent when `nullable`.
pub(crate) fn str_array(
    map: &Map<String, Value>,
    key: &str,
    nullable: bool,
) -> Result<Option<Vec<String>>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::bad_request(format!("body/{key}/{i} must be string")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(Error::bad_request(format!("body/{key} must be array"))),
    }
}

/// Range bounds for the items after a cursor in an id-keyed `BTreeMap` (ids sort in creation order).
pub(crate) fn after(cursor: Option<&str>) -> (Bound<&str>, Bound<&str>) {
    (
        cursor.map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Unbounded,
    )
}

pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// A path id.
///
/// instantly-api.md §14 [UNK]: 404 vs 400 for a malformed uuid; we choose the AJV-style 400
/// `params/id must match format "uuid"`.
pub(crate) fn uuid_param(id: &str) -> Result<()> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(Error::bad_request("params/id must match format \"uuid\""))
    }
}

/// A body uuid field.
pub(crate) fn uuid_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match str_field(map, key, false)? {
        None => Ok(None),
        Some(s) if is_uuid(s) => Ok(Some(s.to_owned())),
        Some(_) => Err(Error::bad_request(format!(
            "body/{key} must match format \"uuid\""
        ))),
    }
}

pub(crate) fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

const SCOPE_RESOURCES: &[&str] = &[
    "all",
    "ai_agents",
    "api_keys",
    "audit_logs",
    "custom_prompt_templates",
    "account_campaign_mappings",
    "campaigns",
    "inbox_placement_tests",
    "inbox_placement_analytics",
    "inbox_placement_reports",
    "lead_lists",
    "leads",
    "background-jobs",
    "custom_tags",
    "custom_tag_mappings",
    "crm_actions",
    "accounts",
    "block_list_entries",
    "lead-labels",
    "email_verifications",
    "emails",
    "email_templates",
    "workspaces",
    "workspace_billing",
    "workspace_group_members",
    "workspace_members",
    "subsequences",
    "ai_sdr",
    "ai_sdr_replies",
    "ai_inbox_manager_analytics",
    "sales_flows",
    "webhooks",
    "webhook_events",
    "security_tokens",
    "dfy_email_account_orders",
    "auth",
];

/// Whether `s` is in the scope enum of instantly-api.md §5 (178 strings).
pub(crate) fn is_known_scope(s: &str) -> bool {
    let Some((resource, action)) = s.split_once(':') else {
        return false;
    };
    if !SCOPE_RESOURCES.contains(&resource) {
        return false;
    }
    if resource == "email_verifications" {
        matches!(action, "all" | "create" | "read")
    } else {
        matches!(action, "all" | "create" | "read" | "update" | "delete")
    }
}

/// The scope rule of instantly-api.md §5: `R:act`, `R:all`, `all:act` or `all:all`.
pub(crate) fn any_of(resource: &str, action: &str) -> [String; 4] {
    [
        format!("{resource}:{action}"),
        format!("{resource}:all"),
        format!("all:{action}"),
        "all:all".to_owned(),
    ]
}

/// Roles of instantly-api.md §7.
pub(crate) const ROLES: &[&str] = &["owner", "admin", "editor", "view", "client"];

/// UI permissions of instantly-api.md §7.
pub(crate) const PERMISSIONS: &[&str] = &[
    "dashboard.view",
    "campaigns.view",
    "campaigns.create",
    "campaigns.edit",
    "campaigns.delete",
    "organization.manage",
    "organization.integrations",
    "organization.billing",
    "organization.users.manage",
    "leadFinder.view",
    "customLeadLabels.create",
    "customLeadLabels.edit",
    "customLeadLabels.delete",
    "unibox.all",
    "analytics.view",
    "agency.manage",
    "accounts.view",
    "accounts.manage",
    "leadManagement.view",
    "leads.move",
    "crm.view",
    "websiteVisitors.view",
    "blocklist.manage",
    "preferences.manage",
    "inboxPlacement.view",
    "aiAgents.manage",
    "workspaceGroupMembers.invite",
    "workspaceGroupMembers.remove",
    "workspaceGroupMembers.leave",
];

/// A role value for create/patch.
///
/// instantly-api.md §7 [UNK]: `owner` and `client` are in the enum but "not available in the API";
/// the status and wording of the refusal are unknown. We choose 400 with our own message, on create
/// AND on patch (owner transfer has its own endpoint).
pub(crate) fn assignable_role(map: &Map<String, Value>) -> Result<Option<String>> {
    let Some(role) = str_field(map, "role", false)? else {
        return Ok(None);
    };
    if !ROLES.contains(&role) {
        return Err(Error::bad_request(
            "body/role must be equal to one of the allowed values",
        ));
    }
    if role == "owner" || role == "client" {
        return Err(Error::bad_request(format!(
            "Role '{role}' cannot be assigned through the API"
        )));
    }
    Ok(Some(role.to_owned()))
}

pub(crate) fn permissions(map: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    let Some(list) = str_array(map, "permissions", true)? else {
        return Ok(None);
    };
    if let Some(i) = list.iter().position(|p| !PERMISSIONS.contains(&p.as_str())) {
        return Err(Error::bad_request(format!(
            "body/permissions/{i} must be equal to one of the allowed values"
        )));
    }
    Ok(Some(list))
}

/// One page of a list: at most `limit` items of `rest` (the items after the cursor, in order).
///
/// `next_starting_after` = the cursor field of the last item when more items exist; on the last page
/// it follows `mode` (instantly-api.md §2 [UNK]).
pub(crate) fn paginate(
    rest: impl Iterator<Item = Value>,
    limit: usize,
    starting_after: Option<&str>,
    mode: LastPageCursor,
    cursor_field: &str,
) -> Value {
    let mut items: Vec<Value> = rest.take(limit + 1).collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let last = items
        .last()
        .and_then(|v| v.get(cursor_field))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let next = if more {
        last.map(Value::String)
    } else {
        match mode {
            LastPageCursor::Omit => None,
            LastPageCursor::Null => Some(Value::Null),
            LastPageCursor::Empty => Some(json!("")),
            LastPageCursor::RepeatLast => last
                .or_else(|| starting_after.map(str::to_owned))
                .map(Value::String),
        }
    };
    let mut out = Map::new();
    out.insert("items".into(), Value::Array(items));
    if let Some(next) = next {
        out.insert("next_starting_after".into(), next);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_accept_both_encodings() {
        let q = Query::parse(Some("tag_ids=a%2Cb&tag_ids=c&x=1"));
        assert_eq!(q.ids("tag_ids"), vec!["a", "b", "c"]);
        let q = Query::parse(Some("tag_ids=a,b"));
        assert_eq!(q.ids("tag_ids"), vec!["a", "b"]);
    }

    #[test]
    fn percent_decoding_handles_edges() {
        assert_eq!(percent_decode("a%40b.c"), "a@b.c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("a+b"), "a b");
    }

    #[test]
    fn scope_enum() {
        assert!(is_known_scope("all:all"));
        assert!(is_known_scope("lead-labels:update"));
        assert!(is_known_scope("email_verifications:read"));
        assert!(!is_known_scope("email_verifications:delete"));
        assert!(!is_known_scope("workspace_members"));
        assert!(!is_known_scope("nope:read"));
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(Query::parse(None).limit(100, 10).unwrap(), 10);
        assert_eq!(
            Query::parse(Some("limit=101"))
                .limit(100, 10)
                .unwrap_err()
                .to_string(),
            "400 Bad Request querystring/limit must be <= 100"
        );
        assert!(Query::parse(Some("limit=0")).limit(100, 10).is_err());
        assert_eq!(
            Query::parse(Some("limit=1000")).limit(1000, 10).unwrap(),
            1000
        );
    }
}
