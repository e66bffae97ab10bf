use flotilla_instantly_sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Api, env};

async fn ctl(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (StatusCode, Value) {
    let r = http.request(method, url).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_api_mirrors_the_library() {
    let sim = Simulator::spawn(SimConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("{}/_sim", sim.base_url());
    use reqwest::Method as M;

    let (s, ws) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces"),
        json!({"name": "Ctl"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (_, key) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws}/keys"),
        json!({"name": "k", "scopes": ["all:all"]}),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws}/members"),
        json!({"email": "m@x.example", "role": "editor", "accepted": true}),
    )
    .await;
    let (_, c) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws}/campaigns"),
        json!({"name": "c", "status": 1}),
    )
    .await;
    let (_, t) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws}/tags"),
        json!({"label": "t"}),
    )
    .await;
    let (s, _) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws}/tag-mappings"),
        json!({"tag_id": t["id"], "resource_type": 2, "resource_id": c["id"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let api = Api::new(&sim, &key);
    assert_eq!(api.get("/workspace-members").await.items().len(), 2);
    let tagged = api
        .get(&format!("/campaigns?tag_ids={}", t["id"].as_str().unwrap()))
        .await;
    assert_eq!(tagged.items().len(), 1);

    let (_, state) = ctl(
        &http,
        M::GET,
        format!("{base}/workspaces/{ws}"),
        json!(null),
    )
    .await;
    assert_eq!(state["members"].as_array().unwrap().len(), 2);
    assert!(
        !state.to_string().contains(&key),
        "snapshots never contain secrets"
    );
    let (_, counters) = ctl(
        &http,
        M::GET,
        format!("{base}/workspaces/{ws}/counters"),
        json!(null),
    )
    .await;
    assert_eq!(counters["requests"], 2);
    // Totals sum every workspace's counters.
    let (_, ws2) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces"),
        json!({"name": "Ctl 2"}),
    )
    .await;
    let ws2 = ws2["id"].as_str().unwrap().to_owned();
    let (_, key2) = ctl(
        &http,
        M::POST,
        format!("{base}/workspaces/{ws2}/keys"),
        json!({"name": "k", "scopes": ["all:all"]}),
    )
    .await;
    Api::new(&sim, key2["key"].as_str().unwrap())
        .get("/workspace-members")
        .await;
    let (_, totals) = ctl(&http, M::GET, format!("{base}/counters"), json!(null)).await;
    assert_eq!(totals["requests"], 3);
    assert_eq!(totals["rate_limited"], 0);
    assert_eq!(sim.total_counters().requests, 3);
    ctl(&http, M::DELETE, format!("{base}/requests"), json!(null)).await;
    let api2 = Api::new(&sim, &key);
    api2.get("/workspace-members").await;
    let (_, reqs) = ctl(&http, M::GET, format!("{base}/requests"), json!(null)).await;
    assert_eq!(reqs.as_array().unwrap().len(), 1);
    ctl(&http, M::DELETE, format!("{base}/requests"), json!(null)).await;
    assert!(sim.request_log().is_empty());

    // Down over HTTP, and back up over HTTP: /_sim stays reachable during an outage.
    ctl(&http, M::PUT, format!("{base}/down"), json!({"down": true})).await;
    assert!(
        api.request(M::GET, "/workspace-members")
            .send()
            .await
            .is_err()
    );
    ctl(
        &http,
        M::PUT,
        format!("{base}/down"),
        json!({"down": false}),
    )
    .await;
    assert_eq!(api.get("/workspace-members").await.status, StatusCode::OK);

    ctl(
        &http,
        M::PUT,
        format!("{base}/limits"),
        json!({"rps": 0, "rpm": 1}),
    )
    .await;
    assert_eq!(
        api.get("/workspace-members").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    ctl(
        &http,
        M::PUT,
        format!("{base}/limits"),
        json!({"rps": 0, "rpm": 0}),
    )
    .await;
    ctl(
        &http,
        M::PUT,
        format!("{base}/faults"),
        json!({"fail_rate": 1.0}),
    )
    .await;
    assert_eq!(
        api.get("/workspace-members").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let (s, _) = ctl(
        &http,
        M::GET,
        format!("{base}/workspaces/019cc043-af91-783e-9927-3daab1cd9277"),
        json!(null),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, ids) = ctl(&http, M::GET, format!("{base}/workspaces"), json!(null)).await;
    assert_eq!(ids, json!([ws, ws2]));
}

#[tokio::test]
async fn seed_demo_creates_usable_workspaces_with_over_privileged_keys() {
    let e = env().await;
    let demo = e.sim.seed_demo(3);
    assert_eq!(demo.len(), 3);
    assert_eq!(e.sim.workspace_ids().len(), 4);
    for d in &demo {
        let api = Api::new(&e.sim, &d.key);
        let members = api.get("/workspace-members").await;
        assert_eq!(members.status, StatusCode::OK);
        assert!(members.items().len() >= 4);
        assert_eq!(api.get("/campaigns").await.items().len(), 3);
        assert_eq!(api.get("/accounts").await.items().len(), 3);
        let state = e.sim.workspace(&d.workspace_id).unwrap();
        let broad = state
            .api_keys
            .iter()
            .filter(|k| k.scopes.iter().any(|s| s == "all:all"))
            .count();
        assert!(
            broad >= 2,
            "the flotilla key plus at least one over-privileged key"
        );
        assert!(!format!("{d:?}").contains(&d.key), "Debug hides the key");
    }
}

#[tokio::test]
async fn many_workspaces_scale() {
    let sim = Simulator::spawn(SimConfig::default()).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..10_000 {
        let ws = sim.create_workspace(&format!("w{i}"));
        sim.seed_member(&ws, "a@x.example", "admin", true);
        sim.seed_member(&ws, "b@x.example", "view", false);
        if i % 1000 == 0 {
            keys.push((ws.clone(), sim.create_key(&ws, "k", &["all:all"])));
        }
    }
    assert_eq!(sim.workspace_ids().len(), 10_000);
    for (ws, k) in keys {
        let r = Api::new(&sim, &k.key).get("/workspace-members").await;
        assert_eq!(r.items().len(), 3);
        assert_eq!(r.items()[0]["workspace_id"], ws.as_str());
    }
}
