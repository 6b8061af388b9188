//! One open file of a tailed path: the file, its identity, how far its lines were read and
//! committed, its framing state; and the search for a file beside the path (renamed or copied)
//! by the fingerprint of its head.

use super::framer::{FrameSpec, Framer};
use super::lines::LineState;
use super::position::{Identity, Position};
use super::watch::Watcher;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

/// Sibling files looked at when searching for a rotated or copied file.
const MAX_SIBLINGS: usize = 1000;

/// An open file of a tailed path.
pub struct OpenFile {
    pub(super) file: File,
    pub(super) identity: Identity,
    /// After the last byte that made an accepted event.
    pub(super) committed: u64,
    pub(super) lines: LineState,
    pub(super) framer: Framer,
    pub(super) wd: Option<i32>,
    /// This is the file the path names now.
    pub(super) at_path: bool,
    /// For a rotated file: when it last gave data.
    pub(super) idle_since: Option<Instant>,
    /// Written to since the last read (or not yet read to its end).
    pub dirty: bool,
}

impl OpenFile {
    pub(super) fn open(
        file: File,
        offset: u64,
        spec: &FrameSpec,
        watcher: &Watcher,
        path: &Path,
    ) -> std::io::Result<OpenFile> {
        let identity = Identity::of(&file)?;
        Ok(OpenFile {
            file,
            identity,
            committed: offset,
            lines: LineState::at(offset),
            framer: spec.framer(),
            wd: watcher.watch_file(path).ok(),
            at_path: true,
            idle_since: None,
            dirty: true,
        })
    }

    /// A file no longer at the path (rotated, copied, or held early), read from `from`.
    pub(super) fn rotated(file: File, from: u64, spec: &FrameSpec) -> std::io::Result<OpenFile> {
        Ok(OpenFile {
            identity: Identity::of(&file)?,
            file,
            committed: from,
            lines: LineState::at(from),
            framer: spec.framer(),
            wd: None,
            at_path: false,
            idle_since: Some(Instant::now()),
            dirty: true,
        })
    }

    pub(super) fn position(&self) -> Position {
        Position {
            identity: self.identity,
            offset: self.committed,
        }
    }

    pub(super) fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        self.identity.dev == meta.dev() && self.identity.ino == meta.ino()
    }

    /// Moves the file aside: the path names another file now.
    pub(super) fn retire_from_path(&mut self) {
        if self.at_path {
            self.at_path = false;
            self.idle_since = Some(Instant::now());
            self.dirty = true;
        }
    }
}

/// A file beside `path` whose head matches `identity` and that holds at least `offset` bytes;
/// one with the same inode is preferred; `exclude` are inodes not to take (files already open).
pub fn find_sibling(
    path: &Path,
    identity: &Identity,
    offset: u64,
    exclude: &[(u64, u64)],
) -> std::io::Result<Option<File>> {
    if identity.head_len == 0 {
        return Ok(None);
    }
    let Some(dir) = path.parent() else {
        return Ok(None);
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut by_head = None;
    for entry in entries.take(MAX_SIBLINGS).flatten() {
        let candidate = entry.path();
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        let inode = (meta.dev(), meta.ino());
        if !meta.is_file() || meta.len() < offset || exclude.contains(&inode) {
            continue;
        }
        let Ok(file) = File::open(&candidate) else {
            continue;
        };
        if !identity.same_head(&file, meta.len())? {
            continue;
        }
        if inode == (identity.dev, identity.ino) {
            return Ok(Some(file));
        }
        by_head.get_or_insert(file);
    }
    Ok(by_head)
}
