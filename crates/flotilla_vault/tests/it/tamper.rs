use flotilla_vault::{Database, Error, Keyring, Stage, Vault, generate_key_spec};
use sqlx::Row;
use uuid::Uuid;

use crate::{ring, store_direct, test_key, vault};

async fn blob(db: &Database, ws: Uuid, column: &str) -> Vec<u8> {
    sqlx::query(&format!(
        "select {column} from vault_credential where workspace_id = $1 and purpose = 'access'"
    ))
    .bind(ws.to_string())
    .fetch_one(db.pool())
    .await
    .unwrap()
    .get(0)
}

async fn set_blob(db: &Database, ws: Uuid, column: &str, value: Vec<u8>) {
    let n = sqlx::query(&format!(
        "update vault_credential set {column} = $1 where workspace_id = $2 and purpose = 'access'"
    ))
    .bind(value)
    .bind(ws.to_string())
    .execute(db.pool())
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
}

fn assert_tampered(r: flotilla_vault::Result<flotilla_vault::Credential>, id: Uuid, want: Stage) {
    match r {
        Err(Error::Tampered {
            credential_id,
            stage,
        }) => {
            assert_eq!(credential_id, id);
            assert_eq!(stage, want);
        }
        other => panic!("expected Tampered, got {other:?}"),
    }
}

flotilla_vault::both_backends!(
    ciphertext_copied_to_another_row_fails,
    |db: Database| async move {
        let vault = vault(&db).await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        store_direct(&vault, a, "inst-a", &test_key()).await;
        let victim = store_direct(&vault, b, "inst-b", &test_key()).await;

        // Only the credential ciphertext copied: b's data key can't open it.
        set_blob(&db, b, "ciphertext", blob(&db, a, "ciphertext").await).await;
        assert_tampered(
            vault.access_credential(b).await,
            victim.id,
            Stage::DecryptCredential,
        );

        // Ciphertext and wrapped key copied together: the wrapped key's AAD names another row.
        set_blob(&db, b, "wrapped_key", blob(&db, a, "wrapped_key").await).await;
        assert_tampered(
            vault.access_credential(b).await,
            victim.id,
            Stage::UnwrapDataKey,
        );

        // The source row is unaffected.
        assert!(vault.access_credential(a).await.is_ok());
    }
);

flotilla_vault::both_backends!(flipped_bytes_fail, |db: Database| async move {
    let (k1, k2) = (generate_key_spec("k1"), generate_key_spec("k2"));
    let vault = Vault::open(db.clone(), ring(&[&k1, &k2])).await.unwrap();
    let ws = Uuid::now_v7();
    let meta = store_direct(&vault, ws, "inst", &test_key()).await;
    for column in ["ciphertext", "wrapped_key"] {
        let original = blob(&db, ws, column).await;
        // Flip a byte in the nonce, the body and the tag in turn.
        for at in [3, original.len() / 2, original.len() - 1] {
            let mut bad = original.clone();
            bad[at] ^= 0x01;
            set_blob(&db, ws, column, bad).await;
            let want = if column == "ciphertext" {
                Stage::DecryptCredential
            } else {
                Stage::UnwrapDataKey
            };
            assert_tampered(vault.access_credential(ws).await, meta.id, want);
        }
        set_blob(&db, ws, column, original).await;
        assert!(vault.access_credential(ws).await.is_ok());
    }
    // Relabelling the row with another configured KEK id fails too (the id is in the AAD).
    sqlx::query("update vault_credential set kek_id = 'k2' where id = $1")
        .bind(meta.id.to_string())
        .execute(db.pool())
        .await
        .unwrap();
    assert_tampered(
        vault.access_credential(ws).await,
        meta.id,
        Stage::UnwrapDataKey,
    );
});

flotilla_vault::both_backends!(wrong_kek_fails, |db: Database| async move {
    let right = Keyring::generate("k1");
    let vault = Vault::open(db.clone(), right).await.unwrap();
    let ws = Uuid::now_v7();
    let meta = store_direct(&vault, ws, "inst", &test_key()).await;

    // Same id, other bytes: refused at open, by the KEK check value.
    let err = Vault::open(db.clone(), Keyring::generate("k1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::KekMismatch { kek_id } if kek_id == "k1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("k1"));

    // Even without the check value, decrypting with the wrong bytes fails the tag check.
    sqlx::query("delete from vault_kek")
        .execute(db.pool())
        .await
        .unwrap();
    let wrong = Vault::open(db.clone(), Keyring::generate("k1"))
        .await
        .unwrap();
    assert_tampered(
        wrong.access_credential(ws).await,
        meta.id,
        Stage::UnwrapDataKey,
    );
});

flotilla_vault::both_backends!(
    batch_read_isolates_each_workspace,
    |db: Database| async move {
        use flotilla_vault::{CredentialSource, NewCredential, Purpose};
        use secrecy::ExposeSecret;
        let vault = vault(&db).await;
        let (admin, sub, good, bad, nobody) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let (admin_key, good_key) = (test_key(), test_key());
        store_direct(&vault, admin, "inst-admin", &admin_key).await;
        store_direct(&vault, good, "inst-good", &good_key).await;
        let victim = store_direct(&vault, bad, "inst-bad", &test_key()).await;
        let mut tx = db.pool().begin().await.unwrap();
        vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: sub,
                    instantly_workspace_id: "inst-sub",
                    purpose: Purpose::Access,
                    source: CredentialSource::Delegated {
                        admin_workspace_id: admin,
                    },
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        set_blob(&db, bad, "ciphertext", blob(&db, good, "ciphertext").await).await;

        // The sub is asked for without its admin: the admin row is fetched on the side.
        let mut all = vault
            .access_credentials(&[sub, good, bad, nobody])
            .await
            .unwrap();
        assert_eq!(all.len(), 4);
        let sub_cred = all.remove(&sub).unwrap().unwrap();
        assert_eq!(sub_cred.secret.expose_secret(), admin_key.expose_secret());
        assert_eq!(sub_cred.as_workspace.as_deref(), Some("inst-sub"));
        assert_eq!(sub_cred.admin_workspace_id, Some(admin));
        let good_cred = all.remove(&good).unwrap().unwrap();
        assert_eq!(good_cred.secret.expose_secret(), good_key.expose_secret());
        assert_eq!(good_cred.as_workspace, None);
        assert_tampered(
            all.remove(&bad).unwrap(),
            victim.id,
            Stage::DecryptCredential,
        );
        assert!(matches!(
            all.remove(&nobody).unwrap(),
            Err(Error::NotFound { workspace_id }) if workspace_id == nobody
        ));
        // Empty input, no query needed.
        assert!(vault.access_credentials(&[]).await.unwrap().is_empty());
    }
);
