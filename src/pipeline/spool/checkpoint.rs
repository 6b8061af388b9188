//! The checkpoint file: the spool state that must outlive its segments.
//!
//! Segments are removed once acknowledged (or evicted when full), taking their records' cursors
//! and sequence numbers with them; the checkpoint keeps the acknowledged seq, the last assigned
//! seq (so numbers are never reused), the drop counters and the cursor map. It is replaced
//! atomically (write `checkpoint.tmp`, rename), so a crash leaves the old or the new one, never a
//! mix. File: `GWCK`, version byte, CRC-32 of the rest, postcard body.

use super::with_context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Name of the checkpoint file in the spool directory.
pub(super) const FILE_NAME: &str = "checkpoint";
const TMP_NAME: &str = "checkpoint.tmp";
const MAGIC: &[u8; 4] = b"GWCK";
const VERSION: u8 = 1;
const PREFIX_LEN: usize = MAGIC.len() + 1 + 4;

/// Most cursor keys the spool keeps; appends with a new key beyond this are refused.
pub const MAX_CURSOR_KEYS: usize = 1024;
/// Upper bound of the encoding of everything but the cursors (prefix, four varint u64s, map length).
const FIXED_BOUND: u64 = 64;
/// Upper bound of the varint lengths in front of one cursor's key and value.
const CURSOR_OVERHEAD: u64 = 4;

/// The persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(super) struct Checkpoint {
    pub acked: u64,
    pub last_seq: u64,
    pub dropped_total: u64,
    /// Every record up to this seq that is not held was either acknowledged or reported dropped.
    pub reported: u64,
    pub cursors: BTreeMap<String, Vec<u8>>,
}

/// The same layout as [`Checkpoint`], borrowing the cursor map (no copy on every ack).
#[derive(Serialize)]
pub(super) struct CheckpointRef<'a> {
    pub acked: u64,
    pub last_seq: u64,
    pub dropped_total: u64,
    pub reported: u64,
    pub cursors: &'a BTreeMap<String, Vec<u8>>,
}

/// What the bound of the checkpoint size counts for one cursor.
pub(super) fn cursor_cost(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + CURSOR_OVERHEAD
}

/// Upper bound of the checkpoint file size, given the summed [`cursor_cost`] of its cursors.
pub(super) fn size_bound(cursor_costs: u64) -> u64 {
    FIXED_BOUND + cursor_costs
}

/// The file contents for `state`.
pub(super) fn encode(state: &CheckpointRef<'_>) -> io::Result<Vec<u8>> {
    let body = postcard::to_allocvec(state)
        .map_err(|e| io::Error::other(format!("encoding the spool checkpoint: {e}")))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses file contents; the error says what is wrong.
pub(super) fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.len() < PREFIX_LEN || &bytes[..4] != MAGIC {
        return Err("not a spool checkpoint".into());
    }
    if bytes[4] != VERSION {
        return Err(format!("unknown checkpoint version {}", bytes[4]));
    }
    let stored = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    let body = &bytes[PREFIX_LEN..];
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("bad checkpoint body: {e}"))
}

/// Result of loading the checkpoint.
pub(super) enum Loaded {
    /// No checkpoint: a new spool.
    Missing,
    /// The file exists but cannot be used (the reason is given).
    Corrupt(String),
    /// The checkpoint and its file size.
    Found(Checkpoint, u64),
}

/// Reads `dir/checkpoint`, refusing files larger than `max_len`.
pub(super) fn load(dir: &Path, max_len: u64) -> io::Result<Loaded> {
    let path = dir.join(FILE_NAME);
    let len = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(with_context(e, &path)),
    };
    if len > max_len {
        return Ok(Loaded::Corrupt(format!(
            "{len} bytes, more than the {max_len} allowed"
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| with_context(e, &path))?;
    Ok(match decode(&bytes) {
        Ok(cp) => Loaded::Found(cp, bytes.len() as u64),
        Err(why) => Loaded::Corrupt(why),
    })
}

/// Atomically replaces `dir/checkpoint` with `bytes`. When `durable`, the new file is fsynced
/// before the rename and the directory after it, so it survives a power loss (needed before
/// removing segments); otherwise it survives a process kill only, and costs no flash write now.
pub(super) fn store(dir: &Path, dir_file: &File, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    let mut file = File::create(&tmp).map_err(|e| with_context(e, &tmp))?;
    file.write_all(bytes).map_err(|e| with_context(e, &tmp))?;
    if durable {
        file.sync_all().map_err(|e| with_context(e, &tmp))?;
    }
    drop(file);
    let path = dir.join(FILE_NAME);
    std::fs::rename(&tmp, &path).map_err(|e| with_context(e, &path))?;
    if durable {
        dir_file.sync_all().map_err(|e| with_context(e, dir))?;
    }
    Ok(())
}

/// fsync of the current checkpoint file (after a non-durable [`store`]).
pub(super) fn sync(dir: &Path) -> io::Result<()> {
    let path = dir.join(FILE_NAME);
    File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| with_context(e, &path))
}

/// Removes a temporary file left by a crash during [`store`] (the rename did not happen, so the
/// old checkpoint is the valid one).
pub(super) fn remove_stale_tmp(dir: &Path) -> io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_context(e, &tmp)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cursors: &BTreeMap<String, Vec<u8>>) -> CheckpointRef<'_> {
        CheckpointRef {
            acked: 7,
            last_seq: u64::MAX,
            dropped_total: 3,
            reported: 5,
            cursors,
        }
    }

    #[test]
    fn checkpoint_round_trips() {
        let cursors = BTreeMap::from([("logs/a".to_string(), vec![1, 2, 3])]);
        let cp = decode(&encode(&state(&cursors)).unwrap()).unwrap();
        assert_eq!(
            (cp.acked, cp.last_seq, cp.dropped_total, cp.reported),
            (7, u64::MAX, 3, 5)
        );
        assert_eq!(cp.cursors, cursors);
    }

    #[test]
    fn size_never_exceeds_the_bound_even_with_the_largest_cursors() {
        let mut cursors = BTreeMap::new();
        let mut costs = 0;
        for i in 0..MAX_CURSOR_KEYS {
            let key = format!("{i:0>128}");
            let value = vec![0xff; crate::pipeline::MAX_CURSOR_BYTES];
            costs += cursor_cost(&key, &value);
            cursors.insert(key, value);
        }
        let len = encode(&state(&cursors)).unwrap().len() as u64;
        assert!(len <= size_bound(costs), "{len} > {}", size_bound(costs));
        assert!(encode(&state(&BTreeMap::new())).unwrap().len() as u64 <= size_bound(0));
    }

    #[test]
    fn damaged_checkpoint_is_refused() {
        let mut bytes = encode(&state(&BTreeMap::new())).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode(&bytes).is_err());
        assert!(decode(b"GW").is_err());
    }
}
