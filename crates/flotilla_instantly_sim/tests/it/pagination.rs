use flotilla_instantly_sim::{LastPageCursor, SimConfig};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{Api, Env, env, env_with};

/// Owner + 24 seeded members = 25.
fn seed_members(e: &Env) -> Vec<String> {
    let mut ids = vec![e.sim.workspace(&e.ws).unwrap().members[0].id.clone()];
    for i in 0..24 {
        ids.push(
            e.sim
                .seed_member(&e.ws, &format!("m{i:02}@x.example"), "view", true),
        );
    }
    ids
}

/// Walks the list, returning the ids and each page's raw cursor field.
async fn walk(api: &Api, limit: usize, max_pages: usize) -> (Vec<String>, Vec<Option<Value>>) {
    let mut ids = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages {
        let path = match &cursor {
            Some(c) => format!("/workspace-members?limit={limit}&starting_after={c}"),
            None => format!("/workspace-members?limit={limit}"),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, StatusCode::OK);
        ids.extend(
            r.items()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        let next = r
            .body
            .as_object()
            .unwrap()
            .get("next_starting_after")
            .cloned();
        cursors.push(next.clone());
        match next.as_ref().and_then(Value::as_str) {
            Some(c) if !c.is_empty() && !r.items().is_empty() => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    (ids, cursors)
}

#[tokio::test]
async fn pages_follow_the_cursor_in_creation_order_and_omit_it_at_the_end() {
    let e = env().await;
    let all = seed_members(&e);
    let api = Api::new(&e.sim, &e.key);
    let (ids, cursors) = walk(&api, 10, 10).await;
    assert_eq!(ids, all, "every item once, in creation order");
    assert_eq!(cursors.len(), 3);
    assert_eq!(
        cursors[0],
        Some(Value::String(all[9].clone())),
        "cursor = id of the last item"
    );
    assert_eq!(cursors[1], Some(Value::String(all[19].clone())));
    assert_eq!(cursors[2], None, "omitted on the last page");

    // Exactly a page's worth: no cursor on the full last page.
    let (ids, cursors) = walk(&api, 25, 10).await;
    assert_eq!(ids.len(), 25);
    assert_eq!(cursors, vec![None]);
}

#[tokio::test]
async fn default_limit_is_ten() {
    let e = env().await;
    seed_members(&e);
    let r = Api::new(&e.sim, &e.key).get("/workspace-members").await;
    assert_eq!(r.items().len(), 10);
}

#[tokio::test]
async fn limit_out_of_range_is_400() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let r = api.get("/workspace-members?limit=101").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "querystring/limit must be <= 100");
    let r = api.get("/api-keys?limit=0").await;
    assert_eq!(r.message(), "querystring/limit must be >= 1");
    let r = api.get("/custom-tags?limit=abc").await;
    assert_eq!(r.message(), "querystring/limit must be integer");
    assert_eq!(
        api.get("/audit-logs?limit=1000").await.status,
        StatusCode::OK
    );
    let r = api.get("/audit-logs?limit=1001").await;
    assert_eq!(r.message(), "querystring/limit must be <= 1000");
}

async fn last_page_cursor(mode: LastPageCursor) -> (Env, Vec<String>, Vec<Option<Value>>) {
    let e = env_with(SimConfig {
        last_page_cursor: mode,
        ..SimConfig::default()
    })
    .await;
    let all = seed_members(&e);
    let api = Api::new(&e.sim, &e.key);
    let (ids, cursors) = walk(&api, 10, 10).await;
    assert_eq!(ids, all, "{mode:?}: every item exactly once");
    (e, all, cursors)
}

#[tokio::test]
async fn last_page_null_quirk() {
    let (_, _, cursors) = last_page_cursor(LastPageCursor::Null).await;
    assert_eq!(cursors.last().unwrap(), &Some(Value::Null));
}

#[tokio::test]
async fn last_page_empty_string_quirk() {
    let (_, _, cursors) = last_page_cursor(LastPageCursor::Empty).await;
    assert_eq!(cursors.last().unwrap(), &Some(Value::String(String::new())));
}

#[tokio::test]
async fn last_page_repeat_quirk_keeps_the_cursor_with_empty_pages() {
    let (e, all, cursors) = last_page_cursor(LastPageCursor::RepeatLast).await;
    // The walk stopped on the empty page after the last real one.
    assert_eq!(cursors.len(), 4);
    let last = all.last().unwrap().clone();
    assert_eq!(
        cursors[2],
        Some(Value::String(last.clone())),
        "last page still has a cursor"
    );
    assert_eq!(
        cursors[3],
        Some(Value::String(last.clone())),
        "empty page repeats it"
    );
    let r = Api::new(&e.sim, &e.key)
        .get(&format!("/workspace-members?starting_after={last}"))
        .await;
    assert!(r.items().is_empty());
    assert_eq!(r.body["next_starting_after"], last.as_str());
}

#[tokio::test]
async fn accounts_page_by_email() {
    let e = env().await;
    for i in 0..5 {
        e.sim.seed_account(&e.ws, &format!("a{i}@mail.example"), 1);
    }
    let api = Api::new(&e.sim, &e.key);
    let r = api.get("/accounts?limit=2").await;
    assert_eq!(r.body["next_starting_after"], "a1@mail.example");
    let r = api
        .get("/accounts?limit=2&starting_after=a1%40mail.example")
        .await;
    let emails: Vec<&str> = r
        .items()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["a2@mail.example", "a3@mail.example"]);
    // The newer `timestamp_created&email` cursor is accepted too.
    let r = api
        .get("/accounts?limit=2&starting_after=2026-01-01T00%3A00%3A00.000Z%26a3%40mail.example")
        .await;
    assert_eq!(r.items().len(), 1);
    assert_eq!(r.items()[0]["email"], "a4@mail.example");
    assert!(r.body.get("next_starting_after").is_none());
}
