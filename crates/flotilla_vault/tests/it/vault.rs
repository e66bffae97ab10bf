use flotilla_vault::{
    CredentialMode, CredentialSource, Database, Error, NewCredential, Purpose, Vault,
};
use secrecy::ExposeSecret;
use sqlx::Row;
use uuid::Uuid;

use crate::{store, store_direct, test_key, vault};

flotilla_vault::both_backends!(direct_round_trip, |db: Database| async move {
    let vault = vault(&db).await;
    let (ws, key) = (Uuid::now_v7(), test_key());
    let meta = store_direct(&vault, ws, "inst-ws-1", &key).await;
    assert_eq!(meta.workspace_id, ws);
    assert_eq!(meta.mode, CredentialMode::Direct);
    assert_eq!(meta.purpose, Purpose::Access);
    assert_eq!(meta.kek_id.as_deref(), Some("k1"));
    assert_eq!(
        meta.fingerprint.as_deref(),
        Some(Vault::fingerprint(&key).as_str())
    );
    assert!(meta.last_verified_at.is_none());

    let cred = vault.access_credential(ws).await.unwrap();
    assert_eq!(cred.secret.expose_secret(), key.expose_secret());
    assert_eq!(cred.as_workspace, None);
    assert_eq!(cred.instantly_workspace_id, "inst-ws-1");
    assert_eq!(cred.admin_workspace_id, None);
    assert_eq!(cred.fingerprint, Vault::fingerprint(&key));

    assert_eq!(vault.meta(ws).await.unwrap(), Some(meta.clone()));
    assert_eq!(
        vault.find_by_fingerprint(&cred.fingerprint).await.unwrap(),
        Some(meta.clone())
    );
    vault.mark_verified(ws).await.unwrap();
    assert!(
        vault
            .meta(ws)
            .await
            .unwrap()
            .unwrap()
            .last_verified_at
            .is_some()
    );

    let nobody = Uuid::now_v7();
    assert!(
        matches!(vault.access_credential(nobody).await, Err(Error::NotFound { workspace_id }) if workspace_id == nobody)
    );
    assert!(matches!(
        vault.mark_verified(nobody).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(vault.meta(nobody).await.unwrap(), None);
});

flotilla_vault::both_backends!(fingerprint_format, |_db: Database| async move {
    let key = secrecy::SecretString::from("abc".to_owned());
    // sha256("abc") = ba7816bf8f01cfea…
    assert_eq!(Vault::fingerprint(&key), "sha256:ba7816bf8f01cfea");
});

flotilla_vault::both_backends!(
    delegated_resolves_through_admin,
    |db: Database| async move {
        let vault = vault(&db).await;
        let (admin, sub, admin_key) = (Uuid::now_v7(), Uuid::now_v7(), test_key());
        store_direct(&vault, admin, "inst-admin", &admin_key).await;
        let meta = store(
            &vault,
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
        assert_eq!(meta.mode, CredentialMode::Delegated);
        assert_eq!(meta.admin_workspace_id, Some(admin));
        assert_eq!((meta.fingerprint, meta.kek_id), (None, None));

        let cred = vault.access_credential(sub).await.unwrap();
        assert_eq!(cred.secret.expose_secret(), admin_key.expose_secret());
        assert_eq!(cred.as_workspace.as_deref(), Some("inst-sub"));
        assert_eq!(cred.instantly_workspace_id, "inst-sub");
        assert_eq!(cred.admin_workspace_id, Some(admin));
        assert_eq!(vault.delegated_through(admin).await.unwrap(), vec![sub]);

        // Delegating to a workspace without a credential, or to a delegated one, is refused.
        let other = Uuid::now_v7();
        let err = store(
            &vault,
            NewCredential {
                workspace_id: other,
                instantly_workspace_id: "inst-other",
                purpose: Purpose::Access,
                source: CredentialSource::Delegated {
                    admin_workspace_id: Uuid::now_v7(),
                },
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidAdmin { .. }), "{err:?}");
        let err = store(
            &vault,
            NewCredential {
                workspace_id: other,
                instantly_workspace_id: "inst-other",
                purpose: Purpose::Access,
                source: CredentialSource::Delegated {
                    admin_workspace_id: sub,
                },
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidAdmin { admin_workspace_id, .. } if admin_workspace_id == sub),
            "{err:?}"
        );

        // Shredding the admin leaves the sub unresolvable, with a clear error.
        let mut tx = db.pool().begin().await.unwrap();
        assert_eq!(vault.delete_workspace(&mut tx, admin).await.unwrap(), 1);
        tx.commit().await.unwrap();
        assert!(matches!(
            vault.access_credential(sub).await,
            Err(Error::InvalidAdmin { .. })
        ));
    }
);

flotilla_vault::both_backends!(
    issued_credentials_and_uniqueness,
    |db: Database| async move {
        let vault = vault(&db).await;
        let ws = Uuid::now_v7();
        let access_key = test_key();
        store_direct(&vault, ws, "inst", &access_key).await;
        for n in 0..3 {
            let key = test_key();
            let meta = store(
                &vault,
                NewCredential {
                    workspace_id: ws,
                    instantly_workspace_id: "inst",
                    purpose: Purpose::Issued {
                        instantly_key_id: format!("key-{n}"),
                    },
                    source: CredentialSource::Direct(&key),
                },
            )
            .await
            .unwrap();
            assert_eq!(
                meta.instantly_key_id.as_deref(),
                Some(format!("key-{n}").as_str())
            );
        }
        let all = vault.list(ws).await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].purpose, Purpose::Access);
        assert!(
            all[1..]
                .iter()
                .all(|m| matches!(m.purpose, Purpose::Issued { .. }))
        );
        assert!(vault.find_issued(ws, "key-1").await.unwrap().is_some());
        // The access key is still the access key.
        assert_eq!(
            vault
                .access_credential(ws)
                .await
                .unwrap()
                .secret
                .expose_secret(),
            access_key.expose_secret()
        );

        // A second access credential is refused…
        let err = store_err(&vault, ws, &test_key(), Purpose::Access).await;
        assert!(
            matches!(err, Error::AccessExists { workspace_id } if workspace_id == ws),
            "{err:?}"
        );
        // …and so is the database's own unique index, bypassing the vault's pre-check.
        let raw = sqlx::query(
        "insert into vault_credential (id, workspace_id, instantly_workspace_id, purpose, mode, \
         admin_workspace_id, fingerprint, ciphertext, wrapped_key, kek_id, created_at, updated_at) \
         select $1, workspace_id, instantly_workspace_id, 'access', 'direct', null, 'sha256:x', \
         ciphertext, wrapped_key, kek_id, 0, 0 from vault_credential where workspace_id = $2 and purpose = 'access'",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(ws.to_string())
    .execute(db.pool())
    .await;
        assert!(
            raw.unwrap_err()
                .as_database_error()
                .unwrap()
                .is_unique_violation()
        );

        // Delegated issued credentials make no sense.
        let err = store(
            &vault,
            NewCredential {
                workspace_id: ws,
                instantly_workspace_id: "inst",
                purpose: Purpose::Issued {
                    instantly_key_id: "k".into(),
                },
                source: CredentialSource::Delegated {
                    admin_workspace_id: Uuid::now_v7(),
                },
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    }
);

async fn store_err(
    vault: &Vault,
    ws: Uuid,
    key: &secrecy::SecretString,
    purpose: Purpose,
) -> Error {
    store(
        vault,
        NewCredential {
            workspace_id: ws,
            instantly_workspace_id: "inst",
            purpose,
            source: CredentialSource::Direct(key),
        },
    )
    .await
    .unwrap_err()
}

flotilla_vault::both_backends!(
    duplicate_fingerprint_is_reported,
    |db: Database| async move {
        let vault = vault(&db).await;
        let (first, second, key) = (Uuid::now_v7(), Uuid::now_v7(), test_key());
        store_direct(&vault, first, "inst-1", &key).await;
        let err = store_err(&vault, second, &key, Purpose::Access).await;
        assert!(
            matches!(err, Error::Duplicate { workspace_id } if workspace_id == first),
            "{err:?}"
        );
        let err = store_err(
            &vault,
            first,
            &key,
            Purpose::Issued {
                instantly_key_id: "x".into(),
            },
        )
        .await;
        assert!(
            matches!(err, Error::Duplicate { workspace_id } if workspace_id == first),
            "{err:?}"
        );
        // replace_access with an already stored key is refused too.
        store_direct(&vault, second, "inst-2", &test_key()).await;
        let mut tx = db.pool().begin().await.unwrap();
        let err = vault
            .replace_access(&mut tx, second, &key, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Duplicate { workspace_id } if workspace_id == first),
            "{err:?}"
        );
        drop(tx);
        // Nothing was written for `second` beyond its own key.
        assert_eq!(vault.list(second).await.unwrap().len(), 1);
    }
);

flotilla_vault::both_backends!(replace_access_shreds_old_key, |db: Database| async move {
    let vault = vault(&db).await;
    let (ws, old, new) = (Uuid::now_v7(), test_key(), test_key());
    let before = store_direct(&vault, ws, "inst", &old).await;
    vault.mark_verified(ws).await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    let after = vault
        .replace_access(&mut tx, ws, &new, Some("instantly-key-9"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(after.id, before.id);
    assert_eq!(after.instantly_key_id.as_deref(), Some("instantly-key-9"));
    assert!(after.last_verified_at.is_none());
    let cred = vault.access_credential(ws).await.unwrap();
    assert_eq!(cred.secret.expose_secret(), new.expose_secret());
    assert_eq!(cred.instantly_key_id.as_deref(), Some("instantly-key-9"));
    assert_eq!(
        vault
            .find_by_fingerprint(&Vault::fingerprint(&old))
            .await
            .unwrap(),
        None
    );

    let mut tx = db.pool().begin().await.unwrap();
    let missing = Uuid::now_v7();
    let err = vault
        .replace_access(&mut tx, missing, &test_key(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { workspace_id } if workspace_id == missing),
        "{err:?}"
    );
});

flotilla_vault::both_backends!(delete_workspace_crypto_shreds, |db: Database| async move {
    let vault = vault(&db).await;
    let (ws, keep) = (Uuid::now_v7(), Uuid::now_v7());
    let key = test_key();
    store_direct(&vault, ws, "inst", &key).await;
    store_direct(&vault, keep, "inst-keep", &test_key()).await;
    let issued = test_key();
    store(
        &vault,
        NewCredential {
            workspace_id: ws,
            instantly_workspace_id: "inst",
            purpose: Purpose::Issued {
                instantly_key_id: "i1".into(),
            },
            source: CredentialSource::Direct(&issued),
        },
    )
    .await
    .unwrap();

    let mut tx = db.pool().begin().await.unwrap();
    assert_eq!(vault.delete_workspace(&mut tx, ws).await.unwrap(), 2);
    tx.commit().await.unwrap();
    let left: i64 = sqlx::query("select count(*) from vault_credential where workspace_id = $1")
        .bind(ws.to_string())
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert!(matches!(
        vault.access_credential(ws).await,
        Err(Error::NotFound { .. })
    ));
    assert!(vault.access_credential(keep).await.is_ok());
    // The same key can be registered again after shredding.
    store_direct(&vault, ws, "inst", &key).await;
});

flotilla_vault::both_backends!(
    store_rolls_back_with_callers_transaction,
    |db: Database| async move {
        let vault = vault(&db).await;
        let ws = Uuid::now_v7();
        let key = test_key();
        let mut tx = db.pool().begin().await.unwrap();
        vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: ws,
                    instantly_workspace_id: "inst",
                    purpose: Purpose::Access,
                    source: CredentialSource::Direct(&key),
                },
            )
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(vault.meta(ws).await.unwrap(), None);
    }
);
