//! After storing a known key, neither the raw database, nor Debug output, nor logs contain it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use flotilla_vault::testing::TestDb;
use flotilla_vault::{Backend, CredentialSource, Keyring, NewCredential, Purpose, Vault};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use uuid::Uuid;

use crate::store;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn no_plaintext_anywhere(test_db: TestDb) {
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Current-thread test runtime: everything below runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = test_db.db().clone();
    let key = SecretString::from(format!("flotilla-leak-probe-{}", Uuid::new_v4().simple()));
    let plain = key.expose_secret().as_bytes().to_vec();
    let hex_plain = hex_of(&plain);
    let keyring = Keyring::generate("k1");
    let vault = Vault::open(db.clone(), keyring.clone()).await.unwrap();
    let (admin, sub) = (Uuid::now_v7(), Uuid::now_v7());
    let meta = store(
        &vault,
        NewCredential {
            workspace_id: admin,
            instantly_workspace_id: "inst-leak-admin",
            purpose: Purpose::Access,
            source: CredentialSource::Direct(&key),
        },
    )
    .await
    .unwrap();
    let new_sub = NewCredential {
        workspace_id: sub,
        instantly_workspace_id: "inst-leak-sub",
        purpose: Purpose::Access,
        source: CredentialSource::Delegated {
            admin_workspace_id: admin,
        },
    };
    store(&vault, new_sub.clone()).await.unwrap();
    let direct = vault.access_credential(admin).await.unwrap();
    let delegated = vault.access_credential(sub).await.unwrap();
    assert_eq!(delegated.secret.expose_secret(), key.expose_secret());
    vault.mark_verified(admin).await.unwrap();
    // Debug output of everything that touched the key.
    let debug = format!(
        "{direct:?}{delegated:?}{meta:?}{vault:?}{keyring:?}{key:?}{:?}{new_sub:?}{db:?}",
        NewCredential {
            source: CredentialSource::Direct(&key),
            ..new_sub.clone()
        }
    );
    assert!(!debug.contains(key.expose_secret()), "Debug leaked the key");
    assert!(debug.contains("REDACTED"));

    // The raw database.
    match db.backend() {
        Backend::Sqlite => {
            let path = test_db.sqlite_path().unwrap().to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let file = format!("{}{suffix}", path.display());
                if let Ok(bytes) = std::fs::read(&file) {
                    assert!(
                        !contains(&bytes, &plain),
                        "{file} contains the plaintext key"
                    );
                    all.extend(bytes);
                }
            }
            // The scan is meaningful: the row's plain columns are there.
            assert!(contains(&all, b"inst-leak-admin"));
        }
        Backend::Postgres => {
            let mut text = String::new();
            for table in ["vault_credential", "vault_kek"] {
                for row in sqlx::query(&format!("select cast(t as text) from {table} t"))
                    .fetch_all(db.pool())
                    .await
                    .unwrap()
                {
                    text.push_str(&row.get::<String, _>(0));
                    text.push('\n');
                }
            }
            assert!(text.contains("inst-leak-admin"), "{text}");
            assert!(
                !text.contains(key.expose_secret()),
                "a column contains the key"
            );
            assert!(
                !text.contains(&hex_plain),
                "a bytea column contains the key"
            );
        }
    }

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("credential stored"),
        "log capture works: {logs}"
    );
    assert!(
        !logs.contains(key.expose_secret()),
        "a log line contains the key"
    );
    drop(_guard);
    test_db.cleanup().await;
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn no_plaintext_anywhere_sqlite() {
    no_plaintext_anywhere(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn no_plaintext_anywhere_postgres() {
    no_plaintext_anywhere(TestDb::postgres().await).await;
}
