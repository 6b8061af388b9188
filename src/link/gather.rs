//! Gathering small records into fuller frames (like Nagle's algorithm, but by time).
//!
//! A module that produces events one at a time (FIM during a baseline: tens of thousands of
//! small events, a few at a time) would otherwise get a frame, a manager commit and an ack per
//! event or two, and every ack costs the agent a spool write and a wake-up. So a frame of fewer
//! than [`GATHER_RECORDS`] records is sent at most once per [`GATHER_DELAY`]: records that come
//! sooner after a small frame wait for company until then. A lone event after a quiet spell goes
//! at once; and after a large frame (bulk records, e.g. log batches) the writer does not wait at
//! all, since its frames are already full.

use std::time::{Duration, Instant};

/// Records waiting that are worth a frame of their own.
pub(super) const GATHER_RECORDS: u64 = 64;
/// Shortest time between two small frames.
pub(super) const GATHER_DELAY: Duration = Duration::from_millis(5);

/// The writer's gathering state.
#[derive(Debug, Default)]
pub(super) struct Gather {
    /// When the last small frame (under a quarter of the maximum frame) was sent; `None` after
    /// a large one.
    last_small: Option<Instant>,
}

impl Gather {
    /// Whether to hold back the `waiting` records: the time until which to wait, or `None` to
    /// send now.
    pub(super) fn hold_until(&mut self, waiting: u64, now: Instant) -> Option<Instant> {
        if waiting >= GATHER_RECORDS {
            return None;
        }
        let next = self.last_small? + GATHER_DELAY;
        (now < next).then_some(next)
    }

    /// Notes a frame of `bytes` sent at `now` (of at most `max_frame`).
    pub(super) fn sent(&mut self, bytes: usize, max_frame: usize, now: Instant) {
        self.last_small = (bytes < max_frame / 4).then_some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_and_frames_after_a_quiet_spell_go_at_once() {
        let mut g = Gather::default();
        let now = Instant::now();
        assert_eq!(g.hold_until(1, now), None);
        g.sent(100, 65_536, now);
        assert_eq!(g.hold_until(1, now + GATHER_DELAY), None);
    }

    #[test]
    fn few_records_soon_after_a_small_frame_wait_until_the_delay_ends() {
        let mut g = Gather::default();
        let now = Instant::now();
        g.sent(100, 65_536, now);
        let later = now + Duration::from_millis(1);
        assert_eq!(g.hold_until(3, later), Some(now + GATHER_DELAY));
    }

    #[test]
    fn enough_records_or_bulk_frames_go_at_once() {
        let mut g = Gather::default();
        let now = Instant::now();
        g.sent(100, 65_536, now);
        assert_eq!(g.hold_until(GATHER_RECORDS, now), None);
        g.sent(40_000, 65_536, now);
        assert_eq!(g.hold_until(1, now), None);
    }
}
