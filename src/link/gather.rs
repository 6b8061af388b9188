//! Gathering small records into fuller frames while earlier frames are in flight (like Nagle's
//! algorithm).
//!
//! A module that produces events one at a time (FIM during a baseline: tens of thousands of
//! small events, a few at a time) would otherwise get a frame, a manager commit and an ack per
//! event or two, and the ack costs the agent a spool write. So while a frame is unacknowledged
//! and fewer than [`GATHER_RECORDS`] records wait, the writer waits for more, for the ack, or for
//! [`GATHER_DELAY`], whichever comes first. With nothing in flight a record goes at once, so a
//! lone event is never delayed; and after a large frame (bulk records, e.g. log batches) the
//! writer does not wait at all, since its frames are already full.

use std::time::{Duration, Instant};

/// Records waiting that are worth a frame of their own.
pub(super) const GATHER_RECORDS: u64 = 64;
/// Longest a small frame waits for company.
pub(super) const GATHER_DELAY: Duration = Duration::from_millis(5);

/// The writer's gathering state.
#[derive(Debug)]
pub(super) struct Gather {
    /// When the waiting records go anyway (set when the wait starts).
    deadline: Option<Instant>,
    /// The last frame was small (under a quarter of the maximum frame).
    last_frame_small: bool,
}

impl Default for Gather {
    fn default() -> Self {
        Gather {
            deadline: None,
            last_frame_small: true,
        }
    }
}

impl Gather {
    /// Whether to hold back the `waiting` records (with `in_flight_bytes` unacknowledged): the
    /// time until which to wait, or `None` to send now.
    pub(super) fn hold_until(
        &mut self,
        waiting: u64,
        in_flight_bytes: usize,
        now: Instant,
    ) -> Option<Instant> {
        if in_flight_bytes == 0 || waiting >= GATHER_RECORDS || !self.last_frame_small {
            return None;
        }
        let deadline = *self.deadline.get_or_insert(now + GATHER_DELAY);
        (now < deadline).then_some(deadline)
    }

    /// Notes a frame of `bytes` sent (of at most `max_frame`): the next wait starts afresh.
    pub(super) fn sent(&mut self, bytes: usize, max_frame: usize) {
        self.deadline = None;
        self.last_frame_small = bytes < max_frame / 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_in_flight_sends_at_once() {
        let mut g = Gather::default();
        assert_eq!(g.hold_until(1, 0, Instant::now()), None);
    }

    #[test]
    fn few_records_wait_while_a_frame_is_in_flight_but_not_past_the_delay() {
        let mut g = Gather::default();
        let now = Instant::now();
        let until = g.hold_until(3, 100, now).unwrap();
        assert_eq!(until, now + GATHER_DELAY);
        // The deadline stays where the wait began.
        assert_eq!(
            g.hold_until(5, 100, now + Duration::from_millis(1)),
            Some(until)
        );
        assert_eq!(g.hold_until(5, 100, until), None);
    }

    #[test]
    fn enough_records_or_bulk_frames_go_at_once() {
        let mut g = Gather::default();
        assert_eq!(g.hold_until(GATHER_RECORDS, 100, Instant::now()), None);
        g.sent(40_000, 65_536);
        assert_eq!(g.hold_until(1, 40_000, Instant::now()), None);
        g.sent(100, 65_536);
        assert!(g.hold_until(1, 100, Instant::now()).is_some());
    }
}
