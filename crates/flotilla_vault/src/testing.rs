//! Test helpers (cargo feature `testing`): fresh migrated databases on both backends and a
//! macro that runs one async test body on each.

use std::path::PathBuf;

use rand::Rng;
use sqlx::{Connection, Executor};

use crate::db::{Backend, Database};

/// Server used by [`TestDb::postgres`] to create throw-away databases.
pub const POSTGRES_URL_VAR: &str = "FLOTILLA_TEST_POSTGRES_URL";
/// Default for [`POSTGRES_URL_VAR`].
pub const DEFAULT_POSTGRES_URL: &str = "postgres://root@127.0.0.1:5432/test";

// Databases left behind by killed test processes are swept when older than this.
const STALE_AFTER_SECS: i64 = 3600;

/// A fresh, migrated database that is removed when dropped (or by [`TestDb::cleanup`]).
pub struct TestDb {
    db: Database,
    kind: Kind,
}

enum Kind {
    Sqlite {
        dir: Option<tempfile::TempDir>,
        path: PathBuf,
    },
    Postgres {
        server_url: String,
        name: String,
        dropped: bool,
    },
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Sqlite { path, .. } => write!(f, "TestDb(sqlite {})", path.display()),
            Kind::Postgres { name, .. } => write!(f, "TestDb(postgres {name})"),
        }
    }
}

impl TestDb {
    /// A real SQLite file in a fresh temporary directory, migrated.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("flotilla.db");
        let db = Database::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open test sqlite database");
        db.migrate().await.expect("migrate test sqlite database");
        TestDb {
            db,
            kind: Kind::Sqlite {
                dir: Some(dir),
                path,
            },
        }
    }

    /// A fresh database `flotilla_t_<unix secs>_<random>` on `FLOTILLA_TEST_POSTGRES_URL`
    /// (default `postgres://root@127.0.0.1:5432/test`), migrated. Stale test databases older
    /// than an hour (left by killed runs) are dropped first.
    pub async fn postgres() -> TestDb {
        let server_url =
            std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = sqlx::PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connect to {POSTGRES_URL_VAR} ({}): {e}",
                    redact_url(&server_url)
                )
            });
        sweep_stale(&mut admin).await;
        let now = chrono::Utc::now().timestamp();
        let name = format!(
            "flotilla_t_{now}_{:016x}",
            rand::thread_rng().r#gen::<u64>()
        );
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let db = Database::connect(&with_database(&server_url, &name))
            .await
            .expect("connect to test database");
        db.migrate().await.expect("migrate test postgres database");
        TestDb {
            db,
            kind: Kind::Postgres {
                server_url,
                name,
                dropped: false,
            },
        }
    }

    /// A fresh database of the given backend.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// A URL of this database for another process (`flotilla serve`, a benchmark's service).
    pub fn url(&self) -> String {
        match &self.kind {
            Kind::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            Kind::Postgres { name, .. } => {
                let server = std::env::var(POSTGRES_URL_VAR)
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        }
    }

    /// The SQLite file (`None` on Postgres).
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Some(path),
            Kind::Postgres { .. } => None,
        }
    }

    /// The Postgres database name (`None` on SQLite).
    pub fn postgres_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Postgres { name, .. } => Some(name),
            Kind::Sqlite { .. } => None,
        }
    }

    /// Closes the pool and removes the database now (Drop does the same, blocking).
    pub async fn cleanup(mut self) {
        self.db.close().await;
        match &mut self.kind {
            Kind::Sqlite { dir, .. } => drop(dir.take()),
            Kind::Postgres {
                server_url,
                name,
                dropped,
            } => {
                drop_database(server_url, name).await;
                *dropped = true;
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres {
            server_url,
            name,
            dropped: false,
        } = &self.kind
        {
            // Drop can't await, and the test's runtime may be busy or shutting down: drop the
            // database from a short-lived runtime on its own thread. FORCE ends the pool's
            // connections.
            let (url, name) = (server_url.clone(), name.clone());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(drop_database(&url, &name));
                }
            })
            .join();
        }
    }
}

async fn drop_database(server_url: &str, name: &str) {
    match sqlx::PgConnection::connect(server_url).await {
        Ok(mut admin) => {
            if let Err(e) = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
            {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
            let _ = admin.close().await;
        }
        Err(e) => eprintln!("warning: could not drop test database {name}: {e}"),
    }
}

async fn sweep_stale(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'flotilla\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let cutoff = chrono::Utc::now().timestamp() - STALE_AFTER_SECS;
    for name in names {
        let created = name.split('_').nth(2).and_then(|s| s.parse::<i64>().ok());
        if created.is_some_and(|t| t < cutoff) {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

/// Replaces the database name (the URL path) of a Postgres URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Installs a test log subscriber when `TEST_LOG` is set (its value is the filter, e.g.
/// `TEST_LOG=debug`); otherwise tests stay quiet. Safe to call from every test.
pub fn init_test_logging() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Turns a test body's result into a pass or a panic (`()` and `Result<(), E: Debug>`).
pub trait TestOutcome {
    /// Panics on failure.
    fn check(self);
}

impl TestOutcome for () {
    fn check(self) {}
}

impl<E: std::fmt::Debug> TestOutcome for Result<(), E> {
    fn check(self) {
        if let Err(e) = self {
            panic!("test failed: {e:?}");
        }
    }
}

/// Runs one async test body on both backends:
///
/// ```ignore
/// flotilla_vault::both_backends!(stores_a_key, |db: Database| async move {
///     // … returns () or Result<(), impl Debug>
/// });
/// ```
///
/// expands to a module `stores_a_key` with two `#[tokio::test]` functions, `sqlite` and
/// `postgres` (test names `…::stores_a_key::sqlite` / `…::stores_a_key::postgres`), each on a
/// fresh migrated database that is removed afterwards. The module does `use super::*;`, so the
/// body sees the enclosing module's imports. The calling crate needs `tokio` (macros, rt).
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $crate::testing::init_test_logging();
                let test_db = $crate::testing::TestDb::sqlite().await;
                let body = $body;
                $crate::testing::TestOutcome::check(body(test_db.db().clone()).await);
                test_db.cleanup().await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::testing::init_test_logging();
                let test_db = $crate::testing::TestDb::postgres().await;
                let body = $body;
                $crate::testing::TestOutcome::check(body(test_db.db().clone()).await);
                test_db.cleanup().await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://root@127.0.0.1:5432/test", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h:1/test?sslmode=disable", "x"),
            "postgres://h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://…@h/db");
    }
}
