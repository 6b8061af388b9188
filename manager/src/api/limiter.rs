//! The brute-force guard of the login endpoint: an address with `max` failed logins within
//! `window` is blocked for `window` (Wazuh: 50 failures in 300 s). Blocked addresses get 403 on
//! every request until the block ends.
//!
//! The table is bounded: expired entries are pruned when it grows, and when it is full of live
//! entries the oldest failure record is dropped (an attacker spreading over many addresses gains
//! nothing the per-address limit did not already allow).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Addresses tracked at once.
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    first: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

/// Failed logins per address.
pub(crate) struct LoginLimiter {
    max: u32,
    window: Duration,
    table: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginLimiter {
    /// A limiter blocking after `max` failures within `window`.
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        LoginLimiter {
            max: max.max(1),
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Failures>> {
        // Every update is a single insert, change or removal: a poisoned table is consistent.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` is blocked at `now`.
    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut table = self.lock();
        match table.get(&ip) {
            Some(f) => match f.blocked_until {
                Some(until) if until > now => true,
                Some(_) => {
                    table.remove(&ip);
                    false
                }
                None => false,
            },
            None => false,
        }
    }

    /// Records a failed login from `ip` at `now`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        let mut table = self.lock();
        if table.len() >= MAX_TRACKED && !table.contains_key(&ip) {
            let window = self.window;
            table.retain(|_, f| match f.blocked_until {
                Some(until) => until > now,
                None => now.duration_since(f.first) < window,
            });
            if table.len() >= MAX_TRACKED {
                let oldest = table
                    .iter()
                    .filter(|(_, f)| f.blocked_until.is_none())
                    .min_by_key(|(_, f)| f.first)
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    table.remove(&oldest);
                }
            }
        }
        let entry = table.entry(ip).or_insert(Failures {
            first: now,
            count: 0,
            blocked_until: None,
        });
        if now.duration_since(entry.first) >= self.window {
            *entry = Failures {
                first: now,
                count: 0,
                blocked_until: None,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= self.max && entry.blocked_until.is_none() {
            entry.blocked_until = Some(now + self.window);
            log::warn!(
                "api: {ip} blocked for {} s after {} failed logins",
                self.window.as_secs(),
                entry.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn address_is_blocked_after_max_failures_within_the_window() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let t = Instant::now();
        l.failed(ip(1), t);
        l.failed(ip(1), t);
        assert!(!l.is_blocked(ip(1), t));
        l.failed(ip(1), t);
        assert!(l.is_blocked(ip(1), t));
        assert!(!l.is_blocked(ip(2), t), "other addresses are not blocked");
    }

    #[test]
    fn block_ends_after_the_window() {
        let l = LoginLimiter::new(1, Duration::from_secs(60));
        let t = Instant::now();
        l.failed(ip(1), t);
        assert!(l.is_blocked(ip(1), t + Duration::from_secs(59)));
        assert!(!l.is_blocked(ip(1), t + Duration::from_secs(60)));
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_block() {
        let l = LoginLimiter::new(2, Duration::from_secs(10));
        let t = Instant::now();
        l.failed(ip(1), t);
        l.failed(ip(1), t + Duration::from_secs(11));
        assert!(!l.is_blocked(ip(1), t + Duration::from_secs(11)));
    }

    #[test]
    fn table_stays_bounded_under_many_addresses() {
        let l = LoginLimiter::new(5, Duration::from_secs(60));
        let t = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 100) {
            l.failed(IpAddr::from(n.to_be_bytes()), t);
        }
        assert!(l.lock().len() <= MAX_TRACKED);
    }
}
