//! One tailed path: the file at the path now, plus rotated files still being read to their end.
//!
//! Rotation cases, and what is done:
//! - rename + create, delete + re-create, symlink swap: the path names another file; the old one
//!   (still open) is read to its end, then closed after [`DRAIN_GRACE`] without new data, while
//!   the new one is read from its start;
//! - copytruncate: the file is shorter than what was read, or its head changed; the rest of the
//!   old content is read from the copy beside it (found by the fingerprint of its head), then the
//!   truncated file from its start.
//!
//! A file's `committed` offset moves only when the spool took an event ending there, and the
//! cursor sent with each event lists every open file of the path, so a restart resumes each.

use super::file::{find_sibling, OpenFile};
use super::framer::{Entry, FrameSpec};
use super::lines::{final_line, read_lines, Line, LineState};
use super::position::{self, Identity, Position, MAX_POSITIONS};
use super::watch::Watcher;
use crate::runtime::MemoryAccount;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a rotated file is kept open after its last new data (a writer may still finish a
/// line in it before reopening the new file).
pub const DRAIN_GRACE: Duration = Duration::from_millis(1000);

/// Where to start reading a path seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At its end (only lines written from now on).
    End,
    /// At its start.
    Beginning,
}

/// A tailed path and its open files (oldest first).
pub struct Tail {
    /// The path.
    pub path: PathBuf,
    /// Its cursor key (the path as text).
    pub key: String,
    /// Index of its source in the configuration.
    pub source: usize,
    /// Open files, oldest first; the last one may be the file at the path.
    pub files: Vec<OpenFile>,
    /// The path must be looked at again (a directory event named it).
    pub check_path: bool,
    /// Files that appeared at the path while the module was busy, held open in order so that they
    /// can be read even if they are deleted or renamed before the module gets to them.
    early: Vec<(File, (u64, u64))>,
    /// Heads of the contents a copy-truncated file showed while the module was busy (oldest
    /// first): each is read from its copy when the truncation is handled.
    cycles: Vec<Identity>,
}

/// What a read turn produced: entries of file `index`.
pub struct Batch {
    /// Which open file they came from.
    pub index: usize,
    /// The complete entries.
    pub entries: Vec<Entry>,
    /// Bytes read from the file for them.
    pub bytes: usize,
}

impl Tail {
    /// A tail with no open file yet.
    pub fn new(path: PathBuf, source: usize) -> Tail {
        Tail {
            key: path.to_string_lossy().into_owned(),
            path,
            source,
            files: Vec::new(),
            check_path: true,
            early: Vec::new(),
            cycles: Vec::new(),
        }
    }

    /// Opens the path for the first time: at `start`, or where `cursor` says.
    pub fn open(
        &mut self,
        cursor: Option<Vec<Position>>,
        start: Start,
        spec: &FrameSpec,
        watcher: &Watcher,
    ) -> std::io::Result<()> {
        if let Some(positions) = cursor {
            for p in positions {
                match self.find(&p)? {
                    Some((file, at_path)) => {
                        let mut open = OpenFile::open(file, p.offset, spec, watcher, &self.path)?;
                        if !at_path {
                            open.wd = None;
                            open.retire_from_path();
                        }
                        self.files.push(open);
                    }
                    None => log::warn!(
                        "{}: a file read before the restart is gone; what it held after offset {} \
                         is lost",
                        self.path.display(),
                        p.offset
                    ),
                }
            }
            // Whatever the path names now and is not one of those is a successor: from its start.
            self.refresh(spec, watcher, Start::Beginning)?;
            return Ok(());
        }
        self.refresh(spec, watcher, start)
    }

    /// Finds the file of a stored position: at the path, or beside it (renamed or copied).
    fn find(&self, p: &Position) -> std::io::Result<Option<(File, bool)>> {
        if let Ok(file) = File::open(&self.path) {
            let meta = file.metadata()?;
            if meta.dev() == p.identity.dev
                && meta.ino() == p.identity.ino
                && meta.len() >= p.offset
                && p.identity.same_head(&file, meta.len())?
            {
                return Ok(Some((file, true)));
            }
        }
        Ok(find_sibling(&self.path, &p.identity, p.offset, &[])?.map(|f| (f, false)))
    }

    /// Looks at what the path names now and follows rotations.
    pub fn refresh(
        &mut self,
        spec: &FrameSpec,
        watcher: &Watcher,
        start: Start,
    ) -> std::io::Result<()> {
        self.check_path = false;
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                // Gone (deleted, or renamed without a successor yet).
                for f in &mut self.files {
                    f.retire_from_path();
                }
                return self.integrate_early(None, spec);
            }
        };
        let inode = (meta.dev(), meta.ino());
        let mut unchanged = false;
        if let Some(current) = self.files.iter_mut().find(|f| f.at_path) {
            unchanged = current.same_inode(&meta);
            if !unchanged {
                current.retire_from_path();
            }
        }
        self.integrate_early(Some(inode), spec)?;
        if unchanged {
            return Ok(());
        }
        if let Some(i) = self.files.iter().position(|f| f.same_inode(&meta)) {
            // Swapped back to a file still open: it is the current one again.
            let mut back = self.files.remove(i);
            back.at_path = true;
            back.idle_since = None;
            self.files.push(back);
            return Ok(());
        }
        if self.files.len() >= MAX_POSITIONS {
            // Too many rotated files still being read: `close_done` looks again once one is done.
            log::debug!(
                "{}: {} files open; the new one waits",
                self.path.display(),
                self.files.len()
            );
            return Ok(());
        }
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let offset = match start {
            Start::End => file.metadata()?.len(),
            Start::Beginning => 0,
        };
        let open = OpenFile::open(file, offset, spec, watcher, &self.path)?;
        log::debug!(
            "{}: reading inode {} from offset {offset} ({} files open)",
            self.path.display(),
            open.identity.ino,
            self.files.len() + 1
        );
        self.files.push(open);
        Ok(())
    }

    /// Holds on to what the path shows now, without changing what is being read (safe while an
    /// event of this tail is on its way): a new file at the path is opened and kept for later,
    /// and a new content of a copy-truncated file is noted by its head.
    pub fn notice(&mut self) -> std::io::Result<()> {
        let Ok(file) = File::open(&self.path) else {
            return Ok(());
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(());
        }
        let inode = (meta.dev(), meta.ino());
        let is = |id: &Identity| (id.dev, id.ino) == inode;
        if let Some(current) = self.files.iter().find(|f| f.at_path && is(&f.identity)) {
            let len = meta.len();
            if len == 0 || current.identity.same_head(&file, len)? {
                return Ok(());
            }
            if let Some(last) = self.cycles.last() {
                if last.same_head(&file, len)? {
                    return Ok(());
                }
            }
            if self.cycles.len() < MAX_POSITIONS {
                self.cycles.push(Identity::of(&file)?);
            }
            return Ok(());
        }
        let held = self.files.iter().any(|f| is(&f.identity))
            || self.early.iter().any(|(_, i)| *i == inode);
        if !held && self.early.len() + self.files.len() < 2 * MAX_POSITIONS {
            self.early.push((file, inode));
        }
        Ok(())
    }

    /// Adds the files held early (except the one the path names now, `current`) as rotated files
    /// to read from their start, in the order they appeared.
    fn integrate_early(
        &mut self,
        current: Option<(u64, u64)>,
        spec: &FrameSpec,
    ) -> std::io::Result<()> {
        while !self.early.is_empty() && self.files.len() < MAX_POSITIONS {
            let (file, inode) = self.early.remove(0);
            let held = self
                .files
                .iter()
                .any(|f| (f.identity.dev, f.identity.ino) == inode);
            if Some(inode) == current || held {
                continue;
            }
            let open = OpenFile::rotated(file, 0, spec)?;
            log::debug!(
                "{}: reading inode {} that came and went while busy",
                self.path.display(),
                open.identity.ino
            );
            self.files.push(open);
        }
        Ok(())
    }

    /// Marks files with watch `wd` as written to; returns whether one had it.
    pub fn touch(&mut self, wd: i32) -> bool {
        let mut found = false;
        for f in &mut self.files {
            if f.wd == Some(wd) {
                f.dirty = true;
                found = true;
            }
        }
        found
    }

    /// Whether there is reading (or path checking) to do now.
    pub fn has_work(&self) -> bool {
        self.check_path || self.files.iter().any(|f| f.dirty)
    }

    /// The cursor bytes with file `index` at `offset` and the others at their committed offsets.
    pub fn cursor(&self, index: usize, offset: u64) -> Vec<u8> {
        let positions: Vec<Position> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut p = f.position();
                if i == index {
                    p.offset = offset;
                }
                p
            })
            .collect();
        position::encode(&positions)
    }

    /// Records that the spool took the entry of file `index` ending at `end`.
    pub fn commit(&mut self, index: usize, end: u64) {
        if let Some(f) = self.files.get_mut(index) {
            f.committed = end;
        }
    }

    /// Reads one chunk from the oldest file with data (rotated files first). `None` when no file
    /// has anything to read now.
    pub fn read(
        &mut self,
        spec: &FrameSpec,
        buf: &mut [u8],
        max_line: usize,
        memory: &MemoryAccount,
    ) -> std::io::Result<Option<Batch>> {
        for index in 0..self.files.len() {
            if !self.files[index].dirty {
                continue;
            }
            if self.files[index].at_path {
                self.check_truncation(index, spec)?;
            }
            let f = &mut self.files[index];
            let before = f.lines;
            let mut lines: Vec<Line> = Vec::new();
            let n = read_lines(&f.file, &mut f.lines, buf, max_line, &mut lines)?;
            if n == 0 || f.lines == before {
                // At the end (or only an unfinished line): nothing more until the next write.
                f.dirty = false;
            }
            if f.identity.head_incomplete() && f.lines.next > f.identity.head_len as u64 {
                f.identity = Identity::of(&f.file)?;
            }
            if f.lines != before {
                // Progress (lines, or the scan through an overlong one): counted against the turn.
                if !f.at_path {
                    f.idle_since = Some(Instant::now());
                }
                let mut entries = Vec::new();
                for line in lines {
                    f.framer.push(line, max_line, memory, &mut entries);
                }
                return Ok(Some(Batch {
                    index,
                    entries,
                    bytes: n,
                }));
            }
        }
        Ok(None)
    }

    /// Copytruncate: the current file is shorter than what was read, or starts differently. The
    /// rest of the old content is read from its copy, then the contents noted in between (from
    /// their copies, whole), then the file from its start.
    fn check_truncation(&mut self, index: usize, spec: &FrameSpec) -> std::io::Result<()> {
        let f = &self.files[index];
        let len = f.file.metadata()?.len();
        let replaced = len < f.lines.next || !f.identity.same_head(&f.file, len)?;
        if !replaced {
            return Ok(());
        }
        let committed = f.committed;
        let old = f.identity;
        let mut held: Vec<(u64, u64)> = self
            .files
            .iter()
            .map(|f| (f.identity.dev, f.identity.ino))
            .collect();
        let mut copies = Vec::new();
        if committed > 0 {
            match find_sibling(&self.path, &old, committed, &held)? {
                Some(copy) => copies.push((copy, committed)),
                None => log::warn!(
                    "{} was truncated and no copy of it was found: what it held after offset \
                     {committed} was not read",
                    self.path.display()
                ),
            }
        }
        for head in std::mem::take(&mut self.cycles) {
            let f = &self.files[index];
            if head.same_head(&f.file, f.file.metadata()?.len())? {
                continue; // the content at the path now
            }
            if let Some(inode) = copies.last().map(|(c, _): &(File, u64)| c.metadata()) {
                let inode = inode?;
                held.push((inode.dev(), inode.ino()));
            }
            match find_sibling(&self.path, &head, u64::from(head.head_len), &held)? {
                Some(copy) => copies.push((copy, 0)),
                None => log::warn!(
                    "{}: a content copy-truncated in between was not found beside it",
                    self.path.display()
                ),
            }
        }
        let f = &mut self.files[index];
        f.identity = Identity::of(&f.file)?;
        f.committed = 0;
        f.lines = LineState::at(0);
        f.framer = spec.framer();
        for (i, (copy, from)) in copies.into_iter().enumerate() {
            self.files
                .insert(index + i, OpenFile::rotated(copy, from, spec)?);
        }
        Ok(())
    }

    /// The earliest moment something must happen without a new write: a group timeout or the end
    /// of a rotated file's grace.
    pub fn deadline(&self) -> Option<Instant> {
        let grace = self.grace();
        self.files
            .iter()
            .flat_map(|f| {
                let grace = f
                    .idle_since
                    .filter(|_| !f.at_path && !f.dirty)
                    .map(|t| t + grace);
                [f.framer.deadline(), grace]
            })
            .flatten()
            .min()
    }

    /// Sends out groups whose timeout passed, and closes rotated files whose grace passed (after
    /// their unterminated last line). Returns entries as `(file index, entry)`; files to close are
    /// closed by [`Tail::close_done`] once those entries were sent.
    pub fn expire(
        &mut self,
        now: Instant,
        max_line: usize,
    ) -> std::io::Result<Vec<(usize, Entry)>> {
        let grace = self.grace();
        let mut out = Vec::new();
        for (index, f) in self.files.iter_mut().enumerate() {
            let mut entries = Vec::new();
            let done = !f.at_path && !f.dirty && f.idle_since.is_some_and(|t| now >= t + grace);
            if done {
                if let Some(line) = final_line(&f.file, &mut f.lines, max_line)? {
                    entries.push(Entry {
                        text: line.bytes,
                        truncated: line.truncated,
                        end: line.end,
                    });
                }
                f.framer.flush(&mut entries);
            } else if f.framer.deadline().is_some_and(|d| now >= d) {
                f.framer.flush(&mut entries);
            }
            out.extend(entries.into_iter().map(|e| (index, e)));
        }
        // Entries of a group come before the unterminated line that followed it.
        out.sort_by_key(|(i, e)| (*i, e.end));
        Ok(out)
    }

    /// Closes rotated files whose grace passed. Returns whether one was closed.
    pub fn close_done(&mut self, now: Instant, watcher: &Watcher) -> bool {
        let grace = self.grace();
        let before = self.files.len();
        self.files.retain(|f| {
            let done = !f.at_path && !f.dirty && f.idle_since.is_some_and(|t| now >= t + grace);
            if done {
                log::debug!(
                    "closing rotated inode {} at offset {}",
                    f.identity.ino,
                    f.committed
                );
                if let Some(wd) = f.wd {
                    watcher.unwatch(wd);
                }
            }
            !done
        });
        if self.files.len() < before {
            // Room for a successor, or for files held early, that had to wait.
            self.check_path |= !self.early.is_empty() || self.files.iter().all(|f| !f.at_path);
            true
        } else {
            false
        }
    }

    /// The location no longer names this path: its files are read to their end and closed.
    pub fn unmatched(&mut self) {
        for f in &mut self.files {
            f.retire_from_path();
        }
    }

    /// How long a rotated file read to its end stays open: [`DRAIN_GRACE`], or not at all when
    /// the path holds as many files as its cursor can list (rotations faster than the grace).
    fn grace(&self) -> Duration {
        if self.files.len() + 1 >= MAX_POSITIONS {
            Duration::ZERO
        } else {
            DRAIN_GRACE
        }
    }

    /// Files open.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }
}
