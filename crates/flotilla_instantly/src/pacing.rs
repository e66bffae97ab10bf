//! Client-side pacing: keyed GCRA (governor) below Instantly's per-workspace limits.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Pacing quotas, applied per key (an Instantly workspace id, or an admin credential).
///
/// instantly-api.md §4 (OFF): at most 100 requests/second and 6,000/minute per workspace,
/// shared by all its keys. The defaults stay clearly below both: in any one-second window at
/// most `burst + per_second` = 90 requests leave, and in any minute at most
/// `burst + per_minute` = 5,010.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// How many requests may leave back to back after a quiet spell (both quotas).
    pub burst: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_second: 80,
            per_minute: 5000,
            burst: 10,
        }
    }
}

/// Totals of time spent waiting in a [`Pacer`], for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacerStats {
    /// Calls to [`Pacer::wait`].
    pub waits: u64,
    /// Calls that had to wait at all.
    pub delayed: u64,
    /// Sum of the time waited.
    pub total_wait: Duration,
}

struct Inner {
    limits: RateLimits,
    per_second: DefaultKeyedRateLimiter<String>,
    per_minute: DefaultKeyedRateLimiter<String>,
    waits: AtomicU64,
    delayed: AtomicU64,
    wait_nanos: AtomicU64,
}

/// A keyed GCRA pacer with a per-second and a per-minute quota. Cheap to clone; clones share
/// their buckets, so one `Pacer` should serve every client of a process.
#[derive(Clone)]
pub struct Pacer {
    inner: Arc<Inner>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Pacer {
    /// A pacer with these quotas (zeros are raised to 1).
    pub fn new(limits: RateLimits) -> Pacer {
        let burst = nz(limits.burst);
        let per_second = Quota::per_second(nz(limits.per_second)).allow_burst(burst);
        // The per-minute bucket replenishes one cell every 60 s / per_minute and also allows only
        // `burst` at once: a plain `Quota::per_minute(n)` would allow a burst of n, i.e. up to 2n
        // in one sliding minute.
        let per_minute = Quota::with_period(Duration::from_secs(60) / nz(limits.per_minute).get())
            .unwrap_or(Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        Pacer {
            inner: Arc::new(Inner {
                limits,
                per_second: RateLimiter::keyed(per_second),
                per_minute: RateLimiter::keyed(per_minute),
                waits: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
                wait_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// The quotas.
    pub fn limits(&self) -> RateLimits {
        self.inner.limits
    }

    /// Wait until one more request may be sent for `key`; returns the time waited.
    pub async fn wait(&self, key: &str) -> Duration {
        let started = Instant::now();
        let key = key.to_owned();
        // The minute bucket first, so the per-second spacing is the last gate before sending.
        self.inner.per_minute.until_key_ready(&key).await;
        self.inner.per_second.until_key_ready(&key).await;
        let waited = started.elapsed();
        self.inner.waits.fetch_add(1, Ordering::Relaxed);
        // Sub-millisecond "waits" are just the cost of the check.
        if waited >= Duration::from_millis(1) {
            self.inner.delayed.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.wait_nanos.fetch_add(
            u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        waited
    }

    /// Wait on every key in turn (e.g. the workspace and the admin credential); returns the
    /// total time waited.
    pub async fn wait_all(&self, keys: &[String]) -> Duration {
        let mut total = Duration::ZERO;
        for k in keys {
            total += self.wait(k).await;
        }
        total
    }

    /// Totals so far.
    pub fn stats(&self) -> PacerStats {
        PacerStats {
            waits: self.inner.waits.load(Ordering::Relaxed),
            delayed: self.inner.delayed.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.inner.wait_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Forget keys whose buckets are full again (housekeeping for long-running processes with
    /// many workspaces).
    pub fn retain_recent(&self) {
        for limiter in [&self.inner.per_second, &self.inner.per_minute] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys with a bucket in memory.
    pub fn tracked_keys(&self) -> usize {
        self.inner.per_second.len().max(self.inner.per_minute.len())
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.inner.per_minute.len().max(self.inner.per_second.len())
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(RateLimits::default())
    }
}

impl fmt::Debug for Pacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pacer")
            .field("limits", &self.inner.limits)
            .field("keys", &self.len())
            .finish()
    }
}

/// Pacing for one client: the shared pacer and the keys to wait on before each attempt.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// The shared pacer.
    pub pacer: Pacer,
    /// Bucket keys, e.g. the Instantly workspace id (and, for delegated calls, the admin
    /// credential, since instantly-api.md §4 leaves open which bucket `x-as-workspace` spends).
    pub keys: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_passes_then_paces_per_key() {
        let p = Pacer::new(RateLimits {
            per_second: 50,
            per_minute: 100_000,
            burst: 3,
        });
        for _ in 0..3 {
            p.wait("a").await;
        }
        // Another key has its own bucket; the fourth request on "a" must wait for a cell
        // (1/50 s; a lower bound, which load cannot break).
        p.wait("b").await;
        let waited = p.wait("a").await;
        assert!(waited >= Duration::from_millis(10), "{waited:?}");
        let s = p.stats();
        assert_eq!(s.waits, 5);
        assert_eq!(p.len(), 2);
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten() {
        let pacer = Pacer::new(RateLimits {
            per_second: 100,
            per_minute: 6000,
            burst: 2,
        });
        for i in 0..50 {
            pacer.wait(&format!("ws:{i}")).await;
        }
        assert_eq!(pacer.tracked_keys(), 50);
        pacer.retain_recent();
        pacer.wait("ws:busy").await;
        pacer.wait("ws:busy").await;
        // Every bucket is full again after 2 cells × 10 ms; the busy one was just drained.
        tokio::time::sleep(Duration::from_millis(60)).await;
        pacer.wait("ws:busy").await;
        pacer.retain_recent();
        assert_eq!(
            pacer.tracked_keys(),
            1,
            "only the key still spending its burst"
        );
    }

    #[test]
    fn zero_limits_do_not_panic() {
        let p = Pacer::new(RateLimits {
            per_second: 0,
            per_minute: 0,
            burst: 0,
        });
        assert_eq!(p.limits().per_second, 0);
    }
}
