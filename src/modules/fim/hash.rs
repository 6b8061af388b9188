//! Hashing file content in bounded chunks: one 64 KiB buffer, a yield after every chunk, and a
//! byte-rate limit for scans, so hashing a large file neither holds the executor nor floods I/O.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes read per chunk.
pub const CHUNK: usize = 64 * 1024;

/// Which hashes to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
}

impl Algorithms {
    /// Whether any hash is on.
    pub fn any(self) -> bool {
        self.md5 || self.sha1 || self.sha256
    }
}

/// Lowercase hex digests (`None` for a hash that is off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// A limit on bytes read per second (0 = none), measured over one-second windows.
pub struct ByteRate {
    per_sec: u64,
    window: Instant,
    used: u64,
}

impl ByteRate {
    /// A limit of `per_sec` bytes per second; 0 turns it off.
    pub fn new(per_sec: u64) -> ByteRate {
        ByteRate {
            per_sec,
            window: Instant::now(),
            used: 0,
        }
    }

    /// Accounts for `bytes`, sleeping (asynchronously) when the window's allowance is spent.
    pub async fn take(&mut self, bytes: u64) {
        if self.per_sec == 0 {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.used = 0;
        }
        self.used += bytes;
        if self.used >= self.per_sec {
            let next = self.window + Duration::from_secs(1);
            async_io::Timer::at(next).await;
            self.window = Instant::now();
            self.used = 0;
        }
    }
}

/// The hasher: its chunk buffer is allocated once and reused.
pub struct Hasher {
    algorithms: Algorithms,
    buf: Vec<u8>,
    /// Bytes hashed so far.
    pub bytes: u64,
}

impl Hasher {
    /// A hasher for `algorithms`.
    pub fn new(algorithms: Algorithms) -> Hasher {
        Hasher {
            algorithms,
            buf: vec![0; CHUNK],
            bytes: 0,
        }
    }

    /// The algorithms in use.
    pub fn algorithms(&self) -> Algorithms {
        self.algorithms
    }

    /// Hashes the file at `path` (opened without following a final symbolic link unless
    /// `follow`), a chunk at a time, yielding after each chunk and honouring `rate`.
    pub async fn hash_file(
        &mut self,
        path: &Path,
        follow: bool,
        rate: &mut ByteRate,
    ) -> std::io::Result<Digests> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)?;
        let a = self.algorithms;
        let (mut md5, mut sha1, mut sha256) = (Md5::new(), Sha1::new(), Sha256::new());
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &self.buf[..n];
            if a.md5 {
                md5.update(chunk);
            }
            if a.sha1 {
                sha1.update(chunk);
            }
            if a.sha256 {
                sha256.update(chunk);
            }
            self.bytes += n as u64;
            rate.take(n as u64).await;
            futures_lite::future::yield_now().await;
        }
        Ok(Digests {
            md5: a.md5.then(|| hex::encode(md5.finalize())),
            sha1: a.sha1.then(|| hex::encode(sha1.finalize())),
            sha256: a.sha256.then(|| hex::encode(sha256.finalize())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Algorithms = Algorithms {
        md5: true,
        sha1: true,
        sha256: true,
    };

    #[test]
    fn digests_match_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("abc");
        std::fs::write(&file, b"abc").unwrap();
        let d = smol::block_on(Hasher::new(ALL).hash_file(&file, false, &mut ByteRate::new(0)))
            .unwrap();
        assert_eq!(d.md5.unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1.unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn switched_off_hashes_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let only = Algorithms {
            md5: false,
            sha1: false,
            sha256: true,
        };
        let d = smol::block_on(Hasher::new(only).hash_file(&file, false, &mut ByteRate::new(0)))
            .unwrap();
        assert!(d.md5.is_none() && d.sha1.is_none() && d.sha256.is_some());
    }

    #[test]
    fn byte_rate_limit_slows_hashing_down() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![7u8; 3 * CHUNK]).unwrap();
        let started = Instant::now();
        let mut rate = ByteRate::new(2 * CHUNK as u64);
        smol::block_on(Hasher::new(ALL).hash_file(&file, false, &mut rate)).unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "3 chunks at 2 chunks/s take about a second ({:?})",
            started.elapsed()
        );
    }
}
