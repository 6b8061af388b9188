//! Jittered exponential back-off between connection attempts.
//!
//! The delay doubles after each failed round up to a cap, and each wait is spread by ±50 % with
//! OS randomness, so a fleet of agents that lost the same manager does not come back in step.

use rand_core::RngCore;
use std::time::Duration;

/// Delays of the reconnect loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// Back to the shortest delay (after a session that worked).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next delay to wait: the current base ±50 %; the base then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(self.max);
        jitter(base, random_unit())
    }
}

/// `base` scaled by a factor in [0.5, 1.5) picked by `unit` in [0, 1).
fn jitter(base: Duration, unit: f64) -> Duration {
    base.mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

/// A uniform number in [0, 1); 0.5 (no jitter) if the OS has no randomness to give.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    match rand_core::OsRng.try_fill_bytes(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_within_jitter_bounds() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for base in [1u64, 2, 4, 8, 16, 32, 60, 60] {
            let d = b.next_delay();
            let base = Duration::from_secs(base);
            assert!(d >= base / 2 && d < base * 3 / 2, "{d:?} for base {base:?}");
        }
    }

    #[test]
    fn reset_returns_to_the_shortest_delay() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(1500));
    }

    #[test]
    fn jitter_spans_plus_minus_half() {
        let base = Duration::from_secs(10);
        assert_eq!(jitter(base, 0.0), Duration::from_secs(5));
        assert_eq!(jitter(base, 0.5), Duration::from_secs(10));
        assert!(jitter(base, 0.999_999) < Duration::from_secs(15));
    }

    #[test]
    fn delays_are_not_all_equal() {
        let delays: Vec<_> = (0..8)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(delays.iter().any(|d| *d != delays[0]));
    }
}
