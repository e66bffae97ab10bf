//! Bad input gets a 4xx with its own code and writes nothing.

use flotilla_instantly_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::support::*;

both!(
    bad_operation_requests_get_their_own_codes_and_write_nothing,
    |backend| {
        let app = TestApp::start_with(backend, SimConfig::default(), |c| {
            c.max_items = 5;
            c.max_targets = 2;
            c.max_body_bytes = 8 * 1024;
        })
        .await;
        let (ws1, _) = app.register("a", &["east"]).await;
        app.register("b", &["east"]).await;
        app.register("c", &["west"]).await;
        let invite = |params: serde_json::Value| json!({ "kind": "members.invite", "targets": { "workspaces": [ws1] }, "params": params });
        let ok_params = json!({ "emails": ["ana@agency.example"], "role": "view" });
        let cases: Vec<(serde_json::Value, StatusCode, &str)> = vec![
            (
                json!({ "kind": "members.invite", "targets": { "all": true }, "params": ok_params, "colour": 1 }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_field",
            ),
            (
                json!({ "kind": "members.explode", "targets": { "all": true }, "params": {} }),
                StatusCode::BAD_REQUEST,
                "unknown_kind",
            ),
            (
                invite(json!({ "emails": ["not-an-email"], "role": "view" })),
                StatusCode::BAD_REQUEST,
                "invalid_email",
            ),
            (
                invite(json!({ "emails": ["a@x.com\r\nBcc: evil@x.com"], "role": "view" })),
                StatusCode::BAD_REQUEST,
                "invalid_email",
            ),
            (
                invite(json!({ "emails": ["a@x.com"], "role": "owner" })),
                StatusCode::UNPROCESSABLE_ENTITY,
                "role_not_assignable",
            ),
            (
                invite(json!({ "emails": ["a@x.com"], "role": "client" })),
                StatusCode::UNPROCESSABLE_ENTITY,
                "role_not_assignable",
            ),
            (
                invite(json!({ "emails": ["a@x.com"], "role": "god" })),
                StatusCode::BAD_REQUEST,
                "invalid_role",
            ),
            (
                invite(json!({ "emails": ["a@x.com"], "role": "view", "extra": true })),
                StatusCode::BAD_REQUEST,
                "invalid_params",
            ),
            (
                invite(json!({ "emails": [], "role": "view" })),
                StatusCode::BAD_REQUEST,
                "invalid_params",
            ),
            (
                invite(
                    json!({ "emails": ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com"], "role": "view" }),
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_items",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "workspaces": ["not-a-uuid"] }, "params": ok_params }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_id",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "workspaces": [uuid::Uuid::now_v7()] }, "params": ok_params }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_workspace",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "labels": ["nobody"] }, "params": ok_params }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_targets",
            ),
            (
                json!({ "kind": "members.invite", "targets": {}, "params": ok_params }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_targets",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "all": true, "exclude": [ws1] }, "params": ok_params, "failure_tolerance": "x%" }),
                StatusCode::BAD_REQUEST,
                "invalid_failure_tolerance",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "all": true }, "params": ok_params }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_targets",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "labels": ["east"], "label_match": "most" }, "params": ok_params }),
                StatusCode::BAD_REQUEST,
                "invalid_label_match",
            ),
            (
                json!({ "kind": "members.invite", "targets": { "labels": ["east"] }, "params": ok_params, "max_concurrency": 0 }),
                StatusCode::BAD_REQUEST,
                "invalid_max_concurrency",
            ),
        ];
        for (body, status, code) in cases {
            let (got, err) = app.post("/v1/operations", body.clone()).await;
            assert_eq!(got, status, "{body} → {err}");
            assert_eq!(err["error"]["code"], code, "{body} → {err}");
        }

        let raw = |body: String, content_type: &'static str| {
            app.http
                .post(format!("{}/v1/operations", app.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let resp = raw("{\"kind\": ".into(), "application/json").await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "malformed_json"
        );
        let resp = raw("{}".into(), "text/plain").await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let huge = format!("{{\"kind\": \"{}\"}}", "x".repeat(20_000));
        let resp = raw(huge, "application/json").await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "body_too_large"
        );
        let (status, err) = app
            .call_as(
                ADMIN_TOKEN,
                reqwest::Method::POST,
                "/v1/operations",
                Some(invite(ok_params.clone())),
                &[("Idempotency-Key", "")],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["code"], "invalid_idempotency_key");

        assert_eq!(
            app.operation_count().await,
            0,
            "no bad request wrote an operation"
        );
        assert_eq!(count(&app.db, "target").await, 0);
        assert!(
            app.sim
                .request_log()
                .iter()
                .all(|r| r.path == "/api/v2/workspaces/current"),
            "nothing reached Instantly"
        );
        app.stop().await;
    }
);

both!(
    hostile_bodies_headers_and_paths_get_4xx_and_write_nothing,
    |backend| {
        let app = TestApp::start(backend).await;
        let post_raw = |path: &'static str, body: Vec<u8>| {
            app.http
                .post(format!("{}{path}", app.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        // Deeply nested JSON: serde_json's recursion limit refuses it before any handler runs.
        let deep = format!(
            "{{\"kind\":\"members.invite\",\"targets\":{{\"all\":true}},\"params\":{}{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let resp = post_raw("/v1/operations", deep.into_bytes()).await.unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
        // Invalid UTF-8.
        let resp = post_raw(
            "/v1/workspaces",
            b"{\"name\": \"\xff\xfe\", \"api_key\": \"k\"}".to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "malformed_json");
        // A body over the default limit (2 MiB).
        let resp = post_raw("/v1/workspaces", vec![b' '; 3 * 1024 * 1024])
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Header injection and control characters in names and labels.
        for body in [
            json!({ "name": "Acme\r\nX-Injected: 1", "api_key": "k" }),
            json!({ "name": "Acme\u{0000}", "api_key": "k" }),
            json!({ "name": "Acme", "api_key": "k", "labels": ["east\r\nX: y"] }),
            json!({ "name": "Acme", "api_key": "k", "labels": ["../../etc"] }),
            json!({ "name": "Acme", "api_key": "k\r\nX: y" }),
        ] {
            let (status, err) = app.post("/v1/workspaces", body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        }
        // Path traversal and junk in ids.
        for path in [
            "/v1/workspaces/..%2F..%2Fetc%2Fpasswd",
            "/v1/workspaces/%00",
            "/v1/operations/1%20or%201=1",
            "/v1/operations/00000000-0000-0000-0000-000000000000%27",
        ] {
            let (status, err) = app.get(path).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{path}: {status} {err}"
            );
            assert!(err["error"]["code"].is_string(), "{path}: {err}");
        }
        let (status, _) = app.get("/v1/workspaces/../../etc/passwd").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A query string that does not parse is answered in the envelope.
        let (status, err) = app.get("/v1/workspaces?limit=lots").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["code"], "invalid_query");
        assert_eq!(count(&app.db, "workspace").await, 0);
        assert_eq!(app.operation_count().await, 0);
        app.stop().await;
    }
);
