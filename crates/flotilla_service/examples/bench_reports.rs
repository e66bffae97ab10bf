//! Benchmark of the reports and of `inventory.sync` (embedded SQLite default).
//!
//! `cargo run --release -p flotilla_service --example bench_reports [-- WORKSPACES]`
//!
//! 1. Stores snapshots of WORKSPACES (default 1,000) workspaces × 20 members and 5 keys
//!    directly through `flotilla_service::inventory`, then times every report over HTTP
//!    (first JSON page, every JSON page, the whole CSV, a filtered query) against a baseline
//!    measured in the same run: a plain `select count(*)` over the same rows.
//! 2. Runs a full `inventory.sync` of WORKSPACES simulated workspaces and reports its time and
//!    upstream calls, against a baseline of one plain member-list read per workspace made
//!    directly with the Instantly client at the engine's concurrency.

use std::time::{Duration, Instant};

use anyhow::Context;
use flotilla_instantly::{Client, ClientConfig};
use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_service::config::Config;
use flotilla_service::inventory::{
    ApiKeyRow, AuditRow, Inventory, MemberRow, ResourceState, Snapshot, TagRow, resource,
};
use flotilla_service::store::{Store, WorkspaceRow, now_ms};
use flotilla_vault::{Database, Keyring};
use futures::{StreamExt, TryStreamExt};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "flt_bench_admin_token_0123456789";
const RUNS: usize = 5;

struct Service {
    url: String,
    db: Database,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(db_path: &std::path::Path, instantly: &str) -> anyhow::Result<Service> {
    let db_url = format!("sqlite://{}", db_path.display());
    let db = Database::connect(&db_url).await?;
    db.migrate().await?;
    let config = Config::new(db_url, instantly.parse()?);
    let state =
        flotilla_service::app::prepare_with(config, db.clone(), Keyring::generate("bench")).await?;
    flotilla_service::auth::ensure_bootstrap_admin(&state.store, Some(&SecretString::from(TOKEN)))
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            if let Err(err) = flotilla_service::app::serve(state, listener, shutdown).await {
                eprintln!("serve: {err:#}");
            }
        }
    });
    Ok(Service {
        url,
        db,
        shutdown,
        task,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    f().await?; // warm-up
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        f().await?;
        runs.push(t.elapsed());
    }
    Ok(median(runs))
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let resp = http.get(url).bearer_auth(TOKEN).send().await?;
    anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
    Ok(resp.text().await?)
}

/// Walks every JSON page; returns the number of items.
async fn walk(http: &reqwest::Client, base: &str) -> anyhow::Result<usize> {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}{sep}limit=500&cursor={c}"),
            None => format!("{base}{sep}limit=500"),
        };
        let page: Value = serde_json::from_str(&get(http, &url).await?)?;
        n += page["items"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(n),
        }
    }
}

async fn count_baseline(db: &Database, sql: &'static str) -> anyhow::Result<Duration> {
    time(|| async move {
        sqlx::query(sql).fetch_one(db.pool()).await?;
        Ok(())
    })
    .await
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn bench_reports(n: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let svc = start(&dir.join("reports.db"), "http://127.0.0.1:9").await?;
    let store = Store::new(svc.db.clone());
    let inventory = Inventory::new(svc.db.clone());
    let now = now_ms();
    let mut tx = svc.db.pool().begin().await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ws = WorkspaceRow {
            id: Uuid::now_v7(),
            name: format!("client-{i:04}"),
            instantly_workspace_id: Uuid::now_v7().to_string(),
            mode: "direct".into(),
            admin_workspace_id: None,
            labels: vec![if i % 2 == 0 {
                "east".into()
            } else {
                "west".into()
            }],
            created_at: now,
            updated_at: now,
        };
        Store::insert_workspace(&mut tx, &ws).await?;
        ids.push(ws.id);
    }
    tx.commit().await?;
    let t = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let mut snap = Snapshot {
            workspace_id: *id,
            synced_at: now,
            ..Snapshot::default()
        };
        for r in resource::ALL {
            snap.resources.insert(r, ResourceState::Synced(0));
        }
        snap.members = (0..20)
            .map(|m| MemberRow {
                member_id: Uuid::now_v7().to_string(),
                email: if m == 0 {
                    "jane@agency.com".into()
                } else {
                    format!("user{m}@client{i}.example")
                },
                role: ["admin", "editor", "view", "owner"][m % 4].into(),
                accepted: m % 3 != 0,
                user_id: Some(Uuid::now_v7().to_string()),
                created_at: Some(now),
            })
            .collect();
        snap.api_keys = (0..5)
            .map(|k| ApiKeyRow {
                key_id: Uuid::now_v7().to_string(),
                name: format!("key-{k}"),
                scopes: match k {
                    0 => vec!["all:all".into()],
                    1 => vec!["api_keys:delete".into()],
                    _ => vec!["campaigns:read".into(), "accounts:read".into()],
                },
                created_at: Some(now - (k as i64) * 40 * 86_400_000),
                updated_at: Some(now),
            })
            .collect();
        snap.tags = (0..3)
            .map(|t| TagRow {
                tag_id: format!("{id}-t{t}"),
                label: format!("team-{t}"),
                description: None,
            })
            .collect();
        snap.audit_logs = (0..10)
            .map(|a| AuditRow {
                log_id: Uuid::now_v7().to_string(),
                at: now - (a as i64) * 3_600_000 - i as i64,
                activity_type: [1, 4, 5][a % 3],
                user_id: None,
                user_name: Some("Owner".into()),
                ip_address: None,
                from_api: false,
                campaign_id: None,
                api_key_id: None,
                affected_count: None,
                metadata: None,
            })
            .collect();
        inventory.replace_snapshot(&snap).await?;
    }
    let stored = t.elapsed();
    println!("## Reports: {n} workspaces × 20 members, 5 keys, 3 tags, 10 audit entries (SQLite)");
    println!(
        "stored {n} snapshots directly in {} ({:.2} ms per workspace)",
        ms(stored),
        stored.as_secs_f64() * 1000.0 / n as f64
    );
    drop(store);

    let http = reqwest::Client::new();
    let base = svc.url.clone();
    let cases: [(&str, &str, &'static str); 9] = [
        (
            "access, first JSON page (100)",
            "/v1/reports/access?limit=100",
            "select count(*) from inventory_member",
        ),
        (
            "access, every JSON page (500/page)",
            "walk:/v1/reports/access",
            "select count(*) from inventory_member",
        ),
        (
            "access, whole CSV",
            "/v1/reports/access?format=csv",
            "select count(*) from inventory_member",
        ),
        (
            "access, jane@agency.com as admin",
            "walk:/v1/reports/access?email=jane@agency.com&role=admin",
            "select count(*) from inventory_member",
        ),
        (
            "api-keys, every JSON page",
            "walk:/v1/reports/api-keys",
            "select count(*) from inventory_api_key",
        ),
        (
            "api-keys, whole CSV",
            "/v1/reports/api-keys?format=csv",
            "select count(*) from inventory_api_key",
        ),
        (
            "api-keys, flag=all_all",
            "walk:/v1/reports/api-keys?flag=all_all",
            "select count(*) from inventory_api_key",
        ),
        (
            "tags, whole CSV",
            "/v1/reports/tags?format=csv",
            "select count(*) from inventory_tag",
        ),
        (
            "audit-logs, whole CSV",
            "/v1/reports/audit-logs?format=csv",
            "select count(*) from inventory_audit_log",
        ),
    ];
    println!("| report | rows | median of {RUNS} | baseline `select count(*)` | ratio |");
    println!("|---|---|---|---|---|");
    for (label, path, baseline_sql) in cases {
        let (walk_all, path) = match path.strip_prefix("walk:") {
            Some(p) => (true, p),
            None => (false, path),
        };
        let url = format!("{base}{path}");
        let rows = if walk_all {
            walk(&http, &url).await?
        } else if path.contains("format=csv") {
            get(&http, &url).await?.lines().count() - 1
        } else {
            let v: Value = serde_json::from_str(&get(&http, &url).await?)?;
            v["items"].as_array().map_or(0, Vec::len)
        };
        let d = time(|| {
            let (http, url) = (&http, url.clone());
            async move {
                if walk_all {
                    walk(http, &url).await?;
                } else {
                    get(http, &url).await?;
                }
                Ok(())
            }
        })
        .await?;
        let b = count_baseline(&svc.db, baseline_sql).await?;
        println!(
            "| {label} | {rows} | {} | {} | {:.0}× |",
            ms(d),
            ms(b),
            d.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    }
    svc.shutdown.cancel();
    let _ = svc.task.await;
    Ok(())
}

async fn bench_sync(n: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let sim = Simulator::spawn(SimConfig::default()).await?;
    let svc = start(&dir.join("sync.db"), &sim.base_url()).await?;
    let http = reqwest::Client::new();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let ws = sim.create_workspace(&format!("client-{i:04}"));
        for m in 0..19 {
            sim.seed_member(
                &ws,
                &format!("user{m}@client{i}.example"),
                ["admin", "editor", "view"][m % 3],
                m % 2 == 0,
            );
        }
        let key = sim.create_key(&ws, "flotilla", &["all:all"]);
        for k in 0..4 {
            sim.create_key(&ws, &format!("key-{k}"), &["campaigns:read"]);
        }
        sim.seed_tag(&ws, "team-east");
        sim.seed_audit_log(&ws, 4, chrono::Utc::now());
        keys.push((i, key.key));
    }
    futures::stream::iter(keys.iter().cloned())
        .map(|(i, key)| {
            let (http, url) = (http.clone(), svc.url.clone());
            async move {
                let resp = http
                    .post(format!("{url}/v1/workspaces"))
                    .bearer_auth(TOKEN)
                    .json(&json!({ "name": format!("client-{i:04}"), "api_key": key }))
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "register: {}", resp.status());
                Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await?;

    // Baseline: one member-list read per workspace with the plain client, 64 at a time (the
    // engine's default FLOTILLA_MAX_IN_FLIGHT).
    let base_url: url::Url = sim.base_url().parse()?;
    let t = Instant::now();
    futures::stream::iter(keys.iter().cloned())
        .map(|(_, key)| {
            let base_url = base_url.clone();
            async move {
                let client = Client::new(ClientConfig::new(base_url, SecretString::from(key)))?;
                client.list_members().try_collect::<Vec<_>>().await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    let baseline = t.elapsed();

    sim.clear_request_log();
    let t = Instant::now();
    let resp = http
        .post(format!("{}/v1/operations", svc.url))
        .bearer_auth(TOKEN)
        .json(&json!({ "kind": "inventory.sync", "targets": { "all": true }, "params": {} }))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().as_u16() == 202,
        "create sync: {}",
        resp.status()
    );
    let op: Value = resp.json().await?;
    let id = op["id"].as_str().context("operation id")?.to_string();
    let op = loop {
        let op: Value =
            serde_json::from_str(&get(&http, &format!("{}/v1/operations/{id}", svc.url)).await?)?;
        if !op["finished_at"].is_null() {
            break op;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = t.elapsed();
    let calls = sim.request_log().len();
    let rate_limited: u64 = sim
        .workspace_ids()
        .iter()
        .map(|w| sim.counters(w).rate_limited)
        .sum();
    println!();
    println!("## Sync: {n} simulated workspaces × 20 members, 5 keys (SQLite, engine defaults)");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| status | {} ({} succeeded) |",
        op["status"], op["counts"]["succeeded"]
    );
    println!(
        "| full sync | {} ({:.0} workspaces/s) |",
        ms(took),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "| upstream calls | {calls} ({:.1} per workspace), {rate_limited} answered 429 |",
        calls as f64 / n as f64
    );
    println!(
        "| baseline: one member list per workspace, 64 at a time | {} |",
        ms(baseline)
    );
    println!(
        "| ratio sync / baseline | {:.1}× (for {:.1}× the calls) |",
        took.as_secs_f64() / baseline.as_secs_f64(),
        calls as f64 / n as f64
    );
    svc.shutdown.cancel();
    let _ = svc.task.await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    bench_reports(n, dir.path()).await?;
    bench_sync(n, dir.path()).await?;
    Ok(())
}
