use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{Api, env};

#[tokio::test]
async fn missing_header_is_401_with_instantly_message() {
    let e = env().await;
    let r = Api::anonymous(&e.sim).get("/workspace-members").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.body,
        json!({"statusCode": 401, "error": "Unauthorized", "message": "Missing Authorization header"})
    );
}

#[tokio::test]
async fn malformed_header_is_401_invalid_authorization_header() {
    let e = env().await;
    let api = Api::anonymous(&e.sim);
    for value in ["Basic abc", "Bearer", "Bearer   ", &e.key.clone()] {
        let r = Api::send(
            api.request(Method::GET, "/workspace-members")
                .header("authorization", value),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(r.message(), "Invalid authorization header", "{value:?}");
    }
}

#[tokio::test]
async fn unknown_and_revoked_keys_are_401() {
    let e = env().await;
    let r = Api::new(&e.sim, "sim.not-a-key")
        .get("/workspace-members")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let victim = e.sim.create_key(&e.ws, "victim", &["all:all"]);
    assert_eq!(
        Api::new(&e.sim, &victim.key).get("/api-keys").await.status,
        StatusCode::OK
    );
    let del = Api::new(&e.sim, &e.key)
        .delete(&format!("/api-keys/{}", victim.id))
        .await;
    assert_eq!(del.status, StatusCode::OK);
    let r = Api::new(&e.sim, &victim.key).get("/api-keys").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["statusCode"], 401);
}

#[tokio::test]
async fn missing_scope_is_403_naming_the_scope() {
    let e = env().await;
    let k = e.sim.create_key(&e.ws, "narrow", &["campaigns:read"]);
    let r = Api::new(&e.sim, &k.key).get("/workspace-members").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "Forbidden");
    assert!(
        r.message().contains("workspace_members:read"),
        "{}",
        r.message()
    );

    let r = Api::new(&e.sim, &k.key)
        .post(
            "/workspace-members",
            json!({"email": "a@b.example", "role": "view"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.message().contains("workspace_members:create"),
        "{}",
        r.message()
    );
    assert_eq!(
        e.sim.workspace(&e.ws).unwrap().members.len(),
        1,
        "nothing written"
    );
}

#[tokio::test]
async fn scope_rule_is_any_of_exact_resource_all_cross_resource_and_all_all() {
    let e = env().await;
    for scope in [
        "workspace_members:read",
        "workspace_members:all",
        "all:read",
        "all:all",
    ] {
        let k = e.sim.create_key(&e.ws, scope, &["campaigns:read", scope]);
        let r = Api::new(&e.sim, &k.key).get("/workspace-members").await;
        assert_eq!(r.status, StatusCode::OK, "{scope} should allow GET");
    }
    for scope in [
        "workspace_members:create",
        "campaigns:all",
        "all:create",
        "api_keys:read",
    ] {
        let k = e.sim.create_key(&e.ws, scope, &[scope]);
        let r = Api::new(&e.sim, &k.key).get("/workspace-members").await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{scope} should not allow GET"
        );
    }
    // PATCH needs update, action POSTs need update, DELETE needs delete.
    let c = e.sim.seed_campaign(&e.ws, "c", 1);
    let upd = e.sim.create_key(&e.ws, "upd", &["campaigns:update"]);
    let r = Api::new(&e.sim, &upd.key)
        .post(&format!("/campaigns/{c}/pause"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let create_only = e.sim.create_key(&e.ws, "create", &["campaigns:create"]);
    let r = Api::new(&e.sim, &create_only.key)
        .post(&format!("/campaigns/{c}/activate"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let m = e.sim.seed_member(&e.ws, "x@y.example", "view", true);
    let upd_m = e
        .sim
        .create_key(&e.ws, "upd", &["workspace_members:update"]);
    let r = Api::new(&e.sim, &upd_m.key)
        .delete(&format!("/workspace-members/{m}"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.message().contains("workspace_members:delete"));
}

#[tokio::test]
async fn unpaid_workspace_is_402_on_every_call() {
    let e = env().await;
    e.sim.set_paid(&e.ws, false);
    let api = Api::new(&e.sim, &e.key);
    for path in ["/workspace-members", "/api-keys", "/workspaces/current"] {
        let r = api.get(path).await;
        assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{path}");
        assert_eq!(
            r.body,
            json!({"statusCode": 402, "error": "Payment Required", "message": "Workspace does not have an active paid plan"})
        );
    }
    e.sim.set_paid(&e.ws, true);
    assert_eq!(api.get("/workspace-members").await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_route_is_fastify_404() {
    let e = env().await;
    let r = Api::new(&e.sim, &e.key).get("/workspaces").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "Route GET:/api/v2/workspaces not found");
}
