//! Sequential reading for the link ([`crate::pipeline::Outbox::read_after`]).
//!
//! The link asks for the records after the last one it sent, over and over; the spool keeps
//! where that was (segment, file offset, next seq) and continues from there, scanning a segment
//! from its start only when asked for another position (after a reconnect, say). It reads only
//! what was written to the file, flushing first when asked for records still in the buffer.
//! A record that fails its checksum here (flash decay after it was written) ends its segment
//! like it would at recovery: the rest of that segment is reported dropped.

use super::record::Invalid;
use super::segment::{self, ReadOutcome, SegmentInfo, Writer};
use super::space::merge;
use super::{with_context, DropReport, Spool};
use crate::pipeline::OutRecord;
use std::fs::{File, OpenOptions};
use std::io;

/// Where the next sequential read starts.
pub(super) struct ReadPos {
    /// First seq (name) of the segment read.
    pub seg_first: u64,
    file: File,
    offset: u64,
    /// The record at `offset` is the first with a seq at or above this.
    next_seq: u64,
}

impl Spool {
    /// See [`crate::pipeline::Outbox::read_after`].
    pub(super) fn read_records(
        &mut self,
        after_seq: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<OutRecord>,
    ) -> io::Result<()> {
        let want = after_seq.saturating_add(1);
        if max_records == 0 || want > self.last_seq {
            return Ok(());
        }
        let positioned = self
            .reader
            .as_ref()
            .is_some_and(|r| r.next_seq == want && self.segment_index(r.seg_first).is_some());
        if !positioned {
            self.reader = None;
            self.seek(want)?;
        }
        let (mut count, mut bytes) = (0usize, 0usize);
        while count < max_records {
            let Some(seg_first) = self.reader.as_ref().map(|r| r.seg_first) else {
                break;
            };
            let Some(idx) = self.segment_index(seg_first) else {
                self.reader = None;
                break;
            };
            let Some(pos) = self.reader.as_mut() else {
                break;
            };
            let end = self.segments[idx].bytes;
            let path = self.segments[idx].path(&self.dir);
            match segment::read_record(&pos.file, pos.offset, end, &mut self.scratch)
                .map_err(|e| with_context(e, &path))?
            {
                ReadOutcome::Record(view, next) => {
                    if count > 0 && bytes + view.body.len() > max_bytes {
                        break;
                    }
                    count += 1;
                    bytes += view.body.len();
                    out.push(OutRecord {
                        seq: view.seq,
                        body: view.body.to_vec(),
                    });
                    pos.offset = next;
                    pos.next_seq = view.seq + 1;
                }
                ReadOutcome::End => {
                    let next_seq = pos.next_seq;
                    if let Some(next) = self.segments.get(idx + 1) {
                        self.reader = Some(ReadPos::open(
                            &next.path(&self.dir),
                            next.first_seq,
                            next_seq,
                        )?);
                    } else if self.writer.as_ref().is_some_and(|w| w.buffered_records > 0) {
                        // Caught up with the file: the rest is in the write buffer.
                        self.flush()?;
                    } else {
                        break;
                    }
                }
                ReadOutcome::Invalid(why) => {
                    let (offset, next_seq) = (pos.offset, pos.next_seq);
                    self.lose_tail(idx, offset, next_seq, why)?;
                }
            }
        }
        Ok(())
    }

    /// Places the reader on the first record with a seq at or above `want`, if any is held.
    fn seek(&mut self, want: u64) -> io::Result<()> {
        let Some(idx) = self
            .segments
            .iter()
            .position(|s| !s.is_empty() && s.last_seq >= want)
        else {
            return Ok(());
        };
        let first = self.segments[idx].first_seq;
        let path = self.segments[idx].path(&self.dir);
        let mut pos = ReadPos::open(&path, first, first)?;
        // Hop over the records below `want` by their headers; bodies are verified when read.
        while pos.next_seq < want {
            let end = self.segments[idx].bytes;
            match segment::read_header(&pos.file, pos.offset, end)
                .map_err(|e| with_context(e, &path))?
            {
                Ok(Some(h)) if h.seq == pos.next_seq && u64::from(h.len) <= end - pos.offset => {
                    pos.offset += u64::from(h.len);
                    pos.next_seq += 1;
                }
                // `want` is in the write buffer of this (active) segment.
                Ok(None) if self.writer.as_ref().is_some_and(|w| w.buffered_records > 0) => {
                    self.flush()?
                }
                Ok(None) => break,
                Ok(Some(_)) => {
                    return self.lose_tail(
                        idx,
                        pos.offset,
                        pos.next_seq,
                        "bad header while seeking",
                    )
                }
                Err(why) => return self.lose_tail(idx, pos.offset, pos.next_seq, why),
            }
        }
        pos.next_seq = pos.next_seq.max(want);
        self.reader = Some(pos);
        Ok(())
    }

    /// The record at `offset` of segment `idx` (expected seq `next_seq`) is unreadable: cuts the
    /// segment there and reports the records lost with it. Records of that segment still in the
    /// write buffer are sound; they move to a new segment, as nothing may be appended behind
    /// bytes no reader can get past.
    fn lose_tail(
        &mut self,
        idx: usize,
        offset: u64,
        next_seq: u64,
        why: Invalid,
    ) -> io::Result<()> {
        let is_active = idx + 1 == self.segments.len() && self.writer.is_some();
        let buffered = if is_active {
            self.writer.as_ref().map_or(0, |w| w.buffered_records)
        } else {
            0
        };
        let info = &self.segments[idx];
        let flushed_last = info.last_seq - buffered;
        let mut salvage = SegmentInfo::new(flushed_last + 1);
        let new_writer = if buffered > 0 {
            Some(Writer::create(salvage.path(&self.dir))?)
        } else {
            None
        };
        let (acked, path) = (self.acked, info.path(&self.dir));
        log::error!(
            "spool segment {}: unreadable record at offset {offset} ({why}); records {next_seq}..={flushed_last} are lost",
            path.display()
        );
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(offset))
            .map_err(|e| with_context(e, &path))?;
        let info = &mut self.segments[idx];
        let first = info.first_seq;
        let lost_from = next_seq.max(acked + 1);
        let lost = (flushed_last + 1).saturating_sub(lost_from);
        let mut report = (lost > 0).then_some(DropReport {
            count: lost,
            first_seq: lost_from,
            last_seq: flushed_last,
        });
        for &(seq, carried) in &info.reports {
            if seq > flushed_last {
                salvage.reports.push((seq, carried));
            } else if seq >= next_seq && seq > acked {
                merge(&mut report, carried);
            }
        }
        info.reports.retain(|(seq, _)| *seq < next_seq);
        info.last_seq = next_seq - 1;
        info.bytes = offset;
        if is_active {
            let old = self.writer.take();
            if let (Some(mut writer), Some(old)) = (new_writer, old) {
                writer.adopt_buffer(old);
                salvage.last_seq = self.last_seq;
                self.segments.push_back(salvage);
                self.writer = Some(writer);
                self.dir_dirty = true;
            }
        }
        if let Some(report) = report {
            self.add_pending(report, lost);
        }
        if let Some(r) = self.reader.as_mut().filter(|r| r.seg_first == first) {
            // Leave it at the (new) end of the segment: the next read moves on.
            r.offset = offset;
        }
        Ok(())
    }
}

impl ReadPos {
    fn open(path: &std::path::Path, seg_first: u64, next_seq: u64) -> io::Result<ReadPos> {
        let file = File::open(path).map_err(|e| with_context(e, path))?;
        Ok(ReadPos {
            seg_first,
            file,
            offset: 0,
            next_seq,
        })
    }
}
