//! Realtime: one inotify watch per monitored directory, up to a cap; events become *pending*
//! paths that are checked once they have been quiet for a moment (a write is many events).
//!
//! Directories past the cap (or past the kernel's `max_user_watches`) are left to scheduled
//! scans, and one `fim.realtime_limit` event says so. The inotify descriptor is registered with
//! async-io, so an idle module sleeps in the reactor; no polling.

use super::rules::DirRule;
use super::whodata::Whodata;
use async_io::Async;
use gatewatch_proto::fim::{FimEvent, WhoData};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Paths waiting to be checked; past this a full scan replaces them.
pub const MAX_PENDING: usize = 512;
/// Bytes read from inotify at once (many events).
const READ_BUFFER: usize = 4096;

/// Why a directory is not watched.
#[derive(Debug)]
pub enum WatchError {
    /// The configured cap or the kernel's limit is reached.
    Limit,
    /// Another failure (the directory vanished, permissions).
    Other(std::io::Error),
}

/// The inotify instance and what its watches stand for.
pub struct Realtime {
    inotify: Inotify,
    ready: Async<OwnedFd>,
    /// Sorted by watch descriptor.
    watches: Vec<(WatchDescriptor, PathBuf)>,
    cap: usize,
    buf: Vec<u8>,
    /// The kernel's queue overflowed: events were lost.
    pub overflowed: bool,
}

/// A path to check, with who changed it (when fanotify said).
#[derive(Debug)]
pub struct Pending {
    pub path: PathBuf,
    pub audit: Option<WhoData>,
}

/// The pending paths, bounded.
#[derive(Default)]
pub struct PendingSet {
    items: Vec<Pending>,
    last_event: Option<Instant>,
    /// Events were dropped because the set was full: a scan must follow.
    pub overflowed: bool,
}

impl PendingSet {
    /// Adds `path` (once); `audit` replaces an unknown writer.
    pub fn add(&mut self, path: PathBuf, audit: Option<WhoData>) {
        self.last_event = Some(Instant::now());
        if let Some(p) = self.items.iter_mut().find(|p| p.path == path) {
            if audit.is_some() {
                p.audit = audit;
            }
            return;
        }
        if self.items.len() >= MAX_PENDING {
            self.overflowed = true;
            return;
        }
        self.items.push(Pending { path, audit });
    }

    /// When the pending paths are due (quiet for `delay`), if any.
    pub fn due_at(&self, delay: Duration) -> Option<Instant> {
        (!self.items.is_empty())
            .then_some(self.last_event)
            .flatten()
            .map(|t| t + delay)
    }

    /// Takes the pending paths.
    pub fn take(&mut self) -> Vec<Pending> {
        self.last_event = None;
        std::mem::take(&mut self.items)
    }

    /// Forgets everything (a scan covers it).
    pub fn clear(&mut self) {
        self.items.clear();
        self.last_event = None;
        self.overflowed = false;
    }
}

/// The live sources: inotify and fanotify, either of which may be absent.
#[derive(Default)]
pub struct Live {
    /// inotify, when a directory is realtime.
    pub realtime: Option<Realtime>,
    /// fanotify, when a directory wants who-data and the kernel allows it.
    pub whodata: Option<Whodata>,
    limit_reported: bool,
}

impl Live {
    /// Watches `dir` for `rule` (marks it for who-data too); returns the event to report when
    /// the watch limit is reached for the first time.
    pub fn watch(&mut self, rule: &DirRule, dir: &Path) -> Option<FimEvent> {
        if !rule.realtime {
            return None;
        }
        if let (true, Some(w)) = (rule.whodata, &self.whodata) {
            if let Err(e) = w.mark(dir) {
                log::debug!("fim: cannot mark {} for who-data: {e}", dir.display());
            }
        }
        let rt = self.realtime.as_mut()?;
        match rt.watch(dir) {
            Ok(()) => None,
            Err(WatchError::Limit) if !self.limit_reported => {
                self.limit_reported = true;
                log::warn!(
                    "fim: {} inotify watches: {} and the rest are scanned on schedule only",
                    rt.len(),
                    dir.display()
                );
                Some(FimEvent::RealtimeLimit {
                    watches: rt.len() as u64,
                    directory: dir.to_string_lossy().into_owned(),
                })
            }
            Err(WatchError::Limit) => None,
            Err(WatchError::Other(e)) => {
                log::debug!("fim: cannot watch {}: {e}", dir.display());
                None
            }
        }
    }
}

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::DONT_FOLLOW
}

impl Realtime {
    /// An inotify instance allowing `cap` watches.
    pub fn new(cap: usize) -> std::io::Result<Realtime> {
        let inotify = Inotify::init()?;
        let ready = Async::new(inotify.as_fd().try_clone_to_owned()?)?;
        Ok(Realtime {
            inotify,
            ready,
            watches: Vec::new(),
            cap,
            buf: vec![0; READ_BUFFER],
            overflowed: false,
        })
    }

    /// Watches held.
    pub fn len(&self) -> usize {
        self.watches.len()
    }

    /// Watches `dir` (no-op when already watched).
    pub fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        if self.watches.iter().any(|(_, p)| p == dir) {
            return Ok(());
        }
        if self.watches.len() >= self.cap {
            return Err(WatchError::Limit);
        }
        if self.watches.try_reserve(1).is_err() {
            return Err(WatchError::Limit);
        }
        match self.inotify.watches().add(dir, mask()) {
            Ok(wd) => {
                match self.watches.binary_search_by(|(w, _)| w.cmp(&wd)) {
                    // The same inode under another name (a bind mount, a moved directory).
                    Ok(i) => self.watches[i].1 = dir.to_path_buf(),
                    Err(i) => self.watches.insert(i, (wd, dir.to_path_buf())),
                }
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Err(WatchError::Limit),
            Err(e) => Err(WatchError::Other(e)),
        }
    }

    /// Drops the watches of `dir` and everything below it (moved away or deleted).
    pub fn forget_under(&mut self, dir: &Path) {
        let mut i = 0;
        while i < self.watches.len() {
            if self.watches[i].1.starts_with(dir) {
                let (wd, _) = self.watches.remove(i);
                let _ = self.inotify.watches().remove(wd);
            } else {
                i += 1;
            }
        }
    }

    /// Waits until events can be read.
    pub async fn readable(&self) {
        let _ = self.ready.readable().await;
    }

    /// Reads every queued event into `pending`.
    pub fn read(&mut self, pending: &mut PendingSet) {
        loop {
            let events = match self.inotify.read_events(&mut self.buf) {
                Ok(events) => events,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("fim: reading inotify events: {e}");
                    return;
                }
            };
            let mut any = false;
            let mut ignored = Vec::new();
            for event in events {
                any = true;
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    self.overflowed = true;
                    continue;
                }
                if event.mask.contains(EventMask::IGNORED) {
                    ignored.push(event.wd.clone());
                    continue;
                }
                let Ok(i) = self.watches.binary_search_by(|(w, _)| w.cmp(&event.wd)) else {
                    continue;
                };
                let dir = &self.watches[i].1;
                let path = match event.name {
                    Some(name) => dir.join(name),
                    None => dir.clone(),
                };
                pending.add(path, None);
            }
            for wd in ignored {
                if let Ok(i) = self.watches.binary_search_by(|(w, _)| w.cmp(&wd)) {
                    self.watches.remove(i);
                }
            }
            if !any {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_paths_are_merged_and_keep_the_writer() {
        let mut set = PendingSet::default();
        set.add("/a".into(), None);
        set.add("/a".into(), None);
        assert_eq!(set.items.len(), 1);
        assert!(set.due_at(Duration::from_millis(10)).is_some());
        let taken = set.take();
        assert_eq!(taken.len(), 1);
        assert!(set.due_at(Duration::from_millis(10)).is_none());
    }

    #[test]
    fn full_pending_set_asks_for_a_scan() {
        let mut set = PendingSet::default();
        for i in 0..=MAX_PENDING {
            set.add(format!("/f{i}").into(), None);
        }
        assert!(set.overflowed);
        assert_eq!(set.items.len(), MAX_PENDING);
    }

    #[test]
    fn watch_cap_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["a", "b"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let mut rt = Realtime::new(1).unwrap();
        rt.watch(&dir.path().join("a")).unwrap();
        rt.watch(&dir.path().join("a")).unwrap();
        assert!(matches!(
            rt.watch(&dir.path().join("b")),
            Err(WatchError::Limit)
        ));
        assert_eq!(rt.len(), 1);
    }

    #[test]
    fn a_file_created_in_a_watched_directory_becomes_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut rt = Realtime::new(8).unwrap();
        rt.watch(dir.path()).unwrap();
        std::fs::write(dir.path().join("new"), b"x").unwrap();
        let mut set = PendingSet::default();
        smol::block_on(rt.readable());
        rt.read(&mut set);
        let paths: Vec<_> = set.take().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, [dir.path().join("new")]);
    }
}
