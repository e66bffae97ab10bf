use std::collections::BTreeMap;

use flotilla_vault::{Database, Error, Vault, generate_key_spec};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use uuid::Uuid;

use crate::{ring, store_direct, test_key};

async fn fill(vault: &Vault, n: usize) -> Vec<(Uuid, SecretString)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (ws, key) = (Uuid::now_v7(), test_key());
        store_direct(vault, ws, &format!("inst-{i}"), &key).await;
        out.push((ws, key));
    }
    out
}

async fn ciphertexts(db: &Database) -> BTreeMap<String, Vec<u8>> {
    sqlx::query("select id, ciphertext from vault_credential")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Vec<u8>, _>(1)))
        .collect()
}

async fn assert_all_readable(vault: &Vault, rows: &[(Uuid, SecretString)]) {
    for (ws, key) in rows {
        let cred = vault.access_credential(*ws).await.unwrap();
        assert_eq!(cred.secret.expose_secret(), key.expose_secret());
    }
}

flotilla_vault::both_backends!(rotation_rewraps_every_row, |db: Database| async move {
    let (k1, k2) = (generate_key_spec("k1"), generate_key_spec("k2"));
    let old = Vault::open(db.clone(), ring(&[&k1])).await.unwrap();
    let rows = fill(&old, 7).await;
    let before = ciphertexts(&db).await;

    let vault = Vault::open(db.clone(), ring(&[&k2, &k1])).await.unwrap();
    let status = vault.status().await.unwrap();
    assert_eq!(status.primary_kek_id, "k2");
    assert_eq!(status.rows_per_kek, BTreeMap::from([("k1".to_owned(), 7)]));
    assert_eq!(status.pending_rotation, 7);

    let report = vault.rotate(3).await.unwrap();
    assert_eq!(
        (report.rotated, report.batches, report.remaining),
        (7, 3, 0)
    );
    assert_eq!(report.primary_kek_id, "k2");
    // Data keys re-wrapped; credential ciphertexts byte-for-byte unchanged.
    assert_eq!(ciphertexts(&db).await, before);
    let status = vault.status().await.unwrap();
    assert_eq!(status.rows_per_kek, BTreeMap::from([("k2".to_owned(), 7)]));
    assert_eq!(status.pending_rotation, 0);
    // Running it again is a no-op.
    assert_eq!(vault.rotate(3).await.unwrap().rotated, 0);

    // k1 can now be removed from the keyring.
    let only_k2 = Vault::open(db.clone(), ring(&[&k2])).await.unwrap();
    assert_all_readable(&only_k2, &rows).await;
});

flotilla_vault::both_backends!(interrupted_rotation_resumes, |db: Database| async move {
    let (k1, k2) = (generate_key_spec("k1"), generate_key_spec("k2"));
    let old = Vault::open(db.clone(), ring(&[&k1])).await.unwrap();
    let rows = fill(&old, 10).await;

    let vault = Vault::open(db.clone(), ring(&[&k2, &k1])).await.unwrap();
    let report = vault.rotate_at_most(2, 5).await.unwrap();
    assert_eq!((report.rotated, report.remaining), (5, 5));
    let status = vault.status().await.unwrap();
    assert_eq!(
        status.rows_per_kek,
        BTreeMap::from([("k1".to_owned(), 5), ("k2".to_owned(), 5)])
    );
    // Mid-rotation everything stays readable (both KEKs configured)…
    assert_all_readable(&vault, &rows).await;
    // …but k2 alone is not enough yet, and says which KEK is missing.
    let err = Vault::open(db.clone(), ring(&[&k2])).await.unwrap_err();
    assert!(
        matches!(&err, Error::MissingKek { missing, .. } if missing == &["k1".to_owned()]),
        "{err:?}"
    );

    // A new process resumes.
    let resumed = Vault::open(db.clone(), ring(&[&k2, &k1])).await.unwrap();
    let report = resumed.rotate(4).await.unwrap();
    assert_eq!((report.rotated, report.remaining), (5, 0));
    assert_eq!(
        resumed.status().await.unwrap().rows_per_kek,
        BTreeMap::from([("k2".to_owned(), 10)])
    );
    let only_k2 = Vault::open(db.clone(), ring(&[&k2])).await.unwrap();
    assert_all_readable(&only_k2, &rows).await;
});

flotilla_vault::both_backends!(
    missing_kek_fails_and_changes_nothing,
    |db: Database| async move {
        let (k1, k2, k3) = (
            generate_key_spec("k1"),
            generate_key_spec("k2"),
            generate_key_spec("k3"),
        );
        let vault = Vault::open(db.clone(), ring(&[&k1])).await.unwrap();
        fill(&vault, 2).await;
        let with_k2 = Vault::open(db.clone(), ring(&[&k2, &k1])).await.unwrap();
        with_k2.rotate_at_most(1, 1).await.unwrap(); // rows now on k1 and k2

        let snapshot = dump(&db).await;
        let err = Vault::open(db.clone(), ring(&[&k3])).await.unwrap_err();
        match &err {
            Error::MissingKek {
                missing,
                configured,
            } => {
                assert_eq!(missing, &["k1".to_owned(), "k2".to_owned()]);
                assert_eq!(configured, &["k3".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("k1, k2") && message.contains("FLOTILLA_VAULT_KEYS"),
            "{message}"
        );
        assert_eq!(dump(&db).await, snapshot, "a refused open wrote nothing");
    }
);

/// Every row of both vault tables, as text.
async fn dump(db: &Database) -> Vec<String> {
    let mut out = Vec::new();
    for q in [
        "select id, kek_id, wrapped_key, updated_at from vault_credential order by id",
        "select id, check_value, created_at from vault_kek order by id",
    ] {
        for row in sqlx::query(q).fetch_all(db.pool()).await.unwrap() {
            let cols = (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|s| format!("{s:?}"))
                        .or_else(|_| row.try_get::<Vec<u8>, _>(i).map(hex_of))
                        .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                        .unwrap()
                })
                .collect::<Vec<_>>();
            out.push(cols.join("|"));
        }
    }
    out
}

fn hex_of(b: Vec<u8>) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
