//! Bulk operations end to end: the simulator's state after each, re-runs, dry runs, failure
//! tolerance, cancel and retry, idempotency.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_instantly_sim::{Faults, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::support::*;

fn actions(targets: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in targets {
        for c in t["changes"].as_array().unwrap() {
            *out.entry(c["action"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

const EMAILS: [&str; 3] = [
    "ana@agency.example",
    "ben@agency.example",
    "cy@agency.example",
];

both!(
    invite_across_fifty_workspaces_then_rerun_changes_nothing,
    |backend| {
        let app = TestApp::start(backend).await;
        let mut workspaces = Vec::new();
        for i in 0..50 {
            workspaces.push(app.register(&format!("client-{i}"), &["east"]).await);
        }
        let body = json!({
            "kind": "members.invite",
            "targets": { "labels": ["east"] },
            "params": { "emails": EMAILS, "role": "editor" },
        });
        let id = app.start_op(body.clone()).await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 50);
        for (_, ws) in &workspaces {
            let members = sim_members(&app.sim, ws);
            for email in EMAILS {
                assert!(
                    members.contains(&(email.to_string(), "editor".to_string())),
                    "{ws}: {members:?}"
                );
            }
            assert_eq!(members.len(), 4, "owner + 3 invitees");
        }
        let targets = app.targets(id).await;
        assert_eq!(
            actions(&targets),
            BTreeMap::from([("invited".to_string(), 150)])
        );
        let posts = app
            .sim
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v2/workspace-members")
            .count();
        assert_eq!(posts, 150);
        // Zero 429s: pacing keeps a healthy run under Instantly's limits.
        for (_, ws) in &workspaces {
            assert_eq!(app.sim.counters(ws).rate_limited, 0);
        }

        app.sim.clear_request_log();
        let again = app.start_op(body).await;
        let op = app.wait_done(again).await;
        assert_eq!(op["status"], "succeeded");
        assert_eq!(
            actions(&app.targets(again).await),
            BTreeMap::from([("already_member".to_string(), 150)])
        );
        assert!(
            app.sim.request_log().iter().all(|r| r.method == "GET"),
            "a re-run only reads"
        );
        for (_, ws) in &workspaces {
            assert_eq!(sim_members(&app.sim, ws).len(), 4);
        }
        app.stop().await;
    }
);

both!(
    dry_run_reads_records_the_diff_and_writes_nothing,
    |backend| {
        let app = TestApp::start(backend).await;
        let (_, ws) = app.register("a", &["east"]).await;
        app.sim.seed_member(&ws, "ana@agency.example", "view", true);
        let id = app
            .start_op(json!({
                "kind": "members.invite", "dry_run": true,
                "targets": { "all": true }, "params": { "emails": EMAILS, "role": "admin" },
            }))
            .await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded");
        assert_eq!(op["dry_run"], true);
        let targets = app.targets(id).await;
        assert_eq!(targets[0]["code"], "dry_run");
        assert_eq!(
            actions(&targets),
            BTreeMap::from([
                ("already_member".to_string(), 1),
                ("would_invite".to_string(), 2)
            ])
        );
        assert!(
            app.sim
                .request_log()
                .iter()
                .filter(|r| r.path.contains("workspace-members"))
                .all(|r| r.method == "GET")
        );
        assert_eq!(
            sim_members(&app.sim, &ws).len(),
            2,
            "owner + the seeded member only"
        );
        app.stop().await;
    }
);

both!(set_role_and_remove_change_only_what_differs, |backend| {
    let app = TestApp::start(backend).await;
    let (_, ws) = app.register("a", &[]).await;
    app.sim.seed_member(&ws, "ana@agency.example", "view", true);
    app.sim
        .seed_member(&ws, "ben@agency.example", "admin", true);
    let id = app
        .start_op(json!({
            "kind": "members.set_role", "targets": { "all": true },
            "params": { "emails": EMAILS, "role": "admin" },
        }))
        .await;
    assert_eq!(app.wait_done(id).await["status"], "succeeded");
    let changes = actions(&app.targets(id).await);
    assert_eq!(
        changes,
        BTreeMap::from([
            ("already_role".into(), 1),
            ("not_member".into(), 1),
            ("role_changed".into(), 1)
        ])
    );
    let members = sim_members(&app.sim, &ws);
    assert!(members.contains(&("ana@agency.example".into(), "admin".into())));

    let id = app
        .start_op(json!({ "kind": "members.remove", "targets": { "all": true }, "params": { "emails": ["ana@agency.example", "zed@agency.example"] } }))
        .await;
    assert_eq!(app.wait_done(id).await["status"], "succeeded");
    assert_eq!(
        actions(&app.targets(id).await),
        BTreeMap::from([("not_member".into(), 1), ("removed".into(), 1)])
    );
    let members = sim_members(&app.sim, &ws);
    assert!(!members.iter().any(|(e, _)| e == "ana@agency.example"));
    assert!(members.iter().any(|(e, _)| e == "ben@agency.example"));
    app.stop().await;
});

both!(
    failure_tolerance_stops_the_run_and_retry_finishes_it,
    |backend| {
        let app = TestApp::start(backend).await;
        // The first three workspaces' keys may read the workspace but not its members: 403.
        let mut narrow = Vec::new();
        for i in 0..3 {
            narrow.push(
                app.register_with_scopes(&format!("narrow-{i}"), &["t"], &["workspaces:read"])
                    .await,
            );
        }
        for i in 0..7 {
            app.register(&format!("ok-{i}"), &["t"]).await;
        }
        let id = app
        .start_op(json!({
            "kind": "members.invite", "targets": { "labels": ["t"] }, "max_concurrency": 1,
            "failure_tolerance": 2, "params": { "emails": ["ana@agency.example"], "role": "view" },
        }))
        .await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "failed", "{op}");
        assert_eq!(op["stop_reason"], "failure_tolerance");
        assert_eq!(op["counts"]["failed"], 3);
        assert_eq!(op["counts"]["cancelled"], 7);
        let failed: Vec<Value> = app
            .targets(id)
            .await
            .into_iter()
            .filter(|t| t["state"] == "failed")
            .collect();
        for t in &failed {
            assert_eq!(t["code"], "instantly_forbidden");
            assert!(
                t["message"]
                    .as_str()
                    .unwrap()
                    .contains("workspace_members:read"),
                "{t}"
            );
            assert_eq!(t["attempts"], 1, "permanent errors are not retried");
        }

        // Give the narrow workspaces a proper key, then retry the failed and cancelled targets.
        for (fid, ws) in &narrow {
            let key = app.sim.create_key(ws, "better", &["all:all"]);
            let (status, body) = app
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/workspaces/{fid}/credential"),
                    Some(json!({ "api_key": key.key })),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, retry) = app
            .post(&format!("/v1/operations/{id}/retry"), json!({}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{retry}");
        assert_eq!(retry["retry_of"], id.to_string());
        assert_eq!(retry["progress"]["total"], 10);
        let retry_id = retry["id"].as_str().unwrap().parse().unwrap();
        let op = app.wait_done(retry_id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 10);
        app.stop().await;
    }
);

both!(cancel_stops_pending_targets, |backend| {
    let sim = SimConfig {
        latency: Duration::from_millis(150),
        ..SimConfig::default()
    };
    let app = TestApp::start_with(backend, sim, |c| c.max_in_flight = 1).await;
    for i in 0..8 {
        app.register(&format!("ws-{i}"), &[]).await;
    }
    let id = app
        .start_op(json!({ "kind": "members.invite", "targets": { "all": true }, "params": { "emails": ["ana@agency.example"], "role": "view" } }))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, op) = app
        .post(&format!("/v1/operations/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{op}");
    let op = app.wait_done(id).await;
    assert_eq!(op["status"], "cancelled");
    let cancelled = op["counts"]["cancelled"].as_i64().unwrap();
    assert!(cancelled >= 4, "{op}");
    let succeeded = op["counts"]["succeeded"].as_i64().unwrap();
    assert_eq!(succeeded + cancelled, 8);
    // Nothing ran on a cancelled target's workspace.
    let invited = app
        .sim
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/workspace-members")
        .count();
    assert_eq!(invited as i64, succeeded);
    let (status, err) = app
        .post(&format!("/v1/operations/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "operation_finished");
    app.stop().await;
});

both!(
    transient_errors_are_retried_within_the_attempt_budget,
    |backend| {
        let app = TestApp::start(backend).await;
        for i in 0..10 {
            app.register(&format!("ws-{i}"), &["x"]).await;
        }
        app.sim.set_faults(Faults {
            fail_rate: 0.3,
            ..Faults::default()
        });
        let id = app
        .start_op(json!({ "kind": "members.invite", "targets": { "all": true }, "params": { "emails": EMAILS, "role": "view" } }))
        .await;
        let op = app.wait_done(id).await;
        app.sim.set_faults(Faults::default());
        assert_eq!(op["status"], "succeeded", "{op}");
        for ws in app.sim.workspace_ids() {
            let members = sim_members(&app.sim, &ws);
            for email in EMAILS {
                assert_eq!(
                    members.iter().filter(|(e, _)| e == email).count(),
                    1,
                    "{ws}"
                );
            }
        }
        app.stop().await;
    }
);

both!(idempotency_key_returns_the_first_operation, |backend| {
    let app = TestApp::start(backend).await;
    app.register("a", &[]).await;
    let body = json!({ "kind": "members.invite", "targets": { "all": true }, "params": { "emails": ["ana@agency.example"], "role": "view" } });
    let (s1, first) = app
        .call_as(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/operations",
            Some(body.clone()),
            &[("Idempotency-Key", "abc-1")],
        )
        .await;
    assert_eq!(s1, StatusCode::ACCEPTED);
    let (s2, second) = app
        .call_as(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/operations",
            Some(body.clone()),
            &[("Idempotency-Key", "abc-1")],
        )
        .await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(first["id"], second["id"]);
    let mut other = body.clone();
    other["params"]["role"] = json!("admin");
    let (s3, err) = app
        .call_as(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/operations",
            Some(other),
            &[("Idempotency-Key", "abc-1")],
        )
        .await;
    assert_eq!(s3, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.operation_count().await, 1);
    app.stop().await;
});

both!(events_stream_progress_until_done, |backend| {
    let app = TestApp::start(backend).await;
    for i in 0..3 {
        app.register(&format!("ws-{i}"), &[]).await;
    }
    let id = app
        .start_op(json!({ "kind": "members.invite", "targets": { "all": true }, "params": { "emails": ["ana@agency.example"], "role": "view" } }))
        .await;
    let resp = app
        .http
        .get(format!("{}/v1/operations/{id}/events", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(60), resp.text())
        .await
        .expect("stream ends")
        .unwrap();
    assert!(text.contains("event: progress"), "{text}");
    let done = text.split("event: done").nth(1).expect("a done event");
    assert!(done.contains("\"succeeded\":3"), "{done}");
    app.stop().await;
});

both!(
    a_throttled_operation_does_not_hold_up_the_others,
    |backend| {
        let app = TestApp::start(backend).await;
        // More targets than one claim reads (4 × max_in_flight = 128), at one at a time.
        for i in 0..200 {
            app.register(&format!("slow-{i}"), &["slow"]).await;
        }
        let mut fast = Vec::new();
        for i in 0..5 {
            fast.push(app.register(&format!("fast-{i}"), &["fast"]).await);
        }
        app.sim.set_faults(Faults {
            latency: Duration::from_millis(50),
            ..Faults::default()
        });
        let slow = app
            .start_op(json!({
                "kind": "members.invite", "targets": { "labels": ["slow"] }, "max_concurrency": 1,
                "params": { "emails": ["ana@agency.example"], "role": "view" },
            }))
            .await;
        let quick = app
            .start_op(json!({
                "kind": "members.invite", "targets": { "labels": ["fast"] },
                "params": { "emails": ["ana@agency.example"], "role": "view" },
            }))
            .await;
        let op = app.wait_done(quick).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        for (_, ws) in &fast {
            assert!(
                sim_members(&app.sim, ws)
                    .iter()
                    .any(|(e, _)| e == "ana@agency.example")
            );
        }
        // Each slow target takes at least two 50 ms round trips, one at a time: had the second
        // operation waited for the first one's candidates to drain below a claim batch, at least
        // 72 slow targets would have finished by now.
        let (_, progress) = app.get(&format!("/v1/operations/{slow}")).await;
        assert_eq!(progress["status"], "running", "{progress}");
        let done = progress["counts"]["succeeded"].as_i64().unwrap_or(0);
        assert!(
            done < 40,
            "the fast operation waited for {done} slow targets"
        );
        let (status, _) = app
            .post(&format!("/v1/operations/{slow}/cancel"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        app.wait_done(slow).await;
        app.stop().await;
    }
);

both!(
    an_operation_left_open_after_its_last_target_is_finalized,
    |backend| {
        let app = TestApp::start(backend).await;
        for i in 0..3 {
            app.register(&format!("ws-{i}"), &["open"]).await;
        }
        let id = app
            .start_op(json!({
                "kind": "members.invite", "targets": { "labels": ["open"] },
                "params": { "emails": ["ana@agency.example"], "role": "view" },
            }))
            .await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded");
        // As if the finalization after the last finish had been lost to a database error.
        sqlx::query("update operation set status = 'running', finished_at = null where id = $1")
            .bind(id.to_string())
            .execute(app.db.pool())
            .await
            .unwrap();
        let (_, open) = app.get(&format!("/v1/operations/{id}")).await;
        assert_eq!(open["status"], "running");
        // The engine's housekeeping (every 5 s) writes it again.
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 3);
        app.stop().await;
    }
);
