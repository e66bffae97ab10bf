//! The keyring: key-encryption keys (KEKs) by id, the first one primary.
//!
//! Format (variable and file alike): entries `id:base64key` separated by commas and/or newlines.
//! The id is 1–64 characters of `[A-Za-z0-9._-]`; the key is 32 bytes in standard base64
//! (padding optional). In a file, blank lines and lines starting with `#` are ignored.
//! The first entry is the primary KEK: new credentials are wrapped with it and `rotate` moves
//! every row to it. Older KEKs stay listed until rotation has finished.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// Environment variable holding the keyring spec inline.
pub const KEYS_VAR: &str = "FLOTILLA_VAULT_KEYS";
/// Environment variable naming a key file.
pub const KEY_FILE_VAR: &str = "FLOTILLA_VAULT_KEY_FILE";

const KEY_LEN: usize = 32;

const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One KEK. Only the AES key schedule is kept; with aes-gcm's `zeroize` feature it is wiped on
/// drop.
pub(crate) struct Kek {
    pub(crate) id: String,
    pub(crate) cipher: Aes256Gcm,
}

/// An ordered set of KEKs; the first is primary. Cheap to clone. `Debug` shows ids only.
#[derive(Clone)]
pub struct Keyring {
    keks: Arc<Vec<Kek>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("kek_ids", &self.ids().collect::<Vec<_>>())
            .field("keys", &"[REDACTED]")
            .finish()
    }
}

impl Keyring {
    /// Parses a keyring spec (see the module docs). `source_name` is the variable or file the
    /// spec came from; every error message starts with it.
    pub fn parse(spec: &str, source_name: &str) -> Result<Keyring> {
        let mut keks: Vec<Kek> = Vec::new();
        let entries = spec
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let n = index + 1;
            let (id, b64) = entry.split_once(':').ok_or_else(|| {
                Error::config(
                    source_name,
                    format!("entry {n} is not of the form id:base64key"),
                )
            })?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(Error::config(
                    source_name,
                    format!("entry {n}: KEK id must be 1-64 characters of A-Z a-z 0-9 . _ -"),
                ));
            }
            // Decode into a zeroizing buffer; the error never echoes the input.
            let bytes = Zeroizing::new(LENIENT_B64.decode(b64.trim()).map_err(|_| {
                Error::config(
                    source_name,
                    format!("entry {n} (KEK id {id}): key is not valid base64"),
                )
            })?);
            if bytes.len() != KEY_LEN {
                return Err(Error::config(
                    source_name,
                    format!(
                        "entry {n} (KEK id {id}): key is {} bytes, expected {KEY_LEN} (generate with: openssl rand -base64 32)",
                        bytes.len()
                    ),
                ));
            }
            if keks.iter().any(|k| k.id == id) {
                return Err(Error::config(
                    source_name,
                    format!("KEK id {id} is listed twice"),
                ));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes).expect("length checked above");
            keks.push(Kek {
                id: id.to_owned(),
                cipher,
            });
        }
        if keks.is_empty() {
            return Err(Error::config(
                source_name,
                "no keys (expected id:base64key[,id2:base64key…])",
            ));
        }
        Ok(Keyring {
            keks: Arc::new(keks),
        })
    }

    /// Reads the keyring from `FLOTILLA_VAULT_KEYS` or, if that is unset or empty,
    /// `FLOTILLA_VAULT_KEY_FILE`. `Ok(None)` when neither is set (the caller then falls back to
    /// [`Keyring::load_or_create_file`]). Setting both is refused as ambiguous.
    pub fn from_env() -> Result<Option<Keyring>> {
        let keys = std::env::var(KEYS_VAR).ok().map(Zeroizing::new);
        let file = std::env::var(KEY_FILE_VAR).ok();
        Keyring::from_vars(keys.as_deref().map(String::as_str), file.as_deref())
    }

    /// [`Keyring::from_env`] with the two values passed in (testable without touching the
    /// process environment).
    pub fn from_vars(keys: Option<&str>, key_file: Option<&str>) -> Result<Option<Keyring>> {
        let keys = keys.filter(|s| !s.trim().is_empty());
        let key_file = key_file.filter(|s| !s.trim().is_empty());
        match (keys, key_file) {
            (Some(_), Some(_)) => Err(Error::config(
                KEYS_VAR,
                format!("both {KEYS_VAR} and {KEY_FILE_VAR} are set; set only one"),
            )),
            (Some(spec), None) => Keyring::parse(spec, KEYS_VAR).map(Some),
            (None, Some(path)) => {
                let source_name = format!("{KEY_FILE_VAR} ({path})");
                let text = read_key_file(Path::new(path), &source_name)?;
                Keyring::parse(&text, &source_name).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    /// Loads the key file at `path`, or creates it (mode 0600, parent directories included)
    /// with one fresh random KEK. Returns `created = true` when it did, so that the binary can
    /// print a loud notice: losing this file makes every stored credential unreadable.
    pub fn load_or_create_file(path: impl AsRef<Path>) -> Result<(Keyring, bool)> {
        let path = path.as_ref();
        let source_name = format!("key file {}", path.display());
        if path.exists() {
            let text = read_key_file(path, &source_name)?;
            return Ok((Keyring::parse(&text, &source_name)?, false));
        }
        let io_err = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let id = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        let entry = generate_key_spec(&id);
        let content = Zeroizing::new(format!(
            "# Flotilla vault key-encryption keys (id:base64key, first is primary).\n\
             # Losing this file makes every stored credential unreadable. Keep it secret.\n{}\n",
            entry.expose_secret()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(content.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok((Keyring::parse(&content, &source_name)?, true))
            }
            // Another process created it between our check and open: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = read_key_file(path, &source_name)?;
                Ok((Keyring::parse(&text, &source_name)?, false))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A keyring with one fresh random KEK (tests, first start).
    pub fn generate(id: &str) -> Keyring {
        Keyring::parse(generate_key_spec(id).expose_secret(), "generated key")
            .expect("generated spec is valid")
    }

    /// The primary KEK id (new rows are wrapped with it).
    pub fn primary_id(&self) -> &str {
        &self.keks[0].id
    }

    /// All KEK ids, primary first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keks.iter().map(|k| k.id.as_str())
    }

    /// Whether the keyring has a KEK with this id.
    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn primary(&self) -> &Kek {
        &self.keks[0]
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Kek> {
        self.keks.iter().find(|k| k.id == id)
    }
}

/// A fresh `id:base64key` entry with 32 random bytes, e.g. to prepend a new primary KEK.
pub fn generate_key_spec(id: &str) -> SecretString {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.fill_bytes(&mut bytes[..]);
    SecretString::from(format!("{id}:{}", STANDARD.encode(&bytes[..])))
}

fn read_key_file(path: &Path, source_name: &str) -> Result<String> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "vault key file is readable by group or others; chmod 600 it");
        }
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::config(source_name, format!("cannot read: {e}")))
}

// KEK check values: a constant sealed under each KEK, so a KEK id configured with other key
// bytes is caught at open. AAD binds it to the id.
const CHECK_PLAINTEXT: &[u8] = b"flotilla-vault kek check v1";

impl Kek {
    pub(crate) fn check_value(&self) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        let aad = format!("flotilla-vault:v1:kek-check:{}", self.id);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: CHECK_PLAINTEXT,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short constant cannot fail");
        out.extend_from_slice(&ct);
        out
    }

    pub(crate) fn verify_check_value(&self, value: &[u8]) -> bool {
        if value.len() < 12 {
            return false;
        }
        let (nonce, ct) = value.split_at(12);
        let aad = format!("flotilla-vault:v1:kek-check:{}", self.id);
        self.cipher
            .decrypt(
                aes_gcm::Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .is_ok_and(|pt| pt == CHECK_PLAINTEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commas_and_lines() {
        let a = generate_key_spec("a");
        let b = generate_key_spec("b");
        let c = generate_key_spec("c");
        let spec = format!(
            "# comment\n{}, {}\n\n{}\n",
            a.expose_secret(),
            b.expose_secret(),
            c.expose_secret()
        );
        let k = Keyring::parse(&spec, "X").unwrap();
        assert_eq!(k.ids().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(k.primary_id(), "a");
        // unpadded base64 is accepted too
        let unpadded = a.expose_secret().trim_end_matches('=').to_owned();
        assert_eq!(Keyring::parse(&unpadded, "X").unwrap().primary_id(), "a");
    }

    #[test]
    fn check_value_detects_other_bytes() {
        let k1 = Keyring::generate("k1");
        let other = Keyring::generate("k1");
        let v = k1.primary().check_value();
        assert!(k1.primary().verify_check_value(&v));
        assert!(!other.primary().verify_check_value(&v));
    }
}
