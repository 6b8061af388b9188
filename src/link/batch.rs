//! Cutting spooled records into `Events` frames, and accounting for what is in flight.
//!
//! An `Events{first_seq, records}` frame carries consecutive sequence numbers only, so a batch
//! ends at the first gap (records the spool dropped) and before the frame would exceed the
//! maximum frame size. Sizes are computed exactly from postcard's varint encoding, so nothing is
//! encoded twice.

use crate::pipeline::OutRecord;
use std::collections::VecDeque;

/// Bytes of a postcard varint holding `n`.
fn varint_len(n: u64) -> usize {
    let bits = 64 - n.max(1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// How the front of a read should be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Send the first `n` records (n ≥ 1) as one frame.
    Send(usize),
    /// The first record alone does not fit in a frame: it can never be sent.
    Oversized,
}

/// Decides how many of `records` (in sequence order, as read from the outbox) go in the next
/// `Events` frame of at most `max_frame` body bytes.
pub(super) fn cut(records: &[OutRecord], max_frame: usize) -> Cut {
    let Some(first) = records.first() else {
        return Cut::Send(0);
    };
    // Variant index (one byte) + first_seq; the record count is added per candidate length.
    let fixed = 1 + varint_len(first.seq);
    let mut bodies = 0usize;
    let mut n = 0usize;
    for (i, record) in records.iter().enumerate() {
        if record.seq != first.seq + i as u64 {
            break; // a gap: the next frame starts after it
        }
        let next = bodies + varint_len(record.body.len() as u64) + record.body.len();
        if fixed + varint_len(n as u64 + 1) + next > max_frame {
            break;
        }
        bodies = next;
        n += 1;
    }
    if n == 0 {
        Cut::Oversized
    } else {
        Cut::Send(n)
    }
}

/// Frames sent and not yet acknowledged: (last sequence number of the frame, frame bytes).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    frames: VecDeque<(u64, usize)>,
    bytes: usize,
}

impl InFlight {
    /// Records a frame whose last record is `last_seq`.
    pub(super) fn push(&mut self, last_seq: u64, bytes: usize) {
        self.frames.push_back((last_seq, bytes));
        self.bytes += bytes;
    }

    /// Forgets every frame acknowledged by `Ack{up_to}`.
    pub(super) fn release(&mut self, up_to: u64) {
        while let Some(&(last, bytes)) = self.frames.front() {
            if last > up_to {
                break;
            }
            self.bytes -= bytes;
            self.frames.pop_front();
        }
    }

    /// Bytes in flight.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::{frame, AgentMessage};

    fn records(seqs: &[u64], len: usize) -> Vec<OutRecord> {
        seqs.iter()
            .map(|&seq| OutRecord {
                seq,
                body: vec![7; len],
            })
            .collect()
    }

    fn encoded_len(records: &[OutRecord]) -> usize {
        let msg = AgentMessage::Events {
            first_seq: records[0].seq,
            records: records.iter().map(|r| r.body.as_slice()).collect(),
        };
        frame::encode(&msg, usize::MAX).unwrap().len() - frame::HEADER_LEN
    }

    #[test]
    fn size_computation_matches_the_encoder() {
        for (seq, len, n) in [
            (1, 10, 3),
            (300, 127, 1),
            (1 << 40, 128, 130),
            (u64::MAX - 5, 0, 5),
        ] {
            let recs = records(&(seq..seq + n).collect::<Vec<_>>(), len);
            let exact = encoded_len(&recs);
            assert_eq!(
                cut(&recs, exact),
                Cut::Send(recs.len()),
                "seq {seq} len {len} n {n}"
            );
            let one_less = if recs.len() > 1 {
                Cut::Send(recs.len() - 1)
            } else {
                Cut::Oversized
            };
            assert_eq!(cut(&recs, exact - 1), one_less, "seq {seq} len {len} n {n}");
        }
    }

    #[test]
    fn batch_ends_at_a_gap() {
        assert_eq!(cut(&records(&[4, 5, 6, 9, 10], 3), 1000), Cut::Send(3));
    }

    #[test]
    fn batch_ends_before_the_frame_limit() {
        let recs = records(&(1..=50).collect::<Vec<_>>(), 100);
        let Cut::Send(n) = cut(&recs, 512) else {
            panic!("oversized")
        };
        assert!(encoded_len(&recs[..n]) <= 512);
        assert!(encoded_len(&recs[..n + 1]) > 512);
    }

    #[test]
    fn a_record_larger_than_a_frame_is_oversized() {
        assert_eq!(cut(&records(&[1], 600), 512), Cut::Oversized);
    }

    #[test]
    fn acks_release_whole_frames_only() {
        let mut f = InFlight::default();
        f.push(10, 100);
        f.push(20, 50);
        f.release(5);
        assert_eq!(f.bytes(), 150);
        f.release(15);
        assert_eq!(f.bytes(), 50);
        f.release(25);
        assert_eq!(f.bytes(), 0);
    }
}
