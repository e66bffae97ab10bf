//! `campaigns.pause` and `campaigns.activate`: the agency's emergency brake (pause every campaign
//! of a team, by tag, across all clients in one call) and its release.
//!
//! A campaign already in the wanted state is a no-op decided from the list read, never by
//! calling Instantly: whether pausing a paused campaign is an error is unknown
//! (instantly-api.md §16 [UNK]).
//!
//! A tag that does not exist in a workspace is not a failure: the workspace simply has no
//! campaign of that team. The target succeeds with one `tag_not_found` change and nothing else,
//! so that an emergency brake over every client is not cancelled by the failure tolerance
//! because some clients have no such team.

use std::collections::HashMap;

use flotilla_instantly::{Campaign, CampaignStatus, ErrorKind, ListCampaigns};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::tags::{find_tag, validate_label};
use super::{Kind, Limits, Plan};
use crate::engine::{Change, TargetCtx, TargetError};
use crate::error::ApiError;

/// Params of `campaigns.pause` and `campaigns.activate`: exactly one selector.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignsParams {
    /// Campaign ids (UUIDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_ids: Option<Vec<String>>,
    /// Every campaign carrying the tag with this label (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

fn validate(params: CampaignsParams, limits: &Limits) -> Result<CampaignsParams, ApiError> {
    match (params.campaign_ids, params.tag) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::bad_request(
            "invalid_params",
            "give exactly one of params.campaign_ids and params.tag",
        )
        .with_details(json!({ "field": "params.campaign_ids" }))),
        (None, Some(tag)) => {
            validate_label(&tag, "params.tag")?;
            Ok(CampaignsParams {
                campaign_ids: None,
                tag: Some(tag),
            })
        }
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_params",
                    "params.campaign_ids must not be empty",
                )
                .with_details(json!({ "field": "params.campaign_ids" })));
            }
            if ids.len() > limits.max_items {
                return Err(ApiError::unprocessable(
                    "too_many_items",
                    "params.campaign_ids has too many items",
                )
                .with_details(
                    json!({ "field": "params.campaign_ids", "limit": limits.max_items }),
                ));
            }
            let ids = ids
                .iter()
                .map(|raw| {
                    uuid::Uuid::parse_str(raw)
                        .map(|u| u.hyphenated().to_string())
                        .map_err(|_| {
                            ApiError::bad_request(
                                "invalid_campaign_id",
                                format!("not a campaign id: {raw:?}"),
                            )
                            .with_details(json!({ "field": "params.campaign_ids", "value": raw }))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(CampaignsParams {
                campaign_ids: Some(super::unique_in_order(ids)),
                tag: None,
            })
        }
    }
}

/// Which way a kind moves campaigns.
#[derive(Clone, Copy)]
enum Direction {
    Pause,
    Activate,
}

impl Direction {
    /// Whether a campaign in `status` is already where this direction wants it. Activating
    /// counts "running subsequences" (4) as active: it is sending.
    fn satisfied(self, status: CampaignStatus) -> bool {
        match self {
            Direction::Pause => status == CampaignStatus::PAUSED,
            Direction::Activate => status == CampaignStatus::ACTIVE || status.0 == 4,
        }
    }

    fn done(self) -> &'static str {
        match self {
            Direction::Pause => "paused",
            Direction::Activate => "activated",
        }
    }

    fn already(self) -> &'static str {
        match self {
            Direction::Pause => "already_paused",
            Direction::Activate => "already_active",
        }
    }
}

/// A campaign to move: (id, name).
pub type CampaignAction = (String, String);

async fn plan_campaigns(
    ctx: &TargetCtx,
    params: &CampaignsParams,
    direction: Direction,
) -> Result<Plan<CampaignAction>, TargetError> {
    let mut plan = Plan::default();
    let campaigns: Vec<Campaign> = match (&params.tag, &params.campaign_ids) {
        (Some(label), _) => {
            let Some(tag) = find_tag(ctx, label).await? else {
                plan.unchanged.push(
                    Change::new(label, "tag_not_found")
                        .with_detail("no tag with this label here; no campaign to change"),
                );
                return Ok(plan);
            };
            // instantly-api.md §9/§16 (SPEC): `tag_ids` filters campaigns by tag. Unlike the
            // mappings list (§13.3), no report says this filter is ignored.
            let query = ListCampaigns {
                tag_ids: vec![tag.id],
                ..ListCampaigns::default()
            };
            ctx.client.list_campaigns(&query).try_collect().await?
        }
        (None, _) => {
            ctx.client
                .list_campaigns(&ListCampaigns::default())
                .try_collect()
                .await?
        }
    };
    let selected: Vec<&Campaign> = match &params.campaign_ids {
        Some(ids) => {
            let by_id: HashMap<String, &Campaign> = campaigns
                .iter()
                .map(|c| (c.id.to_ascii_lowercase(), c))
                .collect();
            let mut found = Vec::new();
            for id in ids {
                match by_id.get(id) {
                    Some(c) => found.push(*c),
                    None => plan.unchanged.push(Change::new(id, "not_found")),
                }
            }
            found
        }
        None => campaigns.iter().collect(),
    };
    for c in selected {
        if direction.satisfied(c.status) {
            plan.unchanged
                .push(Change::new(&c.id, direction.already()).with_detail(&c.name));
        } else {
            plan.actions.push((
                (c.id.clone(), c.name.clone()),
                Change::new(&c.id, direction.done()).with_detail(&c.name),
            ));
        }
    }
    Ok(plan)
}

async fn apply_campaign(
    ctx: &TargetCtx,
    action: &CampaignAction,
    direction: Direction,
) -> Result<Change, TargetError> {
    let (id, name) = action;
    let result = match direction {
        Direction::Pause => ctx.client.pause_campaign(id).await,
        Direction::Activate => ctx.client.activate_campaign(id).await,
    };
    match result {
        Ok(_) => Ok(Change::new(id, direction.done()).with_detail(name)),
        // Deleted between our read and the write.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Ok(Change::new(id, "not_found").with_detail(name))
        }
        Err(e) => Err(e.into()),
    }
}

/// `campaigns.pause`: pause the given campaigns, or every campaign carrying a tag.
pub struct Pause;

impl Kind for Pause {
    const NAME: &'static str = "campaigns.pause";
    type Params = CampaignsParams;
    type Action = CampaignAction;

    fn validate(params: CampaignsParams, limits: &Limits) -> Result<CampaignsParams, ApiError> {
        validate(params, limits)
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &CampaignsParams,
    ) -> Result<Plan<CampaignAction>, TargetError> {
        plan_campaigns(ctx, params, Direction::Pause).await
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &CampaignsParams,
        action: &CampaignAction,
    ) -> Result<Change, TargetError> {
        apply_campaign(ctx, action, Direction::Pause).await
    }
}

/// `campaigns.activate`: activate (start or resume) the given campaigns, or every campaign
/// carrying a tag.
pub struct Activate;

impl Kind for Activate {
    const NAME: &'static str = "campaigns.activate";
    type Params = CampaignsParams;
    type Action = CampaignAction;

    fn validate(params: CampaignsParams, limits: &Limits) -> Result<CampaignsParams, ApiError> {
        validate(params, limits)
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &CampaignsParams,
    ) -> Result<Plan<CampaignAction>, TargetError> {
        plan_campaigns(ctx, params, Direction::Activate).await
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &CampaignsParams,
        action: &CampaignAction,
    ) -> Result<Change, TargetError> {
        apply_campaign(ctx, action, Direction::Activate).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_params_need_exactly_one_selector_and_uuids() {
        let limits = Limits { max_items: 10 };
        let p = |v: serde_json::Value| serde_json::from_value::<CampaignsParams>(v).unwrap();
        assert_eq!(
            validate(p(json!({})), &limits).unwrap_err().code(),
            "invalid_params"
        );
        assert_eq!(
            validate(p(json!({"tag": "T", "campaign_ids": []})), &limits)
                .unwrap_err()
                .code(),
            "invalid_params"
        );
        assert_eq!(
            validate(p(json!({"campaign_ids": ["x"]})), &limits)
                .unwrap_err()
                .code(),
            "invalid_campaign_id"
        );
        assert!(validate(p(json!({"tag": "Team-East"})), &limits).is_ok());
    }
}
