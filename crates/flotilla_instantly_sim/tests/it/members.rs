use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{Api, env};

#[tokio::test]
async fn invite_creates_a_pending_member() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api
        .post(
            "/workspace-members",
            json!({"email": "new@client.example", "role": "editor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["email"], "new@client.example");
    assert_eq!(r.body["role"], "editor");
    assert_eq!(r.body["accepted"], false);
    assert_eq!(r.body["workspace_id"], e.ws.as_str());
    let id = r.body["id"].as_str().unwrap();
    let state = e.sim.workspace(&e.ws).unwrap();
    let m = state
        .members
        .iter()
        .find(|m| m.id == id)
        .expect("member stored");
    assert_eq!(m.role, "editor");
    assert!(!m.accepted);

    let got = api.get(&format!("/workspace-members/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["email"], "new@client.example");
}

#[tokio::test]
async fn owner_and_client_roles_are_refused_on_create_and_patch() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    for role in ["owner", "client"] {
        let r = api
            .post(
                "/workspace-members",
                json!({"email": format!("{role}@x.example"), "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{role}");
        assert_eq!(r.body["error"], "Bad Request");
    }
    assert_eq!(
        e.sim.workspace(&e.ws).unwrap().members.len(),
        1,
        "only the owner"
    );

    let m = e.sim.seed_member(&e.ws, "ed@x.example", "editor", true);
    for role in ["owner", "client"] {
        let r = api
            .patch(&format!("/workspace-members/{m}"), json!({"role": role}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{role}");
    }
    let r = api
        .patch(
            &format!("/workspace-members/{m}"),
            json!({"role": "superuser"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "body/role must be equal to one of the allowed values"
    );
    let state = e.sim.workspace(&e.ws).unwrap();
    assert_eq!(
        state.members.iter().find(|x| x.id == m).unwrap().role,
        "editor"
    );

    let r = api
        .patch(&format!("/workspace-members/{m}"), json!({"role": "view"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["role"], "view");
    let state = e.sim.workspace(&e.ws).unwrap();
    assert_eq!(
        state.members.iter().find(|x| x.id == m).unwrap().role,
        "view"
    );
}

#[tokio::test]
async fn duplicate_invite_is_409_case_insensitive() {
    let e = env().await;
    e.sim.seed_member(&e.ws, "Dup@X.example", "view", false);
    let r = Api::new(&e.sim, &e.key)
        .post(
            "/workspace-members",
            json!({"email": "dup@x.example", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["statusCode"], 409);
    assert_eq!(e.sim.workspace(&e.ws).unwrap().members.len(), 2);
}

#[tokio::test]
async fn body_validation_uses_ajv_messages() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api
        .post("/workspace-members", json!({"email": "a@b.example"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "body must have required property 'role'");
    let r = api
        .post(
            "/workspace-members",
            json!({"email": "a@b.example", "role": "view", "extra": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "body must NOT have additional properties");
    let r = api
        .post(
            "/workspace-members",
            json!({"email": "nope", "role": "view"}),
        )
        .await;
    assert_eq!(r.message(), "body/email must match format \"email\"");
    let r = api
        .post(
            "/workspace-members",
            json!({"email": "a@b.example", "role": "view", "permissions": ["x"]}),
        )
        .await;
    assert_eq!(
        r.message(),
        "body/permissions/0 must be equal to one of the allowed values"
    );
    assert_eq!(e.sim.workspace(&e.ws).unwrap().members.len(), 1);
}

#[tokio::test]
async fn delete_accepts_no_body_null_or_empty_object_but_not_empty_json() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            e.sim
                .seed_member(&e.ws, &format!("m{i}@x.example"), "view", true)
        })
        .collect();

    let r = api.delete(&format!("/workspace-members/{}", ids[0])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], ids[0].as_str(), "deleted object echoed");
    let r = Api::send(
        api.request(Method::DELETE, &format!("/workspace-members/{}", ids[1]))
            .header("content-type", "application/json")
            .body("null"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = Api::send(
        api.request(Method::DELETE, &format!("/workspace-members/{}", ids[2]))
            .header("content-type", "application/json")
            .body(""),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "Fastify rejects an empty JSON body"
    );
    assert_eq!(
        r.message(),
        "Body cannot be empty when content-type is set to 'application/json'"
    );
    let r = Api::send(
        api.request(Method::DELETE, &format!("/workspace-members/{}", ids[2]))
            .json(&json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(e.sim.workspace(&e.ws).unwrap().members.len(), 1);
}

#[tokio::test]
async fn malformed_id_is_400_and_unknown_id_is_404() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api.get("/workspace-members/not-a-uuid").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "params/id must match format \"uuid\"");
    let r = api
        .get("/workspace-members/019cc043-af91-783e-9927-3daab1cd9277")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        json!({"statusCode": 404, "error": "Not Found", "message": "Resource not found"})
    );
}

#[tokio::test]
async fn the_owner_cannot_be_removed() {
    let e = env().await;
    let owner = e.sim.workspace(&e.ws).unwrap().members[0].id.clone();
    let r = Api::new(&e.sim, &e.key)
        .delete(&format!("/workspace-members/{owner}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(e.sim.workspace(&e.ws).unwrap().members.len(), 1);
}
