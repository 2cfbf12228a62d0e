//! Retry back-off: exponential from `retry_backoff_ms` up to `retry_backoff_max_ms`, each
//! pause spread by +/- `RETRY_BACKOFF_JITTER_PERCENT` (Kafka's KIP-580 schedule).
//!
//! Pure: the random source is a seeded xorshift, so a test replays a schedule exactly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::constants::RETRY_BACKOFF_JITTER_PERCENT;

/// A retry schedule: call [`Backoff::next_delay`] after each failure, [`Backoff::reset`]
/// after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: XorShift,
}

impl Backoff {
    /// `base_ms` must be positive and at most `max_ms`.
    pub fn new(base_ms: u64, max_ms: u64) -> Backoff {
        Backoff::with_seed(base_ms, max_ms, seed())
    }

    pub fn with_seed(base_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        assert!(base_ms > 0, "retry back-off must be positive");
        assert!(base_ms <= max_ms, "retry back-off above its maximum");
        Backoff {
            base_ms,
            max_ms,
            failures: 0,
            rng: XorShift::new(seed),
        }
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The pause before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ms = delay_ms(
            self.base_ms,
            self.max_ms,
            self.failures,
            self.rng.next_u64(),
        );
        self.failures = self.failures.saturating_add(1);
        Duration::from_millis(ms)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The pause after `failures` earlier failures: `base * 2^failures` capped at `max`, then
/// moved by a jitter in [-J%, +J%] drawn from `random`, never above `max` nor below 1 ms.
pub fn delay_ms(base_ms: u64, max_ms: u64, failures: u32, random: u64) -> u64 {
    let exp = base_ms.saturating_mul(pow2(failures)).min(max_ms);
    let span = exp * RETRY_BACKOFF_JITTER_PERCENT / 100;
    // random % (2 span + 1) in [0, 2 span]; shift to [-span, +span].
    let offset = random % (2 * span + 1);
    (exp - span + offset).clamp(1, max_ms)
}

fn pow2(n: u32) -> u64 {
    1u64.checked_shl(n).unwrap_or(u64::MAX)
}

/// A tiny xorshift64* generator: jitter (and the bench's key and size choices) need
/// spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "an empty range");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed that differs between clients and between calls in one process.
pub(crate) fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id()) << 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_exponentially_then_caps() {
        // random = span lands on the middle of the band: no jitter.
        let mid = |base: u64, max: u64, failures: u32| {
            let exp = (base << failures).min(max);
            let span = exp * RETRY_BACKOFF_JITTER_PERCENT / 100;
            delay_ms(base, max, failures, span)
        };
        assert_eq!(mid(100, 1000, 0), 100);
        assert_eq!(mid(100, 1000, 1), 200);
        assert_eq!(mid(100, 1000, 2), 400);
        assert_eq!(mid(100, 1000, 3), 800);
        assert_eq!(mid(100, 1000, 4), 1000);
        assert_eq!(
            delay_ms(100, 1000, 40, 0),
            800,
            "huge counts cap, minus jitter"
        );
        assert_eq!(delay_ms(100, 1000, u32::MAX, 200), 1000);
    }

    #[test]
    fn schedule_is_reproducible_and_resets() {
        let mut a = Backoff::with_seed(100, 1000, 42);
        let mut b = Backoff::with_seed(100, 1000, 42);
        let xs: Vec<_> = (0..6).map(|_| a.next_delay()).collect();
        let ys: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(xs, ys);
        assert_eq!(a.failures(), 6);
        assert!(xs[0] <= Duration::from_millis(120) && xs[0] >= Duration::from_millis(80));
        assert!(xs[5] >= Duration::from_millis(800));
        a.reset();
        assert!(a.next_delay() <= Duration::from_millis(120));
    }

    proptest! {
        #[test]
        fn delay_stays_in_the_jitter_band(base in 1u64..10_000, extra in 0u64..100_000,
                                          failures in 0u32..100, random: u64) {
            let max = base + extra;
            let d = delay_ms(base, max, failures, random);
            let exp = base.saturating_mul(pow2(failures)).min(max);
            let span = exp * RETRY_BACKOFF_JITTER_PERCENT / 100;
            prop_assert!(d >= (exp - span).max(1));
            prop_assert!(d <= (exp + span).min(max));
        }
    }
}
