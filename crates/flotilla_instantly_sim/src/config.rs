//! Simulator configuration: limits, faults and the quirk modes the client tests exercise.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Start-up configuration of a [`crate::Simulator`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Requests per second allowed per workspace (sliding 1 s window). `0` disables the limit.
    pub rps: u32,
    /// Requests per minute allowed per workspace (sliding 60 s window). `0` disables the limit.
    pub rpm: u32,
    /// Delay added to every `/api/v2` response.
    pub latency: Duration,
    /// Fraction (0..=1) of `/api/v2` requests answered with an injected 500.
    pub fail_rate: f64,
    /// Fraction (0..=1) of `/api/v2` requests whose connection is closed with no response.
    pub drop_rate: f64,
    /// Seed of the fault RNG: the same seed gives the same fault pattern for the same request order.
    pub seed: u64,
    /// Send `Retry-After: <secs>` on rate-limit 429s.
    pub retry_after: bool,
    /// Page size when a list call sends no `limit`.
    pub default_limit: usize,
    /// What a list answers on its last page (see [`LastPageCursor`]).
    pub last_page_cursor: LastPageCursor,
    /// Which rate bucket an `x-as-workspace` call spends.
    pub delegated_bucket: DelegatedBucket,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            // instantly-api.md §4 [OFF]: 100 requests/s and 6,000/min per workspace.
            rps: 100,
            rpm: 6000,
            latency: Duration::ZERO,
            fail_rate: 0.0,
            drop_rate: 0.0,
            seed: 0,
            // instantly-api.md §4 [UNK]: Retry-After is not documented; off by default.
            retry_after: false,
            // instantly-api.md §15: default limit 10 is a choice (real default unknown, §2 [UNK]).
            default_limit: 10,
            last_page_cursor: LastPageCursor::Omit,
            delegated_bucket: DelegatedBucket::Sub,
        }
    }
}

/// How `next_starting_after` looks on the last page of a list.
///
/// instantly-api.md §2 [UNK]: the live behaviour is unknown, so the client must cope with all of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LastPageCursor {
    /// The field is absent on the last page (the suggested default, §15).
    #[default]
    Omit,
    /// `"next_starting_after": null`.
    Null,
    /// `"next_starting_after": ""`.
    Empty,
    /// The cursor stays set: the last page carries its last item's id, and asking for the page after
    /// it returns an empty page with the same cursor again.
    RepeatLast,
}

/// Which workspace's rate bucket an `x-as-workspace` call spends.
///
/// instantly-api.md §4 [UNK]: not documented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegatedBucket {
    /// The sub workspace the call acts on.
    #[default]
    Sub,
    /// The admin workspace that owns the key.
    Admin,
    /// Both buckets must have room, and both are spent.
    Both,
}

/// Faults that can be changed at run time with [`crate::Simulator::set_faults`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Delay added to every `/api/v2` response.
    pub latency: Duration,
    /// Fraction (0..=1) of `/api/v2` requests answered with an injected 500.
    pub fail_rate: f64,
    /// Fraction (0..=1) of `/api/v2` requests whose connection is closed with no response.
    pub drop_rate: f64,
    /// Periodic 429 bursts.
    pub burst: Option<Burst>,
}

/// A periodic 429 burst: every `every`, for `duration`, every `/api/v2` request gets 429.
///
/// The period starts when the faults are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Period of the bursts.
    pub every: Duration,
    /// Length of each burst (at the start of each period).
    pub duration: Duration,
}
