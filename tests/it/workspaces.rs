//! Registering, listing, relabelling and removing client workspaces.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::*;

both!(
    register_verifies_binds_and_never_returns_the_key,
    |backend| {
        let app = TestApp::start(backend).await;
        let ws = app.sim.create_workspace("Acme");
        let key = app.sim.create_key(&ws, "flotilla", &["all:all"]);
        let (status, body) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "Acme", "api_key": key.key, "labels": ["east", "tier-1"] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["instantly_workspace_id"], ws);
        assert_eq!(body["mode"], "direct");
        assert_eq!(body["labels"], json!(["east", "tier-1"]));
        assert!(
            body["credential"]["fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(
            !body.to_string().contains(&key.key),
            "the key must never be returned"
        );
        // The key was verified live with GET /workspaces/current.
        assert!(
            app.sim
                .request_log()
                .iter()
                .any(|r| r.path == "/api/v2/workspaces/current" && r.status == 200)
        );

        let id = body["id"].as_str().unwrap();
        let (status, one) = app.get(&format!("/v1/workspaces/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["name"], "Acme");
        assert!(!one.to_string().contains(&key.key));

        // Same key again → 409 duplicate_api_key; another key of the same workspace → 409 too.
        let (status, err) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "Again", "api_key": key.key }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(err["error"]["code"], "duplicate_api_key");
        let other = app.sim.create_key(&ws, "second", &["all:all"]);
        let (status, err) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "Again", "api_key": other.key }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{err}");
        assert_eq!(err["error"]["code"], "workspace_already_registered");
        assert!(!err.to_string().contains(&other.key));
        assert_eq!(count(&app.db, "workspace").await, 1);
        app.stop().await;
    }
);

both!(
    invalid_keys_are_refused_with_a_code_and_nothing_is_stored,
    |backend| {
        let app = TestApp::start(backend).await;
        let (status, err) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "X", "api_key": "not-a-real-key" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["code"], "invalid_api_key");
        assert!(!err.to_string().contains("not-a-real-key"));

        let ws = app.sim.create_workspace("Unpaid");
        let key = app.sim.create_key(&ws, "k", &["all:all"]);
        app.sim.set_paid(&ws, false);
        let (status, err) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "Unpaid", "api_key": key.key }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["code"], "workspace_not_paid");

        let ws = app.sim.create_workspace("Narrow");
        let key = app.sim.create_key(&ws, "k", &["campaigns:read"]);
        let (status, err) = app
            .post(
                "/v1/workspaces",
                json!({ "name": "Narrow", "api_key": key.key }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["code"], "api_key_lacks_scope");

        for (body, code) in [
            (json!({ "name": "X", "api_key": "" }), "invalid_api_key"),
            (
                json!({ "name": "X", "api_key": "has space" }),
                "invalid_api_key",
            ),
            (json!({ "name": "", "api_key": "k" }), "invalid_name"),
            (
                json!({ "name": "X", "api_key": "k", "labels": ["bad label"] }),
                "invalid_label",
            ),
            (
                json!({ "name": "X", "api_key": "k", "colour": "red" }),
                "unknown_field",
            ),
            (json!({ "name": "X" }), "missing_field"),
        ] {
            let (status, err) = app.post("/v1/workspaces", body.clone()).await;
            assert!(status.is_client_error(), "{body}: {status}");
            assert_eq!(err["error"]["code"], code, "{body}");
        }
        assert_eq!(count(&app.db, "workspace").await, 0);
        assert_eq!(count(&app.db, "vault_credential").await, 0);
        app.stop().await;
    }
);

both!(list_filters_by_label_and_paginates, |backend| {
    let app = TestApp::start(backend).await;
    for i in 0..5 {
        let label = if i % 2 == 0 { "east" } else { "west" };
        app.register(&format!("ws-{i}"), &[label]).await;
    }
    let (_, east) = app.get("/v1/workspaces?label=east").await;
    assert_eq!(east["items"].as_array().unwrap().len(), 3);
    let (_, page1) = app.get("/v1/workspaces?limit=2").await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("more pages");
    let (_, page2) = app
        .get(&format!("/v1/workspaces?limit=2&cursor={cursor}"))
        .await;
    let (_, page3) = app
        .get(&format!(
            "/v1/workspaces?limit=2&cursor={}",
            page2["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page3["items"].as_array().unwrap().len(), 1);
    assert!(page3["next_cursor"].is_null());
    let mut names: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| {
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_string())
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["ws-0", "ws-1", "ws-2", "ws-3", "ws-4"]);
    app.stop().await;
});

both!(patch_relabels_and_delete_shreds_the_credential, |backend| {
    let app = TestApp::start(backend).await;
    let (id, _) = app.register("Acme", &["east"]).await;
    let (status, ws) = app
        .call(
            Method::PATCH,
            &format!("/v1/workspaces/{id}"),
            Some(json!({ "name": "Acme Inc", "labels": ["west", "vip"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ws}");
    assert_eq!(ws["name"], "Acme Inc");
    assert_eq!(ws["labels"], json!(["vip", "west"]));
    assert_eq!(count(&app.db, "vault_credential").await, 1);

    let (status, _) = app
        .call(Method::DELETE, &format!("/v1/workspaces/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        count(&app.db, "vault_credential").await,
        0,
        "the credential is crypto-shredded"
    );
    assert_eq!(count(&app.db, "workspace_label").await, 0);
    let (status, err) = app.get(&format!("/v1/workspaces/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
    let (status, err) = app.get("/v1/workspaces/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "invalid_id");
    app.stop().await;
});

both!(
    put_credential_replaces_the_key_for_the_same_workspace_only,
    |backend| {
        let app = TestApp::start(backend).await;
        let (id, ws) = app.register("Acme", &[]).await;
        let other_ws = app.sim.create_workspace("Other");
        let foreign = app.sim.create_key(&other_ws, "k", &["all:all"]);
        let (status, err) = app
            .call(
                Method::PUT,
                &format!("/v1/workspaces/{id}/credential"),
                Some(json!({ "api_key": foreign.key })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["code"], "workspace_mismatch");

        let (_, before) = app.get(&format!("/v1/workspaces/{id}")).await;
        let fresh = app.sim.create_key(&ws, "k2", &["all:all"]);
        let (status, after) = app
            .call(
                Method::PUT,
                &format!("/v1/workspaces/{id}/credential"),
                Some(json!({ "api_key": fresh.key })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{after}");
        assert_ne!(
            before["credential"]["fingerprint"],
            after["credential"]["fingerprint"]
        );
        assert_eq!(count(&app.db, "vault_credential").await, 1);
        app.stop().await;
    }
);

both!(every_v1_route_needs_a_valid_token, |backend| {
    let app = TestApp::start(backend).await;
    for (token, code) in [("", "missing_token"), ("nope", "invalid_token")] {
        let resp = if token.is_empty() {
            app.http
                .get(format!("{}/v1/workspaces", app.url))
                .send()
                .await
                .unwrap()
        } else {
            app.http
                .get(format!("{}/v1/workspaces", app.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        };
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }
    let resp = app
        .http
        .get(format!("{}/v1/operations", app.url))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let health = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let doc: serde_json::Value = app
        .http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/operations"]["post"].is_object());
    assert!(doc["paths"]["/v1/workspaces/{id}/credential"]["put"].is_object());
    app.stop().await;
});
