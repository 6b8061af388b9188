//! Rebuilding the spool state at start from the checkpoint and the segment files.
//!
//! A process can be killed at any point, so the files may end with half a record, and flash can
//! corrupt older data. Every record is verified; the first bad one ends its segment and the bytes
//! from there are cut off (in the last segment that is a torn write; in an older one the records
//! after it are lost). Records that should exist but are gone, and that no drop report or ack
//! already covers, are returned as one [`DropReport`] for the caller to append.

use super::ack_mark::Marked;
use super::checkpoint::{self, Checkpoint, Loaded, MAX_CURSOR_KEYS};
use super::record::MAX_KEY_LEN;
use super::segment::{self, ReadOutcome, SegmentInfo};
use super::{with_context, DropReport};
use crate::pipeline::MAX_CURSOR_BYTES;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// The state found on disk.
pub(super) struct Recovered {
    /// Segments holding at least one valid record, oldest first.
    pub segments: VecDeque<SegmentInfo>,
    pub acked: u64,
    pub last_seq: u64,
    pub dropped_total: u64,
    pub reported: u64,
    pub cursors: BTreeMap<String, Vec<u8>>,
    /// Size of the checkpoint file now on disk (0 if none).
    pub checkpoint_len: u64,
    /// Records missing and not yet reported (`count` = exactly how many).
    pub missing: Option<DropReport>,
}

/// What the records scanned add to the checkpoint's state.
struct Overlay {
    /// Records above this seq were appended after the checkpoint was written.
    checkpoint_last: u64,
    dropped_total: u64,
    reported: u64,
    cursors: BTreeMap<String, Vec<u8>>,
}

/// Reads the checkpoint and scans every segment in `dir` (cutting invalid tails). `mark` is what
/// the ack mark held: its acked and last seq win where they are newer than the checkpoint's.
pub(super) fn recover(dir: &Path, mark: Option<Marked>) -> io::Result<Recovered> {
    checkpoint::remove_stale_tmp(dir)?;
    let (cp, checkpoint_len) = load_checkpoint(dir)?;
    let mark = mark.unwrap_or_default();
    let acked = cp.acked.max(mark.acked);
    let known_last = cp.last_seq.max(mark.last_seq);
    let mut overlay = Overlay {
        checkpoint_last: cp.last_seq,
        dropped_total: cp.dropped_total,
        reported: cp.reported,
        cursors: cp.cursors,
    };
    let mut segments = VecDeque::new();
    // Ranges of sequence numbers between the segments found (and before the first).
    let mut gaps = Vec::new();
    let mut prev_last = 0u64;
    let mut scratch = Vec::new();
    for first in segment::list(dir)? {
        let info = scan_segment(dir, first, prev_last, &mut overlay, &mut scratch)?;
        if info.is_empty() {
            let path = info.path(dir);
            std::fs::remove_file(&path).map_err(|e| with_context(e, &path))?;
            continue;
        }
        if info.first_seq > prev_last + 1 {
            gaps.push((prev_last + 1, info.first_seq - 1));
        }
        prev_last = info.last_seq;
        segments.push_back(info);
    }
    if known_last > prev_last {
        // Records the checkpoint or the ack mark knew of, past the end of what survived.
        gaps.push((prev_last + 1, known_last));
    }
    let floor = acked.max(overlay.reported);
    let missing = unreported(&gaps, floor);
    let last_seq = known_last.max(prev_last).max(overlay.reported).max(acked);
    Ok(Recovered {
        segments,
        acked,
        last_seq,
        dropped_total: overlay.dropped_total,
        reported: overlay.reported,
        cursors: overlay.cursors,
        checkpoint_len,
        missing,
    })
}

/// The checkpoint and its file size; a damaged one is replaced by an empty state (the segments
/// still give the sequence numbers and their cursors), with a warning.
fn load_checkpoint(dir: &Path) -> io::Result<(Checkpoint, u64)> {
    let largest = checkpoint::size_bound(
        MAX_CURSOR_KEYS as u64
            * checkpoint::cursor_cost(&"k".repeat(MAX_KEY_LEN), &[0; MAX_CURSOR_BYTES]),
    );
    Ok(match checkpoint::load(dir, largest)? {
        Loaded::Missing => (Checkpoint::default(), 0),
        Loaded::Found(cp, len) => (cp, len),
        Loaded::Corrupt(why) => {
            let path = dir.join(checkpoint::FILE_NAME);
            log::warn!(
                "spool checkpoint {} is unusable ({why}); rebuilding from the segments: \
                 acknowledgements and cursors of removed segments are lost",
                path.display()
            );
            let len = std::fs::metadata(&path)
                .map_err(|e| with_context(e, &path))?
                .len();
            (Checkpoint::default(), len)
        }
    })
}

/// Verifies the records of one segment, applying them to `overlay`, and cuts the file after the
/// last valid one. Records must follow each other from the seq in the file name, which must be
/// above `prev_last`.
fn scan_segment(
    dir: &Path,
    first: u64,
    prev_last: u64,
    overlay: &mut Overlay,
    scratch: &mut Vec<u8>,
) -> io::Result<SegmentInfo> {
    let mut info = SegmentInfo::new(first);
    let path = info.path(dir);
    let file = File::open(&path).map_err(|e| with_context(e, &path))?;
    let len = file.metadata().map_err(|e| with_context(e, &path))?.len();
    let mut offset = 0u64;
    let mut invalid = (first <= prev_last).then_some("overlaps the previous segment");
    while invalid.is_none() {
        match segment::read_record(&file, offset, len, scratch)
            .map_err(|e| with_context(e, &path))?
        {
            ReadOutcome::End => break,
            ReadOutcome::Invalid(why) => invalid = Some(why),
            ReadOutcome::Record(view, next) if view.seq == info.last_seq + 1 => {
                overlay.apply(&view);
                if let Some(report) = view.drop {
                    info.reports.push((view.seq, report));
                }
                info.last_seq = view.seq;
                offset = next;
            }
            ReadOutcome::Record(..) => invalid = Some("sequence number out of order"),
        }
    }
    if let Some(why) = invalid {
        log::warn!(
            "spool segment {}: invalid record at offset {offset} ({why}); cutting the {} bytes from there",
            path.display(),
            len - offset
        );
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(offset))
            .map_err(|e| with_context(e, &path))?;
    }
    info.bytes = offset;
    Ok(info)
}

impl Overlay {
    fn apply(&mut self, view: &super::record::RecordView<'_>) {
        if let Some(report) = view.drop {
            self.reported = self.reported.max(report.last_seq);
        }
        if view.seq <= self.checkpoint_last {
            // Already counted in the checkpoint, whose cursors are newer or equal.
            return;
        }
        if let Some(report) = view.drop {
            self.dropped_total += report.count;
        }
        if let Some((key, value)) = view.cursor {
            self.cursors.insert(key.to_string(), value.to_vec());
        }
    }
}

/// The parts of `gaps` above `floor`, as one report (count exact, range the envelope).
fn unreported(gaps: &[(u64, u64)], floor: u64) -> Option<DropReport> {
    let mut report: Option<DropReport> = None;
    for &(from, to) in gaps {
        let from = from.max(floor + 1);
        if from > to {
            continue;
        }
        let r = report.get_or_insert(DropReport {
            count: 0,
            first_seq: from,
            last_seq: to,
        });
        r.count += to - from + 1;
        r.first_seq = r.first_seq.min(from);
        r.last_seq = r.last_seq.max(to);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_at_or_below_the_floor_are_not_reported() {
        assert_eq!(unreported(&[(1, 10)], 10), None);
        assert_eq!(
            unreported(&[(1, 10), (20, 24)], 5),
            Some(DropReport {
                count: 10,
                first_seq: 6,
                last_seq: 24
            })
        );
    }
}
