use flotilla_vault::{Backend, CredentialSource, Database, Keyring, NewCredential, Purpose, Vault};
use sqlx::Row;
use uuid::Uuid;

flotilla_vault::both_backends!(
    blob_bigint_bool_round_trip_through_any,
    |db: Database| async move {
        let pool = db.pool();
        let blob_type = match db.backend() {
            Backend::Sqlite => "blob",
            Backend::Postgres => "bytea",
        };
        sqlx::query(&format!(
            "create table t_any (id text primary key, b {blob_type}, n bigint, f bigint, o text)"
        ))
        .execute(pool)
        .await
        .unwrap();
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
        sqlx::query("insert into t_any (id, b, n, f, o) values ($1, $2, $3, $4, $5)")
            .bind("a")
            .bind(bytes.clone())
            .bind(1_700_000_000_123i64)
            .bind(1i64) // flags are BIGINT 0/1, see below
            .bind(None::<String>)
            .execute(pool)
            .await
            .unwrap();
        let row = sqlx::query("select b, n, f, o from t_any where id = $1")
            .bind("a")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(row.get::<Vec<u8>, _>(0), bytes);
        assert_eq!(row.get::<i64, _>(1), 1_700_000_000_123);
        assert_eq!(row.get::<i64, _>(2), 1);
        assert_eq!(row.get::<Option<String>, _>(3), None);
        db.ping().await.unwrap();
        // Migrations are idempotent.
        db.migrate().await.unwrap();
    }
);

// Canary for the project's SQL convention: through `Any`, SQLite cannot decode a column declared
// BOOLEAN at all (sqlx 0.8 maps no SQLite type to Any's Bool), and a bool is never decodable
// from SQLite. So flags are BIGINT 0/1, bound and read as i64, on both backends. If this test
// starts failing, sqlx has fixed it and BOOLEAN could be used.
#[tokio::test]
async fn sqlite_boolean_columns_are_unreadable_through_any() {
    let test_db = flotilla_vault::testing::TestDb::sqlite().await;
    let pool = test_db.db().pool();
    sqlx::query("create table t_bool (f boolean)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into t_bool (f) values ($1)")
        .bind(true)
        .execute(pool)
        .await
        .unwrap();
    let Err(err) = sqlx::query("select f from t_bool").fetch_one(pool).await else {
        panic!("sqlx now decodes SQLite BOOLEAN through Any")
    };
    assert!(err.to_string().contains("Bool"), "{err}");
    let n: i64 = sqlx::query("select cast(f as bigint) from t_bool")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let exists = sqlx::query("select exists(select 1 from t_bool)")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(exists.try_get::<bool, _>(0).is_err());
    assert_eq!(exists.get::<i64, _>(0), 1);
    test_db.cleanup().await;
}

#[tokio::test]
async fn sqlite_connect_creates_dir_and_sets_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/f.db");
    let db = Database::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(path.is_file());
    let mut conn = db.pool().acquire().await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync, 1, "NORMAL");
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(busy, 5000);
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Database::connect("mysql://localhost/x").await.unwrap_err();
    assert!(
        matches!(err, flotilla_vault::Error::UnsupportedUrl),
        "{err:?}"
    );
}

flotilla_vault::both_backends!(concurrent_writers_queue, |db: Database| async move {
    let vault = Vault::open(db.clone(), Keyring::generate("k1"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let vault = vault.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                // read-then-write in one transaction, the shape that trips SQLite's lock upgrade
                let (ws, key) = (Uuid::now_v7(), crate::test_key());
                let mut tx = vault.db().begin_write().await.unwrap();
                vault
                    .store(
                        &mut tx,
                        NewCredential {
                            workspace_id: ws,
                            instantly_workspace_id: &format!("inst-{t}-{i}"),
                            purpose: Purpose::Access,
                            source: CredentialSource::Direct(&key),
                        },
                    )
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: i64 = sqlx::query("select count(*) from vault_credential")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 80);
});

#[tokio::test]
async fn postgres_test_databases_are_dropped() {
    use flotilla_vault::testing::TestDb;
    let exists = |name: String| async move {
        let admin = Database::connect(
            &std::env::var("FLOTILLA_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| flotilla_vault::testing::DEFAULT_POSTGRES_URL.to_owned()),
        )
        .await
        .unwrap();
        let n: i64 = sqlx::query("select count(*) from pg_database where datname = $1")
            .bind(name)
            .fetch_one(admin.pool())
            .await
            .unwrap()
            .get(0);
        admin.close().await;
        n == 1
    };
    // Plain Drop (also what happens when a test panics).
    let db = TestDb::postgres().await;
    let name = db.postgres_name().unwrap().to_owned();
    assert!(exists(name.clone()).await);
    drop(db);
    assert!(!exists(name).await);
    // Explicit cleanup.
    let db = TestDb::postgres().await;
    let name = db.postgres_name().unwrap().to_owned();
    db.cleanup().await;
    assert!(!exists(name).await);
}
