//! Decrypt throughput of the vault on SQLite, against raw AES-256-GCM as a same-run baseline.
//!
//! `cargo bench -p flotilla_vault --bench decrypt` (release profile). Stores 10,000 direct
//! credentials, then reads each back with `access_credential` (one indexed SQLite read, one data
//! key unwrap, one credential decrypt), sequentially and from 4 concurrent tasks.

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm};
use flotilla_vault::{CredentialSource, Database, Keyring, NewCredential, Purpose, Vault};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const N: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Database::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    db.migrate().await?;
    let vault = Vault::open(db.clone(), Keyring::generate("k1")).await?;

    let keys: Vec<(Uuid, SecretString)> = (0..N)
        .map(|_| {
            (
                Uuid::now_v7(),
                SecretString::from(format!("bench-key-{}", Uuid::new_v4().simple())),
            )
        })
        .collect();
    let key_len = keys[0].1.expose_secret().len();

    let start = Instant::now();
    for chunk in keys.chunks(500) {
        let mut tx = db.pool().begin().await?;
        for (ws, key) in chunk {
            vault
                .store(
                    &mut tx,
                    NewCredential {
                        workspace_id: *ws,
                        instantly_workspace_id: "bench-ws",
                        purpose: Purpose::Access,
                        source: CredentialSource::Direct(key),
                    },
                )
                .await?;
        }
        tx.commit().await?;
    }
    let store_secs = start.elapsed().as_secs_f64();

    // Sequential reads.
    let start = Instant::now();
    for (ws, key) in &keys {
        let cred = vault.access_credential(*ws).await?;
        assert_eq!(cred.secret.expose_secret().len(), key.expose_secret().len());
    }
    let seq_secs = start.elapsed().as_secs_f64();

    // 4 concurrent readers.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for part in keys.chunks(N / 4) {
        let (vault, ids) = (
            vault.clone(),
            part.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        );
        tasks.push(tokio::spawn(async move {
            for ws in ids {
                black_box(vault.access_credential(ws).await.expect("decrypt"));
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let par_secs = start.elapsed().as_secs_f64();

    // Baseline: raw AES-256-GCM decrypts of a same-size plaintext, same AAD size, no DB.
    let cipher = Aes256Gcm::new(&Aes256Gcm::generate_key(&mut OsRng));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = [0u8; 96];
    let plaintext = vec![b'x'; key_len];
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .expect("encrypt");
    let raw_n = 200_000;
    let start = Instant::now();
    for _ in 0..raw_n {
        black_box(
            cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: black_box(&ct),
                        aad: &aad,
                    },
                )
                .expect("decrypt"),
        );
    }
    let raw_secs = start.elapsed().as_secs_f64();

    let seq_rate = N as f64 / seq_secs;
    let par_rate = N as f64 / par_secs;
    let raw_rate = raw_n as f64 / raw_secs;
    println!(
        "credentials stored:               {N} ({key_len}-byte keys) in {store_secs:.2} s ({:.0}/s)",
        N as f64 / store_secs
    );
    println!("vault decrypt, sequential:        {seq_rate:>10.0} credentials/s");
    println!("vault decrypt, 4 tasks:           {par_rate:>10.0} credentials/s");
    println!(
        "raw AES-256-GCM decrypt baseline: {raw_rate:>10.0} decrypts/s ({key_len}-byte plaintext)"
    );
    println!(
        "ratio raw / vault (sequential):   {:>10.1}x",
        raw_rate / seq_rate
    );
    println!(
        "ratio raw / vault (4 tasks):      {:>10.1}x",
        raw_rate / par_rate
    );
    db.close().await;
    Ok(())
}
