//! Fan-out benchmark: the engine against the simulator, compared with a plain loop of the client
//! at the same concurrency measured in the same run.
//!
//! ```sh
//! cargo build --release -p flotilla_service -p flotilla_instantly_sim --bins --examples
//! ./target/release/examples/bench_fanout --workspaces 1000 --invites 5
//! ./target/release/examples/bench_fanout --workspaces 1 --invites 1000
//! ```
//!
//! Three processes: this driver (it registers the workspaces straight into the database and
//! runs the plain loop), the simulator (`instantly-sim`) and `flotilla serve`, both found in
//! this example's build directory. So the service's peak memory and CPU time are its own.
//! `--in-process` runs all three in this process instead (the figures before 2026-12-04 were
//! taken that way). Prints wall time, upstream calls/s, the plain-loop ceiling and the ratio,
//! CPU per upstream call, 429s, and peak memory (VmHWM) of each process. With one workspace it
//! also prints the achieved request rate against the configured pace. Flags: `--workspaces N`,
//! `--invites K`, `--latency-ms MS` (default 50), `--postgres`, `--in-process`, `--sim-bin PATH`;
//! `FLOTILLA_MAX_IN_FLIGHT` and `FLOTILLA_ITEM_CONCURRENCY` apply to both sides;
//! `BENCH_SERVE_PREFIX` runs the service under a profiler (e.g. `heaptrack -o /tmp/serve`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use flotilla_instantly::{Client, ClientConfig, CreateMember, Pacer, Pacing, RateLimits, Role};
use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_service::config::Config;
use flotilla_service::store::{Store, WorkspaceRow, now_ms};
use flotilla_vault::testing::TestDb;
use flotilla_vault::{Backend, CredentialSource, Keyring, NewCredential, Purpose};
use futures::{StreamExt, TryStreamExt, stream};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use uuid::Uuid;

struct Args {
    workspaces: usize,
    invites: usize,
    latency_ms: u64,
    postgres: bool,
    in_process: bool,
    sim_bin: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        workspaces: 1000,
        invites: 5,
        latency_ms: 50,
        postgres: false,
        in_process: false,
        sim_bin: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        let mut number = || value().parse::<u64>().expect("numeric value");
        match flag.as_str() {
            "--workspaces" => a.workspaces = number() as usize,
            "--invites" => a.invites = number() as usize,
            "--latency-ms" => a.latency_ms = number(),
            "--postgres" => a.postgres = true,
            "--in-process" => a.in_process = true,
            "--sim-bin" => a.sim_bin = Some(value().into()),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A memory figure of a process from `/proc/<pid>/status` (`VmHWM`, `RssAnon`…), in MiB.
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    // /proc/<pid>/stat fields 14 and 15 (utime, stime) in clock ticks; the comm field may hold
    // spaces, so count from the closing parenthesis. 100 ticks/s on Linux.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Peak resident memory (VmHWM) of a process, in MiB.
fn peak_rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmHWM")
}

fn emails(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{i}@bench.example"))
        .collect()
}

/// The simulator, driven through its `/_sim/` control API whether it runs in this process or
/// in its own.
struct Upstream {
    base_url: String,
    http: reqwest::Client,
    _in_process: Option<Simulator>,
    child: Option<tokio::process::Child>,
}

impl Upstream {
    async fn start(args: &Args) -> anyhow::Result<Upstream> {
        let http = reqwest::Client::new();
        if args.in_process {
            let sim = Simulator::spawn(SimConfig {
                latency: Duration::from_millis(args.latency_ms),
                ..SimConfig::default()
            })
            .await?;
            return Ok(Upstream {
                base_url: sim.base_url().to_string(),
                http,
                _in_process: Some(sim),
                child: None,
            });
        }
        let bin = match &args.sim_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()?
                .parent()
                .and_then(|examples| examples.parent())
                .context("locating the build directory")?
                .join("instantly-sim"),
        };
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build it first with `cargo build --release -p flotilla_instantly_sim \
             --bins`, pass --sim-bin, or use --in-process",
            bin.display()
        );
        let mut child = tokio::process::Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--latency-ms"])
            .arg(args.latency_ms.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("simulator stdout")?;
        let first = tokio::io::BufReader::new(stdout)
            .lines()
            .next_line()
            .await?
            .context("the simulator printed nothing")?;
        let line: Value = serde_json::from_str(&first)?;
        let base_url = line["base_url"]
            .as_str()
            .context("the simulator's first line has no base_url")?
            .to_string();
        Ok(Upstream {
            base_url,
            http,
            _in_process: None,
            child: Some(child),
        })
    }

    fn ctl(&self, path: &str) -> String {
        format!("{}/_sim{path}", self.base_url)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        Ok(req.send().await?.error_for_status()?.json().await?)
    }

    /// A workspace with an `all:all` key.
    async fn workspace(&self, name: String) -> anyhow::Result<(String, SecretString)> {
        let ws = self
            .call(
                self.http
                    .post(self.ctl("/workspaces"))
                    .json(&json!({ "name": name })),
            )
            .await?;
        let ws = ws["id"].as_str().context("workspace id")?.to_string();
        let key = self
            .call(
                self.http
                    .post(self.ctl(&format!("/workspaces/{ws}/keys")))
                    .json(&json!({ "name": "flotilla", "scopes": ["all:all"] })),
            )
            .await?;
        let key = SecretString::from(key["key"].as_str().context("key")?.to_string());
        Ok((ws, key))
    }

    async fn clear_log(&self) -> anyhow::Result<()> {
        self.call(self.http.delete(self.ctl("/requests"))).await?;
        Ok(())
    }

    /// (requests, 429s) summed over every workspace since the start.
    async fn totals(&self) -> anyhow::Result<(u64, u64)> {
        let c = self.call(self.http.get(self.ctl("/counters"))).await?;
        Ok((
            c["requests"].as_u64().unwrap_or(0),
            c["rate_limited"].as_u64().unwrap_or(0),
        ))
    }

    /// Start times (ms) of the POSTs in the request log.
    async fn write_times_ms(&self) -> anyhow::Result<Vec<i64>> {
        let log = self.call(self.http.get(self.ctl("/requests"))).await?;
        Ok(log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["method"] == "POST")
            .filter_map(|r| r["started_at"].as_str())
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
            .collect())
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id()?;
        Some(peak_rss_mib(&pid.to_string()))
    }
}

/// Flotilla under test: `flotilla serve` in its own process (so its memory and CPU are its
/// own), or the same service inside this process.
struct Service {
    url: String,
    child: Option<tokio::process::Child>,
    in_process: Option<(
        tokio::task::JoinHandle<anyhow::Result<()>>,
        tokio_util::sync::CancellationToken,
    )>,
}

impl Service {
    async fn in_process(state: flotilla_service::api::AppState) -> anyhow::Result<Service> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(flotilla_service::app::serve(
            state,
            listener,
            shutdown.clone(),
        ));
        Ok(Service {
            url,
            child: None,
            in_process: Some((server, shutdown)),
        })
    }

    async fn spawn(
        args: &Args,
        db: &TestDb,
        sim_url: &str,
        keys: &SecretString,
        token: &SecretString,
    ) -> anyhow::Result<Service> {
        let bin = std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("locating the build directory")?
            .join("flotilla");
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build it first with `cargo build --release -p flotilla_service`, \
             or use --in-process",
            bin.display()
        );
        let db_url = db.url();
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let data_dir = std::env::temp_dir().join(format!("flotilla-bench-{}", Uuid::now_v7()));
        // `BENCH_SERVE_PREFIX="heaptrack -o /tmp/serve"` runs the service under a profiler.
        let prefix = std::env::var("BENCH_SERVE_PREFIX").unwrap_or_default();
        let mut prefix = prefix.split_whitespace();
        let mut command = match prefix.next() {
            Some(program) => {
                let mut c = tokio::process::Command::new(program);
                c.args(prefix).arg(&bin);
                c
            }
            None => tokio::process::Command::new(&bin),
        };
        let child = command
            .arg("serve")
            .env("FLOTILLA_DATABASE_URL", db_url)
            .env("FLOTILLA_LISTEN", format!("127.0.0.1:{port}"))
            .env("FLOTILLA_INSTANTLY_BASE_URL", sim_url)
            .env("FLOTILLA_VAULT_KEYS", keys.expose_secret())
            .env("FLOTILLA_ADMIN_TOKEN", token.expose_secret())
            .env("FLOTILLA_DATA_DIR", &data_dir)
            .env("FLOTILLA_POLL_MS", "20")
            .env(
                "FLOTILLA_MAX_TARGETS",
                args.workspaces.max(20_000).to_string(),
            )
            .env("FLOTILLA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await
                && r.status().is_success()
            {
                return Ok(Service {
                    url,
                    child: Some(child),
                    in_process: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("flotilla serve did not become ready")
    }

    fn pid(&self) -> String {
        match self.child.as_ref().and_then(|c| c.id()) {
            Some(pid) => pid.to_string(),
            None => "self".into(),
        }
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid())
    }

    fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib(&self.pid())
    }

    fn status_mib(&self, field: &str) -> f64 {
        status_mib(&self.pid(), field)
    }

    async fn stop(self) {
        if let Some(mut child) = self.child {
            if let Some(pid) = child.id() {
                // SIGTERM: a graceful stop, as in production (and to the service itself when a
                // BENCH_SERVE_PREFIX wrapper started it).
                let _ = std::process::Command::new("pkill")
                    .args(["-TERM", "-P"])
                    .arg(pid.to_string())
                    .status();
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        if let Some((server, shutdown)) = self.in_process {
            shutdown.cancel();
            let _ = server.await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let sim = Upstream::start(&args).await?;
    let test_db = TestDb::new(if args.postgres {
        Backend::Postgres
    } else {
        Backend::Sqlite
    })
    .await;
    let keys = flotilla_vault::generate_key_spec("bench");
    let keyring = Keyring::parse(keys.expose_secret(), "bench")?;
    let mut config = Config::new("unused", sim.base_url.parse()?);
    config.poll_ms = 20;
    let max_in_flight = config.max_in_flight;
    let item_concurrency = config.item_concurrency;
    let pace = config.pace_per_second;
    let state = flotilla_service::app::prepare_with(config, test_db.db().clone(), keyring).await?;

    // Register workspaces directly (registration is not what is measured).
    let setup = Instant::now();
    let sim_keys: Vec<(String, SecretString)> = stream::iter(0..args.workspaces)
        .map(|i| sim.workspace(format!("bench-{i}")))
        .buffered(16)
        .try_collect()
        .await?;
    for (i, (ws, key)) in sim_keys.iter().enumerate() {
        let row = WorkspaceRow {
            id: Uuid::now_v7(),
            name: format!("bench-{i}"),
            instantly_workspace_id: ws.clone(),
            mode: "direct".into(),
            admin_workspace_id: None,
            labels: vec!["bench".into()],
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        let mut tx = state.store.begin_write().await?;
        Store::insert_workspace(&mut tx, &row).await?;
        state
            .vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: row.id,
                    instantly_workspace_id: ws,
                    purpose: Purpose::Access,
                    source: CredentialSource::Direct(key),
                },
            )
            .await?;
        tx.commit().await?;
    }
    eprintln!(
        "setup: {} workspaces in {:.1}s",
        args.workspaces,
        setup.elapsed().as_secs_f64()
    );

    // Baseline: a plain loop of the client, same concurrency (targets × items), same pacing.
    let http = reqwest::Client::new();
    let pacer = Pacer::new(RateLimits {
        per_second: pace,
        per_minute: 5000,
        burst: 10,
    });
    let base_emails = emails("base", args.invites);
    let sim_url: url::Url = sim.base_url.parse()?;
    let (before, _) = sim.totals().await?;
    let cpu_base_start = cpu_seconds("self");
    let started = Instant::now();
    stream::iter(sim_keys.iter())
        .for_each_concurrent(max_in_flight, |(ws, key)| {
            let http = http.clone();
            let pacer = pacer.clone();
            let base_emails = &base_emails;
            let sim_url = sim_url.clone();
            async move {
                let mut cfg = ClientConfig::new(sim_url, key.clone());
                cfg.pacing = Some(Pacing {
                    pacer,
                    keys: vec![format!("ws:{ws}")],
                });
                let client = Client::with_http(cfg, http).expect("client");
                stream::iter(base_emails.iter())
                    .for_each_concurrent(item_concurrency, |email| {
                        let client = client.clone();
                        async move {
                            let _ = client
                                .create_member(&CreateMember {
                                    email: email.clone(),
                                    role: Role::parse("view"),
                                })
                                .await;
                        }
                    })
                    .await;
            }
        })
        .await;
    let base_secs = started.elapsed().as_secs_f64();
    let base_cpu = cpu_seconds("self") - cpu_base_start;
    let (after_base, base_429) = sim.totals().await?;
    let base_calls = after_base - before;
    let base_rate = base_calls as f64 / base_secs;

    // Flotilla: one members.invite operation over every workspace, through the REST API.
    drop((http, pacer));
    sim.clear_log().await?;
    let token = flotilla_service::auth::new_token();
    flotilla_service::auth::ensure_bootstrap_admin(&state.store, Some(&token)).await?;
    let service = if args.in_process {
        Service::in_process(state).await?
    } else {
        drop(state);
        Service::spawn(&args, &test_db, &sim.base_url, &keys, &token).await?
    };
    let http = reqwest::Client::new();
    let cpu_start = service.cpu_seconds();
    let started = Instant::now();
    let op: serde_json::Value = http
        .post(format!("{}/v1/operations", service.url))
        .bearer_auth(token.expose_secret())
        .json(&json!({
            "kind": "members.invite",
            "targets": { "labels": ["bench"] },
            "params": { "emails": emails("flotilla", args.invites), "role": "view" },
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id: Uuid = op["id"].as_str().context("operation id")?.parse()?;
    loop {
        let op: Value = http
            .get(format!("{}/v1/operations/{id}", service.url))
            .bearer_auth(token.expose_secret())
            .send()
            .await?
            .json()
            .await?;
        if !op["finished_at"].is_null() {
            anyhow::ensure!(op["status"] == "succeeded", "operation ended {op}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = service.cpu_seconds() - cpu_start;
    let (after, all_429) = sim.totals().await?;
    let calls = after - after_base;
    let rate = calls as f64 / secs;
    let service_peak = service.peak_rss_mib();
    let service_anon = service.status_mib("RssAnon");
    service.stop().await;

    println!(
        "fan-out: {} workspaces x {} invites, simulator latency {} ms ({})",
        args.workspaces,
        args.invites,
        args.latency_ms,
        if args.in_process {
            "simulator and service in this process"
        } else {
            "simulator, service and this driver in separate processes"
        }
    );
    println!("  plain loop : {base_calls} calls in {base_secs:.2}s = {base_rate:.0} calls/s");
    println!("  flotilla   : {calls} calls in {secs:.2}s = {rate:.0} calls/s");
    println!(
        "  ratio      : {:.2} of the plain-loop ceiling (calls/s)",
        rate / base_rate
    );
    println!(
        "  CPU        : {:.0} µs per upstream call ({cpu:.1} s), plain loop {:.0} µs ({base_cpu:.1} s): {:.1}x",
        cpu * 1e6 / calls as f64,
        base_cpu * 1e6 / base_calls as f64,
        (cpu / calls as f64) / (base_cpu / base_calls as f64)
    );
    println!(
        "  429s       : {} (plain loop {base_429})",
        all_429 - base_429
    );
    match sim.peak_rss_mib() {
        Some(sim_mib) => println!(
            "  peak RSS   : flotilla serve {service_peak:.0} MiB (heap and stacks now {service_anon:.0} MiB); \
             simulator {sim_mib:.0} MiB; this driver {:.0} MiB",
            peak_rss_mib("self")
        ),
        None => println!(
            "  peak RSS   : {service_peak:.0} MiB, the whole process (simulator, service, plain loop)"
        ),
    }
    if args.workspaces == 1 {
        let writes = sim.write_times_ms().await?;
        if let (Some(first), Some(last)) = (writes.first(), writes.last()) {
            let span = (last - first) as f64 / 1000.0;
            let achieved = (writes.len().saturating_sub(1)) as f64 / span.max(0.001);
            println!(
                "  pace       : {achieved:.1} writes/s against a configured {pace}/s = {:.2}",
                achieved / pace as f64
            );
        }
    }
    test_db.cleanup().await;
    Ok(())
}
