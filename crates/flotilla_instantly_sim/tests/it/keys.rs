use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env};

#[tokio::test]
async fn key_is_shown_once() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api
        .post(
            "/api-keys",
            json!({"name": "ci", "scopes": ["campaigns:read", "accounts:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let secret = r.body["key"].as_str().unwrap().to_owned();
    assert!(secret.len() > 20, "full key in the create response");
    assert_eq!(r.body["organization_id"], e.ws.as_str());
    assert_eq!(r.body["scopes"], json!(["campaigns:read", "accounts:read"]));
    let id = r.body["id"].as_str().unwrap().to_owned();

    let list = api.get("/api-keys").await;
    assert_eq!(list.items().len(), 2);
    assert!(
        list.items().iter().all(|k| k["key"] == ""),
        "lists never show the key"
    );

    // The new key works, with its scopes.
    let new = Api::new(&e.sim, &secret);
    assert_eq!(new.get("/campaigns").await.status, StatusCode::OK);
    assert_eq!(new.get("/api-keys").await.status, StatusCode::FORBIDDEN);

    let del = api.delete(&format!("/api-keys/{id}")).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.body["id"], id.as_str());
    assert_eq!(del.body["key"], "", "the DELETE echo hides the key too");
    assert_eq!(new.get("/campaigns").await.status, StatusCode::UNAUTHORIZED);
    let state = e.sim.workspace(&e.ws).unwrap();
    assert_eq!(state.api_keys.len(), 1);
    let types: Vec<i64> = state.audit_logs.iter().map(|l| l.activity_type).collect();
    assert_eq!(types, vec![37, 38]);
    assert!(
        state
            .audit_logs
            .iter()
            .all(|l| l.api_key_id.as_deref() == Some(e.key_id.as_str()))
    );
}

#[tokio::test]
async fn a_key_cannot_delete_itself() {
    let e = env().await;
    let r = Api::new(&e.sim, &e.key)
        .delete(&format!("/api-keys/{}", e.key_id))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "An API key cannot delete itself");
    assert_eq!(e.sim.workspace(&e.ws).unwrap().api_keys.len(), 1);
    assert_eq!(
        Api::new(&e.sim, &e.key).get("/api-keys").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn invalid_or_empty_scopes_are_400() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api
        .post(
            "/api-keys",
            json!({"name": "x", "scopes": ["campaigns:read", "campaigns:admin"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "body/scopes/1 must be equal to one of the allowed values"
    );
    let r = api
        .post("/api-keys", json!({"name": "x", "scopes": []}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api.post("/api-keys", json!({"scopes": ["all:all"]})).await;
    assert_eq!(r.message(), "body must have required property 'name'");
    assert_eq!(e.sim.workspace(&e.ws).unwrap().api_keys.len(), 1);
}
