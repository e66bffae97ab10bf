use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env};

#[tokio::test]
async fn current_workspace_get_patch_and_change_owner() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api.get("/workspaces/current").await;
    assert_eq!(r.body["id"], e.ws.as_str());
    assert_eq!(r.body["name"], "Acme");
    let old_owner = r.body["owner"].as_str().unwrap().to_owned();

    let r = api
        .patch("/workspaces/current", json!({"name": "Acme Corp"}))
        .await;
    assert_eq!(r.body["name"], "Acme Corp");
    assert_eq!(e.sim.workspace(&e.ws).unwrap().name, "Acme Corp");
    let r = api
        .patch("/workspaces/current", json!({"plan_id": "free"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = api
        .post(
            "/workspaces/current/change-owner",
            json!({"email": "ghost@x.example", "sec": "s"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    e.sim.seed_member(&e.ws, "next@x.example", "admin", true);
    let r = api
        .post(
            "/workspaces/current/change-owner",
            json!({"email": "next@x.example", "sec": "s"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.body["owner"], old_owner.as_str());
    let state = e.sim.workspace(&e.ws).unwrap();
    let role = |email: &str| {
        state
            .members
            .iter()
            .find(|m| m.email == email)
            .unwrap()
            .role
            .clone()
    };
    assert_eq!(role("next@x.example"), "owner");
    assert_eq!(role("owner@acme.example"), "admin");
    assert_eq!(state.owner_user_id, r.body["owner"].as_str().unwrap());
}

#[tokio::test]
async fn fastify_body_parsing() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = Api::send(
        api.request(reqwest::Method::POST, "/custom-tags")
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = Api::send(
        api.request(reqwest::Method::POST, "/custom-tags")
            .header("content-type", "text/plain")
            .body("label"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = Api::send(api.request(reqwest::Method::POST, "/custom-tags")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "body must be object");
}
