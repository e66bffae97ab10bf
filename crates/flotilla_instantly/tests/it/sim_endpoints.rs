//! Endpoint round trips against the simulator: the client's call and the simulator's state agree.

use flotilla_instantly::{
    ActivityType, CampaignStatus, ChangeOwner, Client, CreateApiKey, CreateCustomTag, CreateMember,
    ErrorKind, GroupMemberStatus, ListAccounts, ListAuditLogs, ListCampaigns, ListCustomTags,
    ListTagMappings, ResourceType, Role, Scope, ToggleTagResources, UpdateCustomTag, UpdateMember,
    UpdateWorkspace,
};
use flotilla_instantly_sim::SimConfig;
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};

use crate::common::{config, sim_client, sim_config, sim_ws};

#[tokio::test]
async fn members_create_get_patch_list_delete() {
    let t = sim_ws(SimConfig::default()).await;
    let c = &t.client;

    let m = c
        .create_member(&CreateMember {
            email: "new@x.com".into(),
            role: Role::Editor,
        })
        .await
        .unwrap();
    assert_eq!(m.email, "new@x.com");
    assert_eq!(m.role, Role::Editor);
    assert!(!m.accepted);
    assert_eq!(m.workspace_id, t.ws);

    let got = c.get_member(&m.id).await.unwrap();
    assert_eq!(got.id, m.id);

    let patched = c
        .update_member(
            &m.id,
            &UpdateMember {
                role: Some(Role::Admin),
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.role, Role::Admin);
    let state = t.sim.workspace(&t.ws).unwrap();
    let stored = state.members.iter().find(|x| x.id == m.id).unwrap();
    assert_eq!(stored.role, "admin");

    let all: Vec<_> = c.list_members().try_collect().await.unwrap();
    assert_eq!(all.len(), 2, "owner + invitee");
    assert!(all.iter().any(|x| x.role == Role::Owner));

    let deleted = c.delete_member(&m.id).await.unwrap();
    assert_eq!(deleted.id, m.id);
    let state = t.sim.workspace(&t.ws).unwrap();
    assert!(state.members.iter().all(|x| x.id != m.id));
    assert_eq!(
        c.get_member(&m.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn api_key_secret_is_returned_once_and_works() {
    let t = sim_ws(SimConfig::default()).await;
    let created = t
        .client
        .create_api_key(&CreateApiKey {
            name: "flotilla-test".into(),
            scopes: vec![Scope::WORKSPACES_READ, Scope::new("campaigns:read")],
        })
        .await
        .unwrap();
    assert!(!created.secret.expose_secret().is_empty());
    assert_eq!(created.key.name, "flotilla-test");
    assert_eq!(
        created.key.scopes,
        vec![Scope::WORKSPACES_READ, Scope::CAMPAIGNS_READ]
    );
    assert_eq!(created.key.organization_id, t.ws);
    // The metadata never carries the secret, not even in Debug or JSON.
    let secret = created.secret.expose_secret().to_owned();
    assert!(!format!("{created:?}").contains(&secret));
    assert!(
        !serde_json::to_string(&created.key)
            .unwrap()
            .contains(&secret)
    );

    let listed: Vec<_> = t.client.list_api_keys().try_collect().await.unwrap();
    assert!(listed.iter().any(|k| k.id == created.key.id));
    let state = t.sim.workspace(&t.ws).unwrap();
    assert!(state.api_keys.iter().any(|k| k.id == created.key.id));

    // The new key authenticates.
    let own = Client::new(config(&t.sim.base_url(), &secret)).unwrap();
    assert_eq!(own.current_workspace().await.unwrap().id, t.ws);

    let revoked = t.client.delete_api_key(&created.key.id).await.unwrap();
    assert_eq!(revoked.id, created.key.id);
    let state = t.sim.workspace(&t.ws).unwrap();
    assert!(state.api_keys.iter().all(|k| k.id != created.key.id));
    assert_eq!(
        own.current_workspace().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
}

#[tokio::test]
async fn custom_tags_and_toggle_resource() {
    let t = sim_ws(SimConfig::default()).await;
    let c = &t.client;
    let campaign = t.sim.seed_campaign(&t.ws, "Q3 outbound", 1);
    let other = t.sim.seed_campaign(&t.ws, "Untagged", 1);
    t.sim.seed_account(&t.ws, "sender@x.com", 1);
    t.sim.seed_account(&t.ws, "other@x.com", 1);

    let tag = c
        .create_custom_tag(&CreateCustomTag {
            label: "team-a".into(),
            description: Some("Team A".into()),
        })
        .await
        .unwrap();
    assert_eq!(tag.label, "team-a");
    assert_eq!(tag.description.as_deref(), Some("Team A"));
    assert_eq!(c.get_custom_tag(&tag.id).await.unwrap().id, tag.id);

    let updated = c
        .update_custom_tag(
            &tag.id,
            &UpdateCustomTag {
                label: Some("team-alpha".into()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.label, "team-alpha");
    assert_eq!(t.sim.workspace(&t.ws).unwrap().tags[0].label, "team-alpha");

    c.toggle_tag_resources(&ToggleTagResources {
        tag_ids: vec![tag.id.clone()],
        resource_type: ResourceType::Campaign,
        resource_ids: vec![campaign.clone()],
        assign: true,
    })
    .await
    .unwrap();
    c.toggle_tag_resources(&ToggleTagResources {
        tag_ids: vec![tag.id.clone()],
        resource_type: ResourceType::Account,
        resource_ids: vec!["sender@x.com".into()],
        assign: true,
    })
    .await
    .unwrap();

    let mappings: Vec<_> = c
        .list_custom_tag_mappings(&ListTagMappings::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(mappings.len(), 2);
    assert!(
        mappings
            .iter()
            .any(|m| m.resource_type == ResourceType::Campaign
                && m.resource_id == campaign
                && m.tag_id == tag.id)
    );
    assert!(
        mappings
            .iter()
            .any(|m| m.resource_type == ResourceType::Account && m.resource_id == "sender@x.com")
    );

    let tagged: Vec<_> = c
        .list_campaigns(&ListCampaigns {
            tag_ids: vec![tag.id.clone()],
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        tagged.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        [campaign.as_str()]
    );
    let all: Vec<_> = c
        .list_campaigns(&ListCampaigns::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|x| x.id == other));

    let accounts: Vec<_> = c
        .list_accounts(&ListAccounts {
            tag_ids: vec![tag.id.clone()],
            search: None,
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        accounts
            .iter()
            .map(|a| a.email.as_str())
            .collect::<Vec<_>>(),
        ["sender@x.com"]
    );

    let by_resource: Vec<_> = c
        .list_custom_tags(&ListCustomTags {
            resource_ids: vec![campaign.clone()],
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(by_resource.len(), 1);
    assert_eq!(by_resource[0].id, tag.id);
    let query = t
        .sim
        .request_log()
        .into_iter()
        .filter(|r| r.path == "/api/v2/campaigns")
        .find_map(|r| r.query.filter(|q| q.contains("tag_ids")))
        .unwrap();
    assert!(query.contains(&format!("tag_ids={}", tag.id)), "{query}");

    c.toggle_tag_resources(&ToggleTagResources {
        tag_ids: vec![tag.id.clone()],
        resource_type: ResourceType::Campaign,
        resource_ids: vec![campaign.clone()],
        assign: false,
    })
    .await
    .unwrap();
    let state = t.sim.workspace(&t.ws).unwrap();
    assert_eq!(state.tag_mappings.len(), 1);
    assert_eq!(state.tag_mappings[0].resource_type, 1);

    let deleted = c.delete_custom_tag(&tag.id).await.unwrap();
    assert_eq!(deleted.id, tag.id);
    assert!(t.sim.workspace(&t.ws).unwrap().tags.is_empty());
}

#[tokio::test]
async fn campaigns_pause_and_activate() {
    let t = sim_ws(SimConfig::default()).await;
    let id = t.sim.seed_campaign(&t.ws, "Outbound", 1);
    let paused = t.client.pause_campaign(&id).await.unwrap();
    assert_eq!(paused.status, CampaignStatus::PAUSED);
    assert_eq!(t.sim.workspace(&t.ws).unwrap().campaigns[0].status, 2);
    let active = t.client.activate_campaign(&id).await.unwrap();
    assert_eq!(active.status, CampaignStatus::ACTIVE);
    assert_eq!(t.sim.workspace(&t.ws).unwrap().campaigns[0].status, 1);
    let active: Vec<_> = t
        .client
        .list_campaigns(&ListCampaigns {
            status: Some(CampaignStatus::ACTIVE),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
}

#[tokio::test]
async fn audit_logs_with_filters() {
    let t = sim_ws(SimConfig::default()).await;
    let day = |d: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
    };
    t.sim.seed_audit_log(&t.ws, 1, day(1));
    let launch = t.sim.seed_audit_log(&t.ws, 4, day(5));
    t.sim.seed_audit_log(&t.ws, 4, day(20));

    let launches: Vec<_> = t
        .client
        .list_audit_logs(&ListAuditLogs {
            activity_type: Some(ActivityType::CAMPAIGN_LAUNCH),
            start_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2),
            end_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 10),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].id, launch);
    assert_eq!(launches[0].activity_type, ActivityType::CAMPAIGN_LAUNCH);
    let q = t.sim.request_log().last().unwrap().query.clone().unwrap();
    assert!(q.contains("activity_type=4"), "{q}");
    assert!(q.contains("start_date=2026-03-02"), "{q}");
    assert!(q.contains("end_date=2026-03-10"), "{q}");
    assert!(q.contains("limit=1000"), "{q}");
}

#[tokio::test]
async fn workspace_groups_and_acting_as_a_sub_workspace() {
    let t = sim_ws(SimConfig::default()).await;
    let admin = &t.client;
    let pending_sub = t.sim.create_workspace("Pending client");
    let sub = t.sim.create_workspace("Client B");
    t.sim.seed_group_member(&t.ws, &sub, "accepted");

    let invite = admin.create_group_member(&pending_sub).await.unwrap();
    assert_eq!(invite.status, GroupMemberStatus::Pending);
    assert_eq!(invite.admin_workspace_id, t.ws);
    assert_eq!(invite.sub_workspace_id, pending_sub);
    assert_eq!(
        admin.get_group_member(&invite.id).await.unwrap().id,
        invite.id
    );

    let members: Vec<_> = admin.list_group_members().try_collect().await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(
        members
            .iter()
            .any(|m| m.sub_workspace_id == sub && m.status == GroupMemberStatus::Accepted)
    );

    // The sub workspace's own key sees its admin.
    let sub_own = sim_client(&t.sim, &sub, &["all:all"]);
    let ga = sub_own.group_admin().await.unwrap();
    assert!(ga.has_admin_workspace);
    assert_eq!(ga.workspace_name, "Acme");

    // The admin's key acts as the sub workspace via x-as-workspace.
    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.as_workspace = Some(sub.clone());
    let delegated = Client::new(cfg).unwrap();
    t.sim.clear_request_log();
    assert_eq!(delegated.current_workspace().await.unwrap().id, sub);
    let tag = delegated
        .create_custom_tag(&CreateCustomTag {
            label: "via-admin".into(),
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(t.sim.workspace(&sub).unwrap().tags[0].id, tag.id);
    assert!(t.sim.workspace(&t.ws).unwrap().tags.is_empty());
    for r in t.sim.request_log() {
        assert_eq!(r.as_workspace.as_deref(), Some(sub.as_str()));
        assert_eq!(r.workspace_id.as_deref(), Some(sub.as_str()));
        assert_eq!(r.key_workspace_id.as_deref(), Some(t.ws.as_str()));
    }

    let removed = admin.delete_group_member(&invite.id).await.unwrap();
    assert_eq!(removed.id, invite.id);
    assert_eq!(t.sim.workspace(&t.ws).unwrap().group_as_admin.len(), 1);
}

#[tokio::test]
async fn current_workspace_patch_and_change_owner() {
    let t = sim_ws(SimConfig::default()).await;
    let before = t.client.current_workspace().await.unwrap();
    assert_eq!(before.id, t.ws);
    assert_eq!(before.name, "Acme");
    assert_eq!(before.owner, t.sim.workspace(&t.ws).unwrap().owner_user_id);

    let renamed = t
        .client
        .update_current_workspace(&UpdateWorkspace {
            name: Some("Acme Corp".into()),
        })
        .await
        .unwrap();
    assert_eq!(renamed.name, "Acme Corp");
    assert_eq!(t.sim.workspace(&t.ws).unwrap().name, "Acme Corp");

    let member = t.sim.seed_member(&t.ws, "boss@x.com", "admin", true);
    let after = t
        .client
        .change_owner(&ChangeOwner {
            email: "boss@x.com".into(),
            sec: SecretString::from("sec-token-not-real"),
        })
        .await
        .unwrap();
    let state = t.sim.workspace(&t.ws).unwrap();
    let new_owner = state.members.iter().find(|m| m.id == member).unwrap();
    assert_eq!(after.owner, new_owner.user_id);
    assert_eq!(state.owner_user_id, new_owner.user_id);
    assert_ne!(after.owner, before.owner);
}
