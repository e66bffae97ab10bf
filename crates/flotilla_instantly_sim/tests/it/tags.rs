use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env};

fn ids(r: &crate::Resp, field: &str) -> Vec<String> {
    let mut v: Vec<String> = r
        .items()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn toggle_resource_then_filter_campaigns_by_tag_in_both_encodings() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let tag_a = api
        .post("/custom-tags", json!({"label": "VIP", "description": null}))
        .await;
    assert_eq!(tag_a.status, StatusCode::OK);
    let tag_a = tag_a.body["id"].as_str().unwrap().to_owned();
    let tag_b = e.sim.seed_tag(&e.ws, "Q3");
    let c: Vec<String> = (0..3)
        .map(|i| e.sim.seed_campaign(&e.ws, &format!("c{i}"), 1))
        .collect();

    let r = api
        .post(
            "/custom-tags/toggle-resource",
            json!({"tag_ids": [tag_a], "resource_type": 2, "resource_ids": [c[0], c[1]], "assign": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"success": true}));
    // Assigning twice does not duplicate mappings.
    api.post(
        "/custom-tags/toggle-resource",
        json!({"tag_ids": [tag_a], "resource_type": 2, "resource_ids": [c[0]], "assign": true}),
    )
    .await;
    api.post(
        "/custom-tags/toggle-resource",
        json!({"tag_ids": [tag_b], "resource_type": 2, "resource_ids": [c[2]], "assign": true}),
    )
    .await;
    assert_eq!(e.sim.workspace(&e.ws).unwrap().tag_mappings.len(), 3);

    let mut want_a = vec![c[0].clone(), c[1].clone()];
    want_a.sort();
    assert_eq!(
        ids(&api.get(&format!("/campaigns?tag_ids={tag_a}")).await, "id"),
        want_a
    );
    let mut all = c.clone();
    all.sort();
    let comma = api
        .get(&format!("/campaigns?tag_ids={tag_a},{tag_b}"))
        .await;
    assert_eq!(ids(&comma, "id"), all, "comma-separated: any of the tags");
    let repeated = api
        .get(&format!("/campaigns?tag_ids={tag_a}&tag_ids={tag_b}"))
        .await;
    assert_eq!(
        ids(&repeated, "id"),
        all,
        "repeated parameter: any of the tags"
    );
    let encoded = api
        .get(&format!("/campaigns?tag_ids={tag_a}%2C{tag_b}"))
        .await;
    assert_eq!(ids(&encoded, "id"), all);

    // Unassign.
    api.post(
        "/custom-tags/toggle-resource",
        json!({"tag_ids": [tag_a], "resource_type": 2, "resource_ids": [c[0]], "assign": false}),
    )
    .await;
    assert_eq!(
        ids(&api.get(&format!("/campaigns?tag_ids={tag_a}")).await, "id"),
        vec![c[1].clone()]
    );

    // Tags by resource, mappings by resource.
    let r = api
        .get(&format!("/custom-tags?resource_ids={}", c[2]))
        .await;
    assert_eq!(ids(&r, "id"), vec![tag_b.clone()]);
    let r = api
        .get(&format!(
            "/custom-tag-mappings?resource_ids={},{}",
            c[1], c[2]
        ))
        .await;
    assert_eq!(r.items().len(), 2);
}

#[tokio::test]
async fn accounts_are_tagged_by_email() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let tag = e.sim.seed_tag(&e.ws, "warm");
    e.sim.seed_account(&e.ws, "a@mail.example", 1);
    e.sim.seed_account(&e.ws, "b@mail.example", 1);
    let r = api
        .post(
            "/custom-tags/toggle-resource",
            json!({"tag_ids": [tag], "resource_type": 1, "resource_ids": ["b@mail.example"], "assign": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.get(&format!("/accounts?tag_ids={tag}")).await;
    assert_eq!(ids(&r, "email"), vec!["b@mail.example".to_owned()]);
}

#[tokio::test]
async fn toggle_validation_and_unknown_tag() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api
        .post(
            "/custom-tags/toggle-resource",
            json!({"tag_ids": [], "resource_type": 3, "resource_ids": [], "assign": true}),
        )
        .await;
    assert_eq!(
        r.message(),
        "body/resource_type must be equal to one of the allowed values"
    );
    let r = api
        .post(
            "/custom-tags/toggle-resource",
            json!({"tag_ids": [], "resource_type": 2, "assign": true}),
        )
        .await;
    assert_eq!(
        r.message(),
        "body must have required property 'resource_ids'"
    );
    let r = api
        .post(
            "/custom-tags/toggle-resource",
            json!({"tag_ids": ["019cc043-af91-783e-9927-3daab1cd9277"], "resource_type": 2, "resource_ids": ["x"], "assign": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(e.sim.workspace(&e.ws).unwrap().tag_mappings.is_empty());
}

#[tokio::test]
async fn tag_crud_and_delete_removes_mappings() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let t = api.post("/custom-tags", json!({"label": "Old"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = e.sim.seed_campaign(&e.ws, "c", 1);
    e.sim.seed_tag_mapping(&e.ws, &t, 2, &c);
    let r = api
        .patch(
            &format!("/custom-tags/{t}"),
            json!({"label": "New", "description": "d"}),
        )
        .await;
    assert_eq!(r.body["label"], "New");
    assert_eq!(
        api.get(&format!("/custom-tags/{t}")).await.body["description"],
        "d"
    );
    assert_eq!(
        ids(&api.get("/custom-tags?search=ne").await, "id"),
        vec![t.clone()]
    );
    let r = api.delete(&format!("/custom-tags/{t}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let state = e.sim.workspace(&e.ws).unwrap();
    assert!(state.tags.is_empty());
    assert!(state.tag_mappings.is_empty());
    assert_eq!(
        api.get(&format!("/custom-tags/{t}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pause_and_activate_campaigns_with_audit() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let c = e.sim.seed_campaign(&e.ws, "Spring", 1);
    let r = api.post(&format!("/campaigns/{c}/pause"), json!({})).await;
    assert_eq!(r.body["status"], 2);
    // Body-less action POST (no Content-Type) works too.
    let r =
        Api::send(api.request(reqwest::Method::POST, &format!("/campaigns/{c}/activate"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], 1);
    let state = e.sim.workspace(&e.ws).unwrap();
    assert_eq!(state.campaigns[0].status, 1);
    let types: Vec<i64> = state.audit_logs.iter().map(|l| l.activity_type).collect();
    assert_eq!(types, vec![5, 4]);
    assert_eq!(state.audit_logs[0].campaign_id.as_deref(), Some(c.as_str()));
    assert_eq!(
        ids(&api.get("/campaigns?status=1&search=spr").await, "id"),
        vec![c]
    );
}
