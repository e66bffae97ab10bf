//! Bulk onboarding (import), workspace groups (discover, delegated operations and pacing,
//! cascade removal), key rotation (including a SIGKILL mid-rotation) and the vault CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use flotilla_instantly_sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both;
use crate::crash::{ProcessFixture, api};
use crate::support::*;

/// Posts a raw body with a content type; returns (status, JSON body, raw text).
async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, Value, String) {
    let resp = app
        .http
        .post(format!("{}{path}", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// Fails if any secret appears in `text`.
fn assert_no_secret(text: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} contains an uploaded key"
        );
    }
}

/// One row of an import fixture.
struct Row {
    name: String,
    key: String,
    labels: Vec<String>,
    /// Expected failure code; `None` = registers.
    fails: Option<&'static str>,
    /// Instantly workspace it registers (good rows).
    sim_ws: Option<String>,
    /// Drop the labels/api_key field (malformed row).
    malformed: bool,
}

/// 200 rows, 7 of them bad in 7 different ways; also pre-registers what the bad rows collide with.
async fn fixture(app: &TestApp) -> Vec<Row> {
    // Already registered: its key (duplicate key) and a second key of the same workspace
    // (duplicate workspace).
    let taken = app.sim.create_workspace("taken");
    let taken_key = app.sim.create_key(&taken, "flotilla", &["all:all"]);
    let second_key = app.sim.create_key(&taken, "another", &["all:all"]);
    let (status, body) = app
        .post(
            "/v1/workspaces",
            json!({ "name": "taken", "api_key": taken_key.key, "labels": [] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut rows = Vec::new();
    for i in 0..193 {
        let ws = app.sim.create_workspace(&format!("client {i}"));
        let key = app.sim.create_key(&ws, "flotilla", &["all:all"]);
        rows.push(Row {
            // Commas force CSV quoting.
            name: format!("Client {i}, Inc."),
            key: key.key,
            labels: vec!["imported".into(), format!("batch-{}", i % 3)],
            fails: None,
            sim_ws: Some(ws),
            malformed: false,
        });
    }
    let bad = |name: &str, key: String, labels: Vec<String>, code: &'static str| Row {
        name: name.into(),
        key,
        labels,
        fails: Some(code),
        sim_ws: None,
        malformed: false,
    };
    let fresh_key = |name: &str| {
        let ws = app.sim.create_workspace(name);
        app.sim.create_key(&ws, "flotilla", &["all:all"]).key
    };
    let dup_of_row_10 = rows[10].key.clone();
    let inserts = vec![
        (5, bad("", fresh_key("no name"), vec![], "invalid_name")),
        (
            40,
            bad(
                "Bad label",
                fresh_key("bad label"),
                vec!["not a label!".into()],
                "invalid_label",
            ),
        ),
        (
            60,
            bad(
                "Copy of 10",
                dup_of_row_10,
                vec![],
                "duplicate_api_key_in_file",
            ),
        ),
        (
            90,
            bad(
                "Revoked",
                "sim.this-key-does-not-exist-0000".into(),
                vec![],
                "invalid_api_key",
            ),
        ),
        (
            120,
            bad(
                "Taken key",
                taken_key.key.clone(),
                vec![],
                "duplicate_api_key",
            ),
        ),
        (
            150,
            bad(
                "Taken workspace",
                second_key.key.clone(),
                vec![],
                "workspace_already_registered",
            ),
        ),
        (
            180,
            Row {
                malformed: true,
                ..bad("Short row", fresh_key("short row"), vec![], "malformed_row")
            },
        ),
    ];
    for (at, row) in inserts {
        rows.insert(at, row);
    }
    assert_eq!(rows.len(), 200);
    rows
}

fn csv_body(rows: &[Row]) -> String {
    let mut out = String::from("name,api_key,labels\n");
    for r in rows {
        let labels = r.labels.join(";");
        if r.malformed {
            // Missing the api_key column.
            out += &format!("\"{}\",\"{}\"\n", r.name, labels);
        } else {
            out += &format!(
                "\"{}\",\"{}\",\"{}\"\n",
                r.name.replace('"', "\"\""),
                r.key,
                labels
            );
        }
    }
    out
}

fn json_body(rows: &[Row]) -> String {
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            if r.malformed {
                // Not an object at all.
                json!(r.name)
            } else {
                json!({ "name": r.name, "api_key": r.key, "labels": r.labels })
            }
        })
        .collect();
    Value::Array(items).to_string()
}

async fn import_case(backend: flotilla_vault::Backend, format: &str) {
    let app = TestApp::start(backend).await;
    let rows = fixture(&app).await;
    let secrets: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    let (content_type, body, label) = match format {
        "csv" => ("text/csv", csv_body(&rows), "line"),
        _ => ("application/json", json_body(&rows), "row"),
    };
    let (status, op, text) = post_raw(&app, "/v1/workspaces/import", content_type, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    assert_no_secret(&text, &secrets, "the import answer");
    assert_eq!(op["kind"], "workspaces.import");
    let id: Uuid = op["id"].as_str().unwrap().parse().unwrap();
    let done = app.wait_done(id).await;
    assert_eq!(done["status"], "partially_succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 193, "{done}");
    assert_eq!(done["counts"]["failed"], 7, "{done}");
    assert_no_secret(&done.to_string(), &secrets, "the operation");

    // Every target names its line; failures carry their code.
    let targets = app.targets(id).await;
    assert_eq!(targets.len(), 200);
    assert_no_secret(
        &Value::Array(targets.clone()).to_string(),
        &secrets,
        "the targets",
    );
    let line_of = |i: usize| {
        if format == "csv" {
            i as i64 + 2
        } else {
            i as i64 + 1
        }
    };
    let mut failed: BTreeMap<i64, String> = BTreeMap::new();
    for t in &targets {
        let change = &t["changes"][0];
        let item = change["item"].as_str().unwrap_or_default().to_string();
        let line: i64 = item
            .strip_prefix(&format!("{label} "))
            .expect("item names the line")
            .parse()
            .unwrap();
        assert!(
            t["message"].as_str().unwrap_or_default().starts_with(&item)
                || t["state"] == "succeeded",
            "{t}"
        );
        if t["state"] == "failed" {
            failed.insert(line, t["code"].as_str().unwrap().to_string());
        } else {
            assert_eq!(t["state"], "succeeded", "{t}");
            assert_eq!(change["action"], "registered");
        }
    }
    let expected: BTreeMap<i64, String> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.fails.map(|c| (line_of(i), c.to_string())))
        .collect();
    assert_eq!(failed, expected);

    // The good rows are registered, bound to their Instantly workspace, with their labels.
    let mut registered: BTreeMap<String, Value> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/workspaces?limit=100&cursor={c}"),
            None => "/v1/workspaces?limit=100".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_no_secret(&page.to_string(), &secrets, "the workspace list");
        for ws in page["items"].as_array().unwrap() {
            registered.insert(
                ws["instantly_workspace_id"].as_str().unwrap().to_string(),
                ws.clone(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        registered.len(),
        194,
        "193 imported + the pre-registered one"
    );
    for r in rows.iter().filter(|r| r.fails.is_none()) {
        let ws = &registered[r.sim_ws.as_ref().unwrap()];
        assert_eq!(ws["name"], r.name.as_str());
        let mut labels = r.labels.clone();
        labels.sort();
        assert_eq!(ws["labels"], json!(labels));
        assert_eq!(ws["mode"], "direct");
    }

    // No staged key outlives its row; no key anywhere in the service's tables.
    assert_eq!(count(&app.db, "vault_staged_secret").await, 0);
    assert_eq!(count(&app.db, "import_row").await, 200);
    use sqlx::Row as _;
    let dumps = [
        "select params || targets as t from operation",
        "select coalesce(code, '') || coalesce(message, '') || coalesce(changes, '') || coalesce(checkpoint, '') as t from target",
        "select name || labels || coalesce(fingerprint, '') as t from import_row",
    ];
    for sql in dumps {
        for row in sqlx::query(sql).fetch_all(app.db.pool()).await.unwrap() {
            assert_no_secret(&row.try_get::<String, _>("t").unwrap(), &secrets, sql);
        }
    }

    // The imported keys work: an operation over the imported workspaces succeeds.
    let invite = app
        .start_op(
            json!({ "kind": "members.invite", "targets": { "labels": ["batch-0"] },
            "params": { "emails": ["ops@agency.example"], "role": "view" } }),
        )
        .await;
    let done = app.wait_done(invite).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["counts"]["succeeded"], 65);
    app.stop().await;
}

both!(
    import_csv_of_200_rows_registers_193_and_fails_7_by_line,
    |backend| {
        import_case(backend, "csv").await;
    }
);

both!(
    import_json_of_200_rows_registers_193_and_fails_7_by_row,
    |backend| {
        import_case(backend, "json").await;
    }
);

both!(bad_imports_are_refused_whole_and_write_nothing, |backend| {
    let app = TestApp::start(backend).await;
    let ws = app.sim.create_workspace("x");
    let key = app.sim.create_key(&ws, "flotilla", &["all:all"]).key;
    // No header: the first line is a data row and must not be echoed.
    let (status, body, text) = post_raw(
        &app,
        "/v1/workspaces/import",
        "text/csv",
        format!("Acme,{key},east\n"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "missing_header");
    assert!(!text.contains(&key));
    let (status, body, _) = post_raw(
        &app,
        "/v1/workspaces/import",
        "text/csv",
        "name,api_key,labels\n".into(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_rows"))
    );
    let (status, body, _) = post_raw(&app, "/v1/workspaces/import", "text/plain", "x".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body, _) = post_raw(
        &app,
        "/v1/workspaces/import",
        "application/json",
        json!({ "name": "a" }).to_string(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let (status, body, _) = post_raw(
        &app,
        "/v1/workspaces/import",
        "application/json",
        "[{".into(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    // The kind is not for POST /v1/operations.
    let (status, body) = app
        .post(
            "/v1/operations",
            json!({ "kind": "workspaces.import", "targets": { "all": true }, "params": {} }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("kind_not_submittable")
        )
    );
    assert_eq!(app.operation_count().await, 0);
    assert_eq!(count(&app.db, "workspace").await, 0);
    assert_eq!(count(&app.db, "vault_staged_secret").await, 0);
    app.stop().await;
});

/// An agency admin workspace with sub workspaces in every state. Returns
/// (admin Flotilla id, admin Instantly id, accepted unregistered subs, pending, rejected,
/// accepted-and-already-registered (Instantly id, Flotilla id)).
async fn agency(
    app: &TestApp,
    accepted: usize,
) -> (Uuid, String, Vec<String>, String, String, (String, Uuid)) {
    let (admin_id, admin_iid) = app.register("agency", &["agency"]).await;
    let mut subs = Vec::new();
    for i in 0..accepted {
        let sub = app.sim.create_workspace(&format!("sub {i}"));
        app.sim.seed_group_member(&admin_iid, &sub, "accepted");
        subs.push(sub);
    }
    let pending = app.sim.create_workspace("pending sub");
    app.sim.seed_group_member(&admin_iid, &pending, "pending");
    let rejected = app.sim.create_workspace("rejected sub");
    app.sim.seed_group_member(&admin_iid, &rejected, "rejected");
    let (direct_id, direct_iid) = app.register("direct sub", &[]).await;
    app.sim
        .seed_group_member(&admin_iid, &direct_iid, "accepted");
    (
        admin_id,
        admin_iid,
        subs,
        pending,
        rejected,
        (direct_iid, direct_id),
    )
}

both!(
    discover_registers_accepted_subs_and_operations_reach_them_through_the_admin,
    |backend| {
        let app = TestApp::start(backend).await;
        let (admin_id, admin_iid, subs, pending, rejected, (direct_iid, direct_id)) =
            agency(&app, 3).await;

        let (status, body) = app
            .post(
                "/v1/workspaces/discover",
                json!({ "admin_workspace_id": admin_id, "labels": ["group"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let registered: BTreeSet<String> = body["registered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                assert_eq!(w["mode"], "delegated");
                assert_eq!(w["admin_workspace_id"], json!(admin_id));
                assert_eq!(w["labels"], json!(["group"]));
                assert!(w["name"].as_str().unwrap().starts_with("sub "), "{w}");
                w["instantly_workspace_id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(registered, subs.iter().cloned().collect());
        let skipped: BTreeMap<String, (String, String)> = body["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["sub_workspace_id"].as_str().unwrap().to_string(),
                    (
                        s["status"].as_str().unwrap().to_string(),
                        s["reason"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect();
        let expected: BTreeMap<String, (String, String)> = [
            (
                pending.clone(),
                ("pending".to_string(), "not_accepted".to_string()),
            ),
            (
                rejected.clone(),
                ("rejected".to_string(), "not_accepted".to_string()),
            ),
            (
                direct_iid.clone(),
                ("accepted".to_string(), "already_registered".to_string()),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(skipped, expected);
        let already = body["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["reason"] == "already_registered")
            .unwrap();
        assert_eq!(already["workspace_id"], json!(direct_id));

        // Discovering again registers nothing new.
        let (status, again) = app
            .post(
                "/v1/workspaces/discover",
                json!({ "admin_workspace_id": admin_id }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["registered"], json!([]));
        assert_eq!(again["skipped"].as_array().unwrap().len(), 6);

        // Unknown admin, delegated admin.
        let (status, body) = app
            .post(
                "/v1/workspaces/discover",
                json!({ "admin_workspace_id": Uuid::now_v7() }),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        let (_, list) = app.get("/v1/workspaces?mode=delegated").await;
        let a_sub: Uuid = list["items"][0]["id"].as_str().unwrap().parse().unwrap();
        let (status, body) = app
            .post(
                "/v1/workspaces/discover",
                json!({ "admin_workspace_id": a_sub }),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("admin_not_direct"))
        );

        // An invite over the group reaches each sub through x-as-workspace with the admin's key.
        app.sim.clear_request_log();
        let op = app
            .start_op(
                json!({ "kind": "members.invite", "targets": { "labels": ["group"] },
            "params": { "emails": ["sdr@agency.example"], "role": "editor" } }),
            )
            .await;
        let done = app.wait_done(op).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["counts"]["succeeded"], 3);
        for sub in &subs {
            assert!(
                sim_members(&app.sim, sub)
                    .contains(&("sdr@agency.example".into(), "editor".into())),
                "{sub}"
            );
        }
        assert!(
            !sim_members(&app.sim, &admin_iid)
                .iter()
                .any(|(e, _)| e == "sdr@agency.example")
        );
        let invites: Vec<_> = app
            .sim
            .request_log()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v2/workspace-members")
            .collect();
        assert_eq!(invites.len(), 3);
        let reached: BTreeSet<String> = invites
            .iter()
            .map(|r| {
                assert_eq!(
                    r.as_workspace, r.workspace_id,
                    "acted on the workspace named by x-as-workspace"
                );
                assert_eq!(
                    r.key_workspace_id.as_deref(),
                    Some(admin_iid.as_str()),
                    "with the admin's key"
                );
                assert_eq!(r.status, 200);
                r.workspace_id.clone().unwrap()
            })
            .collect();
        assert_eq!(reached, subs.iter().cloned().collect());

        // Rotation does not apply to delegated workspaces: they hold no key.
        let rot = app
        .start_op(json!({ "kind": "credentials.rotate", "targets": { "labels": ["group"] }, "params": {} }))
        .await;
        let done = app.wait_done(rot).await;
        assert_eq!(done["counts"]["skipped"], 3, "{done}");
        for t in app.targets(rot).await {
            assert_eq!(t["code"], "delegated_workspace");
        }

        // The admin cannot be removed while subs depend on it, unless asked to remove them too.
        let (status, body) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/workspaces/{admin_id}"),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("has_delegated_workspaces"))
        );
        assert_eq!(
            body["error"]["details"]["delegated_workspaces"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let (status, _) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/workspaces/{admin_id}?cascade=true"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, left) = app.get("/v1/workspaces").await;
        let left: Vec<&str> = left["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["instantly_workspace_id"].as_str().unwrap())
            .collect();
        assert_eq!(left, vec![direct_iid.as_str()]);
        app.stop().await;
    }
);

both!(
    delegated_calls_are_paced_on_the_admin_credential_too,
    |backend| {
        // The simulator charges delegated calls to the admin's bucket (one reading of
        // instantly-api.md §4 [UNK]); Flotilla's per-sub pacing alone would overrun it.
        let sim = SimConfig {
            delegated_bucket: flotilla_instantly_sim::DelegatedBucket::Admin,
            rps: 20,
            rpm: 0,
            ..SimConfig::default()
        };
        let app = TestApp::start_with(backend, sim, |c| {
            c.pace_per_second = 10;
            c.pace_burst = 2;
            c.pace_admin_credential = true;
        })
        .await;
        let (admin_id, admin_iid, subs, ..) = agency(&app, 12).await;
        let (status, body) = app
            .post(
                "/v1/workspaces/discover",
                json!({ "admin_workspace_id": admin_id, "labels": ["paced"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["registered"].as_array().unwrap().len(), 12);
        let op = app
            .start_op(
                json!({ "kind": "members.invite", "targets": { "labels": ["paced"] },
            "params": { "emails": ["a@agency.example", "b@agency.example"], "role": "view" } }),
            )
            .await;
        let done = app.wait_done(op).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let limited: u64 = subs
            .iter()
            .chain(std::iter::once(&admin_iid))
            .map(|w| app.sim.counters(w).rate_limited)
            .sum();
        assert_eq!(limited, 0, "no 429 when pacing on the admin credential");
        let delegated = app
            .sim
            .request_log()
            .iter()
            .filter(|r| r.as_workspace.is_some())
            .count();
        assert!(delegated >= 12 * 3, "{delegated} delegated calls");
        app.stop().await;
    }
);

/// Registers `n` workspaces labelled `label`; returns (Flotilla id, Instantly id, old key id).
async fn register_many(app: &TestApp, n: usize, label: &str) -> Vec<(Uuid, String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (id, ws) = app.register(&format!("{label} {i}"), &[label]).await;
        let keys = app.sim.workspace(&ws).unwrap().api_keys;
        assert_eq!(keys.len(), 1);
        out.push((id, ws, keys[0].id.clone()));
    }
    out
}

/// The stored key's Instantly id, from the API.
async fn stored_key_id(app_url: &str, http: &reqwest::Client, id: Uuid) -> Option<String> {
    let (_, ws) = api(
        http,
        app_url,
        reqwest::Method::GET,
        &format!("/v1/workspaces/{id}"),
        None,
    )
    .await;
    ws["credential"]["instantly_key_id"]
        .as_str()
        .map(str::to_string)
}

/// Each workspace holds exactly one key at the simulator, named for `op`, and it is the stored one.
async fn assert_rotated(
    sim: &Simulator,
    url: &str,
    http: &reqwest::Client,
    spaces: &[(Uuid, String, String)],
    op: Uuid,
) {
    let simple = op.simple().to_string();
    let name = format!("flotilla [rotate:{}]", &simple[simple.len() - 12..]);
    for (id, ws, old) in spaces {
        let keys = sim.workspace(ws).unwrap().api_keys;
        assert_eq!(keys.len(), 1, "{ws}: exactly one key, no orphan: {keys:?}");
        assert_ne!(&keys[0].id, old, "{ws}: the old key is revoked");
        assert_eq!(keys[0].name, name);
        assert_eq!(
            stored_key_id(url, http, *id).await.as_deref(),
            Some(keys[0].id.as_str()),
            "{ws}: stored"
        );
    }
}

both!(
    rotation_over_fifty_workspaces_leaves_one_working_key_each,
    |backend| {
        let app = TestApp::start(backend).await;
        let spaces = register_many(&app, 50, "rot").await;
        // Keys registered by hand have no known Instantly id, so their scopes are unknown: without
        // params the targets refuse to guess.
        let op = app.start_op(json!({ "kind": "credentials.rotate", "targets": { "labels": ["rot"] }, "params": {} })).await;
        let done = app.wait_done(op).await;
        assert_eq!(done["counts"]["failed"], 50, "{done}");
        assert!(
            app.targets(op)
                .await
                .iter()
                .all(|t| t["code"] == "scopes_unknown")
        );

        let op = app
        .start_op(json!({ "kind": "credentials.rotate", "targets": { "labels": ["rot"] }, "params": { "scopes": ["all:all"] } }))
        .await;
        let done = app.wait_done(op).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["counts"]["succeeded"], 50);
        assert_rotated(&app.sim, &app.url, &app.http, &spaces, op).await;
        for t in app.targets(op).await {
            let actions: Vec<&str> = t["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["action"].as_str().unwrap())
                .collect();
            // A transient failure may have left an orphan that the retry revoked before creating again.
            let (retried, last) = actions.split_at(actions.len() - 4);
            assert_eq!(
                last,
                ["created_key", "stored", "verified", "revoked_old"],
                "{t}"
            );
            assert!(
                retried
                    .iter()
                    .all(|a| ["created_key", "revoked_orphan"].contains(a)),
                "{t}"
            );
        }

        // Rotating again copies the scopes of the (now known) stored key.
        let spaces: Vec<_> = spaces
            .into_iter()
            .map(|(id, ws, _)| {
                let old = app.sim.workspace(&ws).unwrap().api_keys[0].id.clone();
                (id, ws, old)
            })
            .collect();
        let again = app.start_op(json!({ "kind": "credentials.rotate", "targets": { "labels": ["rot"] }, "params": {} })).await;
        let done = app.wait_done(again).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_rotated(&app.sim, &app.url, &app.http, &spaces, again).await;
        assert_eq!(
            app.sim.workspace(&spaces[0].1).unwrap().api_keys[0].scopes,
            vec!["all:all"]
        );

        // The stored keys work.
        let invite = app
            .start_op(
                json!({ "kind": "members.invite", "targets": { "labels": ["rot"] },
            "params": { "emails": ["after@agency.example"], "role": "view" } }),
            )
            .await;
        assert_eq!(app.wait_done(invite).await["counts"]["succeeded"], 50);
        app.stop().await;
    }
);

both!(
    rotation_killed_mid_way_converges_with_no_orphan_key,
    |backend| {
        let fx = ProcessFixture::start(backend, 25).await;
        let mut first = fx.serve(&[("FLOTILLA_MAX_IN_FLIGHT", "8")]).await;
        let spaces = fx.register_many(&first.url, 50, "rot", &["rot"]).await;
        let (sim, http) = (&fx.sim, &fx.http);
        let id = fx.start_op(&first.url, json!({
        "kind": "credentials.rotate", "targets": { "labels": ["rot"] }, "params": { "scopes": ["all:all"] },
        })).await;
        fx.wait_succeeded(&first.url, id, 8).await;
        first.kill().await;

        let second = fx.serve(&[]).await;
        let op = fx
            .wait_done(&second.url, id, Duration::from_secs(180))
            .await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 50);
        assert_rotated(sim, &second.url, http, &spaces, id).await;
        // And every stored key works.
        let inv = fx.start_op(&second.url, json!({
        "kind": "members.invite", "targets": { "labels": ["rot"] }, "params": { "emails": ["x@agency.example"], "role": "view" },
        })).await;
        let inv = fx
            .wait_done(&second.url, inv, Duration::from_secs(120))
            .await;
        assert_eq!(inv["counts"]["succeeded"], 50, "{inv}");
        drop(second);
        fx.test_db.cleanup().await;
    }
);

/// Runs `flotilla vault …` and parses its JSON output.
fn vault_cli(db_url: &str, keys: &str, data_dir: &std::path::Path, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("vault")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLOTILLA_DATABASE_URL", db_url)
        .env("FLOTILLA_VAULT_KEYS", keys)
        .env("FLOTILLA_DATA_DIR", data_dir)
        .env("FLOTILLA_LOG", "error")
        .output()
        .expect("run flotilla vault");
    assert!(
        out.status.success(),
        "flotilla vault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

both!(
    vault_status_and_rotate_are_reachable_from_the_binary,
    |backend| {
        let fx = ProcessFixture::start(backend, 0).await;
        let (url, k1, data) = (&fx.db_url, &fx.keys, fx.data.path());
        let mut serve = fx.serve(&[]).await;
        fx.register_many(&serve.url, 3, "v", &[]).await;
        serve.kill().await;

        let status = vault_cli(url, k1.expose_secret(), data, &["status", "--json"]);
        assert_eq!(status["primary_kek_id"], "k1");
        assert_eq!(status["rows_per_kek"], json!({ "k1": 3 }));
        let k2 = flotilla_vault::generate_key_spec("k2");
        let both_keys = format!("{},{}", k2.expose_secret(), k1.expose_secret());
        let report = vault_cli(url, &both_keys, data, &["rotate", "--json"]);
        assert_eq!(report["rotated"], 3);
        assert_eq!(report["remaining"], 0);
        let status = vault_cli(url, k2.expose_secret(), data, &["status", "--json"]);
        assert_eq!(status["rows_per_kek"], json!({ "k2": 3 }));
        assert_eq!(status["pending_rotation"], 0);
        // The table form works too.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(["vault", "status"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FLOTILLA_DATABASE_URL", url)
            .env("FLOTILLA_VAULT_KEYS", k2.expose_secret())
            .env("FLOTILLA_DATA_DIR", data)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("primary KEK       k2"));
        fx.test_db.cleanup().await;
    }
);

both!(
    two_keys_of_one_workspace_in_a_file_register_it_once,
    |backend| {
        let app = TestApp::start(backend).await;
        let ws = app.sim.create_workspace("twice");
        let a = app.sim.create_key(&ws, "a", &["all:all"]).key;
        let b = app.sim.create_key(&ws, "b", &["all:all"]).key;
        let body = format!("api_key,name\n{a},First\n{b},Second\n");
        let (status, op, text) = post_raw(
            &app,
            "/v1/workspaces/import",
            "text/csv; charset=utf-8",
            body,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        assert!(!text.contains(&a) && !text.contains(&b));
        let id: Uuid = op["id"].as_str().unwrap().parse().unwrap();
        let done = app.wait_done(id).await;
        assert_eq!(
            (
                done["counts"]["succeeded"].as_i64(),
                done["counts"]["failed"].as_i64()
            ),
            (Some(1), Some(1)),
            "{done}"
        );
        let targets = app.targets(id).await;
        let failed = targets.iter().find(|t| t["state"] == "failed").unwrap();
        assert_eq!(failed["code"], "duplicate_workspace_in_file", "{failed}");
        let winner = targets.iter().find(|t| t["state"] == "succeeded").unwrap();
        let winner_line = winner["changes"][0]["item"].as_str().unwrap();
        assert!(
            failed["message"].as_str().unwrap().contains(winner_line),
            "{failed}"
        );
        assert_eq!(count(&app.db, "workspace").await, 1);
        assert_eq!(count(&app.db, "vault_staged_secret").await, 0);
        app.stop().await;
    }
);
