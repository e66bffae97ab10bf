//! The agency access matrix (DESIGN.md, Operators and roles) as one table that handlers, docs
//! and tests all read. A role grants a level per resource area; every route and operation kind
//! names the area and level it needs.

use axum::http::StatusCode;

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

/// Fails with 403 `forbidden_<area>_<level>` unless the operator's role grants `needed` in `area`.
pub fn require(operator: &Operator, area: Area, needed: Level) -> Result<(), ApiError> {
    if level(&operator.role, area) >= needed {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_denied",
        format!("role {} lacks {needed:?} on {area:?}", operator.role),
    )
    .with_details(serde_json::json!({
        "area": format!("{area:?}").to_lowercase(),
        "needed": format!("{needed:?}").to_lowercase(),
        "role": operator.role,
    })))
}

/// Admins alone manage workspaces and operators.
pub fn require_admin(operator: &Operator) -> Result<(), ApiError> {
    require(operator, Area::Flotilla, Level::Full)
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
}
