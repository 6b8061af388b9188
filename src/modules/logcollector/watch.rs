//! inotify on the executor: file watches (data written, file moved or deleted) and directory
//! watches (names created, moved or deleted), read through async-io — the module sleeps on the
//! inotify descriptor while nothing changes, it never polls.
//!
//! rustix's inotify is used rather than the `inotify` crate, whose stream needs tokio.

use async_io::Async;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Bytes of the event buffer (an event is 16 bytes plus its name).
const EVENT_BUFFER: usize = 4096;

/// What happened to a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Something happened on watch `wd`; `name` is the entry for a directory watch.
    Watch {
        wd: i32,
        flags: ReadFlags,
        name: Option<Vec<u8>>,
    },
    /// The kernel's queue overflowed: events were lost, everything must be looked at again.
    Overflow,
}

/// One inotify instance.
pub struct Watcher {
    fd: Async<OwnedFd>,
    buf: Vec<MaybeUninit<u8>>,
}

impl Watcher {
    /// Creates the instance (non-blocking, closed on exec).
    pub fn new() -> std::io::Result<Watcher> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        Ok(Watcher {
            fd: Async::new(fd)?,
            buf: vec![MaybeUninit::uninit(); EVENT_BUFFER],
        })
    }

    /// Watches a file (following a symlink to it) for writes, truncation, moves and deletion.
    pub fn watch_file(&self, path: &Path) -> std::io::Result<i32> {
        let flags = WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::MOVE_SELF
            | WatchFlags::DELETE_SELF;
        Ok(inotify::add_watch(self.fd.get_ref(), path, flags)?)
    }

    /// Watches a directory for names that appear, move or go.
    pub fn watch_dir(&self, path: &Path) -> std::io::Result<i32> {
        let flags = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE
            | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(self.fd.get_ref(), path, flags)?)
    }

    /// Stops a watch (already gone when its file was deleted: not an error).
    pub fn unwatch(&self, wd: i32) {
        let _ = inotify::remove_watch(self.fd.get_ref(), wd);
    }

    /// Appends the pending changes to `out` without waiting.
    pub fn drain(&mut self, out: &mut Vec<Change>) -> std::io::Result<()> {
        let mut reader = inotify::Reader::new(self.fd.get_ref(), &mut self.buf);
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        out.push(Change::Overflow);
                        continue;
                    }
                    out.push(Change::Watch {
                        wd: event.wd(),
                        flags,
                        name: event.file_name().map(|n| n.to_bytes().to_vec()),
                    });
                }
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until changes are pending.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.fd.readable().await
    }
}
