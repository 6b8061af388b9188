//! The ack mark: the acknowledged seq and the last assigned seq, overwritten in place after
//! every acknowledgement that removes no segment.
//!
//! The checkpoint (checkpoint.rs) is replaced by writing a new file and renaming it, which on
//! ext4 also pushes the new file's blocks to the disk (`auto_da_alloc`): after every ack of a
//! stream of small frames that was most of the agent's time. Both numbers only grow, so a fixed
//! 24-byte record rewritten with one `pwrite` is enough: on recovery the larger of the mark's and
//! the checkpoint's values wins, and a torn or damaged mark (its checksum fails) is ignored,
//! which only makes the agent resend records the manager already has (it de-duplicates by seq).
//! It survives a process kill once written (page cache) and a power loss after the spool's next
//! sync, like the checkpoint. File: `GWAM`, CRC-32 of the 16 bytes that follow, `acked` and
//! `last_seq` as little-endian u64.

use super::with_context;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Name of the ack mark file in the spool directory.
pub(super) const FILE_NAME: &str = "acked";
/// Size of the file.
pub(super) const LEN: u64 = 24;
const MAGIC: &[u8; 4] = b"GWAM";

/// What a mark holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Marked {
    pub acked: u64,
    pub last_seq: u64,
}

/// The open mark file.
pub(super) struct AckMark {
    file: File,
    path: PathBuf,
    /// Written since the last fsync.
    unsynced: bool,
}

impl AckMark {
    /// Opens (creating) `dir/acked` and reads what it holds: `None` when new or unusable (the
    /// reason of an unusable one is logged; the checkpoint still holds an older state).
    pub fn open(dir: &Path) -> io::Result<(AckMark, Option<Marked>)> {
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| with_context(e, &path))?;
        let mut bytes = [0u8; LEN as usize];
        let read = read_prefix(&file, &mut bytes).map_err(|e| with_context(e, &path))?;
        let marked = match (read, decode(&bytes)) {
            (0, _) => None,
            (n, Ok(m)) if n == bytes.len() => Some(m),
            (n, Ok(_)) => {
                log::warn!(
                    "spool ack mark {} is short ({n} bytes); ignored",
                    path.display()
                );
                None
            }
            (_, Err(why)) => {
                log::warn!(
                    "spool ack mark {} is unusable ({why}); ignored",
                    path.display()
                );
                None
            }
        };
        let mark = AckMark {
            file,
            path,
            unsynced: false,
        };
        Ok((mark, marked))
    }

    /// Overwrites the mark (one `pwrite`, no fsync).
    pub fn write(&mut self, marked: Marked) -> io::Result<()> {
        self.file
            .write_all_at(&encode(marked), 0)
            .map_err(|e| with_context(e, &self.path))?;
        self.unsynced = true;
        Ok(())
    }

    /// fsyncs the mark if it was written since the last sync.
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

/// Reads up to `buf.len()` bytes from the start of `file`; returns how many there were.
fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn encode(m: Marked) -> [u8; LEN as usize] {
    let mut out = [0u8; LEN as usize];
    out[..4].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&m.acked.to_le_bytes());
    out[16..24].copy_from_slice(&m.last_seq.to_le_bytes());
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8; LEN as usize]) -> Result<Marked, &'static str> {
    if &bytes[..4] != MAGIC {
        return Err("not an ack mark");
    }
    let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if crc32fast::hash(&bytes[8..]) != stored {
        return Err("checksum mismatch");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    Ok(Marked {
        acked: u64_at(8),
        last_seq: u64_at(16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_round_trips_through_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut mark, found) = AckMark::open(tmp.path()).unwrap();
        assert_eq!(found, None);
        mark.write(Marked {
            acked: 7,
            last_seq: 9,
        })
        .unwrap();
        mark.write(Marked {
            acked: 8,
            last_seq: u64::MAX,
        })
        .unwrap();
        drop(mark);
        let (_, found) = AckMark::open(tmp.path()).unwrap();
        assert_eq!(
            found,
            Some(Marked {
                acked: 8,
                last_seq: u64::MAX
            })
        );
        assert_eq!(
            std::fs::metadata(tmp.path().join(FILE_NAME)).unwrap().len(),
            LEN
        );
    }

    #[test]
    fn torn_or_damaged_mark_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let good = encode(Marked {
            acked: 3,
            last_seq: 4,
        });
        std::fs::write(tmp.path().join(FILE_NAME), &good[..20]).unwrap();
        assert_eq!(AckMark::open(tmp.path()).unwrap().1, None);
        let mut bad = good;
        bad[12] ^= 1;
        std::fs::write(tmp.path().join(FILE_NAME), bad).unwrap();
        assert_eq!(AckMark::open(tmp.path()).unwrap().1, None);
    }
}
