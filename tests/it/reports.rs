//! `inventory.sync` and `/v1/reports/*` end to end: every report against the simulator's state,
//! in JSON and in CSV, unavailable resources, incremental audit reads, permissions and scope,
//! bad input, and the schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use flotilla_service::schedule::{self, Tick};
use flotilla_service::store::{Store, now_ms};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both;
use crate::support::*;

/// Every read scope the sync needs except `audit_logs:read`.
const NO_AUDIT: &[&str] = &[
    "workspaces:read",
    "workspace_members:read",
    "api_keys:read",
    "custom_tags:read",
    "custom_tag_mappings:read",
    "campaigns:read",
    "accounts:read",
    "workspace_group_members:read",
];

/// The registered workspaces: (Flotilla id, Instantly id), in order.
struct Fleet {
    workspaces: Vec<(Uuid, String)>,
}

impl Fleet {
    fn flotilla_id(&self, instantly: &str) -> Uuid {
        self.workspaces
            .iter()
            .find(|(_, i)| i == instantly)
            .expect("known workspace")
            .0
    }
}

/// Registers `n` workspaces and seeds members, keys, tags, campaigns, accounts and audit
/// entries. Workspace 7's key lacks `audit_logs:read`; workspace 8 loses its paid plan after
/// registration (402 on everything).
async fn seed_fleet(app: &TestApp, n: usize) -> Fleet {
    let mut workspaces = Vec::new();
    for i in 0..n {
        let label = if i % 3 == 0 { "east" } else { "west" };
        let name = format!("client-{i:02}");
        let (id, ws) = if i == 7 {
            app.register_with_scopes(&name, &[label], NO_AUDIT).await
        } else {
            app.register(&name, &[label]).await
        };
        let sim = &app.sim;
        sim.seed_member(
            &ws,
            "jane@agency.com",
            if i % 4 == 0 { "admin" } else { "editor" },
            true,
        );
        sim.seed_member(&ws, &format!("Client{i}@Example.com"), "view", i % 2 == 0);
        if i % 5 == 0 {
            sim.seed_member(&ws, "ops@agency.com", "admin", false);
        }
        if i % 5 == 0 {
            sim.create_key(&ws, "ops-everything", &["all:all"]);
        }
        sim.create_key(&ws, "reader", &["campaigns:read", "accounts:read"]);
        if i % 6 == 1 {
            sim.create_key(&ws, "key-janitor", &["api_keys:delete"]);
            sim.create_key(&ws, "bulk-editor", &["all:update"]);
        }
        let camp_a = sim.seed_campaign(&ws, "Spring outreach", 1);
        let _camp_b = sim.seed_campaign(&ws, "Winter nurture", 2);
        sim.seed_account(&ws, &format!("sender{i}@mail.example"), 1);
        sim.seed_account(&ws, &format!("spare{i}@mail.example"), 2);
        let team = sim.seed_tag(&ws, "team-east");
        sim.seed_tag(&ws, "unused");
        sim.seed_tag_mapping(&ws, &team, 2, &camp_a);
        sim.seed_tag_mapping(&ws, &team, 1, &format!("sender{i}@mail.example"));
        let now = Utc::now();
        sim.seed_audit_log(&ws, 4, now - chrono::Duration::hours(i as i64 + 1));
        sim.seed_audit_log(
            &ws,
            1,
            now - chrono::Duration::days(2) - chrono::Duration::minutes(i as i64),
        );
        workspaces.push((id, ws));
    }
    // Workspace 0's access key is one Flotilla knows by Instantly id (as credentials.rotate
    // records it): the report marks it as Flotilla's own credential.
    let (fid, ws) = &workspaces[0];
    let key_id = app
        .sim
        .workspace(ws)
        .unwrap()
        .api_keys
        .iter()
        .find(|k| k.name == "flotilla")
        .unwrap()
        .id
        .clone();
    sqlx::query("update vault_credential set instantly_key_id = $1 where workspace_id = $2 and purpose = 'access'")
        .bind(key_id)
        .bind(fid.to_string())
        .execute(app.db.pool())
        .await
        .unwrap();
    if n > 8 {
        app.sim.set_paid(&workspaces[8].1, false);
    }
    Fleet { workspaces }
}

async fn sync(app: &TestApp, dry_run: bool) -> (Value, Vec<Value>) {
    let id = app.start_op(json!({ "kind": "inventory.sync", "targets": { "all": true }, "params": {}, "dry_run": dry_run })).await;
    let op = app.wait_done(id).await;
    (op, app.targets(id).await)
}

/// Every page of a JSON report (small pages, to exercise the cursor); returns the items and
/// the first page (for `missing_snapshots` / `unavailable`).
async fn report_json(app: &TestApp, path: &str) -> (Vec<Value>, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=7&cursor={c}"),
            None => format!("{path}{sep}limit=7"),
        };
        let (status, page) = app.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        if first.is_none() {
            first = Some(page.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (items, first.unwrap()),
        }
    }
}

/// A CSV report: header and records, parsed with the `csv` crate.
async fn report_csv(app: &TestApp, path: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let resp = app
        .http
        .get(format!("{}{path}{sep}format=csv", app.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

/// A key as the report should show it: name, scopes, flags, Flotilla's own credential.
type KeyView = (String, Vec<String>, BTreeSet<String>, bool);

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

both!(
    reports_match_the_simulator_after_syncing_thirty_workspaces,
    |backend| {
        let app = TestApp::start(backend).await;
        let fleet = seed_fleet(&app, 30).await;
        let (op, targets) = sync(&app, false).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 30);
        let by_ws: BTreeMap<String, &Value> =
            targets.iter().map(|t| (s(&t["workspace_id"]), t)).collect();
        let t7 = by_ws[&fleet.workspaces[7].0.to_string()];
        assert_eq!(t7["code"], "synced");
        let changes: BTreeMap<String, (String, String)> = t7["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (s(&c["item"]), (s(&c["action"]), s(&c["detail"]))))
            .collect();
        assert_eq!(
            changes["audit_logs"],
            ("unavailable".into(), "missing scope audit_logs:read".into())
        );
        assert_eq!(changes["members"], ("synced".into(), "3".into()));
        let t8 = by_ws[&fleet.workspaces[8].0.to_string()];
        assert!(
            t8["changes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["action"] == "unavailable"),
            "{t8}"
        );

        // A workspace registered after the sync has no snapshot yet.
        let (late_id, _) = app.register("late", &["east"]).await;

        // ---- access
        let mut expected: BTreeSet<(String, String, String, bool, String)> = BTreeSet::new();
        for (i, (fid, ws)) in fleet.workspaces.iter().enumerate() {
            if i == 8 {
                continue;
            }
            for m in app.sim.workspace(ws).unwrap().members {
                expected.insert((
                    fid.to_string(),
                    m.email.to_ascii_lowercase(),
                    m.role,
                    m.accepted,
                    m.id,
                ));
            }
        }
        let (items, first) = report_json(&app, "/v1/reports/access").await;
        let got: BTreeSet<_> = items
            .iter()
            .map(|r| {
                (
                    s(&r["workspace_id"]),
                    s(&r["email"]),
                    s(&r["role"]),
                    r["accepted"].as_bool().unwrap(),
                    s(&r["member_id"]),
                )
            })
            .collect();
        assert_eq!(got.len(), items.len(), "no duplicate rows across pages");
        assert_eq!(got, expected);
        assert!(
            items
                .iter()
                .all(|r| r["snapshot_age_seconds"].as_i64().unwrap() >= 0
                    && r["snapshot_at"].is_string())
        );
        assert_eq!(
            first["missing_snapshots"],
            json!([{ "workspace_id": late_id, "workspace_name": "late" }])
        );
        let unavailable = first["unavailable"].as_array().unwrap();
        assert_eq!(unavailable.len(), 1, "{unavailable:?}");
        assert_eq!(
            unavailable[0]["workspace_id"],
            fleet.workspaces[8].0.to_string()
        );
        assert_eq!(unavailable[0]["status"], "unavailable");
        assert!(
            s(&unavailable[0]["reason"]).starts_with("payment required"),
            "{unavailable:?}"
        );

        let (header, rows) = report_csv(&app, "/v1/reports/access").await;
        assert_eq!(
            header,
            [
                "workspace_id",
                "workspace_name",
                "email",
                "role",
                "accepted",
                "member_id",
                "user_id",
                "snapshot_at",
                "snapshot_age_seconds",
                "status",
                "reason"
            ]
        );
        let csv_got: BTreeSet<_> = rows
            .iter()
            .filter(|r| r["status"] == "ok")
            .map(|r| {
                (
                    r["workspace_id"].clone(),
                    r["email"].clone(),
                    r["role"].clone(),
                    r["accepted"] == "true",
                    r["member_id"].clone(),
                )
            })
            .collect();
        assert_eq!(csv_got, expected);
        let statuses: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r["status"] != "ok")
            .map(|r| (r["workspace_id"].as_str(), r["status"].as_str()))
            .collect();
        let ws8 = fleet.workspaces[8].0.to_string();
        let late = late_id.to_string();
        assert_eq!(
            statuses,
            vec![
                (ws8.as_str(), "unavailable"),
                (late.as_str(), "missing_snapshot")
            ]
        );

        // "Every workspace where jane@agency.com is admin."
        let (items, _) =
            report_json(&app, "/v1/reports/access?email=Jane@Agency.com&role=admin").await;
        let got: BTreeSet<String> = items.iter().map(|r| s(&r["workspace_id"])).collect();
        let want: BTreeSet<String> = fleet
            .workspaces
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0 && *i != 8)
            .map(|(_, (f, _))| f.to_string())
            .collect();
        assert_eq!(got, want);
        let (items, _) = report_json(&app, "/v1/reports/access?label=east&role=view").await;
        assert_eq!(items.len(), 10, "one client member per east workspace");

        // ---- api-keys
        let mut expected: BTreeMap<(String, String), KeyView> = BTreeMap::new();
        for (i, (fid, ws)) in fleet.workspaces.iter().enumerate() {
            if i == 8 {
                continue;
            }
            for k in app.sim.workspace(ws).unwrap().api_keys {
                let mut flags = BTreeSet::new();
                let has = |x: &str| k.scopes.iter().any(|s| s == x);
                if has("all:all") {
                    flags.extend(
                        [
                            "all_all",
                            "all_scope",
                            "all_update",
                            "writes_api_keys",
                            "writes_members",
                        ]
                        .map(String::from),
                    );
                }
                if has("all:update") {
                    flags.extend(
                        [
                            "all_scope",
                            "all_update",
                            "writes_api_keys",
                            "writes_members",
                        ]
                        .map(String::from),
                    );
                }
                if has("api_keys:delete") {
                    flags.insert("writes_api_keys".into());
                }
                let ours = i == 0 && k.name == "flotilla";
                if !ours {
                    flags.insert("not_created_by_flotilla".into());
                }
                expected.insert(
                    (fid.to_string(), k.id.clone()),
                    (k.name.clone(), k.scopes.clone(), flags, ours),
                );
            }
        }
        let (items, first) = report_json(&app, "/v1/reports/api-keys").await;
        let got: BTreeMap<_, _> = items
            .iter()
            .map(|r| {
                let scopes: Vec<String> = r["scopes"].as_array().unwrap().iter().map(s).collect();
                let flags: BTreeSet<String> =
                    r["flags"].as_array().unwrap().iter().map(s).collect();
                (
                    (s(&r["workspace_id"]), s(&r["key_id"])),
                    (
                        s(&r["name"]),
                        scopes,
                        flags,
                        r["flotilla_credential"].as_bool().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(got.len(), items.len());
        assert_eq!(got, expected);
        assert_eq!(first["unavailable"].as_array().unwrap().len(), 1);
        let (_, rows) = report_csv(&app, "/v1/reports/api-keys").await;
        let csv_got: BTreeMap<_, _> = rows
            .iter()
            .filter(|r| r["status"] == "ok")
            .map(|r| {
                let scopes: Vec<String> = r["scopes"].split(' ').map(String::from).collect();
                let flags: BTreeSet<String> = r["flags"]
                    .split(' ')
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect();
                (
                    (r["workspace_id"].clone(), r["key_id"].clone()),
                    (
                        r["name"].clone(),
                        scopes,
                        flags,
                        r["flotilla_credential"] == "true",
                    ),
                )
            })
            .collect();
        assert_eq!(csv_got, expected);
        let (items, _) = report_json(&app, "/v1/reports/api-keys?flag=all_all").await;
        let want = expected
            .values()
            .filter(|v| v.2.contains("all_all"))
            .count();
        assert_eq!(items.len(), want);
        assert!(
            want >= 6,
            "every fifth workspace has an all:all key, plus the registered keys"
        );
        let (items, _) =
            report_json(&app, "/v1/reports/api-keys?flag=writes_api_keys&label=west").await;
        assert!(items.iter().all(|r| {
            r["flags"]
                .as_array()
                .unwrap()
                .contains(&json!("writes_api_keys"))
        }));
        let (items, _) = report_json(
            &app,
            &format!(
                "/v1/reports/api-keys?workspace_id={}",
                fleet.workspaces[0].0
            ),
        )
        .await;
        assert_eq!(
            items
                .iter()
                .filter(|r| r["flotilla_credential"] == true)
                .count(),
            1
        );

        // ---- tags
        type TagView = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;
        let mut expected: BTreeMap<String, (TagView, BTreeSet<String>, BTreeSet<String>)> =
            BTreeMap::new();
        for (i, (fid, ws)) in fleet.workspaces.iter().enumerate() {
            if i == 8 {
                continue;
            }
            let st = app.sim.workspace(ws).unwrap();
            let mut tags: TagView = st
                .tags
                .iter()
                .map(|t| (t.label.clone(), Default::default()))
                .collect();
            let mut tagged = BTreeSet::new();
            for m in &st.tag_mappings {
                let label = &st.tags.iter().find(|t| t.id == m.tag_id).unwrap().label;
                let entry = tags.get_mut(label).unwrap();
                if m.resource_type == 2 {
                    entry.0.insert(m.resource_id.clone())
                } else {
                    entry.1.insert(m.resource_id.clone())
                };
                tagged.insert(m.resource_id.clone());
            }
            let untagged_c = st
                .campaigns
                .iter()
                .map(|c| c.id.clone())
                .filter(|c| !tagged.contains(c))
                .collect();
            let untagged_a = st
                .accounts
                .iter()
                .map(|a| a.email.clone())
                .filter(|a| !tagged.contains(a))
                .collect();
            expected.insert(fid.to_string(), (tags, untagged_c, untagged_a));
        }
        let (items, _) = report_json(&app, "/v1/reports/tags").await;
        let ids = |v: &Value| -> BTreeSet<String> {
            v.as_array().unwrap().iter().map(|c| s(&c["id"])).collect()
        };
        let mut got = BTreeMap::new();
        for w in &items {
            let ws = s(&w["workspace_id"]);
            if ws == fleet.workspaces[8].0.to_string() {
                assert!(
                    w["unavailable"]["tags"]
                        .as_str()
                        .unwrap()
                        .starts_with("payment required"),
                    "{w}"
                );
                continue;
            }
            let tags: TagView = w["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (s(&t["label"]), (ids(&t["campaigns"]), ids(&t["accounts"]))))
                .collect();
            got.insert(
                ws,
                (
                    tags,
                    ids(&w["untagged_campaigns"]),
                    ids(&w["untagged_accounts"]),
                ),
            );
        }
        assert_eq!(got, expected);
        let (_, rows) = report_csv(&app, "/v1/reports/tags").await;
        let mut csv_got: BTreeMap<String, (TagView, BTreeSet<String>, BTreeSet<String>)> =
            BTreeMap::new();
        for r in rows
            .iter()
            .filter(|r| r["status"] == "ok" || r["status"] == "untagged")
        {
            let e = csv_got.entry(r["workspace_id"].clone()).or_default();
            if r["status"] == "untagged" {
                if r["resource_type"] == "campaign" {
                    e.1.insert(r["resource_id"].clone())
                } else {
                    e.2.insert(r["resource_id"].clone())
                };
                continue;
            }
            let t = e.0.entry(r["tag_label"].clone()).or_default();
            match r["resource_type"].as_str() {
                "campaign" => t.0.insert(r["resource_id"].clone()),
                "account" => t.1.insert(r["resource_id"].clone()),
                _ => true,
            };
        }
        csv_got.remove(&fleet.workspaces[8].0.to_string());
        assert_eq!(csv_got, expected);

        // ---- audit-logs
        let mut expected: Vec<(String, String, i64)> = Vec::new();
        for (i, (fid, ws)) in fleet.workspaces.iter().enumerate() {
            if i == 7 || i == 8 {
                continue;
            }
            for a in app.sim.workspace(ws).unwrap().audit_logs {
                expected.push((fid.to_string(), a.id, a.activity_type));
            }
        }
        let (items, first) = report_json(&app, "/v1/reports/audit-logs").await;
        let got: BTreeSet<_> = items
            .iter()
            .map(|r| {
                (
                    s(&r["workspace_id"]),
                    s(&r["id"]),
                    r["activity_type"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), items.len());
        assert_eq!(got, expected.iter().cloned().collect::<BTreeSet<_>>());
        let times: Vec<String> = items.iter().map(|r| s(&r["timestamp"])).collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(times, sorted, "newest first");
        let reasons: BTreeMap<String, String> = first["unavailable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (s(&u["workspace_id"]), s(&u["reason"])))
            .collect();
        assert_eq!(
            reasons[&fleet.workspaces[7].0.to_string()],
            "missing scope audit_logs:read"
        );
        assert_eq!(reasons.len(), 2);
        let (_, rows) = report_csv(&app, "/v1/reports/audit-logs").await;
        let csv_got: BTreeSet<_> = rows
            .iter()
            .filter(|r| r["status"] == "ok")
            .map(|r| {
                (
                    r["workspace_id"].clone(),
                    r["id"].clone(),
                    r["activity_type"].parse::<i64>().unwrap(),
                )
            })
            .collect();
        assert_eq!(csv_got, got);
        let ws7 = fleet.workspaces[7].0.to_string();
        assert!(rows.iter().any(|r| r["workspace_id"] == ws7
            && r["status"] == "unavailable"
            && r["reason"] == "audit_logs: missing scope audit_logs:read"));
        let (items, _) = report_json(&app, "/v1/reports/audit-logs?activity_type=4").await;
        assert_eq!(items.len(), 28);
        let since = (Utc::now() - chrono::Duration::hours(5)).to_rfc3339();
        let (items, _) = report_json(
            &app,
            &format!("/v1/reports/audit-logs?since={}", urlencode(&since)),
        )
        .await;
        assert_eq!(items.len(), 4, "entries 1..4 hours old of workspaces 0..3");
        let (items, _) = report_json(
            &app,
            &format!(
                "/v1/reports/audit-logs?workspace_id={}",
                fleet.workspaces[3].0
            ),
        )
        .await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["activity_type"], 4);
        let _ = fleet.flotilla_id(&fleet.workspaces[0].1);
        app.stop().await;
    }
);

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

both!(a_second_sync_reads_audit_logs_incrementally, |backend| {
    let app = TestApp::start(backend).await;
    let fleet = seed_fleet(&app, 3).await;
    let (op, _) = sync(&app, false).await;
    assert_eq!(op["status"], "succeeded");
    let first: Vec<_> = app
        .sim
        .request_log()
        .into_iter()
        .filter(|r| r.path == "/api/v2/audit-logs")
        .collect();
    assert!(
        first
            .iter()
            .all(|r| !r.query.clone().unwrap_or_default().contains("start_date")),
        "a first sync reads everything"
    );
    for (_, ws) in &fleet.workspaces {
        app.sim.seed_audit_log(ws, 5, Utc::now());
    }
    app.sim.clear_request_log();
    let (op, _) = sync(&app, false).await;
    assert_eq!(op["status"], "succeeded");
    let audit_calls: Vec<_> = app
        .sim
        .request_log()
        .into_iter()
        .filter(|r| r.path == "/api/v2/audit-logs")
        .collect();
    assert_eq!(audit_calls.len(), 3);
    for r in &audit_calls {
        assert!(
            r.query.clone().unwrap_or_default().contains("start_date="),
            "{:?}",
            r.query
        );
    }
    // Each entry once, old and new.
    let (items, _) = report_json(&app, "/v1/reports/audit-logs").await;
    let ids: BTreeSet<String> = items.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(ids.len(), items.len());
    let mut want = BTreeSet::new();
    for (_, ws) in &fleet.workspaces {
        want.extend(
            app.sim
                .workspace(ws)
                .unwrap()
                .audit_logs
                .into_iter()
                .map(|a| a.id),
        );
    }
    assert_eq!(ids, want);
    assert_eq!(items.len(), 9, "two seeded and one new entry per workspace");
    app.stop().await;
});

both!(
    a_dry_run_sync_reports_counts_and_stores_nothing,
    |backend| {
        let app = TestApp::start(backend).await;
        let (id, _) = app.register("a", &[]).await;
        let (op, targets) = sync(&app, true).await;
        assert_eq!(op["status"], "succeeded");
        assert_eq!(targets[0]["code"], "dry_run");
        let members = targets[0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["item"] == "members")
            .unwrap()
            .clone();
        assert_eq!(
            members,
            json!({ "item": "members", "action": "would_sync", "detail": "1" })
        );
        assert_eq!(count(&app.db, "inventory_snapshot").await, 0);
        assert_eq!(count(&app.db, "inventory_member").await, 0);
        let (status, page) = app.get("/v1/reports/access").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["items"], json!([]));
        assert_eq!(page["missing_snapshots"][0]["workspace_id"], id.to_string());
        app.stop().await;
    }
);

both!(
    reports_follow_the_access_matrix_and_label_scope,
    |backend| {
        let app = TestApp::start(backend).await;
        let (east, _) = app.register("e", &["east"]).await;
        app.register("w", &["west"]).await;
        let (op, _) = sync(&app, false).await;
        assert_eq!(op["status"], "succeeded");
        let store = Store::new(app.db.clone());
        let viewer = "flt_test_viewer_token_0123456789";
        let manager = "flt_test_manager_token_012345678";
        flotilla_service::auth::insert_operator(
            &store,
            "v",
            "viewer",
            &[],
            &SecretString::from(viewer),
            false,
        )
        .await
        .unwrap();
        flotilla_service::auth::insert_operator(
            &store,
            "m",
            "manager",
            &["east".into()],
            &SecretString::from(manager),
            false,
        )
        .await
        .unwrap();
        let get = |token: &'static str, path: &'static str| {
            let app = &app;
            async move {
                app.call_as(token, reqwest::Method::GET, path, None, &[])
                    .await
            }
        };
        for path in ["/v1/reports/access", "/v1/reports/api-keys"] {
            let (status, err) = get(viewer, path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(err["error"]["code"], "permission_denied");
        }
        for path in ["/v1/reports/tags", "/v1/reports/audit-logs"] {
            assert_eq!(get(viewer, path).await.0, StatusCode::OK, "{path}");
        }
        for path in [
            "/v1/reports/access",
            "/v1/reports/api-keys",
            "/v1/reports/tags",
        ] {
            let (status, page) = get(manager, path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            let ws: BTreeSet<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| s(&r["workspace_id"]))
                .collect();
            assert_eq!(ws, BTreeSet::from([east.to_string()]), "{path}");
        }
        let (status, _) = app
            .http
            .get(format!("{}/v1/reports/access", app.url))
            .send()
            .await
            .map(|r| (r.status(), ()))
            .unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        app.stop().await;
    }
);

both!(
    bad_report_queries_are_refused_with_specific_codes,
    |backend| {
        let app = TestApp::start(backend).await;
        for (path, code) in [
            ("/v1/reports/access?format=xml", "invalid_format"),
            ("/v1/reports/access?role=superuser", "invalid_role"),
            ("/v1/reports/access?email=nobody", "invalid_email"),
            ("/v1/reports/access?workspace_id=nope", "invalid_id"),
            ("/v1/reports/access?label=bad%20label", "invalid_label"),
            ("/v1/reports/access?limit=0", "invalid_limit"),
            ("/v1/reports/access?cursor=garbage", "invalid_cursor"),
            ("/v1/reports/access?colour=blue", "invalid_query"),
            ("/v1/reports/api-keys?flag=all_all,scary", "invalid_flag"),
            ("/v1/reports/audit-logs?since=yesterday", "invalid_time"),
            (
                "/v1/reports/audit-logs?activity_type=x",
                "invalid_activity_type",
            ),
            (
                "/v1/reports/audit-logs?since=2026-02-01&until=2026-01-01",
                "invalid_time_range",
            ),
        ] {
            let (status, err) = app.get(path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
            assert_eq!(err["error"]["code"], code, "{path}: {err}");
        }
        let (status, err) =
        app.post("/v1/operations", json!({ "kind": "inventory.sync", "targets": { "all": true }, "params": { "x": 1 } })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"]["code"], "invalid_params");
        assert_eq!(app.operation_count().await, 0);
        app.stop().await;
    }
);

both!(the_schedule_creates_one_sync_per_interval_slot, |backend| {
    let app = TestApp::start(backend).await;
    let store = Store::new(app.db.clone());
    let now = now_ms();
    assert_eq!(
        schedule::tick(&store, 3600, now).await.unwrap(),
        Tick::NoWorkspaces
    );
    app.register("a", &[]).await;
    let Tick::Created(id) = schedule::tick(&store, 3600, now).await.unwrap() else {
        panic!("a sync is created")
    };
    // Two replicas ticking at once: one sees it in progress (or the slot taken), none adds one.
    let again = schedule::tick(&store, 3600, now).await.unwrap();
    assert!(
        matches!(again, Tick::InProgress | Tick::SlotTaken),
        "{again:?}"
    );
    let op = app.wait_done(id).await;
    assert_eq!(op["status"], "succeeded");
    assert_eq!(op["created_by"], Value::Null);
    assert_eq!(
        schedule::tick(&store, 3600, now).await.unwrap(),
        Tick::SlotTaken
    );
    assert_eq!(app.operation_count().await, 1);
    app.stop().await;

    // Wired into serve: with an interval set, a sync appears on its own.
    let app =
        TestApp::start_with(backend, Default::default(), |c| c.sync_interval_seconds = 1).await;
    app.register("b", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = app.get("/v1/operations?kind=inventory.sync").await;
        if let Some(op) = page["items"].as_array().and_then(|a| a.first()) {
            assert_eq!(op["created_by"], Value::Null);
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled sync appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
});
