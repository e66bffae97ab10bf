//! `members.invite`, `members.set_role`, `members.remove`: workspace membership by email.

use std::collections::HashMap;

use flotilla_instantly::{CreateMember, Role, UpdateMember, WorkspaceMember};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::{Kind, Limits, Plan, normalize_emails};
use crate::engine::{Change, TargetCtx, TargetError};
use crate::error::ApiError;

/// Params of `members.invite` and `members.set_role`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailsAndRole {
    /// Email addresses (1..max_items), case-insensitive.
    pub emails: Vec<String>,
    /// `admin`, `editor` or `view` (Instantly refuses `owner` and `client` through the API).
    pub role: String,
}

/// Params of `members.remove`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Emails {
    /// Email addresses (1..max_items), case-insensitive.
    pub emails: Vec<String>,
}

/// Roles an operation may grant. instantly-api.md §7: `owner` cannot be created through the
/// API and `client` is "not available in the API"; we refuse both before calling Instantly.
pub fn validate_role(role: &str) -> Result<String, ApiError> {
    match role {
        "admin" | "editor" | "view" => Ok(role.to_string()),
        "owner" | "client" => Err(ApiError::unprocessable(
            "role_not_assignable",
            format!("Instantly does not allow the role {role:?} to be granted through its API"),
        )
        .with_details(serde_json::json!({ "field": "params.role", "allowed": ["admin", "editor", "view"] }))),
        other => Err(ApiError::bad_request("invalid_role", format!("unknown role {other:?}"))
            .with_details(serde_json::json!({ "field": "params.role", "allowed": ["admin", "editor", "view"] }))),
    }
}

/// Reads every member of the workspace, keyed by lower-cased email.
async fn members_by_email(
    ctx: &TargetCtx,
) -> Result<HashMap<String, WorkspaceMember>, TargetError> {
    let members: Vec<WorkspaceMember> = ctx.client.list_members().try_collect().await?;
    Ok(members
        .into_iter()
        .map(|m| (m.email.to_ascii_lowercase(), m))
        .collect())
}

/// Instantly answers a member write with the member as it now is; checking that answer is the
/// verify step of these kinds, which saves a second full read of the member list per workspace.
fn verify(ok: bool, email: &str) -> Result<(), TargetError> {
    if ok {
        Ok(())
    } else {
        Err(TargetError::transient(
            "verify_failed",
            format!("Instantly's answer for {email} does not show the change"),
        ))
    }
}

/// `members.invite`: invite each email with the role unless it is already a member.
pub struct Invite;

impl Kind for Invite {
    const NAME: &'static str = "members.invite";
    const VERIFY: bool = false;
    type Params = EmailsAndRole;
    type Action = String;

    fn validate(params: EmailsAndRole, limits: &Limits) -> Result<EmailsAndRole, ApiError> {
        let role = validate_role(&params.role)?;
        Ok(EmailsAndRole {
            emails: normalize_emails(params.emails, limits)?,
            role,
        })
    }

    async fn plan(ctx: &TargetCtx, params: &EmailsAndRole) -> Result<Plan<String>, TargetError> {
        let members = members_by_email(ctx).await?;
        let mut plan = Plan::default();
        for email in &params.emails {
            match members.get(email) {
                Some(m) => plan.unchanged.push(
                    Change::new(email, "already_member")
                        .with_detail(format!("role {}", m.role.as_str())),
                ),
                None => plan.actions.push((
                    email.clone(),
                    Change::new(email, "invited").with_detail(format!("role {}", params.role)),
                )),
            }
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        params: &EmailsAndRole,
        email: &String,
    ) -> Result<Change, TargetError> {
        let req = CreateMember {
            email: email.clone(),
            role: Role::parse(&params.role),
        };
        let member = ctx.client.create_member(&req).await?;
        verify(
            member.email.eq_ignore_ascii_case(email) && member.role.as_str() == params.role,
            email,
        )?;
        Ok(Change::new(email, "invited").with_detail(format!("role {}", member.role.as_str())))
    }
}

/// `members.set_role`: change the role of each email that is a member.
pub struct SetRole;

impl Kind for SetRole {
    const NAME: &'static str = "members.set_role";
    const VERIFY: bool = false;
    type Params = EmailsAndRole;
    /// (member id, email)
    type Action = (String, String);

    fn validate(params: EmailsAndRole, limits: &Limits) -> Result<EmailsAndRole, ApiError> {
        Invite::validate(params, limits)
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &EmailsAndRole,
    ) -> Result<Plan<(String, String)>, TargetError> {
        let members = members_by_email(ctx).await?;
        let mut plan = Plan::default();
        for email in &params.emails {
            match members.get(email) {
                None => plan.unchanged.push(Change::new(email, "not_member")),
                Some(m) if m.role.as_str() == "owner" => plan.unchanged.push(
                    Change::new(email, "skipped_owner")
                        .with_detail("the owner's role changes only through change-owner"),
                ),
                Some(m) if m.role.as_str() == params.role => plan.unchanged.push(
                    Change::new(email, "already_role").with_detail(format!("role {}", params.role)),
                ),
                Some(m) => plan.actions.push((
                    (m.id.clone(), email.clone()),
                    Change::new(email, "role_changed").with_detail(format!(
                        "{} -> {}",
                        m.role.as_str(),
                        params.role
                    )),
                )),
            }
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        params: &EmailsAndRole,
        action: &(String, String),
    ) -> Result<Change, TargetError> {
        let (id, email) = action;
        let req = UpdateMember {
            role: Some(Role::parse(&params.role)),
        };
        let member = ctx.client.update_member(id, &req).await?;
        verify(member.role.as_str() == params.role, email)?;
        Ok(
            Change::new(email, "role_changed")
                .with_detail(format!("role {}", member.role.as_str())),
        )
    }
}

/// `members.remove`: remove each email that is a member (never the owner).
pub struct Remove;

impl Kind for Remove {
    const NAME: &'static str = "members.remove";
    const VERIFY: bool = false;
    type Params = Emails;
    type Action = (String, String);

    fn validate(params: Emails, limits: &Limits) -> Result<Emails, ApiError> {
        Ok(Emails {
            emails: normalize_emails(params.emails, limits)?,
        })
    }

    async fn plan(ctx: &TargetCtx, params: &Emails) -> Result<Plan<(String, String)>, TargetError> {
        let members = members_by_email(ctx).await?;
        let mut plan = Plan::default();
        for email in &params.emails {
            match members.get(email) {
                None => plan.unchanged.push(Change::new(email, "not_member")),
                Some(m) if m.role.as_str() == "owner" => plan.unchanged.push(
                    Change::new(email, "skipped_owner")
                        .with_detail("the workspace owner cannot be removed"),
                ),
                Some(m) => plan
                    .actions
                    .push(((m.id.clone(), email.clone()), Change::new(email, "removed"))),
            }
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &Emails,
        action: &(String, String),
    ) -> Result<Change, TargetError> {
        let (id, email) = action;
        match ctx.client.delete_member(id).await {
            Ok(_) => Ok(Change::new(email, "removed")),
            // Gone between our read and the delete: the wanted state holds.
            Err(e) if e.kind() == flotilla_instantly::ErrorKind::NotFound => {
                Ok(Change::new(email, "not_member"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_instantly_refuses_are_refused_with_their_own_code() {
        assert_eq!(
            validate_role("owner").unwrap_err().code(),
            "role_not_assignable"
        );
        assert_eq!(
            validate_role("client").unwrap_err().code(),
            "role_not_assignable"
        );
        assert_eq!(
            validate_role("superuser").unwrap_err().code(),
            "invalid_role"
        );
        assert_eq!(validate_role("editor").unwrap(), "editor");
    }
}
