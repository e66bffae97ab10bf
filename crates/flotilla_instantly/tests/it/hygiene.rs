//! Request hygiene: headers, no secrets in Debug, cheap clients over a shared pool.

use flotilla_instantly::{
    Client, ClientConfig, CreateMember, ListCampaigns, Role, default_user_agent,
};
use flotilla_instantly_sim::SimConfig;
use futures::TryStreamExt;
use secrecy::SecretString;

use crate::common::{FAKE_KEY, sim_ws};

#[tokio::test]
async fn body_less_requests_send_no_content_type() {
    let t = sim_ws(SimConfig::default()).await;
    let c = &t.client;
    let campaign = t.sim.seed_campaign(&t.ws, "Outbound", 1);
    let m = c
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::View,
        })
        .await
        .unwrap();
    c.pause_campaign(&campaign).await.unwrap();
    c.activate_campaign(&campaign).await.unwrap();
    c.delete_member(&m.id).await.unwrap();
    let _: Vec<_> = c
        .list_campaigns(&ListCampaigns::default())
        .try_collect()
        .await
        .unwrap();

    let log = t.sim.request_log();
    assert_eq!(log.len(), 5);
    for r in &log {
        assert_eq!(r.status, 200, "{} {}", r.method, r.path);
        assert_eq!(r.user_agent.as_deref(), Some(default_user_agent().as_str()));
        if r.method == "POST" && r.path == "/api/v2/workspace-members" {
            assert_eq!(r.content_type.as_deref(), Some("application/json"));
            assert_eq!(r.body.as_ref().unwrap()["role"], "view");
        } else {
            assert_eq!(r.content_type, None, "{} {}", r.method, r.path);
        }
    }
    assert!(log.iter().any(|r| r.method == "DELETE"));
    assert!(log.iter().any(|r| r.path.ends_with("/pause")));
    assert!(default_user_agent().starts_with("flotilla/"));
}

#[test]
fn debug_never_shows_the_key() {
    let key = "test-key-not-real-debug-9";
    let mut cfg = ClientConfig::new(
        "http://127.0.0.1:9".parse().unwrap(),
        SecretString::from(key),
    );
    cfg.as_workspace = Some("sub-ws".into());
    assert!(!format!("{cfg:?}").contains(key));
    assert!(format!("{cfg:?}").contains("sub-ws"));
    let client = Client::new(cfg).unwrap();
    assert!(!format!("{client:?}").contains(key));
    assert!(!format!("{:?}", client.clone()).contains(key));
}

#[test]
fn bad_config_is_refused_without_echoing_the_key() {
    let key = "bad\nkey-not-real";
    let cfg = ClientConfig::new(
        "http://127.0.0.1:9".parse().unwrap(),
        SecretString::from(key),
    );
    let err = Client::new(cfg).unwrap_err();
    assert_eq!(err.kind(), flotilla_instantly::ErrorKind::InvalidRequest);
    assert!(!err.to_string().contains("key-not-real"));
    let cfg = ClientConfig::new(
        "mailto:a@x.com".parse().unwrap(),
        SecretString::from(FAKE_KEY),
    );
    assert!(Client::new(cfg).is_err());
}

#[tokio::test]
async fn many_clients_share_one_connection_pool() {
    let t = sim_ws(SimConfig::default()).await;
    let http = reqwest::Client::new();
    let other = t.sim.create_workspace("Other");
    let mut seen = Vec::new();
    for ws in [&t.ws, &other] {
        let key = t.sim.create_key(ws, "k", &["all:all"]);
        let cfg = ClientConfig::new(
            t.sim.base_url().parse().unwrap(),
            SecretString::from(key.key),
        );
        let c = Client::with_http(cfg, http.clone()).unwrap();
        seen.push(c.current_workspace().await.unwrap().id);
    }
    assert_eq!(seen, [t.ws.clone(), other]);
}

#[tokio::test]
async fn a_trailing_slash_on_base_url_is_harmless() {
    let t = sim_ws(SimConfig::default()).await;
    // A trailing slash must not produce `//api/v2`.
    let key = t.sim.create_key(&t.ws, "k", &["all:all"]);
    let cfg = ClientConfig::new(
        format!("{}/", t.sim.base_url()).parse().unwrap(),
        SecretString::from(key.key),
    );
    let c = Client::new(cfg).unwrap();
    assert_eq!(c.current_workspace().await.unwrap().id, t.ws);
    assert_eq!(
        t.sim.request_log().last().unwrap().path,
        "/api/v2/workspaces/current"
    );
}
