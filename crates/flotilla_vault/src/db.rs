//! The storage foundation shared by the vault and the service: one [`Database`] over
//! `sqlx::AnyPool`, for SQLite (embedded default) and Postgres (production).
//!
//! SQL convention for every crate: the same SQL text on both backends, `$1, $2…` placeholders,
//! column types limited to TEXT, BIGINT (timestamps = unix milliseconds; flags = 0/1) and
//! BLOB (sqlite) / BYTEA (postgres); no `SUM` without `CAST(… AS BIGINT)`. Uuids are TEXT.
//!
//! No BOOLEAN: through `sqlx::Any` (0.8) a SQLite column declared BOOLEAN cannot be read at all
//! (row decode fails with "Any driver does not support the SQLite type … Bool"), and `bool` never
//! decodes from SQLite values. Store flags as BIGINT 0/1 and bind/read `i64`; turn boolean
//! expressions into integers (`CASE WHEN EXISTS(…) THEN 1 ELSE 0 END`). Verified by the canary
//! test `sqlite_boolean_columns_are_unreadable_through_any`.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

// Applied on every new SQLite connection. busy_timeout comes first so that the WAL switch
// waits rather than failing when several connections open at once.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

/// Builds `$start, $start+1, …` for `n` placeholders (dynamic `IN (…)` lists).
pub fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The database engine behind a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (one process).
    Sqlite,
    /// PostgreSQL (several replicas may share it).
    Postgres,
}

impl Backend {
    /// Which backend a URL selects.
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::UnsupportedUrl)
        }
    }

    /// `"sqlite"` or `"postgres"` (also the migrations folder name).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool plus the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Database {
    // The URL may carry a password, so only the backend is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Connects to `sqlite://path/file.db` (relative; `sqlite:///abs/path.db` absolute), creating
    /// the parent directory and the file, or to `postgres://…`.
    pub async fn connect(url: &str) -> Result<Database> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                let (url, in_memory) = prepare_sqlite_url(url)?;
                AnyPoolOptions::new()
                    // Every `:memory:` connection is its own database, so keep exactly one.
                    .max_connections(if in_memory { 1 } else { 8 })
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                conn.execute(*pragma).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?
            }
        };
        Ok(Database { pool, backend })
    }

    /// The underlying pool (for queries and `pool().begin()`).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs every migration in `migrations/<backend>/` (vault and service tables) that has not
    /// been applied yet. Safe to call from several replicas at once (sqlx takes a lock).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction that will write. On SQLite this is `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads first and writes later can fail with "database is locked" when it
    /// upgrades its lock while another connection writes (busy_timeout does not help then);
    /// taking the write lock up front makes writers queue instead. On Postgres a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` (unless a mode is given) and creates the parent directory. Returns the URL to
/// connect with and whether it is an in-memory database.
fn prepare_sqlite_url(url: &str) -> Result<(String, bool)> {
    // Same split as sqlx: strip "sqlite://" or "sqlite:", the path runs up to '?'.
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or(Error::UnsupportedUrl)?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let in_memory = path.is_empty()
        || path == ":memory:"
        || query.is_some_and(|q| q.split('&').any(|kv| kv == "mode=memory"));
    let path = PathBuf::from(path);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let (false, Some(parent)) = (in_memory, parent) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let has_mode = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("mode=")));
    let url = match (query, has_mode) {
        (_, true) => url.to_owned(),
        (Some(_), false) => format!("{url}&mode=rwc"),
        (None, false) => format!("{url}?mode=rwc"),
    };
    Ok((url, in_memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_gets_rwc_and_parent_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/f.db");
        let (url, mem) = prepare_sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(!mem);
        assert!(url.ends_with("f.db?mode=rwc"), "{url}");
        assert!(dir.path().join("a/b").is_dir());
        let (url, _) = prepare_sqlite_url("sqlite::memory:?cache=shared").unwrap();
        assert_eq!(url, "sqlite::memory:?cache=shared&mode=rwc");
        let (url, _) = prepare_sqlite_url("sqlite::memory:?mode=ro").unwrap();
        assert_eq!(url, "sqlite::memory:?mode=ro");
        assert!(matches!(
            Backend::from_url("mysql://x"),
            Err(Error::UnsupportedUrl)
        ));
    }
}
