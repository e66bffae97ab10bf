//! The deployment files, checked statically (no Docker engine runs here): the compose file
//! parses and has the shape the README promises, every FLOTILLA_* variable it sets is one the
//! service reads, and `.env.sample` documents each variable the service reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `FLOTILLA_[A-Z0-9_]+` names that follow `prefix` in `text` (`env = "`, `var("`, …).
fn names_after(text: &str, prefix: &str, out: &mut BTreeSet<String>) {
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if name.starts_with("FLOTILLA_") && rest[name.len()..].starts_with('"') {
            out.insert(name);
        }
    }
}

/// Every FLOTILLA_* variable the service reads: clap `env = "…"` attributes, `std::env::var("…")`
/// and `EnvFilter::try_from_env("…")` calls in the service, and the vault's `*_VAR` constants
/// (its keyring reads them with `std::env::var(KEYS_VAR)`). The vault's `testing` module is for
/// the test suite, not the service.
fn variables_the_service_reads() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("crates/flotilla_service/src"), &mut files);
    let mut names = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        names_after(&text, "env = \"", &mut names);
        names_after(&text, "env::var(\"", &mut names);
        names_after(&text, "try_from_env(\"", &mut names);
    }
    let keyring = read("crates/flotilla_vault/src/keyring.rs");
    names_after(&keyring, "_VAR: &str = \"", &mut names);
    names
}

fn environment(service: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match service.get("environment") {
        Some(Value::Mapping(map)) => {
            for key in map.keys() {
                out.insert(key.as_str().expect("string keys").to_string());
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let entry = item.as_str().expect("KEY=value entries");
                out.insert(entry.split('=').next().unwrap().to_string());
            }
        }
        Some(other) => panic!("environment must be a map or a list: {other:?}"),
        None => {}
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|i| i.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_parses_and_sets_only_variables_the_service_reads() {
    let compose: Value =
        serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses");
    let services = compose["services"].as_mapping().expect("services");
    let service = |name: &str| {
        services
            .get(name)
            .unwrap_or_else(|| panic!("service {name}"))
    };

    let db = service("db");
    assert!(db["image"].as_str().unwrap().starts_with("postgres:"));
    assert!(
        db.get("healthcheck").and_then(|h| h.get("test")).is_some(),
        "Postgres has a healthcheck"
    );
    let db_volumes = strings(db.get("volumes"));
    assert!(
        db_volumes.iter().any(|v| v.starts_with("pgdata:")),
        "{db_volumes:?}"
    );
    assert!(
        compose["volumes"]
            .as_mapping()
            .unwrap()
            .contains_key("pgdata"),
        "a named volume"
    );

    let flotilla = service("flotilla");
    assert!(flotilla.get("build").is_some(), "built from the Dockerfile");
    assert_eq!(
        flotilla["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy"),
        "starts once Postgres is healthy"
    );
    assert_eq!(strings(flotilla.get("secrets")), ["flotilla_vault_keys"]);
    assert!(
        compose["secrets"]["flotilla_vault_keys"]["file"]
            .as_str()
            .is_some()
    );
    assert_eq!(
        flotilla["environment"]["FLOTILLA_VAULT_KEY_FILE"].as_str(),
        Some("/run/secrets/flotilla_vault_keys"),
        "the vault key comes in as a Docker secret"
    );
    assert!(
        flotilla["environment"]["FLOTILLA_DATABASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("postgres://")
    );

    let sim = service("instantly-sim");
    assert_eq!(
        strings(sim.get("profiles")),
        ["demo"],
        "the simulator only runs with --profile demo"
    );
    assert_eq!(strings(sim.get("entrypoint")), ["instantly-sim"]);

    // Published ports are bound to loopback only.
    for (name, svc) in services {
        for port in strings(svc.get("ports")) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{}: {port} must bind 127.0.0.1",
                name.as_str().unwrap()
            );
        }
    }

    let known = variables_the_service_reads();
    for expected in [
        "FLOTILLA_DATABASE_URL",
        "FLOTILLA_VAULT_KEY_FILE",
        "FLOTILLA_VAULT_KEYS",
        "FLOTILLA_LOG_FORMAT",
        "FLOTILLA_ADMIN_TOKEN",
    ] {
        assert!(
            known.contains(expected),
            "the scan finds {expected}: {known:?}"
        );
    }
    let mut set = BTreeSet::new();
    for (_, svc) in services {
        set.extend(
            environment(svc)
                .into_iter()
                .filter(|v| v.starts_with("FLOTILLA_")),
        );
    }
    assert!(!set.is_empty());
    let unknown: Vec<&String> = set.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "docker-compose.yml sets variables the service never reads: {unknown:?}"
    );

    let sample = read(".env.sample");
    let documented = |name: &str| {
        sample.lines().any(|l| {
            let l = l.trim_start_matches('#').trim();
            l.starts_with(&format!("{name}=")) || l.starts_with(&format!("{name} "))
        })
    };
    let undocumented: Vec<&String> = set
        .iter()
        .chain(&known)
        .filter(|v| !documented(v))
        .collect();
    assert!(
        undocumented.is_empty(),
        ".env.sample does not document {undocumented:?}"
    );
}

#[test]
fn dockerfile_is_multi_stage_and_runs_as_a_non_root_user() {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[0].contains("rust:") && froms[0].contains(" AS builder"),
        "{froms:?}"
    );
    assert!(
        froms[1].contains("debian:") && froms[1].contains("-slim"),
        "{froms:?}"
    );
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "USER root");
    assert!(
        dockerfile.contains("--locked"),
        "the image builds from Cargo.lock"
    );
    assert!(
        read(".dockerignore").lines().any(|l| l.trim() == "target/"),
        "the build context skips target/"
    );
}
