//! Rate limiting between the spool and the manager, with Wazuh's `events_per_second` semantics.
//!
//! [`RateLimiter`] is a token bucket: `events_per_second` tokens per second, at most one second of
//! tokens saved up (so a burst never exceeds one second's worth), 0 = unlimited. Events held back
//! wait in the spool, never in memory. [`FloodMonitor`] turns a long backlog into exactly one
//! `agent.flood` event per episode and one `agent.flood_ended` when it drains, never a storm.
//! Both take the current time as an argument so that tests need no sleeping.

use gatewatch_proto::AgentEvent;
use std::time::{Duration, Instant};

/// A token bucket refilled at `events_per_second`, holding at most one second of tokens.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    eps: u32,
    /// Tokens available at `at` (fractional: refill is continuous).
    tokens: f64,
    at: Option<Instant>,
}

impl RateLimiter {
    /// A limiter for `events_per_second` (0 = no limit). It starts full: the first second may
    /// send a whole second's worth at once.
    pub fn new(events_per_second: u32) -> Self {
        RateLimiter {
            eps: events_per_second,
            tokens: f64::from(events_per_second),
            at: None,
        }
    }

    /// The configured rate (0 = unlimited).
    pub fn events_per_second(&self) -> u32 {
        self.eps
    }

    /// Whether there is no limit.
    pub fn is_unlimited(&self) -> bool {
        self.eps == 0
    }

    fn tokens_at(&self, now: Instant) -> f64 {
        let capacity = f64::from(self.eps);
        match self.at {
            None => self.tokens,
            Some(at) => {
                let elapsed = now.saturating_duration_since(at).as_secs_f64();
                (self.tokens + elapsed * capacity).min(capacity)
            }
        }
    }

    /// How many events could be sent now without consuming anything (`usize::MAX` if unlimited).
    pub fn available(&self, now: Instant) -> usize {
        if self.is_unlimited() {
            usize::MAX
        } else {
            self.tokens_at(now).floor() as usize
        }
    }

    /// Takes up to `want` tokens and returns how many events may be sent now.
    pub fn grant(&mut self, want: usize, now: Instant) -> usize {
        if self.is_unlimited() {
            return want;
        }
        let tokens = self.tokens_at(now);
        let granted = want.min(tokens.floor() as usize);
        self.tokens = tokens - granted as f64;
        self.at = Some(now);
        granted
    }

    /// Time until the next whole token is available (zero if one is available now or there is no
    /// limit).
    pub fn wait_time(&self, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        let missing = 1.0 - self.tokens_at(now);
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / f64::from(self.eps))
        }
    }
}

/// Reports a flood once when it starts and once when it ends.
///
/// A flood starts when the backlog reaches `threshold` while the rate limiter is holding events
/// back; it ends when the backlog falls under `threshold / 2` (the hysteresis keeps a backlog
/// hovering around the threshold from producing an event per batch).
#[derive(Debug, Clone)]
pub struct FloodMonitor {
    threshold: u64,
    events_per_second: u32,
    since: Option<Instant>,
}

impl FloodMonitor {
    /// A monitor for `threshold` waiting events (0 disables it) at the given rate limit.
    pub fn new(threshold: u64, events_per_second: u32) -> Self {
        FloodMonitor {
            threshold,
            events_per_second,
            since: None,
        }
    }

    /// Whether a flood episode is in progress.
    pub fn flooding(&self) -> bool {
        self.since.is_some()
    }

    /// Feeds the current backlog and whether the limiter is holding events back; returns the
    /// event to report, if this observation starts or ends an episode.
    pub fn observe(&mut self, backlog: u64, limited: bool, now: Instant) -> Option<AgentEvent> {
        if self.threshold == 0 {
            return None;
        }
        match self.since {
            None if limited && backlog >= self.threshold => {
                self.since = Some(now);
                Some(AgentEvent::Flood {
                    backlog,
                    events_per_second: self.events_per_second,
                })
            }
            Some(since) if backlog < self.threshold / 2 => {
                self.since = None;
                let lasted_secs = now.saturating_duration_since(since).as_secs();
                Some(AgentEvent::FloodEnded {
                    backlog,
                    lasted_secs,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_unlimited() {
        let mut l = RateLimiter::new(0);
        let now = Instant::now();
        assert_eq!(l.grant(1_000_000, now), 1_000_000);
        assert_eq!(l.available(now), usize::MAX);
        assert_eq!(l.wait_time(now), Duration::ZERO);
    }

    #[test]
    fn burst_is_at_most_one_second_of_tokens() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(100);
        assert_eq!(l.grant(500, t0), 100);
        // Ten idle seconds still save up only one second's worth.
        assert_eq!(l.grant(500, t0 + Duration::from_secs(10)), 100);
    }

    #[test]
    fn tokens_refill_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10);
        assert_eq!(l.grant(10, t0), 10);
        assert_eq!(l.grant(10, t0), 0);
        assert_eq!(l.available(t0 + Duration::from_millis(250)), 2);
        assert_eq!(l.grant(10, t0 + Duration::from_millis(500)), 5);
    }

    #[test]
    fn wait_time_is_until_the_next_whole_token() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(4);
        l.grant(4, t0);
        assert_eq!(l.wait_time(t0), Duration::from_millis(250));
        assert_eq!(
            l.wait_time(t0 + Duration::from_millis(100)),
            Duration::from_millis(150)
        );
        assert_eq!(l.wait_time(t0 + Duration::from_millis(300)), Duration::ZERO);
    }

    #[test]
    fn sustained_rate_matches_events_per_second() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(50);
        let mut sent = 0;
        for ms in (0..=10_000).step_by(7) {
            sent += l.grant(1000, t0 + Duration::from_millis(ms));
        }
        // One initial second of burst plus ten seconds at 50/s.
        assert!((540..=551).contains(&sent), "sent {sent}");
    }

    #[test]
    fn flood_is_reported_once_per_episode() {
        let t0 = Instant::now();
        let mut m = FloodMonitor::new(100, 50);
        assert_eq!(m.observe(99, true, t0), None);
        assert_eq!(
            m.observe(100, true, t0),
            Some(AgentEvent::Flood {
                backlog: 100,
                events_per_second: 50
            })
        );
        for backlog in (50..5000).step_by(10) {
            assert_eq!(
                m.observe(backlog, true, t0),
                None,
                "a second report at {backlog}"
            );
        }
        let end = m.observe(49, false, t0 + Duration::from_secs(12));
        assert_eq!(
            end,
            Some(AgentEvent::FloodEnded {
                backlog: 49,
                lasted_secs: 12
            })
        );
        assert_eq!(m.observe(10, false, t0), None);
        assert!(!m.flooding());
    }

    #[test]
    fn backlog_without_rate_limiting_is_not_a_flood() {
        let mut m = FloodMonitor::new(100, 50);
        assert_eq!(m.observe(10_000, false, Instant::now()), None);
    }

    #[test]
    fn zero_threshold_disables_flood_reports() {
        let mut m = FloodMonitor::new(0, 50);
        assert_eq!(m.observe(u64::MAX, true, Instant::now()), None);
    }
}
