//! Segment files: their names, the small index kept in memory for each, reading one record, and
//! the buffered writer of the active segment.
//!
//! A segment is named after the sequence number of its first record (`seg-<20 digits>.log`) and
//! holds consecutive records. Nothing here keeps memory proportional to the number of records.

use super::record::{self, RecordView, HEADER_LEN};
use super::{with_context, DropReport};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of the write buffer; a record larger than this is buffered alone.
pub(super) const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// File name of the segment whose first record is `first_seq`.
pub(super) fn file_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

/// The first sequence number encoded in a segment file name (never 0: seqs start at 1, and a
/// file named otherwise is not ours).
pub(super) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&first| first > 0)
}

/// The first sequence numbers of the segments in `dir`, oldest first.
pub(super) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| with_context(e, dir))?;
    for entry in entries {
        let entry = entry.map_err(|e| with_context(e, dir))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// What the spool remembers about one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentInfo {
    /// Sequence number of the first record (also in the file name).
    pub first_seq: u64,
    /// Sequence number of the last record, buffered ones included; `first_seq - 1` when empty.
    pub last_seq: u64,
    /// Bytes written to the file (the write buffer not included).
    pub bytes: u64,
    /// Drop reports held in this segment (seq, report): when the segment is evicted unread,
    /// their ranges are carried into the next report so the manager still learns of them.
    /// Small: one per eviction that happened while this segment was active.
    pub reports: Vec<(u64, DropReport)>,
}

impl SegmentInfo {
    /// An empty segment about to receive `first_seq`.
    pub fn new(first_seq: u64) -> Self {
        SegmentInfo {
            first_seq,
            last_seq: first_seq - 1,
            bytes: 0,
            reports: Vec::new(),
        }
    }

    /// True when the segment holds no record.
    pub fn is_empty(&self) -> bool {
        self.last_seq < self.first_seq
    }

    /// Records in this segment above `acked`.
    pub fn unacked(&self, acked: u64) -> u64 {
        let from = self.first_seq.max(acked + 1);
        (self.last_seq + 1).saturating_sub(from)
    }

    /// Path of the segment file in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(file_name(self.first_seq))
    }
}

/// Result of reading at one offset of a segment.
pub(super) enum ReadOutcome<'a> {
    /// A valid record, and the offset just after it.
    Record(RecordView<'a>, u64),
    /// `offset` is the end of the readable data.
    End,
    /// The bytes at `offset` are not a valid record (torn write or corruption).
    Invalid(record::Invalid),
}

/// Reads and verifies the record at `offset`, never reading at or past `end` (which bounds the
/// memory used, whatever a corrupt length field says).
pub(super) fn read_record<'a>(
    file: &File,
    offset: u64,
    end: u64,
    scratch: &'a mut Vec<u8>,
) -> io::Result<ReadOutcome<'a>> {
    let header = match read_header(file, offset, end)? {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(ReadOutcome::End),
        Err(why) => return Ok(ReadOutcome::Invalid(why)),
    };
    let len = u64::from(header.len);
    if len > end - offset {
        return Ok(ReadOutcome::Invalid(
            "record runs past the end of the segment",
        ));
    }
    scratch.clear();
    scratch.resize(header.len as usize, 0);
    file.read_exact_at(scratch, offset)?;
    match record::decode(scratch) {
        Ok(view) => Ok(ReadOutcome::Record(view, offset + len)),
        Err(why) => Ok(ReadOutcome::Invalid(why)),
    }
}

/// Reads only the header at `offset`: `Ok(None)` at the end, `Err` when the bytes are not a header.
pub(super) fn read_header(
    file: &File,
    offset: u64,
    end: u64,
) -> io::Result<Result<Option<record::Header>, record::Invalid>> {
    if offset >= end {
        return Ok(Ok(None));
    }
    if end - offset < HEADER_LEN as u64 {
        return Ok(Err("partial record header"));
    }
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, offset)?;
    Ok(record::parse_header(&head).map(Some))
}

/// The segment being appended to: its file and the records not yet written to it.
pub(super) struct Writer {
    file: File,
    path: PathBuf,
    /// Encoded records waiting for `flush`.
    pub buf: Vec<u8>,
    /// Number of records in `buf`.
    pub buffered_records: u64,
    /// Data was written since the last fsync.
    unsynced: bool,
}

impl Writer {
    /// Creates the file of a new segment (it must not exist).
    pub fn create(path: PathBuf) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| with_context(e, &path))?;
        Ok(Writer::with_file(file, path))
    }

    /// Opens an existing segment to append to it.
    pub fn open(path: PathBuf) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| with_context(e, &path))?;
        Ok(Writer::with_file(file, path))
    }

    fn with_file(file: File, path: PathBuf) -> Writer {
        Writer {
            file,
            path,
            buf: Vec::new(),
            buffered_records: 0,
            unsynced: false,
        }
    }

    /// Writes the buffer to the file. On failure the file is cut back to `info.bytes` (so no
    /// half record stays in the middle of the segment) and the buffer is kept for a retry.
    pub fn flush(&mut self, info: &mut SegmentInfo) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            // Best effort: if even this fails, recovery truncates the torn tail at the next start.
            let _ = self.file.set_len(info.bytes);
            return Err(with_context(e, &self.path));
        }
        info.bytes += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > WRITE_BUFFER_BYTES {
            // A single large record grew the buffer; give the memory back.
            self.buf.shrink_to(WRITE_BUFFER_BYTES);
        }
        self.buffered_records = 0;
        self.unsynced = true;
        Ok(())
    }

    /// Takes over the buffered records of `old` (whose file is abandoned).
    pub fn adopt_buffer(&mut self, old: Writer) {
        self.buf = old.buf;
        self.buffered_records = old.buffered_records;
    }

    /// fsync of the written data, if any was written since the last one.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| with_context(e, &self.path))?;
            self.unsynced = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_sequence_and_parse_back() {
        assert_eq!(file_name(42), "seg-00000000000000000042.log");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("seg-42.log"), None);
        assert_eq!(parse_file_name("checkpoint"), None);
        assert_eq!(parse_file_name(&file_name(0)), None);
    }

    #[test]
    fn unacked_counts_only_records_above_the_ack() {
        let info = SegmentInfo {
            first_seq: 10,
            last_seq: 19,
            bytes: 0,
            reports: Vec::new(),
        };
        assert_eq!(info.unacked(0), 10);
        assert_eq!(info.unacked(14), 5);
        assert_eq!(info.unacked(19), 0);
        assert_eq!(SegmentInfo::new(5).unacked(0), 0);
    }
}
