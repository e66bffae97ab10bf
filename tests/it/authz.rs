//! Operators, tokens and the access matrix: every role against every route (read from
//! `authz::ROUTES`) and every operation kind, label scope, hashed and revocable tokens, the
//! bootstrap token and the `flotilla operator create` command.

use std::collections::{BTreeMap, BTreeSet};

use flotilla_service::authz::{self, Access, Level, ROLES, ROUTES};
use flotilla_service::store::{NewOperation, Store};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Column, Row};
use uuid::Uuid;

use crate::both;
use crate::support::*;

/// Creates an operator as the bootstrap admin; returns (id, token).
pub async fn create_operator(
    app: &TestApp,
    name: &str,
    role: &str,
    labels: &[&str],
) -> (Uuid, String) {
    let (status, body) = app
        .post(
            "/v1/operators",
            json!({ "name": name, "role": role, "labels": labels }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().unwrap().parse().unwrap(),
        body["token"].as_str().unwrap().to_string(),
    )
}

/// Inserts an operation straight into the store (params `{}`: the engine fails its target at
/// once, which is all a permission check needs) and waits for it to finish.
async fn finished_operation(app: &TestApp, kind: &str, dry_run: bool, workspace: Uuid) -> Uuid {
    let store = Store::new(app.db.clone());
    let id = store
        .insert_operation(&NewOperation {
            kind: kind.to_string(),
            params: json!({}),
            targets: json!({ "workspaces": [workspace] }),
            dry_run,
            max_concurrency: None,
            failure_tolerance: None,
            idempotency_key: None,
            request_hash: None,
            retry_of: None,
            created_by: None,
            workspace_ids: vec![workspace],
        })
        .await
        .expect("insert operation");
    app.wait_done(id).await;
    id
}

/// Asserts 403 `permission_denied` naming `permission`, or anything but 401/403.
fn check(what: &str, status: StatusCode, body: &Value, forbidden: Option<String>) {
    match forbidden {
        Some(permission) => {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{what}: expected 403, got {status} {body}"
            );
            assert_eq!(body["error"]["code"], "permission_denied", "{what}: {body}");
            assert_eq!(
                body["error"]["details"]["permission"],
                permission.as_str(),
                "{what}: {body}"
            );
        }
        None => assert!(
            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
            "{what}: expected to be allowed, got {status} {body}"
        ),
    }
}

fn needs(role: &str, (area, level): (authz::Area, Level)) -> Option<String> {
    (authz::level(role, area) < level).then(|| authz::permission(area, level))
}

both!(every_role_against_every_route_and_kind, |backend| {
    let app = TestApp::start(backend).await;
    let (ws, _) = app.register("a", &["east"]).await;
    let mut tokens = BTreeMap::new();
    let mut some_operator = Uuid::nil();
    for role in ROLES {
        let (id, token) = create_operator(&app, &format!("{role}-1"), role, &[]).await;
        tokens.insert(role, token);
        some_operator = id;
    }
    let kinds = flotilla_service::engine::kinds::names();
    let mut ops = BTreeMap::new();
    for kind in &kinds {
        for dry_run in [false, true] {
            ops.insert(
                (*kind, dry_run),
                finished_operation(&app, kind, dry_run, ws).await,
            );
        }
    }
    let mut checked = 0;
    for role in ROLES {
        let token = tokens[role].as_str();
        for route in ROUTES {
            let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
            match route.access {
                Access::Operator | Access::Perm(..) => {
                    // Reads use real ids; writes a random one, so an allowed admin changes nothing.
                    let id = if method == Method::GET {
                        if route.path.starts_with("/v1/operators") {
                            some_operator
                        } else {
                            ws
                        }
                    } else {
                        Uuid::now_v7()
                    };
                    let path = route.path.replace("{id}", &id.to_string());
                    let forbidden = match route.access {
                        Access::Perm(area, level) => needs(role, (area, level)),
                        _ => None,
                    };
                    let (status, resp) = app
                        .call_as(token, method.clone(), &path, body.clone(), &[])
                        .await;
                    check(&format!("{role} {method} {path}"), status, &resp, forbidden);
                    checked += 1;
                }
                Access::KindRun if !route.path.contains("{id}") => {
                    // POST /v1/operations: every kind, as a real run and as a dry run.
                    for kind in &kinds {
                        for dry_run in [false, true] {
                            let req = json!({ "kind": kind, "dry_run": dry_run, "targets": { "all": true }, "params": {} });
                            let (status, resp) = app
                                .call_as(token, method.clone(), route.path, Some(req), &[])
                                .await;
                            let forbidden =
                                needs(role, authz::run_permission(kind, &json!({}), dry_run));
                            check(
                                &format!("{role} create {kind} dry_run={dry_run}"),
                                status,
                                &resp,
                                forbidden,
                            );
                            checked += 1;
                        }
                    }
                }
                Access::KindRun | Access::KindView => {
                    for ((kind, dry_run), id) in &ops {
                        let path = route.path.replace("{id}", &id.to_string());
                        let wanted = if route.access == Access::KindView {
                            (authz::kind_permission(kind, &json!({})).0, Level::View)
                        } else {
                            authz::run_permission(kind, &json!({}), *dry_run)
                        };
                        let (status, resp) = app
                            .call_as(token, method.clone(), &path, body.clone(), &[])
                            .await;
                        check(
                            &format!("{role} {method} {path} ({kind}, dry_run={dry_run})"),
                            status,
                            &resp,
                            needs(role, wanted),
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= ROLES.len() * ROUTES.len(), "{checked} checks");
    app.stop().await;
});

both!(openapi_and_routes_table_name_the_same_routes, |backend| {
    let app = TestApp::start(backend).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table, "ApiDoc and authz::ROUTES disagree");
    app.stop().await;
});

both!(
    tokens_are_refused_when_missing_malformed_unknown_or_revoked,
    |backend| {
        let app = TestApp::start(backend).await;
        let resp = app
            .http
            .get(format!("{}/v1/workspaces", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["code"],
            "missing_token"
        );
        let resp = app
            .http
            .get(format!("{}/v1/workspaces", app.url))
            .header("authorization", format!("Basic {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_token"
        );
        let (status, body) = app
            .call_as(
                "flt_not_a_real_token",
                Method::GET,
                "/v1/workspaces",
                None,
                &[],
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );

        let (id, token) = create_operator(&app, "temp", "viewer", &[]).await;
        let (status, _) = app
            .call_as(&token, Method::GET, "/v1/workspaces", None, &[])
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .call(Method::DELETE, &format!("/v1/operators/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app
            .call_as(&token, Method::GET, "/v1/workspaces", None, &[])
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
        let (status, body) = app.get(&format!("/v1/operators/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["revoked_at"].is_string(), "{body}");
        // Revoking twice is a no-op; an unknown operator is 404.
        let (status, _) = app
            .call(Method::DELETE, &format!("/v1/operators/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/v1/operators/{}", Uuid::now_v7()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        app.stop().await;
    }
);

both!(
    operator_input_is_validated_and_the_last_admin_stays,
    |backend| {
        let app = TestApp::start(backend).await;
        for (body, code) in [
            (json!({ "name": "x", "role": "owner" }), "invalid_role"),
            (json!({ "name": "", "role": "admin" }), "invalid_name"),
            (
                json!({ "name": "x", "role": "admin", "labels": ["bad label"] }),
                "invalid_label",
            ),
            (
                json!({ "name": "x", "role": "admin", "token": "mine" }),
                "unknown_field",
            ),
        ] {
            let (status, resp) = app.post("/v1/operators", body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{resp}");
            assert_eq!(resp["error"]["code"], code);
        }
        assert_eq!(count(&app.db, "operator").await, 1, "nothing written");
        let (status, page) = app.get("/v1/operators").await;
        assert_eq!(status, StatusCode::OK);
        let bootstrap = page["items"][0]["id"].as_str().unwrap().to_string();
        let (status, body) = app
            .call(Method::DELETE, &format!("/v1/operators/{bootstrap}"), None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("last_admin"))
        );
        app.stop().await;
    }
);

/// Every text value of every row of `table`.
async fn all_text(app: &TestApp, table: &str) -> Vec<String> {
    let rows = sqlx::query(&format!("select * from {table}"))
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in &rows {
        for col in row.columns() {
            if let Ok(Some(s)) = row.try_get::<Option<String>, _>(col.ordinal()) {
                out.push(s);
            }
        }
    }
    out
}

both!(the_database_holds_no_plaintext_token, |backend| {
    let app = TestApp::start(backend).await;
    let (_, manager) = create_operator(&app, "m", "manager", &["east"]).await;
    let (id, viewer) = create_operator(&app, "v", "viewer", &[]).await;
    // A denied request carrying an API key in its body, and some allowed ones.
    let ws = app.sim.create_workspace("w");
    let key = app.sim.create_key(&ws, "k", &["all:all"]);
    let (status, _) = app
        .call_as(
            &manager,
            Method::POST,
            "/v1/workspaces",
            Some(json!({ "name": "w", "api_key": key.key })),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.call_as(&viewer, Method::GET, "/v1/workspaces", None, &[])
        .await;
    app.call(Method::DELETE, &format!("/v1/operators/{id}"), None)
        .await;
    let (status, list) = app.get("/v1/operators").await;
    assert_eq!(status, StatusCode::OK);
    let (_, one) = app.get(&format!("/v1/operators/{id}")).await;
    let secrets = [
        ADMIN_TOKEN,
        manager.as_str(),
        viewer.as_str(),
        key.key.as_str(),
    ];
    for table in ["operator", "audit_event"] {
        let texts = all_text(&app, table).await;
        assert!(!texts.is_empty());
        for secret in secrets {
            assert!(
                !texts.iter().any(|t| t.contains(secret)),
                "{table} holds a secret"
            );
        }
    }
    let hashes = all_text(&app, "operator")
        .await
        .into_iter()
        .filter(|t| t.len() == 64)
        .collect::<Vec<_>>();
    assert!(hashes.contains(&flotilla_service::auth::hash_token(&viewer)));
    for body in [list.to_string(), one.to_string()] {
        for secret in secrets
            .iter()
            .map(|s| s.to_string())
            .chain(hashes.iter().cloned())
        {
            assert!(
                !body.contains(&secret),
                "an operator answer shows a token or hash"
            );
        }
        assert!(!body.contains("token"), "{body}");
    }
    app.stop().await;
});

both!(bootstrap_token_follows_the_variable, |backend| {
    let app = TestApp::start(backend).await;
    let store = Store::new(app.db.clone());
    let changed = "flt_changed_admin_token_9876543210";
    let shown =
        flotilla_service::auth::ensure_bootstrap_admin(&store, Some(&SecretString::from(changed)))
            .await
            .unwrap();
    assert!(shown.is_none(), "a configured token is never printed");
    let (status, _) = app
        .call_as(ADMIN_TOKEN, Method::GET, "/v1/operators", None, &[])
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old bootstrap token stops working"
    );
    let (status, page) = app
        .call_as(changed, Method::GET, "/v1/operators", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "the same bootstrap operator, not a second one"
    );
    // Starting again with the same value changes nothing.
    flotilla_service::auth::ensure_bootstrap_admin(&store, Some(&SecretString::from(changed)))
        .await
        .unwrap();
    let (status, _) = app
        .call_as(changed, Method::GET, "/v1/operators", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
});

both!(operator_create_command_prints_a_working_token, |backend| {
    let app = TestApp::start(backend).await;
    let url = app.test_db.as_ref().unwrap().url();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FLOTILLA_DATABASE_URL", &url)
            .env("FLOTILLA_LOG", "error")
            .output()
            .expect("run flotilla")
    };
    let out = run(&[
        "operator",
        "create",
        "--name",
        "cli admin",
        "--role",
        "admin",
        "--labels",
        "east,north",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("flt_"), "stdout is the token alone");
    let (status, page) = app
        .call_as(&token, Method::GET, "/v1/operators", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let me = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "cli admin")
        .expect("listed")
        .clone();
    assert_eq!(me["role"], "admin");
    assert_eq!(me["labels"], json!(["east", "north"]));
    let out = run(&["operator", "create", "--name", "x", "--role", "owner"]);
    assert!(!out.status.success(), "an unknown role is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_role"));
    assert_eq!(count(&app.db, "operator").await, 2, "bootstrap + cli admin");
    app.stop().await;
});

both!(east_manager_sees_and_targets_only_east, |backend| {
    // Reports (`/v1/reports/*`) do not exist yet; when they land they must filter by the same
    // `Operator::visible_labels` and get a case here.
    let app = TestApp::start(backend).await;
    let (east, _) = app.register("east-1", &["east"]).await;
    let (west, west_instantly) = app.register("west-1", &["west", "shared-not"]).await;
    let (_, m) = create_operator(&app, "east am", "manager", &["east"]).await;
    let get = |path: String| {
        let (app, m) = (&app, m.clone());
        async move { app.call_as(&m, Method::GET, &path, None, &[]).await }
    };

    // Lists and reads.
    let (status, page) = get("/v1/workspaces".into()).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![east.to_string()]);
    let (_, page) = get("/v1/workspaces?label=west".into()).await;
    assert_eq!(page["items"], json!([]));
    let (status, west_body) = get(format!("/v1/workspaces/{west}")).await;
    let (status_random, random_body) = get(format!("/v1/workspaces/{}", Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        (status, &west_body),
        (status_random, &random_body),
        "west looks like a workspace that does not exist"
    );

    // Targets: explicit id, labels, all.
    let op = |targets: Value| {
        json!({ "kind": "members.invite", "dry_run": true, "targets": targets,
                "params": { "emails": ["ana@agency.example"], "role": "editor" } })
    };
    let post = |body: Value| {
        let (app, m) = (&app, m.clone());
        async move {
            app.call_as(&m, Method::POST, "/v1/operations", Some(body), &[])
                .await
        }
    };
    let (status, body) = post(op(json!({ "workspaces": [west] }))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_workspace"))
    );
    let (_, random) = post(op(json!({ "workspaces": [Uuid::now_v7()] }))).await;
    assert_eq!(random["error"]["code"], body["error"]["code"]);
    let (status, body) = post(op(json!({ "labels": ["west"] }))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_targets"))
    );
    let (status, body) = post(op(json!({ "all": true }))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mine: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    app.wait_done(mine).await;
    let targets = app.targets(mine).await;
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["workspace_id"], east.to_string());
    assert!(
        app.sim
            .request_log()
            .iter()
            .all(
                |r| r.workspace_id.as_deref() != Some(west_instantly.as_str())
                    || r.path == "/api/v2/workspaces/current"
            ),
        "nothing read in west beyond registration"
    );
    // A real run needs members:full, which a manager lacks.
    let mut real = op(json!({ "all": true }));
    real["dry_run"] = json!(false);
    let (status, body) = post(real).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["details"]["permission"], "members:full");

    // Operations: an admin's operation over both shows only east; one over west alone is 404.
    let both_ws = app
        .start_op(op(json!({ "workspaces": [east, west] })))
        .await;
    let west_only = app.start_op(op(json!({ "workspaces": [west] }))).await;
    app.wait_done(both_ws).await;
    app.wait_done(west_only).await;
    let (status, seen) = get(format!("/v1/operations/{both_ws}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["progress"]["total"], 1, "{seen}");
    assert_eq!(seen["targets"]["workspaces"], json!([east]));
    assert_eq!(
        seen["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_i64().unwrap())
            .sum::<i64>(),
        1
    );
    let (_, rows) = get(format!("/v1/operations/{both_ws}/targets")).await;
    let rows: Vec<&str> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["workspace_id"].as_str().unwrap())
        .collect();
    assert_eq!(rows, vec![east.to_string()]);
    for path in [
        format!("/v1/operations/{west_only}"),
        format!("/v1/operations/{west_only}/targets"),
    ] {
        let (status, body) = get(path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
    let (_, list) = get("/v1/operations?limit=1".into()).await;
    let mut listed = Vec::new();
    let mut page = list;
    loop {
        listed.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => page = get(format!("/v1/operations?limit=1&cursor={c}")).await.1,
            None => break,
        }
    }
    assert_eq!(
        listed,
        vec![both_ws.to_string(), mine.to_string()],
        "newest first, west-only left out"
    );
    // Cancel stops every target, so it needs every target in scope.
    let (status, body) = app
        .call_as(
            &m,
            Method::POST,
            &format!("/v1/operations/{both_ws}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("outside_label_scope"))
    );
    let (status, _) = app
        .call_as(
            &m,
            Method::POST,
            &format!("/v1/operations/{west_only}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
});
