//! The agent's on-disk spool: where an event becomes durable and gets its sequence number.
//!
//! The pipeline task [`Spool::append`]s encoded event bodies; each gets the next per-agent
//! sequence number (from 1, never reused, kept across restarts). Records go to a 64 KiB write
//! buffer, then ([`Spool::flush`]) to the page cache of an append-only segment file, so after a
//! flush a `SIGKILL` loses nothing; [`Spool::sync`] (on a timer, to spare flash) makes them
//! survive a power loss too. The link reads through [`Outbox`] and acknowledges; only then are
//! records removed, a whole segment at a time.
//!
//! ```text
//! dir/seg-00000000000000000001.log   records 1..=n, each checksummed (record.rs)
//! dir/seg-0000000000000000000n.log   the active segment, rolled at `segment_bytes`
//! dir/checkpoint                     acked, last seq, drop counters, cursors (checkpoint.rs)
//! dir/acked                          acked and last seq after each ack, in place (ack_mark.rs)
//! ```
//!
//! The files never take more than `max_bytes`: before any write the spool checks room for it
//! and for a checkpoint rewrite. When full it either evicts the oldest segment and appends a
//! drop report saying exactly which records were lost (`drop_oldest`), or refuses
//! (`block`). It must never reuse a sequence number nor lose a record silently.

mod ack_mark;
mod checkpoint;
mod reader;
mod record;
mod recovery;
mod segment;
mod space;
#[cfg(test)]
mod tests;

pub use checkpoint::MAX_CURSOR_KEYS;
pub use record::MAX_KEY_LEN as MAX_CURSOR_KEY_LEN;

use super::{Cursor, OutRecord, Outbox, MAX_CURSOR_BYTES};
use crate::config::{BufferConfig, WhenFull};
use segment::{SegmentInfo, Writer};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Smallest segment size accepted.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

/// Size limits and policy of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Upper bound of the files on disk (segments and checkpoint); at least 2 × `segment_bytes`.
    pub max_bytes: u64,
    /// Size at which a segment is closed and a new one started; at least [`MIN_SEGMENT_BYTES`].
    /// It also bounds a single record.
    pub segment_bytes: u64,
    /// What to do when full.
    pub when_full: WhenFull,
}

impl SpoolConfig {
    /// The spool part of `[buffer]`.
    pub fn from_buffer(buffer: &BufferConfig) -> Self {
        SpoolConfig {
            max_bytes: buffer.spool_max_bytes,
            segment_bytes: buffer.spool_segment_bytes,
            when_full: buffer.when_full,
        }
    }

    fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            return invalid(format!(
                "spool segment size of {} bytes is too small: set buffer.spool_segment_bytes to at least {MIN_SEGMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if self.segment_bytes > u64::from(u32::MAX) {
            return invalid(format!(
                "spool segment size of {} bytes is too large: set buffer.spool_segment_bytes to at most {}",
                self.segment_bytes,
                u32::MAX
            ));
        }
        if self.segment_bytes > self.max_bytes / 2 {
            return invalid(format!(
                "spool segment size ({} bytes) must be at most half the spool size ({} bytes): \
                 raise buffer.spool_max_bytes or lower buffer.spool_segment_bytes",
                self.segment_bytes, self.max_bytes
            ));
        }
        Ok(())
    }
}

/// Range of records removed unacknowledged because the spool was full (or lost to corruption).
/// `count` is exact; the range is the envelope of the records lost (it may include some that
/// were acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    /// Number of records lost.
    pub count: u64,
    /// Lowest sequence number lost.
    pub first_seq: u64,
    /// Highest sequence number lost.
    pub last_seq: u64,
}

/// Encodes the event body of a drop report (an `agent.dropped` event, say).
pub type MakeDropRecord = Box<dyn Fn(&DropReport) -> Vec<u8>>;

/// Why [`Spool::append`] did not take a record.
#[derive(Debug)]
pub enum AppendError {
    /// The spool is full and the policy is `block`: retry after the manager acknowledged more.
    Full,
    /// The body can never fit in a segment.
    TooLarge {
        /// Size of the body refused.
        len: usize,
        /// Largest body this append could have stored (with the same cursor).
        max: usize,
    },
    /// The cursor is not storable (bad size, too many keys); the event was not stored either.
    BadCursor {
        /// The cursor key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading or writing the spool files failed (the message names the file).
    Io(io::Error),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Full => {
                f.write_str("the spool is full (when_full = block): waiting for acknowledgements")
            }
            AppendError::TooLarge { len, max } => {
                write!(
                    f,
                    "event of {len} bytes is larger than a spool record can be ({max} bytes)"
                )
            }
            AppendError::BadCursor { key, reason } => write!(f, "cursor {key:?} refused: {reason}"),
            AppendError::Io(e) => write!(f, "spool write failed: {e}"),
        }
    }
}

impl std::error::Error for AppendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppendError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for AppendError {
    fn from(e: io::Error) -> Self {
        AppendError::Io(e)
    }
}

/// A drop report not yet appended.
#[derive(Debug, Clone, Copy)]
struct PendingReport {
    report: DropReport,
    /// Records lost since the last report appended (`report.count` may also carry the counts of
    /// older reports that were themselves lost unread); added to `dropped_total` once appended.
    new_losses: u64,
}

/// The on-disk spool. See the module documentation.
pub struct Spool {
    dir: PathBuf,
    /// The directory, open and locked (one process per spool); fsynced after entries change.
    dir_file: File,
    config: SpoolConfig,
    make_drop_record: MakeDropRecord,
    /// Oldest first; the last one is active when `writer` is `Some`.
    segments: VecDeque<SegmentInfo>,
    writer: Option<Writer>,
    reader: Option<reader::ReadPos>,
    acked: u64,
    last_seq: u64,
    dropped_total: u64,
    /// Every record up to this seq not held was acknowledged or reported dropped.
    reported: u64,
    cursors: BTreeMap<String, Vec<u8>>,
    /// Sum of `checkpoint::cursor_cost` over `cursors`.
    cursor_costs: u64,
    pending_report: Option<PendingReport>,
    /// Size of the checkpoint file on disk.
    checkpoint_len: u64,
    /// The checkpoint on disk was fsynced.
    checkpoint_durable: bool,
    /// Entries of the directory changed since its last fsync.
    dir_dirty: bool,
    /// Acks that remove no segment are written here, not in the checkpoint.
    ack_mark: ack_mark::AckMark,
    /// Reused buffer for reading records.
    scratch: Vec<u8>,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, recovering from whatever a crash left. Records found
    /// missing are reported with a drop record built by `make_drop_record`, which also encodes
    /// the drop reports appended when the spool is full.
    pub fn open(
        dir: &Path,
        config: SpoolConfig,
        make_drop_record: MakeDropRecord,
    ) -> io::Result<Spool> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| with_context(e, dir))?;
        let dir_file = File::open(dir).map_err(|e| with_context(e, dir))?;
        lock_exclusive(&dir_file, dir)?;
        let (ack_mark, marked) = ack_mark::AckMark::open(dir)?;
        let found = recovery::recover(dir, marked)?;
        let cursor_costs = found
            .cursors
            .iter()
            .map(|(k, v)| checkpoint::cursor_cost(k, v))
            .sum();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            dir_file,
            config,
            make_drop_record,
            segments: found.segments,
            writer: None,
            reader: None,
            acked: found.acked,
            last_seq: found.last_seq,
            dropped_total: found.dropped_total,
            reported: found.reported,
            cursors: found.cursors,
            cursor_costs,
            pending_report: found.missing.map(|report| PendingReport {
                report,
                new_losses: report.count,
            }),
            checkpoint_len: found.checkpoint_len,
            checkpoint_durable: false,
            dir_dirty: true,
            ack_mark,
            scratch: Vec::new(),
        };
        spool.remove_acked_segments(true)?;
        spool.resume_writer()?;
        spool.persist_checkpoint(true)?;
        // Reports what recovery found missing and, after a config change, fits the new cap.
        match spool.make_room(0, 0) {
            Ok(()) | Err(AppendError::Full) => Ok(spool),
            Err(AppendError::Io(e)) => Err(e),
            Err(other) => Err(io::Error::other(other.to_string())),
        }
    }

    /// Appends one body with an optional cursor stored atomically with it; returns its seq.
    /// The record is in memory until the next [`Spool::flush`].
    pub fn append(&mut self, body: &[u8], cursor: Option<&Cursor>) -> Result<u64, AppendError> {
        let growth = match cursor {
            Some(c) => self.check_cursor(c)?,
            None => 0,
        };
        let len = record::encoded_len(false, cursor, body.len()) as u64;
        if len > self.config.segment_bytes {
            let overhead = len - body.len() as u64;
            let max = self.config.segment_bytes.saturating_sub(overhead);
            return Err(AppendError::TooLarge {
                len: body.len(),
                max: max as usize,
            });
        }
        self.make_room(len, growth)?;
        let seq = self.write_record(None, cursor, body)?;
        if let Some(c) = cursor {
            self.cursor_costs += checkpoint::cursor_cost(&c.key, &c.value);
            if let Some(old) = self.cursors.insert(c.key.clone(), c.value.clone()) {
                self.cursor_costs -= checkpoint::cursor_cost(&c.key, &old);
            }
        }
        Ok(seq)
    }

    /// Writes buffered records to the segment file (write(2), page cache). After flush returns,
    /// a SIGKILL of the process loses nothing appended before it.
    pub fn flush(&mut self) -> io::Result<()> {
        if let (Some(w), Some(info)) = (self.writer.as_mut(), self.segments.back_mut()) {
            w.flush(info)?;
        }
        Ok(())
    }

    /// Flushes, then fsyncs what changed since the last sync: the active segment, the
    /// checkpoint, the directory. Meant for a timer (one batch of flash writes per interval).
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        if let Some(w) = self.writer.as_mut() {
            w.sync()?;
        }
        if !self.checkpoint_durable && self.checkpoint_len > 0 {
            checkpoint::sync(&self.dir)?;
            self.checkpoint_durable = true;
        }
        self.ack_mark.sync()?;
        if self.dir_dirty {
            self.dir_file
                .sync_all()
                .map_err(|e| with_context(e, &self.dir))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Latest cursor stored for `key` (survives restarts and segment removal).
    pub fn cursor(&self, key: &str) -> Option<&[u8]> {
        self.cursors.get(key).map(Vec::as_slice)
    }

    /// Size of the spool files, counting buffered records as written. Never above `max_bytes`
    /// (unless a restart lowered `max_bytes` under `block`, until acknowledgements free room).
    pub fn bytes_on_disk(&self) -> u64 {
        self.segment_bytes() + self.checkpoint_len + ack_mark::LEN
    }

    /// Sequence number of the oldest record held.
    pub fn first_seq(&self) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| !s.is_empty())
            .map(|s| s.first_seq)
    }

    /// The directory of this spool.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks a cursor against the limits; returns how much it grows the checkpoint bound.
    fn check_cursor(&self, c: &Cursor) -> Result<u64, AppendError> {
        let refuse = |reason| {
            Err(AppendError::BadCursor {
                key: c.key.clone(),
                reason,
            })
        };
        if c.key.is_empty() || c.key.len() > MAX_CURSOR_KEY_LEN {
            return refuse("the key must be 1 to 128 bytes long");
        }
        if c.value.len() > MAX_CURSOR_BYTES {
            return refuse("the value is longer than MAX_CURSOR_BYTES");
        }
        let old_cost = match self.cursors.get(&c.key) {
            Some(old) => checkpoint::cursor_cost(&c.key, old),
            None if self.cursors.len() >= MAX_CURSOR_KEYS => {
                return refuse("the spool already holds 1024 cursor keys")
            }
            None => 0,
        };
        let growth = checkpoint::cursor_cost(&c.key, &c.value).saturating_sub(old_cost);
        if growth > 0
            && checkpoint::size_bound(self.cursor_costs + growth) > self.config.max_bytes / 8
        {
            return refuse("the cursors would take more than an eighth of the spool size");
        }
        Ok(growth)
    }

    /// Bytes of the segments, the write buffer included.
    fn segment_bytes(&self) -> u64 {
        let buffered = self.writer.as_ref().map_or(0, |w| w.buf.len() as u64);
        self.segments.iter().map(|s| s.bytes).sum::<u64>() + buffered
    }

    /// Position of the segment whose first seq is `first`.
    fn segment_index(&self, first: u64) -> Option<usize> {
        self.segments
            .binary_search_by_key(&first, |s| s.first_seq)
            .ok()
    }
}

impl Outbox for Spool {
    fn read_after(
        &mut self,
        after_seq: u64,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<OutRecord>,
    ) -> io::Result<()> {
        self.read_records(after_seq, max_records, max_bytes, out)
    }

    fn ack(&mut self, up_to: u64) -> io::Result<()> {
        let up_to = up_to.min(self.last_seq);
        if up_to <= self.acked {
            return Ok(());
        }
        self.acked = up_to;
        if self.acked_prefix(false) == 0 {
            // Nothing to remove: the ack mark is enough (an overwrite in place; see ack_mark.rs).
            // Flushed first, so that the last seq it names is in the files.
            self.flush()?;
            return self.ack_mark.write(ack_mark::Marked {
                acked: self.acked,
                last_seq: self.last_seq,
            });
        }
        // The checkpoint goes first: it keeps the cursors and the seq counter of what is removed.
        self.persist_checkpoint(true)?;
        self.remove_acked_segments(false)?;
        Ok(())
    }

    fn acked(&self) -> u64 {
        self.acked
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn pending(&self) -> u64 {
        self.segments.iter().map(|s| s.unacked(self.acked)).sum()
    }

    fn dropped_total(&self) -> u64 {
        self.dropped_total
    }
}

/// `e` with the path it concerns in its message.
fn with_context(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Takes the spool directory's lock, so that two agents never share a spool. A child process
/// that this process is starting holds a copy of every descriptor (and so the lock of a spool
/// just closed) until it execs: a refusal is retried for up to a second before it is final.
fn lock_exclusive(dir_file: &File, dir: &Path) -> io::Result<()> {
    const ATTEMPTS: u32 = 20;
    for attempt in 1..=ATTEMPTS {
        match rustix::fs::flock(
            dir_file,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        ) {
            Ok(()) => return Ok(()),
            Err(e) if attempt == ATTEMPTS || e != rustix::io::Errno::WOULDBLOCK => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "spool directory {} is in use by another process ({e})",
                        dir.display()
                    ),
                ));
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    Ok(())
}
