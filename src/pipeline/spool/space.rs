//! Writing records within the byte cap: rolling segments, making room (removing acknowledged
//! segments, evicting the oldest, or refusing), drop reports, and the checkpoint rewrite.
//!
//! The invariant kept here: segment bytes (write buffer included) + room for one checkpoint
//! rewrite (the old file and the new one side by side) never exceed `max_bytes`. A segment is
//! removed only after a durable checkpoint holds the cursors and the seq counter it carried.

use super::ack_mark;
use super::checkpoint::{self, CheckpointRef};
use super::record;
use super::segment::{SegmentInfo, Writer, WRITE_BUFFER_BYTES};
use super::{with_context, AppendError, DropReport, PendingReport, Spool};
use crate::config::WhenFull;
use crate::pipeline::Cursor;
use std::io;

impl Spool {
    /// Makes room for a record of `len` bytes whose cursor grows the checkpoint bound by
    /// `growth`, and appends the pending drop report first (room is made for both).
    pub(super) fn make_room(&mut self, len: u64, growth: u64) -> Result<(), AppendError> {
        loop {
            let report = self
                .pending_report
                .map(|p| (p, (self.make_drop_record)(&p.report)));
            let report_len = report
                .as_ref()
                .map_or(0, |(_, body)| record::encoded_len(true, None, body.len()));
            if self.fits(report_len as u64 + len, growth) {
                if let Some((pending, body)) = report {
                    self.write_drop_report(pending, &body)?;
                }
                return Ok(());
            }
            if self.remove_acked_segments(true)? {
                continue;
            }
            match self.config.when_full {
                WhenFull::Block => return Err(AppendError::Full),
                WhenFull::DropOldest => self.evict_oldest()?,
            }
        }
    }

    /// Whether `need` more segment bytes fit with room left for a checkpoint rewrite.
    fn fits(&self, need: u64, growth: u64) -> bool {
        let bound = checkpoint::size_bound(self.cursor_costs + growth);
        let reserve = bound + bound.max(self.checkpoint_len) + ack_mark::LEN;
        self.segment_bytes() + need + reserve <= self.config.max_bytes
    }

    /// Buffers one record under the next seq, rolling the active segment when it would overflow.
    /// The seq is taken only once nothing can fail any more.
    pub(super) fn write_record(
        &mut self,
        drop: Option<&DropReport>,
        cursor: Option<&Cursor>,
        body: &[u8],
    ) -> io::Result<u64> {
        let len = record::encoded_len(drop.is_some(), cursor, body.len());
        if let (Some(w), Some(info)) = (self.writer.as_ref(), self.segments.back()) {
            let size = info.bytes + w.buf.len() as u64;
            if !info.is_empty() && size + len as u64 > self.config.segment_bytes {
                self.roll()?;
            }
        }
        let seq = self.last_seq + 1;
        if self.writer.is_none() {
            let info = SegmentInfo::new(seq);
            self.writer = Some(Writer::create(info.path(&self.dir))?);
            self.segments.push_back(info);
            self.dir_dirty = true;
        }
        let (Some(w), Some(info)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(io::Error::other("spool has a writer but no segment"));
        };
        if !w.buf.is_empty() && w.buf.len() + len > WRITE_BUFFER_BYTES {
            w.flush(info)?;
        }
        record::encode(&mut w.buf, seq, drop, cursor, body);
        w.buffered_records += 1;
        info.last_seq = seq;
        self.last_seq = seq;
        Ok(seq)
    }

    /// Closes the active segment: writes its buffer and fsyncs it (a closed segment is not
    /// synced by the timer any more). The next record starts a new segment.
    pub(super) fn roll(&mut self) -> io::Result<()> {
        if let (Some(mut w), Some(info)) = (self.writer.take(), self.segments.back_mut()) {
            if let Err(e) = w.flush(info).and_then(|()| w.sync()) {
                self.writer = Some(w);
                return Err(e);
            }
        }
        Ok(())
    }

    /// At open: keeps appending to the last segment when the next seq follows its last record.
    pub(super) fn resume_writer(&mut self) -> io::Result<()> {
        if let Some(last) = self.segments.back() {
            if last.last_seq == self.last_seq && last.bytes < self.config.segment_bytes {
                self.writer = Some(Writer::open(last.path(&self.dir))?);
            }
        }
        Ok(())
    }

    /// Appends a drop report and counts it as reported.
    fn write_drop_report(&mut self, pending: PendingReport, body: &[u8]) -> io::Result<()> {
        let seq = self.write_record(Some(&pending.report), None, body)?;
        if let Some(info) = self.segments.back_mut() {
            info.reports.push((seq, pending.report));
        }
        self.pending_report = None;
        self.dropped_total += pending.new_losses;
        self.reported = self.reported.max(pending.report.last_seq);
        log::warn!(
            "spool: reported {} records dropped (seq {}..={}) in record {seq}",
            pending.report.count,
            pending.report.first_seq,
            pending.report.last_seq
        );
        self.persist_checkpoint(false)
    }

    /// Removes the oldest segment, rolling first if it is the active one; its unacknowledged
    /// records (and the reports it held) go into the pending drop report.
    fn evict_oldest(&mut self) -> Result<(), AppendError> {
        if self.segments.is_empty() {
            return Err(AppendError::Io(io::Error::other(format!(
                "spool {}: no room for a record even with every segment removed",
                self.dir.display()
            ))));
        }
        if self.segments.len() == 1 && self.writer.is_some() {
            self.roll()?;
        }
        let front = &self.segments[0];
        let lost = front.unacked(self.acked);
        let mut report = (lost > 0).then(|| DropReport {
            count: lost,
            first_seq: front.first_seq.max(self.acked + 1),
            last_seq: front.last_seq,
        });
        for (seq, carried) in &front.reports {
            if *seq > self.acked {
                merge(&mut report, *carried);
            }
        }
        if lost > 0 {
            log::warn!(
                "spool {} is full: dropping {lost} unacknowledged records (seq up to {})",
                self.dir.display(),
                front.last_seq
            );
        }
        if let Some(report) = report {
            self.add_pending(report, lost);
        }
        self.persist_checkpoint(true)?;
        self.remove_front()?;
        Ok(())
    }

    /// Adds lost records to the report waiting to be appended.
    pub(super) fn add_pending(&mut self, report: DropReport, new_losses: u64) {
        match self.pending_report.as_mut() {
            None => self.pending_report = Some(PendingReport { report, new_losses }),
            Some(pending) => {
                widen(&mut pending.report, report);
                pending.new_losses += new_losses;
            }
        }
    }

    /// How many leading segments are fully acknowledged (or empty); the active one counts only
    /// with `include_active`.
    pub(super) fn acked_prefix(&self, include_active: bool) -> usize {
        let n = self
            .segments
            .iter()
            .take_while(|s| s.is_empty() || s.last_seq <= self.acked)
            .count();
        if n == self.segments.len() && self.writer.is_some() && !include_active {
            n.saturating_sub(1)
        } else {
            n
        }
    }

    /// Removes the fully acknowledged segments (after making the checkpoint durable); returns
    /// whether any was removed.
    pub(super) fn remove_acked_segments(&mut self, include_active: bool) -> io::Result<bool> {
        let n = self.acked_prefix(include_active);
        if n == 0 {
            return Ok(false);
        }
        if n == self.segments.len() {
            self.roll()?;
        }
        if !self.checkpoint_durable {
            self.persist_checkpoint(true)?;
        }
        for _ in 0..n {
            self.remove_front()?;
        }
        Ok(true)
    }

    fn remove_front(&mut self) -> io::Result<()> {
        let Some(info) = self.segments.front() else {
            return Ok(());
        };
        let path = info.path(&self.dir);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(with_context(e, &path)),
            _ => {}
        }
        if self
            .reader
            .as_ref()
            .is_some_and(|r| r.seg_first == info.first_seq)
        {
            self.reader = None;
        }
        self.segments.pop_front();
        self.dir_dirty = true;
        Ok(())
    }

    /// Rewrites the checkpoint from the current state, after flushing (so the last seq it names
    /// is in the files). `durable` fsyncs it: required before removing segments.
    pub(super) fn persist_checkpoint(&mut self, durable: bool) -> io::Result<()> {
        self.flush()?;
        let bytes = checkpoint::encode(&CheckpointRef {
            acked: self.acked,
            last_seq: self.last_seq,
            dropped_total: self.dropped_total,
            reported: self.reported,
            cursors: &self.cursors,
        })?;
        let peak = self.segment_bytes() + self.checkpoint_len + bytes.len() as u64;
        if peak > self.config.max_bytes {
            // Only after a restart with a smaller max_bytes: the cap is restored as records go.
            log::warn!(
                "spool {} briefly holds {peak} bytes, over its cap of {}",
                self.dir.display(),
                self.config.max_bytes
            );
        }
        checkpoint::store(&self.dir, &self.dir_file, &bytes, durable)?;
        self.checkpoint_len = bytes.len() as u64;
        self.checkpoint_durable = durable;
        self.dir_dirty |= !durable;
        Ok(())
    }
}

/// Widens `into` with `report`: counts add up, the range becomes the envelope.
pub(super) fn merge(into: &mut Option<DropReport>, report: DropReport) {
    match into {
        None => *into = Some(report),
        Some(r) => widen(r, report),
    }
}

fn widen(r: &mut DropReport, other: DropReport) {
    r.count += other.count;
    r.first_seq = r.first_seq.min(other.first_seq);
    r.last_seq = r.last_seq.max(other.last_seq);
}
