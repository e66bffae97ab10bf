//! Envelope encryption of one credential.
//!
//! - A fresh random 256-bit data key per credential encrypts the credential (AES-256-GCM).
//! - The data key is wrapped (AES-256-GCM) by a KEK from the keyring.
//! - Blob layout for both: `VERSION (1 byte) || nonce (12) || ciphertext || tag (16)`.
//! - AAD of the credential ciphertext: credential id + workspace id. AAD of the wrapped key:
//!   credential id + workspace id + KEK id. So material copied into another row, or a row
//!   relabelled with another KEK id, fails the tag check. The KEK id is bound only to the wrapped
//!   key (not the credential ciphertext) so that rotation re-wraps the data key without ever
//!   re-encrypting, or even decrypting, the credential.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use uuid::Uuid;

use crate::error::Stage;
use crate::keyring::Kek;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// The two stored blobs of one credential.
pub(crate) struct Sealed {
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) wrapped_key: Vec<u8>,
}

/// Ids the AAD binds a credential to.
#[derive(Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub(crate) credential_id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) kek_id: &'a str,
}

impl Binding<'_> {
    fn credential_aad(&self) -> String {
        format!(
            "flotilla-vault:v1:credential:{}:{}",
            self.credential_id, self.workspace_id
        )
    }
    fn wrap_aad(&self) -> String {
        format!(
            "flotilla-vault:v1:data-key:{}:{}:{}",
            self.credential_id, self.workspace_id, self.kek_id
        )
    }
}

fn seal_blob(cipher: &Aes256Gcm, msg: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ct = cipher
        .encrypt(&nonce, Payload { msg, aad })
        .expect("AES-GCM encryption only fails for inputs beyond 64 GiB");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_blob(cipher: &Aes256Gcm, blob: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if blob.len() < 1 + NONCE_LEN + 16 || blob[0] != VERSION {
        return None;
    }
    let (nonce, ct) = blob[1..].split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

/// Encrypts `plaintext` under a fresh data key wrapped by `kek` (`binding.kek_id == kek.id`).
pub(crate) fn seal(kek: &Kek, binding: Binding<'_>, plaintext: &[u8]) -> Sealed {
    debug_assert_eq!(binding.kek_id, kek.id);
    let mut data_key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut data_key[..]);
    let dk_cipher = Aes256Gcm::new_from_slice(&data_key[..]).expect("32-byte key");
    let ciphertext = seal_blob(&dk_cipher, plaintext, binding.credential_aad().as_bytes());
    let wrapped_key = seal_blob(&kek.cipher, &data_key[..], binding.wrap_aad().as_bytes());
    Sealed {
        ciphertext,
        wrapped_key,
    }
}

fn unwrap_data_key(
    kek: &Kek,
    binding: Binding<'_>,
    wrapped_key: &[u8],
) -> Result<Aes256Gcm, Stage> {
    let data_key = open_blob(&kek.cipher, wrapped_key, binding.wrap_aad().as_bytes())
        .ok_or(Stage::UnwrapDataKey)?;
    Aes256Gcm::new_from_slice(&data_key).map_err(|_| Stage::UnwrapDataKey)
}

/// Decrypts a credential. The plaintext buffer is wiped when dropped.
pub(crate) fn open(
    kek: &Kek,
    binding: Binding<'_>,
    ciphertext: &[u8],
    wrapped_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Stage> {
    let dk_cipher = unwrap_data_key(kek, binding, wrapped_key)?;
    open_blob(&dk_cipher, ciphertext, binding.credential_aad().as_bytes())
        .ok_or(Stage::DecryptCredential)
}

/// Re-wraps a data key from `old` to `new`; the credential ciphertext is untouched.
pub(crate) fn rewrap(
    old: &Kek,
    new: &Kek,
    credential_id: Uuid,
    workspace_id: Uuid,
    wrapped_key: &[u8],
) -> Result<Vec<u8>, Stage> {
    let old_binding = Binding {
        credential_id,
        workspace_id,
        kek_id: &old.id,
    };
    let data_key = open_blob(&old.cipher, wrapped_key, old_binding.wrap_aad().as_bytes())
        .ok_or(Stage::UnwrapDataKey)?;
    let new_binding = Binding {
        credential_id,
        workspace_id,
        kek_id: &new.id,
    };
    Ok(seal_blob(
        &new.cipher,
        &data_key,
        new_binding.wrap_aad().as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Keyring;

    fn binding(kek: &str) -> Binding<'_> {
        Binding {
            credential_id: Uuid::nil(),
            workspace_id: Uuid::max(),
            kek_id: kek,
        }
    }

    #[test]
    fn seal_open_rewrap() {
        let ring = Keyring::generate("k1");
        let ring2 = Keyring::generate("k2");
        let (k1, k2) = (ring.primary(), ring2.primary());
        let s = seal(k1, binding("k1"), b"secret");
        assert_eq!(
            &open(k1, binding("k1"), &s.ciphertext, &s.wrapped_key).unwrap()[..],
            b"secret"
        );
        let w2 = rewrap(k1, k2, Uuid::nil(), Uuid::max(), &s.wrapped_key).unwrap();
        assert_eq!(
            &open(k2, binding("k2"), &s.ciphertext, &w2).unwrap()[..],
            b"secret"
        );
        // relabelling the wrapped key with another KEK id fails
        assert_eq!(
            open(k1, binding("k2"), &s.ciphertext, &s.wrapped_key).unwrap_err(),
            Stage::UnwrapDataKey
        );
        let other = Binding {
            workspace_id: Uuid::nil(),
            ..binding("k1")
        };
        assert_eq!(
            open(k1, other, &s.ciphertext, &s.wrapped_key).unwrap_err(),
            Stage::UnwrapDataKey
        );
        let mut bad = s.ciphertext.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(k1, binding("k1"), &bad, &s.wrapped_key).unwrap_err(),
            Stage::DecryptCredential
        );
    }
}
