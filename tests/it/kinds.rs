//! The API-key, tag and campaign kinds end to end against the simulator: the simulator's state
//! after each, dry runs, re-runs that change nothing, and bad params.

use std::collections::BTreeMap;

use flotilla_instantly_sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both;
use crate::support::*;

/// Count of each change action over targets.
fn actions(targets: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in targets {
        for c in t["changes"].as_array().expect("changes") {
            *out.entry(c["action"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

fn map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The target of one workspace.
fn target_of(targets: &[Value], ws: Uuid) -> Value {
    targets
        .iter()
        .find(|t| t["workspace_id"] == ws.to_string())
        .cloned()
        .expect("target of workspace")
}

/// (item, action) of one target's changes, sorted.
fn changes(target: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = target["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["item"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Runs an operation to its end; returns (operation, targets).
async fn run(app: &TestApp, body: Value) -> (Value, Vec<Value>) {
    let id = app.start_op(body).await;
    let op = app.wait_done(id).await;
    (op, app.targets(id).await)
}

/// Writes (non-GET requests) the simulator received since the last clear.
fn writes(sim: &Simulator) -> Vec<String> {
    sim.request_log()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Simulates a process that died after its writes but before recording them: the operation's
/// targets become pending again and the engine runs them once more.
async fn rerun_same_operation(app: &TestApp, id: Uuid) {
    // The operation first: were its targets reset first, the engine could finish them before the
    // operation is reopened, and nothing would close it again.
    sqlx::query("update operation set status = 'running', finished_at = null where id = $1")
        .bind(id.to_string())
        .execute(app.db.pool())
        .await
        .expect("reset operation");
    sqlx::query(
        "update target set state = 'pending', attempts = 0, next_attempt_at = 0, lease_owner = null, \
         lease_expires_at = null, finished_at = null, code = null, changes = null where operation_id = $1",
    )
    .bind(id.to_string())
    .execute(app.db.pool())
    .await
    .expect("reset targets");
}

async fn issued_rows(app: &TestApp) -> Vec<(String, String)> {
    use sqlx::Row;
    let rows = sqlx::query(
        "select workspace_id, instantly_key_id from vault_credential where purpose = 'issued' order by workspace_id",
    )
    .fetch_all(app.db.pool())
    .await
    .expect("issued rows");
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String, _>(0).unwrap(),
                r.try_get::<Option<String>, _>(1)
                    .unwrap()
                    .unwrap_or_default(),
            )
        })
        .collect()
}

const SDR: [&str; 5] = [
    "campaigns:read",
    "campaigns:update",
    "leads:read",
    "leads:create",
    "accounts:read",
];

both!(
    api_keys_create_stores_the_secret_and_reruns_reconcile,
    |backend| {
        let app = TestApp::start(backend).await;
        let (ws_a, sim_a) = app.register("a", &["east"]).await;
        let (_ws_b, sim_b) = app.register("b", &["east"]).await;
        let body = json!({ "kind": "api_keys.create", "targets": { "labels": ["east"] },
        "params": { "name": "CRM sync", "preset": "sdr" } });

        // Dry run: reads only.
        let mut dry = body.clone();
        dry["dry_run"] = json!(true);
        app.sim.clear_request_log();
        let (op, targets) = run(&app, dry).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(actions(&targets), map(&[("would_create", 2)]));
        assert!(writes(&app.sim).is_empty());
        assert!(issued_rows(&app).await.is_empty());

        let id = app.start_op(body).await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        let targets = app.targets(id).await;
        assert_eq!(actions(&targets), map(&[("created", 2)]));
        let suffix = &id.simple().to_string()[20..];
        let name = format!("CRM sync [flotilla:{suffix}]");
        let mut key_ids = Vec::new();
        for ws in [&sim_a, &sim_b] {
            let state = app.sim.workspace(ws).unwrap();
            let created: Vec<_> = state.api_keys.iter().filter(|k| k.name == name).collect();
            assert_eq!(created.len(), 1, "{ws}: {:?}", state.api_keys);
            let mut scopes = created[0].scopes.clone();
            scopes.sort();
            let mut want: Vec<String> = SDR.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(scopes, want, "the sdr preset grants exactly its columns");
            key_ids.push(created[0].id.clone());
        }
        let mut stored: Vec<String> = issued_rows(&app)
            .await
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        stored.sort();
        key_ids.sort();
        assert_eq!(
            stored, key_ids,
            "each secret is in the vault, linked to its key id"
        );
        // No response carries a secret: the targets say only names and ids.
        let text = serde_json::to_string(&targets).unwrap();
        assert!(!text.contains("\"key\":"), "{text}");

        // The same operation re-run (a crash after the writes): the key is found in the vault.
        app.sim.clear_request_log();
        rerun_same_operation(&app, id).await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(
            actions(&app.targets(id).await),
            map(&[("already_exists", 2)])
        );
        assert!(writes(&app.sim).is_empty(), "{:?}", writes(&app.sim));

        // A crash between create and store: the secret never reached the vault. The re-run deletes
        // the orphan at Instantly and creates the key again.
        sqlx::query("delete from vault_credential where purpose = 'issued' and workspace_id = $1")
            .bind(ws_a.to_string())
            .execute(app.db.pool())
            .await
            .unwrap();
        app.sim.clear_request_log();
        rerun_same_operation(&app, id).await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        let targets = app.targets(id).await;
        assert_eq!(
            changes(&target_of(&targets, ws_a)),
            vec![(name.clone(), "recreated".to_string())]
        );
        assert_eq!(
            actions(&targets),
            map(&[("already_exists", 1), ("recreated", 1)])
        );
        let state = app.sim.workspace(&sim_a).unwrap();
        let named: Vec<_> = state.api_keys.iter().filter(|k| k.name == name).collect();
        assert_eq!(
            named.len(),
            1,
            "the orphan is gone, one key of that name remains"
        );
        assert!(!key_ids.contains(&named[0].id), "a new key");
        assert_eq!(
            writes(&app.sim).len(),
            2,
            "one delete and one create: {:?}",
            writes(&app.sim)
        );
        let issued = issued_rows(&app).await;
        assert_eq!(issued.len(), 2);
        assert!(
            issued
                .iter()
                .any(|(w, k)| *w == ws_a.to_string() && *k == named[0].id)
        );
        app.stop().await;
    }
);

both!(api_keys_revoke_never_revokes_flotillas_own_key, |backend| {
    let app = TestApp::start(backend).await;
    let (ws, sim_ws) = app.register("a", &[]).await;
    let own = app.sim.workspace(&sim_ws).unwrap().api_keys[0].id.clone();
    let old_admin = app.sim.create_key(&sim_ws, "old admin", &["all:all"]);
    let zapier = app.sim.create_key(&sim_ws, "zapier", &["campaigns:read"]);
    let legacy = app.sim.create_key(&sim_ws, "legacy-1", &["all:update"]);

    // Flotilla's key was registered by hand: its Instantly id is unknown, and Instantly's
    // refusal to let a key delete itself identifies it.
    let (_, before) = app.get(&format!("/v1/workspaces/{ws}")).await;
    assert!(
        before["credential"]["instantly_key_id"].is_null(),
        "{before}"
    );
    let revoke_all = json!({ "kind": "api_keys.revoke", "targets": { "all": true }, "params": { "scopes_any": ["all:all"] } });
    let (op, targets) = run(&app, revoke_all.clone()).await;
    assert_eq!(op["status"], "succeeded", "{op} {targets:?}");
    assert_eq!(changes(&targets[0]), {
        let mut v = vec![
            (old_admin.id.clone(), "revoked".to_string()),
            (own.clone(), "skipped_own_credential".to_string()),
        ];
        v.sort();
        v
    });
    let keys: Vec<String> = app
        .sim
        .workspace(&sim_ws)
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.id.clone())
        .collect();
    assert!(keys.contains(&own) && !keys.contains(&old_admin.id));
    let (_, after) = app.get(&format!("/v1/workspaces/{ws}")).await;
    assert_eq!(
        after["credential"]["instantly_key_id"], own,
        "the refusal taught Flotilla its key id"
    );

    // Re-run: Flotilla now knows its key and asks Instantly nothing but the list.
    app.sim.clear_request_log();
    let (op, targets) = run(&app, revoke_all).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(
        changes(&targets[0]),
        vec![(own.clone(), "skipped_own_credential".to_string())]
    );
    assert!(writes(&app.sim).is_empty());

    // Dry run by name prefix: nothing deleted.
    let (_, targets) = run(
        &app,
        json!({ "kind": "api_keys.revoke", "dry_run": true, "targets": { "all": true },
        "params": { "name_prefix": "legacy" } }),
    )
    .await;
    assert_eq!(
        changes(&targets[0]),
        vec![(legacy.id.clone(), "would_revoke".to_string())]
    );
    assert!(writes(&app.sim).is_empty());

    // Explicit ids: one present, one absent, and Flotilla's own.
    let missing = Uuid::now_v7().to_string();
    let (op, targets) = run(
        &app,
        json!({ "kind": "api_keys.revoke", "targets": { "all": true },
        "params": { "key_ids": [zapier.id, missing, own] } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(
        actions(&targets),
        map(&[
            ("not_found", 1),
            ("revoked", 1),
            ("skipped_own_credential", 1)
        ])
    );
    assert_eq!(
        writes(&app.sim).len(),
        1,
        "only zapier's delete: {:?}",
        writes(&app.sim)
    );

    // A key Flotilla created and stored: revoking it also removes its issued credential.
    let (op, _) = run(
        &app,
        json!({ "kind": "api_keys.create", "targets": { "all": true },
        "params": { "name": "CRM", "scopes": ["leads:read"] } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(issued_rows(&app).await.len(), 1);
    let (op, targets) = run(
        &app,
        json!({ "kind": "api_keys.revoke", "targets": { "all": true },
        "params": { "name_prefix": "CRM [flotilla:" } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(actions(&targets), map(&[("revoked", 1)]));
    assert!(
        issued_rows(&app).await.is_empty(),
        "the issued credential went with the key"
    );
    let names: Vec<String> = app
        .sim
        .workspace(&sim_ws)
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.name.clone())
        .collect();
    assert_eq!(names.len(), 2, "flotilla + legacy-1: {names:?}");
    app.stop().await;
});

both!(tags_create_reuses_exact_labels_only, |backend| {
    let app = TestApp::start(backend).await;
    let (ws_a, sim_a) = app.register("a", &[]).await;
    let (ws_b, sim_b) = app.register("b", &[]).await;
    app.sim.seed_tag(&sim_a, "Team-East");
    app.sim.seed_tag(&sim_a, "team-east");
    app.sim.seed_tag(&sim_b, "Team-Eastern");
    let body = json!({ "kind": "tags.create", "targets": { "all": true },
        "params": { "labels": ["Team-East", "Team-West"], "description": "sales teams" } });

    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let (_, targets) = run(&app, dry).await;
    assert_eq!(
        actions(&targets),
        map(&[("reused", 1), ("would_create", 3)])
    );
    assert!(writes(&app.sim).is_empty());

    let (op, targets) = run(&app, body.clone()).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(
        changes(&target_of(&targets, ws_a)),
        vec![
            ("Team-East".into(), "reused".into()),
            ("Team-West".into(), "created".into())
        ]
    );
    assert_eq!(
        changes(&target_of(&targets, ws_b)),
        vec![
            ("Team-East".into(), "created".into()),
            ("Team-West".into(), "created".into())
        ]
    );
    for (ws, n) in [(&sim_a, 3), (&sim_b, 3)] {
        let tags = app.sim.workspace(ws).unwrap().tags;
        assert_eq!(tags.len(), n, "{tags:?}");
        assert_eq!(tags.iter().filter(|t| t.label == "Team-East").count(), 1);
        assert_eq!(tags.iter().filter(|t| t.label == "Team-West").count(), 1);
        let west = tags.iter().find(|t| t.label == "Team-West").unwrap();
        assert_eq!(west.description.as_deref(), Some("sales teams"));
    }

    app.sim.clear_request_log();
    let (op, targets) = run(&app, body).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(actions(&targets), map(&[("reused", 4)]));
    assert!(writes(&app.sim).is_empty());
    app.stop().await;
});

/// Tag-mapping resource ids of `tag_id` in a simulated workspace, sorted.
fn mapped(sim: &Simulator, ws: &str, label: &str, resource_type: i64) -> Vec<String> {
    let state = sim.workspace(ws).unwrap();
    let Some(tag) = state.tags.iter().find(|t| t.label == label) else {
        return Vec::new();
    };
    let mut out: Vec<String> = state
        .tag_mappings
        .iter()
        .filter(|m| m.tag_id == tag.id && m.resource_type == resource_type)
        .map(|m| m.resource_id.clone())
        .collect();
    out.sort();
    out
}

fn toggles(sim: &Simulator) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.path == "/api/v2/custom-tags/toggle-resource")
        .count()
}

both!(
    tags_assign_and_unassign_campaigns_diff_against_mappings,
    |backend| {
        let app = TestApp::start(backend).await;
        let (ws_a, sim_a) = app.register("a", &["east"]).await;
        let (ws_b, sim_b) = app.register("b", &["east"]).await;
        let tag = app.sim.seed_tag(&sim_a, "Team-East");
        let c1 = app.sim.seed_campaign(&sim_a, "one", 1);
        let c2 = app.sim.seed_campaign(&sim_a, "two", 1);
        let c3 = app.sim.seed_campaign(&sim_a, "three", 2);
        app.sim.seed_tag_mapping(&sim_a, &tag, 2, &c1);
        let b1 = app.sim.seed_campaign(&sim_b, "b-one", 1);
        let stranger = Uuid::now_v7().to_string();

        // Workspace b has no such tag: without `create` its target fails with tag_not_found.
        let assign = json!({ "kind": "tags.assign", "targets": { "workspaces": [ws_a, ws_b] },
        "params": { "tag": "Team-East", "resource_type": "campaign", "resource_ids": [c1, c2.to_uppercase(), stranger] } });
        app.sim.clear_request_log();
        let (op, targets) = run(&app, assign).await;
        assert_eq!(op["status"], "partially_succeeded", "{op}");
        let a = target_of(&targets, ws_a);
        assert_eq!(a["state"], "succeeded");
        let mut want = vec![
            (c1.clone(), "already_assigned".to_string()),
            (c2.clone(), "assigned".to_string()),
            (stranger.clone(), "not_found".to_string()),
        ];
        want.sort();
        assert_eq!(changes(&a), want);
        let b = target_of(&targets, ws_b);
        assert_eq!(b["state"], "failed");
        assert_eq!(b["code"], "tag_not_found");
        assert_eq!(
            toggles(&app.sim),
            1,
            "one toggle for the batch of missing ids"
        );
        let mut both_ids = vec![c1.clone(), c2.clone()];
        both_ids.sort();
        assert_eq!(mapped(&app.sim, &sim_a, "Team-East", 2), both_ids);
        assert!(
            app.sim.workspace(&sim_b).unwrap().tags.is_empty(),
            "nothing written in b"
        );

        // Every campaign, creating the tag where missing; first a dry run.
        let all = json!({ "kind": "tags.assign", "targets": { "labels": ["east"] },
        "params": { "tag": "Team-East", "resource_type": "campaign", "all": true, "create": true } });
        let mut dry = all.clone();
        dry["dry_run"] = json!(true);
        app.sim.clear_request_log();
        let (_, targets) = run(&app, dry).await;
        let mut want = vec![
            ("Team-East".to_string(), "would_create".to_string()),
            (b1.clone(), "would_assign".to_string()),
        ];
        want.sort();
        assert_eq!(changes(&target_of(&targets, ws_b)), want);
        assert_eq!(
            actions(&targets),
            map(&[
                ("already_assigned", 2),
                ("would_assign", 2),
                ("would_create", 1)
            ])
        );
        assert!(writes(&app.sim).is_empty());

        let (op, targets) = run(&app, all.clone()).await;
        assert_eq!(op["status"], "succeeded", "{op} {targets:?}");
        assert_eq!(
            actions(&targets),
            map(&[("already_assigned", 2), ("assigned", 2), ("created", 1)])
        );
        assert_eq!(mapped(&app.sim, &sim_a, "Team-East", 2).len(), 3);
        assert_eq!(mapped(&app.sim, &sim_b, "Team-East", 2), vec![b1.clone()]);
        assert!(mapped(&app.sim, &sim_a, "Team-East", 2).contains(&c3));

        app.sim.clear_request_log();
        let (_, targets) = run(&app, all).await;
        assert_eq!(actions(&targets), map(&[("already_assigned", 4)]));
        assert!(writes(&app.sim).is_empty(), "a re-run only reads");

        // Unassign two of them, then the rest.
        let (op, targets) = run(
            &app,
            json!({ "kind": "tags.unassign", "targets": { "workspaces": [ws_a] },
        "params": { "tag": "Team-East", "resource_type": "campaign", "resource_ids": [c1, c2] } }),
        )
        .await;
        assert_eq!(op["status"], "succeeded");
        assert_eq!(actions(&targets), map(&[("unassigned", 2)]));
        assert_eq!(mapped(&app.sim, &sim_a, "Team-East", 2), vec![c3.clone()]);
        let unassign_all = json!({ "kind": "tags.unassign", "targets": { "workspaces": [ws_a] },
        "params": { "tag": "Team-East", "resource_type": "campaign", "all": true } });
        let (_, targets) = run(&app, unassign_all.clone()).await;
        assert_eq!(
            actions(&targets),
            map(&[("not_assigned", 2), ("unassigned", 1)])
        );
        assert!(mapped(&app.sim, &sim_a, "Team-East", 2).is_empty());
        app.sim.clear_request_log();
        let (_, targets) = run(&app, unassign_all).await;
        assert_eq!(actions(&targets), map(&[("not_assigned", 3)]));
        assert!(writes(&app.sim).is_empty());
        app.stop().await;
    }
);

both!(tags_assign_accounts_by_email_in_batches, |backend| {
    let app = TestApp::start(backend).await;
    let (_, sim_ws) = app.register("a", &[]).await;
    app.sim.seed_tag(&sim_ws, "Team-West");
    let mut emails = Vec::new();
    for i in 0..150 {
        let email = format!("sender{i:03}@client.example");
        app.sim.seed_account(&sim_ws, &email, 1);
        emails.push(email);
    }
    app.sim.clear_request_log();
    let (op, targets) = run(
        &app,
        json!({ "kind": "tags.assign", "targets": { "all": true },
        "params": { "tag": "Team-West", "resource_type": "account", "all": true } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(actions(&targets), map(&[("assigned", 150)]));
    assert_eq!(toggles(&app.sim), 2, "150 ids in batches of 100");
    let toggled: Vec<usize> = app
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path == "/api/v2/custom-tags/toggle-resource")
        .map(|r| {
            let body = r.body.as_ref().unwrap();
            assert_eq!(body["resource_type"], 1, "accounts are resource type 1");
            body["resource_ids"].as_array().unwrap().len()
        })
        .collect();
    assert_eq!(toggled.iter().sum::<usize>(), 150);
    assert_eq!(
        mapped(&app.sim, &sim_ws, "Team-West", 1),
        emails,
        "account resource ids are emails"
    );

    // By explicit (case-insensitive) email: already assigned, and an address not in the workspace.
    let (_, targets) = run(&app, json!({ "kind": "tags.unassign", "targets": { "all": true },
        "params": { "tag": "Team-West", "resource_type": "account", "resource_ids": ["SENDER000@client.example", "nobody@client.example"] } })).await;
    assert_eq!(
        changes(&targets[0]),
        vec![
            ("nobody@client.example".into(), "not_found".into()),
            ("sender000@client.example".into(), "unassigned".into())
        ]
    );
    assert_eq!(mapped(&app.sim, &sim_ws, "Team-West", 1).len(), 149);
    app.stop().await;
});

both!(campaigns_pause_by_tag_is_the_emergency_brake, |backend| {
    let app = TestApp::start(backend).await;
    let mut sims = Vec::new();
    let mut tagged = Vec::new();
    let mut untagged = Vec::new();
    for i in 0..3 {
        let (ws, sim_ws) = app.register(&format!("client-{i}"), &["all"]).await;
        // Client 2 has no Team-East.
        if i < 2 {
            let tag = app.sim.seed_tag(&sim_ws, "Team-East");
            for (name, status) in [("active", 1), ("paused", 2)] {
                let c = app
                    .sim
                    .seed_campaign(&sim_ws, &format!("east-{name}"), status);
                app.sim.seed_tag_mapping(&sim_ws, &tag, 2, &c);
                tagged.push((sim_ws.clone(), c));
            }
        }
        untagged.push((sim_ws.clone(), app.sim.seed_campaign(&sim_ws, "other", 1)));
        sims.push((ws, sim_ws));
    }
    let status = |sim_ws: &str, id: &str| {
        app.sim
            .workspace(sim_ws)
            .unwrap()
            .campaigns
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .status
    };
    let pause = json!({ "kind": "campaigns.pause", "targets": { "labels": ["all"] }, "params": { "tag": "Team-East" } });

    let mut dry = pause.clone();
    dry["dry_run"] = json!(true);
    let (_, targets) = run(&app, dry).await;
    assert_eq!(
        actions(&targets),
        map(&[
            ("already_paused", 2),
            ("tag_not_found", 1),
            ("would_pause", 2)
        ])
    );
    assert!(writes(&app.sim).is_empty());

    let (op, targets) = run(&app, pause.clone()).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(
        op["counts"]["succeeded"], 3,
        "a client without the team is not a failure"
    );
    assert_eq!(
        actions(&targets),
        map(&[("already_paused", 2), ("paused", 2), ("tag_not_found", 1)])
    );
    let without = target_of(&targets, sims[2].0);
    assert_eq!(without["code"], "no_changes");
    for (ws, c) in &tagged {
        assert_eq!(status(ws, c), 2, "every Team-East campaign is paused");
    }
    for (ws, c) in &untagged {
        assert_eq!(status(ws, c), 1, "other campaigns keep running");
    }
    let pauses = app
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/pause"))
        .count();
    assert_eq!(pauses, 2, "already paused campaigns are not asked again");

    app.sim.clear_request_log();
    let (_, targets) = run(&app, pause).await;
    assert_eq!(
        actions(&targets),
        map(&[("already_paused", 4), ("tag_not_found", 1)])
    );
    assert!(writes(&app.sim).is_empty());

    // Release: activate by id, with an id that is not there.
    let (ws0, sim0) = &sims[0];
    let ids: Vec<String> = tagged
        .iter()
        .filter(|(w, _)| w == sim0)
        .map(|(_, c)| c.clone())
        .collect();
    let missing = Uuid::now_v7().to_string();
    let (op, targets) = run(
        &app,
        json!({ "kind": "campaigns.activate", "targets": { "workspaces": [ws0] },
        "params": { "campaign_ids": [ids[0], ids[1], missing, untagged[0].1] } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(
        actions(&targets),
        map(&[("activated", 2), ("already_active", 1), ("not_found", 1)])
    );
    for c in &ids {
        assert_eq!(status(sim0, c), 1);
    }
    app.stop().await;
});

both!(bad_params_of_the_new_kinds_get_their_own_codes, |backend| {
    let app = TestApp::start_with(backend, SimConfig::default(), |c| c.max_items = 5).await;
    let (ws, _) = app.register("a", &[]).await;
    let op = |kind: &str, params: Value| json!({ "kind": kind, "targets": { "workspaces": [ws] }, "params": params });
    let uuid = Uuid::now_v7().to_string();
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            op(
                "api_keys.create",
                json!({ "name": "x", "scopes": ["leads:read", "leads:fly"] }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "params.scopes",
        ),
        (
            op("api_keys.create", json!({ "name": "x", "preset": "owner" })),
            StatusCode::BAD_REQUEST,
            "invalid_preset",
            "params.preset",
        ),
        (
            op("api_keys.create", json!({ "name": "x" })),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.scopes",
        ),
        (
            op("api_keys.create", json!({ "name": "", "preset": "sdr" })),
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "params.name",
        ),
        (
            op(
                "api_keys.create",
                json!({ "name": "x", "preset": "sdr", "colour": 1 }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "",
        ),
        (
            op(
                "api_keys.revoke",
                json!({ "key_ids": [uuid], "name_prefix": "x" }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.key_ids",
        ),
        (
            op("api_keys.revoke", json!({})),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.key_ids",
        ),
        (
            op("api_keys.revoke", json!({ "key_ids": ["../x"] })),
            StatusCode::BAD_REQUEST,
            "invalid_key_id",
            "params.key_ids",
        ),
        (
            op("api_keys.revoke", json!({ "scopes_any": ["everything"] })),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "params.scopes_any",
        ),
        (
            op("tags.create", json!({ "labels": [] })),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.labels",
        ),
        (
            op("tags.create", json!({ "labels": ["ok", " padded"] })),
            StatusCode::BAD_REQUEST,
            "invalid_label",
            "params.labels",
        ),
        (
            op(
                "tags.create",
                json!({ "labels": ["a", "b", "c", "d", "e", "f"] }),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_items",
            "params.labels",
        ),
        (
            op(
                "tags.assign",
                json!({ "tag": "T", "resource_type": "campaign", "resource_ids": [uuid, "not-a-uuid"] }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_resource_id",
            "params.resource_ids",
        ),
        (
            op(
                "tags.assign",
                json!({ "tag": "T", "resource_type": "account", "resource_ids": ["not an email"] }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_resource_id",
            "params.resource_ids",
        ),
        (
            op(
                "tags.assign",
                json!({ "tag": "T", "resource_type": "lead", "all": true }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_resource_type",
            "params.resource_type",
        ),
        (
            op(
                "tags.assign",
                json!({ "tag": "T", "resource_type": "campaign" }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.resource_ids",
        ),
        (
            op(
                "tags.unassign",
                json!({ "tag": "T", "resource_type": "campaign", "all": true, "create": true }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.create",
        ),
        (
            op(
                "campaigns.pause",
                json!({ "campaign_ids": [uuid], "tag": "T" }),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "params.campaign_ids",
        ),
        (
            op("campaigns.pause", json!({ "campaign_ids": ["c-1"] })),
            StatusCode::BAD_REQUEST,
            "invalid_campaign_id",
            "params.campaign_ids",
        ),
        (
            op("campaigns.activate", json!({ "tag": "" })),
            StatusCode::BAD_REQUEST,
            "invalid_label",
            "params.tag",
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, err) = app.post("/v1/operations", body.clone()).await;
        assert_eq!(got, status, "{body} → {err}");
        assert_eq!(err["error"]["code"], code, "{body} → {err}");
        if !field.is_empty() {
            assert_eq!(err["error"]["details"]["field"], field, "{body} → {err}");
        }
    }
    assert_eq!(
        app.operation_count().await,
        0,
        "no bad request wrote an operation"
    );
    assert!(
        app.sim
            .request_log()
            .iter()
            .all(|r| r.path == "/api/v2/workspaces/current"),
        "nothing reached Instantly"
    );
    app.stop().await;
});
