//! The agency access matrix (DESIGN.md, Operators and roles) as one table that handlers, docs
//! and tests all read. A role grants a level per resource area; every route and operation kind
//! names the area and level it needs.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::auth::Operator;
use crate::error::ApiError;

/// Resource areas of the access matrix, plus Flotilla's own administration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// Campaigns (tagging a campaign is a campaign edit).
    Campaigns,
    /// Leads.
    Leads,
    /// Sending accounts (tagging an account is an account edit).
    Accounts,
    /// Webhooks.
    Webhooks,
    /// Instantly API keys.
    ApiKeys,
    /// Workspace members.
    Members,
    /// Flotilla's workspaces and operators (admins only).
    Flotilla,
}

/// Levels within an area, ordered: a higher level includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    None,
    /// Read.
    View,
    /// Campaigns: launch and pause. Leads: import.
    Operate,
    /// Create.
    Create,
    /// Create and edit.
    Edit,
    /// Everything.
    Full,
}

/// The roles of Flotilla operators.
pub const ROLES: [&str; 4] = ["admin", "manager", "sdr", "viewer"];

/// The matrix: (role, area) → level. Straight from DESIGN.md's table.
pub fn level(role: &str, area: Area) -> Level {
    use Area::*;
    use Level::*;
    match (role, area) {
        ("admin", _) => Full,
        ("manager", Campaigns | Leads) => Edit,
        ("manager", Accounts | ApiKeys | Members) => View,
        ("manager", Webhooks) => Create,
        ("sdr", Campaigns | Leads) => Operate,
        ("sdr", Accounts) => View,
        ("viewer", Campaigns | Leads | Accounts) => View,
        _ => None,
    }
}

/// Fails with 403 `permission_denied` unless the operator's role grants `needed` in `area`. The
/// missing permission is named in `details.permission` as `<area>:<level>` (e.g. `members:full`),
/// the one spelling used everywhere (docs, audit trail, tests).
pub fn require(operator: &Operator, area: Area, needed: Level) -> Result<(), ApiError> {
    if level(&operator.role, area) >= needed {
        return Ok(());
    }
    let permission = permission(area, needed);
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_denied",
        format!("role {} lacks the {permission} permission", operator.role),
    )
    .with_details(serde_json::json!({
        "permission": permission,
        "area": area.name(),
        "needed": needed.name(),
        "role": operator.role,
    })))
}

/// What an operation kind needs. Unknown kinds are refused elsewhere.
pub fn kind_permission(kind: &str, params: &serde_json::Value) -> (Area, Level) {
    match kind {
        "members.invite" | "members.set_role" | "members.remove" => (Area::Members, Level::Full),
        "api_keys.create" | "api_keys.revoke" | "credentials.rotate" => {
            (Area::ApiKeys, Level::Full)
        }
        "tags.create" => (Area::Campaigns, Level::Edit),
        "tags.assign" | "tags.unassign" => {
            match params.get("resource_type").and_then(|v| v.as_str()) {
                Some("account") => (Area::Accounts, Level::Edit),
                _ => (Area::Campaigns, Level::Edit),
            }
        }
        "campaigns.pause" | "campaigns.activate" => (Area::Campaigns, Level::Operate),
        "inventory.sync" => (Area::Campaigns, Level::View),
        _ => (Area::Flotilla, Level::Full),
    }
}

impl Area {
    /// Every area, in the matrix's column order.
    pub const ALL: [Area; 7] = [
        Area::Campaigns,
        Area::Leads,
        Area::Accounts,
        Area::Webhooks,
        Area::ApiKeys,
        Area::Members,
        Area::Flotilla,
    ];

    /// The area's name in permissions (`members`, `api_keys`, …).
    pub fn name(self) -> &'static str {
        match self {
            Area::Campaigns => "campaigns",
            Area::Leads => "leads",
            Area::Accounts => "accounts",
            Area::Webhooks => "webhooks",
            Area::ApiKeys => "api_keys",
            Area::Members => "members",
            Area::Flotilla => "flotilla",
        }
    }
}

impl Level {
    /// The level's name in permissions (`view`, `full`, …).
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::View => "view",
            Level::Operate => "operate",
            Level::Create => "create",
            Level::Edit => "edit",
            Level::Full => "full",
        }
    }
}

/// A permission's one spelling: `<area>:<level>`, e.g. `members:full`.
pub fn permission(area: Area, level: Level) -> String {
    format!("{}:{}", area.name(), level.name())
}

/// What a route needs beyond a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any operator; what they see is still limited to their label scope.
    Operator,
    /// This level in this area, checked before the handler runs.
    Perm(Area, Level),
    /// `view` in the area of the operation's kind (checked by the handler, which loads the
    /// operation; lists leave out operations the role may not view).
    KindView,
    /// The operation kind's own permission ([`kind_permission`]); for a dry run (and the
    /// cancel or retry of one) `view` in the kind's area, since a dry run only reads and diffs.
    /// Checked by the handler.
    KindRun,
}

impl Access {
    /// How the docs spell it.
    pub fn describe(self) -> String {
        match self {
            Access::Operator => "any operator (label scope applies)".into(),
            Access::Perm(area, level) => format!("`{}`", permission(area, level)),
            Access::KindView => "`<kind area>:view`".into(),
            Access::KindRun => "the kind's permission".into(),
        }
    }
}

/// One row of [`ROUTES`].
#[derive(Debug)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Route pattern as axum matches it (`MatchedPath`).
    pub path: &'static str,
    /// Stable action name in the audit trail (operations add `:<kind>`).
    pub action: &'static str,
    /// What it needs.
    pub access: Access,
}

const fn r(method: Method, path: &'static str, action: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        action,
        access,
    }
}

const ADMIN: Access = Access::Perm(Area::Flotilla, Level::Full);

/// Every `/v1` route with its audit action and the permission it needs: the one table that the
/// [`enforce`] middleware, the audit trail, the README and the tests all read. A `/v1` route
/// missing here is refused to everyone but admins (fail closed).
pub static ROUTES: &[Route] = &[
    r(Method::POST, "/v1/workspaces", "workspaces.register", ADMIN),
    r(
        Method::GET,
        "/v1/workspaces",
        "workspaces.list",
        Access::Operator,
    ),
    r(
        Method::GET,
        "/v1/workspaces/{id}",
        "workspaces.get",
        Access::Operator,
    ),
    r(
        Method::PATCH,
        "/v1/workspaces/{id}",
        "workspaces.update",
        ADMIN,
    ),
    r(
        Method::DELETE,
        "/v1/workspaces/{id}",
        "workspaces.delete",
        ADMIN,
    ),
    r(
        Method::PUT,
        "/v1/workspaces/{id}/credential",
        "workspaces.replace_credential",
        ADMIN,
    ),
    r(
        Method::POST,
        "/v1/workspaces/import",
        "workspaces.import",
        ADMIN,
    ),
    r(
        Method::POST,
        "/v1/workspaces/discover",
        "workspaces.discover",
        ADMIN,
    ),
    r(
        Method::POST,
        "/v1/operations",
        "operations.create",
        Access::KindRun,
    ),
    r(
        Method::GET,
        "/v1/operations",
        "operations.list",
        Access::Operator,
    ),
    r(
        Method::GET,
        "/v1/operations/{id}",
        "operations.get",
        Access::KindView,
    ),
    r(
        Method::GET,
        "/v1/operations/{id}/targets",
        "operations.targets",
        Access::KindView,
    ),
    r(
        Method::GET,
        "/v1/operations/{id}/events",
        "operations.events",
        Access::KindView,
    ),
    r(
        Method::POST,
        "/v1/operations/{id}/cancel",
        "operations.cancel",
        Access::KindRun,
    ),
    r(
        Method::POST,
        "/v1/operations/{id}/retry",
        "operations.retry",
        Access::KindRun,
    ),
    r(Method::POST, "/v1/operators", "operators.create", ADMIN),
    r(Method::GET, "/v1/operators", "operators.list", ADMIN),
    r(Method::GET, "/v1/operators/{id}", "operators.get", ADMIN),
    r(
        Method::DELETE,
        "/v1/operators/{id}",
        "operators.revoke",
        ADMIN,
    ),
    r(Method::GET, "/v1/audit", "audit.list", ADMIN),
    r(
        Method::GET,
        "/v1/reports/access",
        "reports.access",
        Access::Perm(Area::Members, Level::View),
    ),
    r(
        Method::GET,
        "/v1/reports/api-keys",
        "reports.api_keys",
        Access::Perm(Area::ApiKeys, Level::View),
    ),
    r(
        Method::GET,
        "/v1/reports/tags",
        "reports.tags",
        Access::Perm(Area::Campaigns, Level::View),
    ),
    r(
        Method::GET,
        "/v1/reports/audit-logs",
        "reports.audit_logs",
        Access::Perm(Area::Campaigns, Level::View),
    ),
];

/// The [`ROUTES`] row for a method and matched route pattern.
pub fn route(method: &Method, path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == *method && r.path == path)
}

/// Fails with 403 unless the operator may view operations of `kind`.
pub fn require_kind_view(
    operator: &Operator,
    kind: &str,
    params: &serde_json::Value,
) -> Result<(), ApiError> {
    let (area, _) = kind_permission(kind, params);
    require(operator, area, Level::View)
}

/// What running (creating, cancelling, retrying) an operation of `kind` needs. A dry run reads
/// and diffs and writes nothing, so viewing the kind's area is enough for it.
pub fn run_permission(kind: &str, params: &serde_json::Value, dry_run: bool) -> (Area, Level) {
    let (area, level) = kind_permission(kind, params);
    if dry_run {
        (area, Level::View)
    } else {
        (area, level)
    }
}

/// Fails with 403 unless the operator may run (create, cancel, retry) this operation.
pub fn require_kind(
    operator: &Operator,
    kind: &str,
    params: &serde_json::Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let (area, level) = run_permission(kind, params, dry_run);
    require(operator, area, level)
}

/// The middleware in front of every `/v1` route (a `route_layer`, so `MatchedPath` is known):
/// authenticates the bearer token (401), checks the route's [`Access`] from [`ROUTES`] (403),
/// and hands the [`Operator`] to the handler (request extensions) and to the audit trail
/// (response extensions).
pub async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let operator = match crate::auth::authenticate(req.headers(), &state.store).await {
        Ok(op) => op,
        Err(err) => return err.into_response(),
    };
    let access = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| route(req.method(), p.as_str()))
        .map(|r| r.access)
        .unwrap_or(ADMIN);
    let check = match access {
        Access::Perm(area, level) => require(&operator, area, level),
        // Kind-dependent routes are checked by their handlers once the kind is known.
        Access::Operator | Access::KindView | Access::KindRun => Ok(()),
    };
    let mut resp = match check {
        Ok(()) => {
            req.extensions_mut().insert(operator.clone());
            next.run(req).await
        }
        Err(err) => err.into_response(),
    };
    resp.extensions_mut().insert(operator);
    resp
}

/// The access matrix, the routes and the operation kinds as markdown (README.md holds a copy
/// between `<!-- authz:begin -->` and `<!-- authz:end -->`; a test keeps them equal).
pub fn matrix_markdown() -> String {
    let mut out = String::new();
    out += "| Role |";
    for area in Area::ALL {
        out += &format!(" {} |", area.name());
    }
    out += "\n|------|";
    for _ in Area::ALL {
        out += "---|";
    }
    out += "\n";
    for role in ROLES {
        out += &format!("| {role} |");
        for area in Area::ALL {
            out += &format!(" {} |", level(role, area).name());
        }
        out += "\n";
    }
    out += "\n| Method | Route | Audit action | Needs |\n|---|---|---|---|\n";
    for r in ROUTES {
        out += &format!(
            "| {} | `{}` | `{}` | {} |\n",
            r.method,
            r.path,
            r.action,
            r.access.describe()
        );
    }
    out += "\n| Operation kind | Run, cancel, retry | Dry run (and its cancel, retry); view |\n|---|---|---|\n";
    for kind in crate::engine::kinds::names() {
        let (area, lvl) = kind_permission(kind, &serde_json::json!({}));
        let (acc_area, acc_lvl) =
            kind_permission(kind, &serde_json::json!({ "resource_type": "account" }));
        let mut needs = format!("`{}`", permission(area, lvl));
        if (acc_area, acc_lvl) != (area, lvl) {
            needs += &format!(
                " (`resource_type: account`: `{}`)",
                permission(acc_area, acc_lvl)
            );
        }
        out += &format!(
            "| `{kind}` | {needs} | `{}` |\n",
            permission(area, Level::View)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_design() {
        assert_eq!(level("manager", Area::Campaigns), Level::Edit);
        assert_eq!(level("manager", Area::Webhooks), Level::Create);
        assert_eq!(level("sdr", Area::Campaigns), Level::Operate);
        assert_eq!(level("sdr", Area::Webhooks), Level::None);
        assert_eq!(level("viewer", Area::ApiKeys), Level::None);
        assert_eq!(level("viewer", Area::Accounts), Level::View);
        assert_eq!(level("manager", Area::Flotilla), Level::None);
        assert_eq!(level("admin", Area::Flotilla), Level::Full);
        assert_eq!(level("nobody", Area::Campaigns), Level::None);
    }

    #[test]
    fn routes_are_unique_and_under_v1() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(a.path.starts_with("/v1/"), "{}", a.path);
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.method != b.method || a.path != b.path,
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    /// README.md carries the generated tables; `FLOTILLA_BLESS=1` rewrites them.
    #[test]
    fn readme_shows_the_matrix() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let (begin, end) = ("<!-- authz:begin -->\n", "<!-- authz:end -->");
        let generated = matrix_markdown();
        let (Some(start), Some(stop)) = (readme.find(begin), readme.find(end)) else {
            panic!("README.md lacks the {begin:?} … {end:?} markers");
        };
        let current = &readme[start + begin.len()..stop];
        if current != generated {
            if std::env::var("FLOTILLA_BLESS").is_ok() {
                let updated = format!(
                    "{}{generated}{}",
                    &readme[..start + begin.len()],
                    &readme[stop..]
                );
                std::fs::write(path, updated).expect("write README.md");
            } else {
                panic!(
                    "README.md's access tables are stale; run with FLOTILLA_BLESS=1. Expected:\n{generated}"
                );
            }
        }
    }
}
