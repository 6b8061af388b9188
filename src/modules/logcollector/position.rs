//! Read positions: which file (device, inode and a fingerprint of its head) and how far, encoded
//! as the spool cursor stored with every event.
//!
//! A tailed path may have several files open at once: the file now at the path, and rotated ones
//! still being read to their end. The cursor of the path lists all of them, so after a crash each
//! is found again (at the path, or renamed beside it) and resumed where its last accepted event
//! ended. The fingerprint tells a file from another that got the same inode (delete and re-create)
//! and finds the copy of a copy-truncated file.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes of a file's head that identify it.
pub const FINGERPRINT_BYTES: usize = 256;
/// Positions one cursor holds (the spool stores at most 512 bytes per cursor).
pub const MAX_POSITIONS: usize = 14;
const POSITION_BYTES: usize = 8 + 8 + 2 + 8 + 8;
const VERSION: u8 = 1;

/// Which file: its device and inode, and a hash of its first `head_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Bytes of the head that were hashed (fewer than [`FINGERPRINT_BYTES`] for a short file).
    pub head_len: u16,
    /// The first 8 bytes of the SHA-256 of those bytes.
    pub head_hash: u64,
}

impl Identity {
    /// The identity of an open file, from its metadata and its head.
    pub fn of(file: &File) -> std::io::Result<Identity> {
        let meta = file.metadata()?;
        let (head_len, head_hash) = head(file, meta.len())?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            head_len,
            head_hash,
        })
    }

    /// Whether the fingerprint still has room to grow (the file was shorter than
    /// [`FINGERPRINT_BYTES`] when it was taken).
    pub fn head_incomplete(&self) -> bool {
        (self.head_len as usize) < FINGERPRINT_BYTES
    }

    /// Whether `file` starts with the head this identity fingerprinted (any file does when the
    /// fingerprint is empty).
    pub fn same_head(&self, file: &File, len: u64) -> std::io::Result<bool> {
        if len < self.head_len as u64 {
            return Ok(false);
        }
        let hash = hash_prefix(file, self.head_len as usize)?;
        Ok(hash == self.head_hash)
    }
}

/// `(bytes hashed, hash)` of the first [`FINGERPRINT_BYTES`] bytes (or fewer) of a file.
fn head(file: &File, len: u64) -> std::io::Result<(u16, u64)> {
    let n = (len as usize).min(FINGERPRINT_BYTES);
    Ok((n as u16, hash_prefix(file, n)?))
}

fn hash_prefix(file: &File, n: usize) -> std::io::Result<u64> {
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < n {
        let got = file.read_at(&mut buf[filled..n], filled as u64)?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    let digest = Sha256::digest(&buf[..filled]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Ok(u64::from_le_bytes(first))
}

/// A file and the offset after the last byte that made an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Which file.
    pub identity: Identity,
    /// Offset after the last byte of the last accepted event.
    pub offset: u64,
}

/// Encodes the positions of one path (oldest file first).
pub fn encode(positions: &[Position]) -> Vec<u8> {
    let count = positions.len().min(MAX_POSITIONS);
    let mut out = Vec::with_capacity(2 + count * POSITION_BYTES);
    out.push(VERSION);
    out.push(count as u8);
    for p in &positions[positions.len() - count..] {
        out.extend_from_slice(&p.identity.dev.to_le_bytes());
        out.extend_from_slice(&p.identity.ino.to_le_bytes());
        out.extend_from_slice(&p.identity.head_len.to_le_bytes());
        out.extend_from_slice(&p.identity.head_hash.to_le_bytes());
        out.extend_from_slice(&p.offset.to_le_bytes());
    }
    out
}

/// Decodes what [`encode`] wrote; `None` for anything else (a cursor of another version).
pub fn decode(bytes: &[u8]) -> Option<Vec<Position>> {
    let (&version, rest) = bytes.split_first()?;
    let (&count, mut rest) = rest.split_first()?;
    if version != VERSION || rest.len() != count as usize * POSITION_BYTES {
        return None;
    }
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    };
    let mut positions = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let dev = u64::from_le_bytes(take(8).try_into().ok()?);
        let ino = u64::from_le_bytes(take(8).try_into().ok()?);
        let head_len = u16::from_le_bytes(take(2).try_into().ok()?);
        let head_hash = u64::from_le_bytes(take(8).try_into().ok()?);
        let offset = u64::from_le_bytes(take(8).try_into().ok()?);
        positions.push(Position {
            identity: Identity {
                dev,
                ino,
                head_len,
                head_hash,
            },
            offset,
        });
    }
    Some(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_the_cursor_bytes() {
        let p = Position {
            identity: Identity {
                dev: 1,
                ino: 2,
                head_len: 3,
                head_hash: 4,
            },
            offset: 5,
        };
        let bytes = encode(&[p, p]);
        assert!(bytes.len() <= crate::pipeline::MAX_CURSOR_BYTES);
        assert_eq!(decode(&bytes), Some(vec![p, p]));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_refilled_file_does_not_have_the_same_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "line 1\nline 2\n").unwrap();
        let file = File::open(&path).unwrap();
        let id = Identity::of(&file).unwrap();
        assert!(id.same_head(&file, 14).unwrap());
        std::fs::write(&path, "line 3\nline 4\n").unwrap();
        assert!(!id.same_head(&file, 14).unwrap());
    }
}
