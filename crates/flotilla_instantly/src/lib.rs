#![doc = include_str!("../README.md")]
// `Error` keeps its context in public fields (contracts §2), which makes it ~150 bytes; every
// error costs a network round trip anyway, so the size does not matter.
#![allow(clippy::result_large_err)]

mod client;
pub mod endpoint;
mod error;
pub mod models;
mod pacing;
mod retry;
mod scope;

pub use client::{Client, ClientConfig, default_user_agent};
pub use endpoint::RequestClass;
pub use error::{ApiErrorBody, Error, ErrorKind, Result};
pub use models::*;
pub use pacing::{Pacer, PacerStats, Pacing, RateLimits};
pub use retry::{Decision, Outcome, RetryPolicy, parse_retry_after};
pub use scope::Scope;
