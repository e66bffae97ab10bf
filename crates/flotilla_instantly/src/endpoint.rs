//! The static per-endpoint table: method, path, required scope, retry class, page limit.

use http::Method;

use crate::scope::Scope;

/// How a request may be retried (see [`crate::RetryPolicy::decide_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestClass {
    /// Repeating the request has the same effect as sending it once (GET, PATCH, DELETE, the
    /// state-setting action POSTs): retried on 429, 5xx, connect errors and timeouts.
    Idempotent,
    /// The request creates something; a retry after it reached Instantly could create a
    /// duplicate. Retried only when it certainly did not take effect: connect errors (never
    /// sent) and 429 (refused before processing).
    Create,
}

/// One Instantly API v2 endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// `"POST /api/v2/workspace-members"`: the label used in errors and logs.
    pub label: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Path segments after `/api/v2/`; `"{}"` is replaced by an argument (percent-encoded).
    pub path: &'static [&'static str],
    /// The scope the endpoint requires (instantly-api.md §5 mapping; `None` where the docs name none).
    pub scope: Option<Scope>,
    /// Retry class.
    pub class: RequestClass,
    /// Highest `limit` the endpoint accepts (lists only; instantly-api.md §2).
    pub max_limit: Option<u32>,
}

macro_rules! ep {
    ($name:ident, $method:ident, $label:literal, [$($seg:literal),*], $scope:expr, $class:ident, $max:expr) => {
        #[doc = concat!("`", $label, "`")]
        pub static $name: Endpoint = Endpoint {
            label: $label,
            method: Method::$method,
            path: &[$($seg),*],
            scope: $scope,
            class: RequestClass::$class,
            max_limit: $max,
        };
    };
}

// instantly-api.md §2: 100 on every list we use, 1000 on audit-logs.
const L100: Option<u32> = Some(100);

ep!(
    LIST_MEMBERS,
    GET,
    "GET /api/v2/workspace-members",
    ["workspace-members"],
    Some(Scope::WORKSPACE_MEMBERS_READ),
    Idempotent,
    L100
);
ep!(
    GET_MEMBER,
    GET,
    "GET /api/v2/workspace-members/{id}",
    ["workspace-members", "{}"],
    Some(Scope::WORKSPACE_MEMBERS_READ),
    Idempotent,
    None
);
ep!(
    CREATE_MEMBER,
    POST,
    "POST /api/v2/workspace-members",
    ["workspace-members"],
    Some(Scope::WORKSPACE_MEMBERS_CREATE),
    Create,
    None
);
ep!(
    UPDATE_MEMBER,
    PATCH,
    "PATCH /api/v2/workspace-members/{id}",
    ["workspace-members", "{}"],
    Some(Scope::WORKSPACE_MEMBERS_UPDATE),
    Idempotent,
    None
);
ep!(
    DELETE_MEMBER,
    DELETE,
    "DELETE /api/v2/workspace-members/{id}",
    ["workspace-members", "{}"],
    Some(Scope::WORKSPACE_MEMBERS_DELETE),
    Idempotent,
    None
);

ep!(
    LIST_API_KEYS,
    GET,
    "GET /api/v2/api-keys",
    ["api-keys"],
    Some(Scope::API_KEYS_READ),
    Idempotent,
    L100
);
ep!(
    CREATE_API_KEY,
    POST,
    "POST /api/v2/api-keys",
    ["api-keys"],
    Some(Scope::API_KEYS_CREATE),
    Create,
    None
);
ep!(
    DELETE_API_KEY,
    DELETE,
    "DELETE /api/v2/api-keys/{id}",
    ["api-keys", "{}"],
    Some(Scope::API_KEYS_DELETE),
    Idempotent,
    None
);

ep!(
    LIST_CUSTOM_TAGS,
    GET,
    "GET /api/v2/custom-tags",
    ["custom-tags"],
    Some(Scope::CUSTOM_TAGS_READ),
    Idempotent,
    L100
);
ep!(
    GET_CUSTOM_TAG,
    GET,
    "GET /api/v2/custom-tags/{id}",
    ["custom-tags", "{}"],
    Some(Scope::CUSTOM_TAGS_READ),
    Idempotent,
    None
);
ep!(
    CREATE_CUSTOM_TAG,
    POST,
    "POST /api/v2/custom-tags",
    ["custom-tags"],
    Some(Scope::CUSTOM_TAGS_CREATE),
    Create,
    None
);
ep!(
    UPDATE_CUSTOM_TAG,
    PATCH,
    "PATCH /api/v2/custom-tags/{id}",
    ["custom-tags", "{}"],
    Some(Scope::CUSTOM_TAGS_UPDATE),
    Idempotent,
    None
);
ep!(
    DELETE_CUSTOM_TAG,
    DELETE,
    "DELETE /api/v2/custom-tags/{id}",
    ["custom-tags", "{}"],
    Some(Scope::CUSTOM_TAGS_DELETE),
    Idempotent,
    None
);
// instantly-api.md §9 [UNK]: the page names no scope for toggle-resource; [INF] custom_tags:update.
// Assign/unassign sets a state, so repeating it is harmless: Idempotent.
ep!(
    TOGGLE_TAG_RESOURCES,
    POST,
    "POST /api/v2/custom-tags/toggle-resource",
    ["custom-tags", "toggle-resource"],
    Some(Scope::CUSTOM_TAGS_UPDATE),
    Idempotent,
    None
);
ep!(
    LIST_TAG_MAPPINGS,
    GET,
    "GET /api/v2/custom-tag-mappings",
    ["custom-tag-mappings"],
    Some(Scope::CUSTOM_TAG_MAPPINGS_READ),
    Idempotent,
    L100
);

ep!(
    LIST_CAMPAIGNS,
    GET,
    "GET /api/v2/campaigns",
    ["campaigns"],
    Some(Scope::CAMPAIGNS_READ),
    Idempotent,
    L100
);
ep!(
    PAUSE_CAMPAIGN,
    POST,
    "POST /api/v2/campaigns/{id}/pause",
    ["campaigns", "{}", "pause"],
    Some(Scope::CAMPAIGNS_UPDATE),
    Idempotent,
    None
);
ep!(
    ACTIVATE_CAMPAIGN,
    POST,
    "POST /api/v2/campaigns/{id}/activate",
    ["campaigns", "{}", "activate"],
    Some(Scope::CAMPAIGNS_UPDATE),
    Idempotent,
    None
);
ep!(
    LIST_ACCOUNTS,
    GET,
    "GET /api/v2/accounts",
    ["accounts"],
    Some(Scope::ACCOUNTS_READ),
    Idempotent,
    L100
);

ep!(
    LIST_AUDIT_LOGS,
    GET,
    "GET /api/v2/audit-logs",
    ["audit-logs"],
    Some(Scope::AUDIT_LOGS_READ),
    Idempotent,
    Some(1000)
);

ep!(
    LIST_GROUP_MEMBERS,
    GET,
    "GET /api/v2/workspace-group-members",
    ["workspace-group-members"],
    Some(Scope::WORKSPACE_GROUP_MEMBERS_READ),
    Idempotent,
    L100
);
ep!(
    GET_GROUP_MEMBER,
    GET,
    "GET /api/v2/workspace-group-members/{id}",
    ["workspace-group-members", "{}"],
    Some(Scope::WORKSPACE_GROUP_MEMBERS_READ),
    Idempotent,
    None
);
ep!(
    CREATE_GROUP_MEMBER,
    POST,
    "POST /api/v2/workspace-group-members",
    ["workspace-group-members"],
    Some(Scope::WORKSPACE_GROUP_MEMBERS_CREATE),
    Create,
    None
);
ep!(
    DELETE_GROUP_MEMBER,
    DELETE,
    "DELETE /api/v2/workspace-group-members/{id}",
    ["workspace-group-members", "{}"],
    Some(Scope::WORKSPACE_GROUP_MEMBERS_DELETE),
    Idempotent,
    None
);
// instantly-api.md §12 [OFF]: "none stated" for /admin; [INF] the read scope of the resource.
ep!(
    GROUP_ADMIN,
    GET,
    "GET /api/v2/workspace-group-members/admin",
    ["workspace-group-members", "admin"],
    Some(Scope::WORKSPACE_GROUP_MEMBERS_READ),
    Idempotent,
    None
);

ep!(
    CURRENT_WORKSPACE,
    GET,
    "GET /api/v2/workspaces/current",
    ["workspaces", "current"],
    Some(Scope::WORKSPACES_READ),
    Idempotent,
    None
);
ep!(
    UPDATE_CURRENT_WORKSPACE,
    PATCH,
    "PATCH /api/v2/workspaces/current",
    ["workspaces", "current"],
    Some(Scope::WORKSPACES_UPDATE),
    Idempotent,
    None
);
ep!(
    CHANGE_OWNER,
    POST,
    "POST /api/v2/workspaces/current/change-owner",
    ["workspaces", "current", "change-owner"],
    Some(Scope::WORKSPACES_UPDATE),
    Idempotent,
    None
);

/// Every endpoint this client calls.
pub static ALL: &[&Endpoint] = &[
    &LIST_MEMBERS,
    &GET_MEMBER,
    &CREATE_MEMBER,
    &UPDATE_MEMBER,
    &DELETE_MEMBER,
    &LIST_API_KEYS,
    &CREATE_API_KEY,
    &DELETE_API_KEY,
    &LIST_CUSTOM_TAGS,
    &GET_CUSTOM_TAG,
    &CREATE_CUSTOM_TAG,
    &UPDATE_CUSTOM_TAG,
    &DELETE_CUSTOM_TAG,
    &TOGGLE_TAG_RESOURCES,
    &LIST_TAG_MAPPINGS,
    &LIST_CAMPAIGNS,
    &PAUSE_CAMPAIGN,
    &ACTIVATE_CAMPAIGN,
    &LIST_ACCOUNTS,
    &LIST_AUDIT_LOGS,
    &LIST_GROUP_MEMBERS,
    &GET_GROUP_MEMBER,
    &CREATE_GROUP_MEMBER,
    &DELETE_GROUP_MEMBER,
    &GROUP_ADMIN,
    &CURRENT_WORKSPACE,
    &UPDATE_CURRENT_WORKSPACE,
    &CHANGE_OWNER,
];

/// The scope an endpoint requires, looked up by its label (e.g. `"POST /api/v2/api-keys"`).
pub fn required_scope(label: &str) -> Option<&'static Scope> {
    ALL.iter()
        .find(|e| e.label == label)
        .and_then(|e| e.scope.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for e in ALL {
            let (m, p) = e.label.split_once(' ').unwrap();
            assert_eq!(m, e.method.as_str(), "{}", e.label);
            let built = format!("/api/v2/{}", e.path.join("/")).replace("{}", "{id}");
            assert_eq!(p, built, "{}", e.label);
            let scope = e.scope.as_ref().unwrap();
            assert!(scope.is_known(), "{}", e.label);
            // instantly-api.md §5: GET → read, POST-create → create, DELETE → delete, else update.
            let want = match (e.method.as_str(), e.class) {
                ("GET", _) => "read",
                ("POST", RequestClass::Create) => "create",
                ("DELETE", _) => "delete",
                _ => "update",
            };
            assert_eq!(scope.action(), Some(want), "{}", e.label);
            assert_eq!(
                e.max_limit.is_some(),
                e.method == Method::GET
                    && !p.contains('{')
                    && !p.ends_with("admin")
                    && !p.ends_with("current"),
                "{}",
                e.label
            );
        }
        assert_eq!(
            required_scope("POST /api/v2/workspace-members"),
            Some(&Scope::WORKSPACE_MEMBERS_CREATE)
        );
    }
}
