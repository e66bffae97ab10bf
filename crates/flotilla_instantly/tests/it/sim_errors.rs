//! Error classification against the simulator's real answers.

use flotilla_instantly::{Client, CreateMember, ErrorKind, Role, Scope};
use flotilla_instantly_sim::SimConfig;
use futures::TryStreamExt;

use crate::common::{FAKE_KEY, config, sim_client, sim_ws};

#[tokio::test]
async fn unknown_key_is_unauthorized() {
    let t = sim_ws(SimConfig::default()).await;
    let c = Client::new(config(&t.sim.base_url(), FAKE_KEY)).unwrap();
    let err = c.current_workspace().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.body.as_ref().unwrap().status_code, Some(401));
    assert!(!err.message().is_empty());
    assert_eq!(err.attempts(), 1);
    assert!(!err.is_transient());
    assert!(!err.to_string().contains(FAKE_KEY));
}

#[tokio::test]
async fn unpaid_workspace_is_payment_required() {
    let t = sim_ws(SimConfig::default()).await;
    t.sim.set_paid(&t.ws, false);
    let err = t
        .client
        .list_members()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PaymentRequired);
    assert_eq!(err.status(), Some(402));
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn missing_scope_is_forbidden_and_names_the_scope() {
    let t = sim_ws(SimConfig::default()).await;
    let reader = sim_client(&t.sim, &t.ws, &["campaigns:read"]);
    let err = reader
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::View,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(err.required_scope(), Some(&Scope::WORKSPACE_MEMBERS_CREATE));
    assert!(err.to_string().contains("workspace_members:create"));
    assert_eq!(err.endpoint(), "POST /api/v2/workspace-members");
    assert_eq!(err.attempts(), 1);

    let err = reader
        .list_api_keys()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(err.required_scope(), Some(&Scope::API_KEYS_READ));
    // Nothing was created.
    assert_eq!(t.sim.workspace(&t.ws).unwrap().members.len(), 1);
}

#[tokio::test]
async fn unknown_id_is_not_found() {
    let t = sim_ws(SimConfig::default()).await;
    let err = t
        .client
        .get_custom_tag("019cc043-af91-783e-9927-3daab1cd9277")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn refused_role_is_invalid_request_with_instantlys_message() {
    let t = sim_ws(SimConfig::default()).await;
    let err = t
        .client
        .create_member(&CreateMember {
            email: "a@x.com".into(),
            role: Role::Owner,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.body.as_ref().unwrap().error.as_deref(),
        Some("Bad Request")
    );
    assert!(!err.message().is_empty());
    assert_eq!(err.attempts(), 1);
    assert_eq!(t.sim.workspace(&t.ws).unwrap().members.len(), 1);
}

#[tokio::test]
async fn dropped_connections_are_retried_for_reads() {
    // Deterministic fault pattern: same seed, same (sequential) request order.
    let t = sim_ws(SimConfig {
        drop_rate: 0.3,
        seed: 7,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = crate::common::sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.retry = crate::common::fast_retry(8);
    let c = Client::new(cfg).unwrap();
    for _ in 0..20 {
        assert_eq!(c.current_workspace().await.unwrap().id, t.ws);
    }
    let counters = t.sim.counters(&t.ws);
    assert!(counters.dropped > 0, "{counters:?}");
    assert_eq!(counters.requests, 20 + counters.dropped);
}
