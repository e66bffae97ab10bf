#![doc = include_str!("../README.md")]

mod crypto;
pub mod db;
mod error;
pub mod keyring;
mod model;
mod staging;
#[cfg(feature = "testing")]
pub mod testing;
mod vault;

pub use db::{Backend, Database, placeholders};
pub use error::{Error, Error as VaultError, Result, Stage};
pub use keyring::{Keyring, generate_key_spec};
pub use model::{
    Credential, CredentialMeta, CredentialMode, CredentialSource, NewCredential, Purpose,
    RotationReport, VaultStatus,
};
pub use vault::Vault;
