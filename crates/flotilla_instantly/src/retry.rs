//! The retry decision: a pure function of what happened, how often, and for how long.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::endpoint::RequestClass;

/// What one attempt ended with, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with a non-success status.
    Status {
        /// The status code.
        status: u16,
        /// The parsed `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// The connection could not be established: the request was certainly not sent.
    Connect,
    /// The request timed out (it may or may not have reached Instantly).
    Timeout,
    /// Any other transport failure after connecting (reset, closed before a response, …).
    OtherTransport,
}

/// The decision for one failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this delay.
    Retry(Duration),
    /// Give up and return the error.
    Stop,
}

/// Capped exponential backoff with full jitter, bounded by attempts and total time.
///
/// 429, 5xx, connect errors, timeouts and other transport failures are retried; every other
/// status (400, 401, 402, 403, 404, 409, …) never is. Requests that create something
/// ([`RequestClass::Create`]) are retried only on connect errors and 429, where they certainly
/// did not take effect (DESIGN.md: the engine's read-then-write handles the rest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts allowed, including the first (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt (before jitter); doubles per attempt.
    pub base_delay: Duration,
    /// Upper bound of any one delay, including one asked for by `Retry-After`.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt began.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// [`RetryPolicy::decide_for`] for an idempotent request.
    ///
    /// `attempt` is the number of attempts made so far (1 after the first failure), `elapsed`
    /// the time since the first attempt began, `jitter` a random number in `0..1`.
    pub fn decide(
        &self,
        outcome: &Outcome,
        attempt: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Decision {
        self.decide_for(RequestClass::Idempotent, outcome, attempt, elapsed, jitter)
    }

    /// Whether, and after how long, to retry a request of `class` that ended with `outcome`.
    pub fn decide_for(
        &self,
        class: RequestClass,
        outcome: &Outcome,
        attempt: u32,
        elapsed: Duration,
        jitter: f64,
    ) -> Decision {
        if !retryable(class, outcome) || attempt >= self.max_attempts {
            return Decision::Stop;
        }
        let delay = match outcome {
            // instantly-api.md §4 [UNK]: Retry-After is not documented; honour it when present,
            // capped so a huge value cannot park a worker.
            Outcome::Status {
                retry_after: Some(after),
                ..
            } => (*after).min(self.max_delay),
            _ => self.backoff(attempt, jitter),
        };
        if elapsed.saturating_add(delay) > self.max_elapsed {
            return Decision::Stop;
        }
        Decision::Retry(delay)
    }

    /// Full jitter: a uniform delay in `0..min(max_delay, base_delay · 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let cap = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        cap.mul_f64(jitter)
    }
}

fn retryable(class: RequestClass, outcome: &Outcome) -> bool {
    match (class, outcome) {
        (_, Outcome::Connect) => true,
        (_, Outcome::Status { status: 429, .. }) => true,
        (RequestClass::Idempotent, Outcome::Status { status, .. }) => (500..=599).contains(status),
        (RequestClass::Idempotent, Outcome::Timeout | Outcome::OtherTransport) => true,
        // A create that may have reached Instantly is not repeated: it could duplicate.
        (RequestClass::Create, _) => false,
    }
}

/// Parse a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        return None;
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestClass::{Create, Idempotent};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: MS(100),
            max_delay: MS(1000),
            max_elapsed: Duration::from_secs(5),
        }
    }

    fn st(status: u16) -> Outcome {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn decision_table() {
        let p = policy();
        let z = Duration::ZERO;
        let ra = |secs| Outcome::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(secs)),
        };
        #[rustfmt::skip]
        let table: Vec<(RequestClass, Outcome, u32, Duration, f64, Decision)> = vec![
            // Never retried, whatever the class.
            (Idempotent, st(400), 1, z, 0.5, Decision::Stop),
            (Idempotent, st(401), 1, z, 0.5, Decision::Stop),
            (Idempotent, st(402), 1, z, 0.5, Decision::Stop),
            (Idempotent, st(403), 1, z, 0.5, Decision::Stop),
            (Idempotent, st(404), 1, z, 0.5, Decision::Stop),
            (Idempotent, st(409), 1, z, 0.5, Decision::Stop),
            (Create, st(400), 1, z, 0.5, Decision::Stop),
            // Transient, idempotent: backoff = base·2^(attempt-1) · jitter.
            (Idempotent, st(429), 1, z, 0.5, Decision::Retry(MS(50))),
            (Idempotent, st(500), 1, z, 1.0, Decision::Retry(MS(100))),
            (Idempotent, st(502), 2, z, 1.0, Decision::Retry(MS(200))),
            (Idempotent, st(503), 3, z, 0.5, Decision::Retry(MS(200))),
            (Idempotent, st(504), 1, z, 0.0, Decision::Retry(MS(0))),
            (Idempotent, Outcome::Connect, 1, z, 1.0, Decision::Retry(MS(100))),
            (Idempotent, Outcome::Timeout, 1, z, 1.0, Decision::Retry(MS(100))),
            (Idempotent, Outcome::OtherTransport, 1, z, 1.0, Decision::Retry(MS(100))),
            // Attempts bounded: the 4th failure stops.
            (Idempotent, st(503), 4, z, 0.5, Decision::Stop),
            // Elapsed bounded: a retry that would start after max_elapsed is not made.
            (Idempotent, st(503), 1, MS(4950), 1.0, Decision::Stop),
            (Idempotent, st(503), 1, MS(4800), 1.0, Decision::Retry(MS(100))),
            // Retry-After honoured (not jittered), capped at max_delay.
            (Idempotent, ra(0), 1, z, 0.9, Decision::Retry(MS(0))),
            (Create, ra(1), 1, z, 0.1, Decision::Retry(MS(1000))),
            (Idempotent, ra(60), 1, z, 0.1, Decision::Retry(MS(1000))),
            // Creates: only connect errors and 429.
            (Create, Outcome::Connect, 1, z, 1.0, Decision::Retry(MS(100))),
            (Create, st(429), 2, z, 1.0, Decision::Retry(MS(200))),
            (Create, st(500), 1, z, 1.0, Decision::Stop),
            (Create, st(503), 1, z, 1.0, Decision::Stop),
            (Create, Outcome::Timeout, 1, z, 1.0, Decision::Stop),
            (Create, Outcome::OtherTransport, 1, z, 1.0, Decision::Stop),
            (Create, Outcome::Connect, 4, z, 1.0, Decision::Stop),
        ];
        for (i, (class, outcome, attempt, elapsed, jitter, want)) in table.into_iter().enumerate() {
            assert_eq!(
                p.decide_for(class, &outcome, attempt, elapsed, jitter),
                want,
                "row {i}: {class:?} {outcome:?} attempt {attempt}"
            );
        }
        assert_eq!(p.decide(&st(500), 1, z, 1.0), Decision::Retry(MS(100)));
        assert_eq!(
            RetryPolicy::never().decide(&st(500), 1, z, 1.0),
            Decision::Stop
        );
    }

    #[test]
    fn backoff_is_capped_and_jitter_clamped() {
        let p = policy();
        assert_eq!(p.backoff(5, 1.0), MS(1000));
        assert_eq!(p.backoff(60, 1.0), MS(1000));
        assert_eq!(p.backoff(1, 7.0), MS(100));
        assert_eq!(p.backoff(1, -1.0), MS(0));
        assert_eq!(p.backoff(1, f64::NAN), MS(100));
        for attempt in 1..10 {
            for j in [0.0, 0.3, 0.999] {
                assert!(p.backoff(attempt, j) <= p.max_delay);
            }
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5", now), Some(MS(1500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-4", now), None);
    }
}
