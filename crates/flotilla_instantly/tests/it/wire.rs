//! wiremock: exact fault shapes the simulator cannot produce.

use std::time::{Duration, Instant};

use flotilla_instantly::{Client, CreateMember, ErrorKind, ListAccounts, RetryPolicy, Role};
use futures::TryStreamExt;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{FAKE_KEY, config, fast_retry};

const CURRENT: &str = "/api/v2/workspaces/current";
const MEMBERS: &str = "/api/v2/workspace-members";

fn workspace_json() -> serde_json::Value {
    json!({"id": "ws-1", "name": "Acme", "owner": "u-1",
           "timestamp_created": "2026-03-05T23:09:47.274Z", "some_new_field": [1, 2]})
}

fn member_json() -> serde_json::Value {
    json!({"id": "m-1", "email": "a@x.com", "role": "editor", "accepted": false,
           "user_id": "u-2", "workspace_id": "ws-1"})
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn html_502_from_a_proxy_keeps_a_short_snippet_and_is_retried() {
    let server = MockServer::start().await;
    let page = format!(
        "<html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
        "nginx ".repeat(500)
    );
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(ResponseTemplate::new(502).set_body_raw(page, "text/html"))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let err = client.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(502));
    assert!(err.body.is_none());
    let snippet = err.snippet.as_deref().unwrap();
    assert!(snippet.contains("502 Bad Gateway"), "{snippet}");
    assert!(
        snippet.chars().count() <= 201,
        "snippet too long: {}",
        snippet.len()
    );
    assert_eq!(err.message(), snippet);
    assert!(err.is_transient());
    assert_eq!(err.attempts(), 3);
    assert_eq!(requests(&server).await, 3);
    assert_eq!(err.endpoint(), "GET /api/v2/workspaces/current");
}

#[tokio::test]
async fn cloudflare_html_403_is_forbidden_without_a_scope_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MEMBERS))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            "<!DOCTYPE html><html><title>Access denied | api.instantly.ai used Cloudflare</title>\
             <body>Error code: 1010</body></html>",
            "text/html",
        ))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let err = client
        .list_members()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(err.status(), Some(403));
    // Not Instantly's envelope, so not a scope problem.
    assert_eq!(err.required_scope(), None);
    assert!(err.message().contains("1010"));
    assert_eq!(err.attempts(), 1);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn retry_on_503_then_success() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"statusCode": 503, "error": "Service Unavailable", "message": "try later"}),
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(workspace_json()))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let ws = client.current_workspace().await.unwrap();
    assert_eq!(ws.id, "ws-1");
    assert_eq!(ws.owner, "u-1");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn create_is_not_retried_on_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MEMBERS))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"statusCode": 500, "error": "Internal Server Error", "message": "boom"}),
        ))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let err = client
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::Editor,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.message(), "boom");
    assert_eq!(err.body.as_ref().unwrap().status_code, Some(500));
    assert_eq!(err.attempts(), 1);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn create_is_retried_on_429() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MEMBERS))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MEMBERS))
        .respond_with(ResponseTemplate::new(200).set_body_json(member_json()))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let m = client
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::Editor,
        })
        .await
        .unwrap();
    assert_eq!(m.role, Role::Editor);
    assert!(!m.accepted);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn create_is_not_retried_on_timeout_but_a_read_is() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_delay(Duration::from_secs(3));
    Mock::given(method("POST"))
        .and(path(MEMBERS))
        .respond_with(slow.clone().set_body_json(member_json()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(slow.set_body_json(workspace_json()))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri(), FAKE_KEY);
    cfg.timeout = Duration::from_millis(200);
    cfg.retry = fast_retry(2);
    let client = Client::new(cfg).unwrap();

    let err = client
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::View,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), 1);

    let err = client.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), 2);
    let got = server.received_requests().await.unwrap();
    assert_eq!(
        got.iter().filter(|r| r.method.as_str() == "POST").count(),
        1
    );
    assert_eq!(got.iter().filter(|r| r.method.as_str() == "GET").count(), 2);
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(workspace_json()))
        .mount(&server)
        .await;
    let mut cfg = config(&server.uri(), FAKE_KEY);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(5),
        max_elapsed: Duration::from_secs(10),
    };
    let client = Client::new(cfg).unwrap();

    let started = Instant::now();
    let ws = client.current_workspace().await.unwrap();
    assert_eq!(ws.name, "Acme");
    // Without Retry-After the backoff would be at most 1 ms; the header asked for 1 s.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn retry_after_beyond_the_time_budget_stops_at_once() {
    for header in [
        "30".to_owned(),
        (chrono::Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(CURRENT))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", header.as_str()))
            .mount(&server)
            .await;
        let mut cfg = config(&server.uri(), FAKE_KEY);
        // The backoff alone (≤ 1 ms) would fit the budget; the Retry-After delay does not.
        cfg.retry = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(2),
        };
        let client = Client::new(cfg).unwrap();
        let err = client.current_workspace().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{header}");
        assert_eq!(err.attempts(), 1, "{header}");
        assert_eq!(requests(&server).await, 1);
    }
}

#[tokio::test]
async fn connect_error_to_a_closed_port_is_retried_even_for_creates() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(config(&format!("http://{addr}"), FAKE_KEY)).unwrap();

    let err = client.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.status(), None);
    assert!(err.is_transient());
    assert_eq!(err.attempts(), 3);

    // Connection refused: the request never left, so retrying a create cannot duplicate it.
    let err = client
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::View,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts(), 3);
    assert!(!err.to_string().contains(FAKE_KEY));
}

#[tokio::test]
async fn a_200_with_an_error_body_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"error": "ACC_AUTH_ERROR"})))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();
    let err = client.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(err.status(), Some(200));
    assert_eq!(err.message(), "ACC_AUTH_ERROR");
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn a_200_with_html_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CURRENT))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<html>captive portal</html>", "text/html"),
        )
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();
    let err = client.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.snippet.as_deref().unwrap().contains("captive portal"));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn cursors_are_url_encoded_and_a_repeated_cursor_stops_the_stream() {
    // instantly-api.md §16: the newer /accounts cursor is `timestamp_created&email`.
    let cursor = "2026-03-05T23:09:47.274Z&a+b@x.com";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/accounts"))
        .and(query_param("starting_after", cursor))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [{"email": "b@x.com", "status": 2}],
            // The server keeps answering the same cursor: the client must not loop.
            "next_starting_after": cursor,
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": [{"email": "a@x.com", "status": 1, "warmup_status": 1}],
            "next_starting_after": cursor,
        })))
        .mount(&server)
        .await;
    let client = Client::new(config(&server.uri(), FAKE_KEY)).unwrap();

    let accounts: Vec<_> = client
        .list_accounts(&ListAccounts {
            tag_ids: vec!["t1".into(), "t2".into()],
            search: None,
        })
        .try_collect()
        .await
        .unwrap();
    let emails: Vec<_> = accounts.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails, ["a@x.com", "b@x.com"]);
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    let second: Vec<(String, String)> = got[1].url.query_pairs().into_owned().collect();
    assert!(second.contains(&("starting_after".into(), cursor.into())));
    assert!(second.contains(&("tag_ids".into(), "t1,t2".into())));
    // The raw query escapes the cursor's `&` and `+`.
    assert!(!got[1].url.query().unwrap().contains("&a+b"));
}
