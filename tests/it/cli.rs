//! The real `flotilla` binary as a client of a running service (in-process) and simulator:
//! `ops invite --watch`, `workspaces list --json`, tables, error envelopes and exit codes.
//! And `flotilla demo` itself, started as a new user would, then driven by the CLI.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::both;
use crate::support::*;

/// Output of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `flotilla ARGS` against `url` with `token` and a clean environment.
pub async fn flotilla(url: &str, token: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLOTILLA_URL", url)
        .env("FLOTILLA_TOKEN", token)
        .env("FLOTILLA_LOG", "error")
        .stdin(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI finished")
        .expect("run flotilla");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

both!(cli_invite_watch_lists_tables_and_errors, |backend| {
    let app = TestApp::start(backend).await;
    let mut east = Vec::new();
    for i in 0..3 {
        east.push(app.register(&format!("east-{i}"), &["east"]).await);
    }
    let (_, west_ws) = app.register("west-0", &["west"]).await;
    let cli = |args: &'static [&'static str]| flotilla(&app.url, ADMIN_TOKEN, args, &[]);

    // A dry run writes nothing and succeeds.
    let dry = cli(&[
        "ops",
        "invite",
        "--label",
        "east",
        "--email",
        "ana@agency.example",
        "--role",
        "editor",
        "--dry-run",
        "--watch",
        "--json",
    ])
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let op: Value = serde_json::from_str(&dry.stdout).expect("final operation as JSON");
    assert_eq!(op["status"], "succeeded");
    assert_eq!(op["dry_run"], true);
    for (_, ws) in &east {
        assert_eq!(sim_members(&app.sim, ws).len(), 1, "dry run invited nobody");
    }

    // The real invite, watched to the end: exit 0, and the simulator holds the members.
    let run = cli(&[
        "ops",
        "invite",
        "--label",
        "east",
        "--email",
        "ana@agency.example,ben@agency.example",
        "--role",
        "editor",
        "--watch",
    ])
    .await;
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains("members.invite  succeeded"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("targets: 3/3 done · succeeded 3"),
        "{}",
        run.stdout
    );
    for (_, ws) in &east {
        let members = sim_members(&app.sim, ws);
        for email in ["ana@agency.example", "ben@agency.example"] {
            assert!(
                members.contains(&(email.to_string(), "editor".to_string())),
                "{ws}: {members:?}"
            );
        }
    }
    assert_eq!(
        sim_members(&app.sim, &west_ws).len(),
        1,
        "west is not targeted"
    );

    // Per-target results as JSON: every change recorded.
    let id = op_id_from(&run.stdout);
    let targets = flotilla(
        &app.url,
        ADMIN_TOKEN,
        &["ops", "targets", &id, "--json"],
        &[],
    )
    .await;
    assert_eq!(targets.code, 0, "{}", targets.stderr);
    let targets: Vec<Value> = serde_json::from_str(&targets.stdout).unwrap();
    assert_eq!(targets.len(), 3);
    assert!(
        targets
            .iter()
            .all(|t| t["state"] == "succeeded" && t["changes"].as_array().unwrap().len() == 2)
    );

    // `workspaces list --json` parses, and the table fits a narrow terminal.
    let list = cli(&["workspaces", "list", "--json"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let items: Vec<Value> = serde_json::from_str(&list.stdout).expect("JSON list");
    let mut names: Vec<&str> = items.iter().map(|w| w["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["east-0", "east-1", "east-2", "west-0"]);
    let east_only = cli(&["workspaces", "list", "--label", "east", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&east_only.stdout)
            .unwrap()
            .len(),
        3
    );
    let table = flotilla(
        &app.url,
        ADMIN_TOKEN,
        &["workspaces", "list"],
        &[("COLUMNS", "70")],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert_eq!(
        table.stdout.lines().count(),
        5,
        "header + 4 rows: {}",
        table.stdout
    );
    assert!(
        table.stdout.lines().all(|l| l.chars().count() <= 70),
        "{}",
        table.stdout
    );
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);

    // API errors print the envelope's code and message and exit 1; nothing is created.
    let ops_before = app.operation_count().await;
    let bad = cli(&[
        "ops", "invite", "--label", "nowhere", "--email", "a@x.com", "--role", "editor",
    ])
    .await;
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("no_targets (HTTP 422)"),
        "{}",
        bad.stderr
    );
    let bad_role = cli(&[
        "ops", "set-role", "--all", "--email", "a@x.com", "--role", "owner",
    ])
    .await;
    assert_eq!(bad_role.code, 1);
    assert!(
        bad_role.stderr.starts_with("error: "),
        "{}",
        bad_role.stderr
    );
    assert_eq!(app.operation_count().await, ops_before);
    let unauthorized = flotilla(&app.url, "flt_wrong", &["workspaces", "list"], &[]).await;
    assert_eq!(unauthorized.code, 1);
    assert!(
        unauthorized.stderr.contains("invalid_token (HTTP 401)"),
        "{}",
        unauthorized.stderr
    );
    assert!(
        !unauthorized.stderr.contains("flt_wrong"),
        "the token is never printed"
    );
    let no_token = flotilla(&app.url, "", &["workspaces", "list"], &[]).await;
    assert_eq!(no_token.code, 2);
    assert!(
        no_token.stderr.contains("FLOTILLA_TOKEN"),
        "{}",
        no_token.stderr
    );
    let down = flotilla("http://127.0.0.1:9", ADMIN_TOKEN, &["ops", "list"], &[]).await;
    assert_eq!(down.code, 1);
    assert!(
        down.stderr.contains("cannot reach Flotilla"),
        "{}",
        down.stderr
    );

    app.stop().await;
});

both!(
    cli_watch_exits_non_zero_when_the_operation_fails,
    |backend| {
        let app = TestApp::start(backend).await;
        // A key without the members scopes: every target fails permanently (403).
        app.register_with_scopes("locked", &["locked"], &["workspaces:read"])
            .await;
        let run = flotilla(
            &app.url,
            ADMIN_TOKEN,
            &[
                "ops",
                "invite",
                "--label",
                "locked",
                "--email",
                "a@agency.example",
                "--role",
                "view",
                "--watch",
            ],
            &[],
        )
        .await;
        assert_eq!(
            run.code, 3,
            "stdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        assert!(run.stdout.contains("failed targets:"), "{}", run.stdout);
        assert!(run.stderr.contains("finished failed"), "{}", run.stderr);
        app.stop().await;
    }
);

fn op_id_from(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("operation "))
        .and_then(|l| l.split_whitespace().next())
        .expect("an operation line")
        .to_string()
}

/// `flotilla demo` as the README's first command starts it (on a free port and a temp dir),
/// then the CLI lists its workspaces with the printed token, and SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_prints_a_working_token_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("demo");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args([
            "demo",
            "--workspaces",
            "6",
            "--sim-latency-ms",
            "0",
            "--listen",
            &listen,
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLOTILLA_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn flotilla demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut token = None;
    let mut banner = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if let Some(u) = line.trim().strip_prefix("export FLOTILLA_URL=") {
                url = Some(u.to_string());
            }
            if let Some(t) = line.trim().strip_prefix("export FLOTILLA_TOKEN=") {
                token = Some(t.to_string());
            }
            if line.starts_with("Ctrl-C stops") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the demo printed its banner");
    let (url, token) = (url.expect("URL line"), token.expect("token line"));
    assert_eq!(url, format!("http://{listen}"));
    assert!(banner.contains("--dry-run --watch"), "{banner}");
    assert!(banner.contains("/v1/reports/api-keys"), "{banner}");

    let list = flotilla(&url, &token, &["workspaces", "list", "--json"], &[]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let items: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(items.len(), 6);
    let labels: Vec<String> = items
        .iter()
        .flat_map(|w| w["labels"].as_array().unwrap().clone())
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    for region in ["east", "west", "north"] {
        assert!(labels.iter().any(|l| l == region), "{labels:?}");
    }
    let invite = flotilla(
        &url,
        &token,
        &[
            "ops",
            "invite",
            "--label",
            "east",
            "--email",
            "ana@agency.example",
            "--role",
            "editor",
            "--watch",
        ],
        &[],
    )
    .await;
    assert_eq!(invite.code, 0, "{}\n{}", invite.stdout, invite.stderr);
    assert!(dir.join(".flotilla-demo").exists());

    let pid = child.id().expect("pid").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the demo exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

both!(cli_reports_print_csv_that_parses, |backend| {
    let app = TestApp::start(backend).await;
    let (_, a) = app.register("csv, \"quoted\" client", &["east"]).await;
    let (_, b) = app.register("plain client", &["east"]).await;
    app.sim.create_key(&b, "wide open", &["all:all"]);
    let sync = flotilla(
        &app.url,
        ADMIN_TOKEN,
        &["ops", "sync", "--all", "--watch"],
        &[],
    )
    .await;
    assert_eq!(sync.code, 0, "{}\n{}", sync.stdout, sync.stderr);

    let run = flotilla(
        &app.url,
        ADMIN_TOKEN,
        &["report", "api-keys", "--format", "csv"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        &header[..4],
        ["workspace_id", "workspace_name", "key_id", "name"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // One key per registered workspace, plus the extra one: each as the simulator holds it.
    let mut expected: Vec<(String, String)> = [&a, &b]
        .iter()
        .flat_map(|ws| {
            let state = app.sim.workspace(ws).unwrap();
            state.api_keys.into_iter().map(|k| (k.id, k.name))
        })
        .collect();
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[col("key_id")].to_string(), r[col("name")].to_string()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        rows.iter()
            .any(|r| &r[col("workspace_name")] == "csv, \"quoted\" client"),
        "a name with a comma and quotes survives the CSV round trip"
    );
    assert!(
        rows.iter()
            .filter(|r| &r[col("name")] == "wide open")
            .all(|r| r[col("flags")].split(' ').any(|f| f == "all_all"))
    );

    let access = flotilla(
        &app.url,
        ADMIN_TOKEN,
        &["report", "access", "--format", "csv"],
        &[],
    )
    .await;
    assert_eq!(access.code, 0, "{}", access.stderr);
    let members = csv::Reader::from_reader(access.stdout.as_bytes())
        .records()
        .count();
    assert_eq!(members, 2, "each workspace's owner: {}", access.stdout);
    app.stop().await;
});
