//! Reading the system under a root directory: `/` on a gateway, a fixture tree in tests.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest file read whole (os-release, cpuinfo, a process's status): inventory files are small,
/// and a larger one is truncated rather than allowed to grow memory.
pub const MAX_SMALL_FILE: u64 = 256 * 1024;

/// The root every collector reads under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root(PathBuf);

impl Root {
    /// A root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// Whether this is the live system's root (some facts come only from system calls).
    pub fn is_live(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// `abs` (an absolute path on the inspected system) under this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// A small text file, lossily decoded; `None` when it cannot be read.
    pub fn read(&self, abs: &str) -> Option<String> {
        read_small(&self.path(abs))
    }

    /// The first line of a small file, trimmed; `None` when missing or empty.
    pub fn read_line(&self, abs: &str) -> Option<String> {
        let text = self.read(abs)?;
        let line = text
            .lines()
            .next()?
            .trim()
            .trim_end_matches('\0')
            .to_string();
        (!line.is_empty()).then_some(line)
    }
}

/// Reads at most [`MAX_SMALL_FILE`] bytes of a file as text.
pub fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SMALL_FILE).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
