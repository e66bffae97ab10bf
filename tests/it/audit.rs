//! Flotilla's audit trail: every mutating request and every refusal, with its operator, action,
//! ids and outcome; filters, pagination, append-only rows.

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::authz::create_operator;
use crate::both;
use crate::support::*;

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/audit?limit=500{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["next_cursor"].is_null());
    page["items"].as_array().unwrap().clone()
}

async fn bootstrap_id(app: &TestApp) -> String {
    let (_, page) = app.get("/v1/operators").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["bootstrap"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

both!(
    every_mutation_and_refusal_is_recorded_with_its_operator,
    |backend| {
        let app = TestApp::start(backend).await;
        let admin = bootstrap_id(&app).await;
        let (mgr_id, mgr) = create_operator(&app, "m", "manager", &[]).await;
        let (ws, _) = app.register("a", &["east"]).await;
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/v1/workspaces/{ws}"),
                Some(json!({ "name": "b" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.get("/v1/workspaces").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a read that succeeds is not recorded"
        );
        let invite = json!({ "kind": "members.invite", "dry_run": true, "targets": { "all": true },
                         "params": { "emails": ["ana@agency.example"], "role": "editor" } });
        let op = app.start_op(invite.clone()).await;
        app.wait_done(op).await;
        let (status, _) = app
            .call(Method::POST, &format!("/v1/operations/{op}/retry"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a dry run that succeeded has nothing to retry"
        );
        let (status, _) = app
            .call(Method::POST, &format!("/v1/operations/{op}/cancel"), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let key = app
            .sim
            .create_key(&app.sim.create_workspace("w"), "k", &["all:all"]);
        let (status, _) = app
            .call_as(
                &mgr,
                Method::POST,
                "/v1/workspaces",
                Some(json!({ "name": "w", "api_key": key.key })),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.call_as(&mgr, Method::GET, "/v1/audit", None, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let mut real = invite.clone();
        real["dry_run"] = json!(false);
        let (status, _) = app
            .call_as(&mgr, Method::POST, "/v1/operations", Some(real), &[])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let resp = app
            .http
            .get(format!("{}/v1/operations", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let (status, _) = app
            .call(Method::DELETE, &format!("/v1/operators/{mgr_id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app
            .call_as(&mgr, Method::GET, "/v1/workspaces", None, &[])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let mut events = audit(&app, "").await;
        events.reverse();
        let got: Vec<(String, Value, String, i64)> = events
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["operator_id"].clone(),
                    e["outcome"].as_str().unwrap().to_string(),
                    e["status"].as_i64().unwrap(),
                )
            })
            .collect();
        let (a, m, none) = (json!(admin), json!(mgr_id), Value::Null);
        let want: Vec<(String, Value, String, i64)> = [
            ("operators.create", &a, "ok", 201),
            ("workspaces.register", &a, "ok", 201),
            ("workspaces.update", &a, "ok", 200),
            ("operations.create:members.invite", &a, "ok", 202),
            ("operations.retry:members.invite", &a, "error", 422),
            ("operations.cancel:members.invite", &a, "error", 409),
            ("workspaces.register", &m, "denied", 403),
            ("audit.list", &m, "denied", 403),
            ("operations.create:members.invite", &m, "denied", 403),
            ("operations.list", &none, "denied", 401),
            ("operators.revoke", &a, "ok", 204),
            ("workspaces.list", &none, "denied", 401),
        ]
        .into_iter()
        .map(|(action, op, outcome, status)| {
            (action.to_string(), op.clone(), outcome.to_string(), status)
        })
        .collect();
        assert_eq!(got, want);
        assert_eq!(events[0]["detail"]["operator_id"], mgr_id.to_string());
        assert_eq!(events[1]["workspace_ids"], json!([ws]));
        assert_eq!(events[2]["workspace_ids"], json!([ws]));
        for e in &events[3..6] {
            assert_eq!(e["operation_id"], op.to_string(), "{e}");
        }
        assert_eq!(events[4]["detail"]["code"], "nothing_to_retry");
        assert_eq!(events[6]["detail"]["permission"], "flotilla:full");
        assert_eq!(events[6]["operator_name"], "m");
        assert_eq!(events[8]["detail"]["permission"], "members:full");
        assert_eq!(events[9]["detail"]["code"], "missing_token");
        assert_eq!(events[10]["detail"]["operator_id"], mgr_id.to_string());
        assert_eq!(events[11]["detail"]["code"], "invalid_token");
        assert!(
            !events.iter().any(|e| e.to_string().contains(&key.key)),
            "no secret in the trail"
        );
        app.stop().await;
    }
);

both!(audit_filters_and_pages_newest_first, |backend| {
    let app = TestApp::start(backend).await;
    let admin = bootstrap_id(&app).await;
    let (_, mgr) = create_operator(&app, "m1", "manager", &[]).await;
    create_operator(&app, "m2", "sdr", &[]).await;
    create_operator(&app, "m3", "viewer", &[]).await;
    app.register("a", &["east"]).await;
    app.start_op(
        json!({ "kind": "members.remove", "dry_run": true, "targets": { "all": true },
                         "params": { "emails": ["ana@agency.example"] } }),
    )
    .await;
    for _ in 0..2 {
        let (status, _) = app
            .call_as(
                &mgr,
                Method::DELETE,
                &format!("/v1/operators/{}", Uuid::now_v7()),
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let all = audit(&app, "").await;
    assert_eq!(all.len(), 7);
    let at = |e: &Value| e["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    assert!(
        all.windows(2).all(|w| at(&w[0]) >= at(&w[1])),
        "newest first"
    );

    // Pages of 2 add up to the whole trail, in order.
    let mut paged = Vec::new();
    let mut path = "/v1/audit?limit=2".to_string();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/audit?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);

    let by_mgr = audit(
        &app,
        &format!("&operator_id={}", all[0]["operator_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(by_mgr.len(), 2);
    assert!(
        by_mgr
            .iter()
            .all(|e| e["action"] == "operators.revoke" && e["outcome"] == "denied")
    );
    assert_eq!(audit(&app, &format!("&operator_id={admin}")).await.len(), 5);
    assert_eq!(audit(&app, "&action=operators.create").await.len(), 3);
    let ops = audit(&app, "&action=operations.create").await;
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["action"], "operations.create:members.remove");
    assert_eq!(
        audit(&app, "&action=operations.create:members.remove")
            .await
            .len(),
        1
    );
    assert_eq!(
        audit(&app, "&action=operations.creat").await.len(),
        0,
        "a prefix must end at ':'"
    );

    let pivot = at(&all[3]);
    let enc = |t: DateTime<Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    };
    let since = audit(&app, &format!("&since={}", enc(pivot))).await;
    assert_eq!(since.len(), all.iter().filter(|e| at(e) >= pivot).count());
    let until = audit(&app, &format!("&until={}", enc(pivot))).await;
    assert_eq!(until.len(), all.iter().filter(|e| at(e) < pivot).count());
    assert_eq!(since.len() + until.len(), all.len());

    for (query, code) in [
        ("since=yesterday", "invalid_time"),
        ("until=2026-13-01T00:00:00Z", "invalid_time"),
        ("action=DROP%20TABLE", "invalid_action"),
        ("cursor=nope", "invalid_cursor"),
        ("operator_id=7", "invalid_id"),
        ("limit=0", "invalid_limit"),
    ] {
        let (status, body) = app.get(&format!("/v1/audit?{query}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
    assert_eq!(
        audit(&app, "").await.len(),
        7,
        "reading the trail adds nothing to it"
    );
    app.stop().await;
});

both!(audit_rows_are_append_only, |backend| {
    let app = TestApp::start(backend).await;
    create_operator(&app, "m", "manager", &[]).await;
    let before = count(&app.db, "audit_event").await;
    assert_eq!(before, 1);
    assert!(
        sqlx::query("update audit_event set action = 'x'")
            .execute(app.db.pool())
            .await
            .is_err()
    );
    assert!(
        sqlx::query("delete from audit_event")
            .execute(app.db.pool())
            .await
            .is_err()
    );
    assert_eq!(count(&app.db, "audit_event").await, before);
    assert_eq!(audit(&app, "").await[0]["action"], "operators.create");
    app.stop().await;
});
