use flotilla_instantly_sim::{DelegatedBucket, SimConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env, env_with};

#[tokio::test]
async fn x_as_workspace_acts_on_an_accepted_sub_and_is_counted_there() {
    let e = env().await;
    let sub = e.sim.create_workspace("Client");
    e.sim.seed_group_member(&e.ws, &sub, "accepted");
    e.sim
        .seed_member(&sub, "only-in-sub@x.example", "view", true);
    let api = Api::new(&e.sim, &e.key).acting_as(&sub);

    let r = api.get("/workspaces/current").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], sub.as_str());
    assert_eq!(r.body["name"], "Client");
    let r = api
        .post(
            "/workspace-members",
            json!({"email": "new@x.example", "role": "view"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["workspace_id"], sub.as_str());
    assert_eq!(e.sim.workspace(&sub).unwrap().members.len(), 3);
    assert_eq!(e.sim.workspace(&e.ws).unwrap().members.len(), 1);

    assert_eq!(e.sim.counters(&sub).requests, 2);
    assert_eq!(e.sim.counters(&e.ws).requests, 0);
    let log = e.sim.request_log();
    assert_eq!(log.len(), 2);
    for rec in &log {
        assert_eq!(rec.workspace_id.as_deref(), Some(sub.as_str()));
        assert_eq!(rec.key_workspace_id.as_deref(), Some(e.ws.as_str()));
        assert_eq!(rec.as_workspace.as_deref(), Some(sub.as_str()));
        assert_eq!(rec.key_id.as_deref(), Some(e.key_id.as_str()));
    }
}

#[tokio::test]
async fn x_as_workspace_is_refused_unless_accepted_admin() {
    let e = env().await;
    let pending = e.sim.create_workspace("Pending");
    e.sim.seed_group_member(&e.ws, &pending, "pending");
    let stranger = e.sim.create_workspace("Stranger");
    // The reverse direction: a sub's key cannot act as its admin.
    let sub = e.sim.create_workspace("Sub");
    e.sim.seed_group_member(&e.ws, &sub, "accepted");
    let sub_key = e.sim.create_key(&sub, "k", &["all:all"]);

    for target in [&pending, &stranger, &"not-a-uuid".to_owned()] {
        let r = Api::new(&e.sim, &e.key)
            .acting_as(target)
            .get("/workspaces/current")
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{target}");
    }
    let r = Api::new(&e.sim, &sub_key.key)
        .acting_as(&e.ws)
        .get("/workspaces/current")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    assert_eq!(
        e.sim.counters(&e.ws).requests,
        3,
        "refusals counted on the key's workspace"
    );
    assert_eq!(e.sim.counters(&pending).requests, 0);
    assert_eq!(e.sim.counters(&stranger).requests, 0);
}

#[tokio::test]
async fn group_member_crud_and_admin_lookup() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let sub = e.sim.create_workspace("Client Co");
    let r = api
        .post("/workspace-group-members", json!({"sub_workspace_id": sub}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["admin_workspace_name"], "Acme");
    assert_eq!(r.body["sub_workspace_name"], "Client Co");
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Pending is not enough for x-as-workspace; accepting in "the app" is.
    let as_sub = Api::new(&e.sim, &e.key).acting_as(&sub);
    assert_eq!(
        as_sub.get("/workspaces/current").await.status,
        StatusCode::FORBIDDEN
    );
    e.sim.set_group_status(&id, "accepted");
    assert_eq!(
        as_sub.get("/workspaces/current").await.status,
        StatusCode::OK
    );

    let sub_key = e.sim.create_key(&sub, "k", &["workspace_members:read"]);
    let r = Api::new(&e.sim, &sub_key.key)
        .get("/workspace-group-members/admin")
        .await;
    assert_eq!(r.status, StatusCode::OK, "no scope needed for /admin");
    assert_eq!(
        r.body,
        json!({"workspace_name": "Acme", "has_admin_workspace": true, "workspace_group_member_id": id})
    );
    let r = api.get("/workspace-group-members/admin").await;
    assert_eq!(
        r.body,
        json!({"workspace_name": "Undefined", "has_admin_workspace": false})
    );

    assert_eq!(api.get("/workspace-group-members").await.items().len(), 1);
    assert_eq!(
        api.get(&format!("/workspace-group-members/{id}"))
            .await
            .body["sub_workspace_id"],
        sub.as_str()
    );

    // A second admin cannot take the same sub; a workspace cannot add itself.
    let other = e.sim.create_workspace("Other");
    let other_key = e.sim.create_key(&other, "k", &["all:all"]);
    let r = Api::new(&e.sim, &other_key.key)
        .post("/workspace-group-members", json!({"sub_workspace_id": sub}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .post(
            "/workspace-group-members",
            json!({"sub_workspace_id": e.ws}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api.delete(&format!("/workspace-group-members/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(e.sim.workspace(&e.ws).unwrap().group_as_admin.is_empty());
    assert_eq!(
        as_sub.get("/workspaces/current").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn delegated_calls(bucket: DelegatedBucket) -> (StatusCode, crate::Env, String) {
    // A 60 s window of 2 requests: deterministic within one test.
    let e = env_with(SimConfig {
        rps: 0,
        rpm: 2,
        delegated_bucket: bucket,
        ..SimConfig::default()
    })
    .await;
    let sub1 = e.sim.create_workspace("S1");
    let sub2 = e.sim.create_workspace("S2");
    e.sim.seed_group_member(&e.ws, &sub1, "accepted");
    e.sim.seed_group_member(&e.ws, &sub2, "accepted");
    let a1 = Api::new(&e.sim, &e.key).acting_as(&sub1);
    let a2 = Api::new(&e.sim, &e.key).acting_as(&sub2);
    assert_eq!(a1.get("/workspaces/current").await.status, StatusCode::OK);
    assert_eq!(a2.get("/workspaces/current").await.status, StatusCode::OK);
    let third = a2.get("/workspaces/current").await.status;
    (third, e, sub2)
}

#[tokio::test]
async fn delegated_bucket_sub_spends_the_sub_workspace_bucket() {
    let (third, e, sub2) = delegated_calls(DelegatedBucket::Sub).await;
    assert_eq!(third, StatusCode::OK);
    assert_eq!(e.sim.counters(&sub2).rate_limited, 0);
}

#[tokio::test]
async fn delegated_bucket_admin_spends_the_admin_bucket() {
    let (third, e, sub2) = delegated_calls(DelegatedBucket::Admin).await;
    assert_eq!(third, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(e.sim.counters(&sub2).rate_limited, 1);
    // The admin's own calls share that bucket.
    assert_eq!(
        Api::new(&e.sim, &e.key)
            .get("/workspaces/current")
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}
