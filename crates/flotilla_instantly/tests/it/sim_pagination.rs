//! Pagination against the simulator: every page once, every last-page quirk, limits in range.

use std::collections::HashSet;

use flotilla_instantly::{Client, ListAuditLogs, ListCustomTags};
use flotilla_instantly_sim::{LastPageCursor, SimConfig};
use futures::{StreamExt, TryStreamExt};

use crate::common::{sim_config, sim_ws};

fn query_limits(sim: &flotilla_instantly_sim::Simulator, path: &str) -> Vec<u32> {
    sim.request_log()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| {
            let q = r.query.unwrap_or_default();
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "limit")
                .map(|(_, v)| v.parse().unwrap())
                .expect("limit sent")
        })
        .collect()
}

#[tokio::test]
async fn members_across_pages_without_duplicates() {
    let t = sim_ws(SimConfig::default()).await;
    for i in 0..250 {
        t.sim
            .seed_member(&t.ws, &format!("m{i:03}@x.com"), "view", i % 2 == 0);
    }
    let members: Vec<_> = t.client.list_members().try_collect().await.unwrap();
    assert_eq!(members.len(), 251, "250 seeded + the owner");
    let ids: HashSet<_> = members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 251);
    let limits = query_limits(&t.sim, "/api/v2/workspace-members");
    assert_eq!(limits, [100, 100, 100]);
}

#[tokio::test]
async fn every_last_page_cursor_quirk_ends_the_stream() {
    for mode in [
        LastPageCursor::Omit,
        LastPageCursor::Null,
        LastPageCursor::Empty,
        LastPageCursor::RepeatLast,
    ] {
        // 25 (a partial last page) and 20 (an exact multiple of the page size).
        for n in [25usize, 20] {
            let t = sim_ws(SimConfig {
                last_page_cursor: mode,
                ..SimConfig::default()
            })
            .await;
            for i in 0..n {
                t.sim.seed_tag(&t.ws, &format!("tag-{i:02}"));
            }
            let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
            cfg.page_size = 10;
            let c = Client::new(cfg).unwrap();
            let tags: Vec<_> = c
                .list_custom_tags(&ListCustomTags::default())
                .try_collect()
                .await
                .unwrap();
            let labels: HashSet<_> = tags.iter().map(|x| x.label.clone()).collect();
            assert_eq!(tags.len(), n, "{mode:?} n={n}");
            assert_eq!(labels.len(), n, "{mode:?} n={n}: duplicates");
            let requests = query_limits(&t.sim, "/api/v2/custom-tags").len();
            // ceil(n/10) pages plus at most one empty page to learn the end.
            assert!(
                requests <= n.div_ceil(10) + 1,
                "{mode:?} n={n}: {requests} requests"
            );
        }
    }
}

#[tokio::test]
async fn streams_are_lazy() {
    let t = sim_ws(SimConfig::default()).await;
    for i in 0..30 {
        t.sim.seed_tag(&t.ws, &format!("tag-{i:02}"));
    }
    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.page_size = 10;
    let c = Client::new(cfg).unwrap();
    let stream = c.list_custom_tags(&ListCustomTags::default());
    assert!(query_limits(&t.sim, "/api/v2/custom-tags").is_empty());
    let first: Vec<_> = stream.take(5).try_collect().await.unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(query_limits(&t.sim, "/api/v2/custom-tags").len(), 1);
}

#[tokio::test]
async fn limit_is_never_above_the_endpoint_maximum() {
    let t = sim_ws(SimConfig::default()).await;
    let now = chrono::Utc::now();
    for i in 0..5 {
        t.sim
            .seed_audit_log(&t.ws, 1, now - chrono::Duration::minutes(i));
    }
    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.page_size = 5000;
    cfg.audit_log_page_size = 5000;
    let c = Client::new(cfg).unwrap();
    let members: Vec<_> = c.list_members().try_collect().await.unwrap();
    assert_eq!(members.len(), 1);
    let logs: Vec<_> = c
        .list_audit_logs(&ListAuditLogs::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(logs.len(), 5);
    let _: Vec<_> = c.list_api_keys().try_collect().await.unwrap();
    assert_eq!(query_limits(&t.sim, "/api/v2/workspace-members"), [100]);
    assert_eq!(query_limits(&t.sim, "/api/v2/api-keys"), [100]);
    assert_eq!(query_limits(&t.sim, "/api/v2/audit-logs"), [1000]);
    assert!(t.sim.request_log().iter().all(|r| r.status == 200));

    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.page_size = 0;
    let c = Client::new(cfg).unwrap();
    t.sim.clear_request_log();
    let _: Vec<_> = c.list_members().try_collect().await.unwrap();
    assert_eq!(query_limits(&t.sim, "/api/v2/workspace-members"), [1]);
}
