//! One walk of the system directories, for four checks at once:
//!
//! - hidden files: a directory's link count is 2 plus its subdirectories, so a subdirectory
//!   that `readdir` does not return (a rootkit hooking `getdents`) shows as a difference. Only on
//!   file systems where the rule holds (ext2/3/4, XFS, tmpfs, F2FS, UBIFS); btrfs, overlayfs,
//!   squashfs, NFS and others count differently and are not compared, so overlay roots and
//!   containers give no false positives. A difference is read again before it is reported
//!   (a directory may gain or lose a subdirectory between the `stat` and the `readdir`).
//! - SUID/SGID regular files outside `suid_dirs`;
//! - world-writable files and directories (not sticky) in `world_writable_dirs`;
//! - the `*/name` entries of the rootkit files database.
//!
//! The walk stays on each starting directory's file system and does not follow symlinks.
//!
//! It is written to cost few system calls and allocations per entry, since a system's library
//! directories hold tens of thousands of files: a directory is opened relative to its parent's
//! descriptor (kept open while its subdirectories wait, so at most one per level), its link
//! count comes from the `lstat` its parent's listing already made, its entries are read into one
//! reused `getdents` buffer and one name buffer, only regular files and directories are
//! `lstat`ed (the checks say nothing about symlinks, devices, sockets or pipes, whose type the
//! listing gives), and a path is built only for a subdirectory or a finding.

use super::scan::{room_for_one, Finding, Scan};
use super::signatures::{rootkit_finding, RootkitFile};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Depth limit of the walk of `sys_dirs` (a guard against pathological trees).
const MAX_DEPTH: u32 = 64;

/// Bytes of the buffer `getdents` fills (one for the whole walk; a large directory takes
/// several reads).
const DIRENT_BUFFER: usize = 16 * 1024;

/// File system magic numbers (`statfs` `f_type`) whose directory link counts are 2 plus the
/// number of subdirectories.
const NLINK_COUNTS_SUBDIRS: [i64; 5] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x0102_1994, // tmpfs
    0xF2F5_2010, // f2fs
    0x2405_1905, // ubifs
];

/// Walks `sys_dirs` (and `shallow_dirs` to their depth) with every file check.
pub async fn check(scan: &mut Scan<'_>, db: &[RootkitFile]) {
    let anywhere: Vec<(&OsStr, &RootkitFile)> = db
        .iter()
        .filter(|e| e.anywhere)
        .filter_map(|e| Some((Path::new(&e.path).file_name()?, e)))
        .collect();
    let mut starts: Vec<(PathBuf, u32)> = Vec::new();
    for dir in &scan.config.sys_dirs {
        starts.push((scan.under_root(dir), MAX_DEPTH));
    }
    for dir in &scan.config.shallow_dirs {
        starts.push((scan.under_root(dir), scan.config.shallow_depth));
    }
    let mut dirents = Vec::new();
    if scan
        .memory()
        .try_reserve(&mut dirents, DIRENT_BUFFER)
        .is_err()
    {
        scan.skip("files: memory budget full, no room to read directories".to_string());
        return;
    }
    dirents.resize(DIRENT_BUFFER, MaybeUninit::uninit());
    let mut walker = Walker {
        suid_dirs: scan
            .config
            .suid_dirs
            .iter()
            .map(|d| scan.under_root(d))
            .collect(),
        ww_dirs: scan
            .config
            .world_writable_dirs
            .iter()
            .map(|d| scan.under_root(d))
            .collect(),
        anywhere,
        started: Vec::new(),
        examined: 0,
        dirents,
        listing: Listing::default(),
    };
    for (start, depth) in starts {
        walker.walk(scan, start, depth).await;
    }
    scan.checked("files", walker.examined);
}

struct Walker<'d> {
    suid_dirs: Vec<PathBuf>,
    ww_dirs: Vec<PathBuf>,
    /// The `*/name` entries, with the last component of their name.
    anywhere: Vec<(&'d OsStr, &'d RootkitFile)>,
    /// `(device, inode)` of the directories walks started from (each is walked once).
    started: Vec<(u64, u64)>,
    examined: u64,
    /// The buffer `getdents` fills, for every directory.
    dirents: Vec<MaybeUninit<u8>>,
    /// The directory being checked (reused, so its buffers keep their capacity).
    listing: Listing,
}

/// A directory waiting to be read.
struct Pending {
    /// The open directory it is listed in (`None` for a starting directory, opened by path).
    parent: Option<Rc<OwnedFd>>,
    path: PathBuf,
    depth: u32,
    /// Link count and device from the parent's `lstat` of it, when it was stated.
    seen: Option<(u64, u64)>,
    /// Whether its entries are in an expected SUID directory (under one of `suid_dirs`).
    suid_ok: bool,
    /// Whether its entries must not be world-writable (under one of `world_writable_dirs`).
    ww_watched: bool,
}

impl Walker<'_> {
    async fn walk(&mut self, scan: &mut Scan<'_>, start: PathBuf, max_depth: u32) {
        // A starting directory that is a symlink (`/bin` -> `usr/bin`) is not walked: its
        // target is a starting directory of its own.
        let Ok(meta) = std::fs::symlink_metadata(&start) else {
            return;
        };
        if !meta.is_dir() || self.started.contains(&(meta.dev(), meta.ino())) {
            return;
        }
        self.started.push((meta.dev(), meta.ino()));
        let device = meta.dev();
        // Decided once per directory, not per file; a subdirectory inherits its parent's
        // answer (a path is under `d` if its parent is, or if it is `d`).
        let mut stack = vec![Pending {
            parent: None,
            suid_ok: self.suid_dirs.iter().any(|d| start.starts_with(d)),
            ww_watched: self.ww_dirs.iter().any(|d| start.starts_with(d)),
            seen: Some((meta.nlink(), meta.dev())),
            path: start,
            depth: 0,
        }];
        while let Some(dir) = stack.pop() {
            scan.pacer.tick().await;
            // Where neither the SUID nor the world-writable check can report, entries are not
            // `stat`ed: the listing's types suffice.
            let stat_entries = !dir.suid_ok || dir.ww_watched;
            let Some(fd) = open_dir(&dir) else {
                continue;
            };
            if !self.list(scan, &fd, dir.seen, stat_entries) || self.listing.dev != device {
                continue; // unreadable, or another file system is mounted here
            }
            let fd = Rc::new(fd);
            for i in 0..self.listing.entries.len() {
                scan.pacer.tick().await;
                self.examined += 1;
                let entry = self.listing.entries[i];
                let name = OsStr::from_bytes(&self.listing.names[entry.name_start..entry.name_end]);
                if entry.stated {
                    self.check_entry(scan, &dir.path, name, &entry, dir.suid_ok, dir.ww_watched);
                } else if entry.is_dir() && self.ww_dirs.contains(&dir.path.join(name)) {
                    // A listed world-writable-checked directory met inside a start directory.
                    if let Ok(meta) = rustix::fs::statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                        let stated = Entry {
                            mode: meta.st_mode,
                            uid: meta.st_uid,
                            stated: true,
                            ..entry
                        };
                        self.check_entry(scan, &dir.path, name, &stated, dir.suid_ok, true);
                    }
                }
                for known in &self.anywhere {
                    if name == known.0 {
                        let path = dir.path.join(name);
                        if path.ends_with(&known.1.path) {
                            scan.report(rootkit_finding(known.1, &path));
                        }
                    }
                }
                if entry.is_dir()
                    && dir.depth + 1 < max_depth
                    && room_for_one(scan.memory(), &mut stack)
                {
                    let path = dir.path.join(name);
                    stack.push(Pending {
                        parent: Some(Rc::clone(&fd)),
                        suid_ok: dir.suid_ok || self.suid_dirs.contains(&path),
                        ww_watched: dir.ww_watched || self.ww_dirs.contains(&path),
                        seen: entry.stated.then_some((entry.nlink, entry.dev)),
                        path,
                        depth: dir.depth + 1,
                    });
                }
            }
            if self.listing.mismatch() {
                let first = (self.listing.nlink, self.listing.subdirs);
                self.recheck_links(scan, &dir, stat_entries, first).await;
            }
        }
    }

    /// Reports the entry `name` of `dir` if its mode breaks the SUID or world-writable rule.
    fn check_entry(
        &self,
        scan: &mut Scan<'_>,
        dir: &Path,
        name: &OsStr,
        entry: &Entry,
        suid_ok: bool,
        ww_watched: bool,
    ) {
        let mode = entry.mode;
        if entry.is_file() && mode & 0o6000 != 0 && !suid_ok {
            let which = match mode & 0o6000 {
                0o6000 => "SUID and SGID",
                0o4000 => "SUID",
                _ => "SGID",
            };
            let path = dir.join(name);
            scan.report(Finding::at_path(
                "suid_file",
                &path,
                format!(
                    "{which} file '{}' outside the expected directories.",
                    path.display()
                ),
                format!("mode {:o}, owner uid {}", mode & 0o7777, entry.uid),
            ));
        }
        let sticky_dir = entry.is_dir() && mode & 0o1000 != 0;
        if (entry.is_file() || entry.is_dir()) && mode & 0o002 != 0 && !sticky_dir && ww_watched {
            let path = dir.join(name);
            scan.report(Finding::at_path(
                "world_writable",
                &path,
                format!(
                    "File '{}' is owned by uid {} and has written permissions to anyone.",
                    path.display(),
                    entry.uid
                ),
                format!("mode {:o} in a system directory", mode & 0o7777),
            ));
        }
    }

    /// A directory whose entries change (e.g. `/tmp` while programs make temporary directories)
    /// can show a difference for a moment: it is read again after a pause, with a fresh link
    /// count, and reported only if the same difference (same link count, same subdirectories
    /// listed) is still there.
    async fn recheck_links(
        &mut self,
        scan: &mut Scan<'_>,
        dir: &Pending,
        stat_entries: bool,
        first: (u64, u64),
    ) {
        smol::Timer::after(std::time::Duration::from_millis(50)).await;
        let Some(fd) = open_dir(dir) else {
            return;
        };
        if !self.list(scan, &fd, None, stat_entries) {
            return;
        }
        let again = &self.listing;
        if !again.mismatch() || (again.nlink, again.subdirs) != first {
            return;
        }
        let details = format!(
            "link count is {} but readdir returns {} subdirectories (expected link count {})",
            again.nlink,
            again.subdirs,
            again.subdirs + 2
        );
        scan.report(Finding::at_path(
            "hidden_file",
            &dir.path,
            format!("Files hidden inside directory '{}'.", dir.path.display()),
            details,
        ));
    }

    /// Reads the directory open at `fd` into `self.listing`: its link count and device (`seen`,
    /// or its `fstat`; a count from `seen` that disagrees is read again), then its entries (without the names a test hides), with `stat_entries`
    /// the regular files and directories `lstat`ed relative to the open directory (no path
    /// lookup from the root for every file); without, only those whose type the listing does
    /// not give. False when the directory cannot be read.
    fn list(
        &mut self,
        scan: &Scan<'_>,
        fd: &OwnedFd,
        seen: Option<(u64, u64)>,
        stat_entries: bool,
    ) -> bool {
        let (nlink, dev) = match seen {
            Some(seen) => seen,
            None => match rustix::fs::fstat(fd) {
                Ok(stat) => nlink_and_dev(&stat),
                Err(_) => return false,
            },
        };
        let listing = &mut self.listing;
        listing.nlink = nlink;
        listing.dev = dev;
        listing.fs_type = None;
        listing.subdirs = 0;
        listing.entries.clear();
        listing.names.clear();
        let mut dirents = RawDir::new(fd, &mut self.dirents[..]);
        while let Some(entry) = dirents.next() {
            let Ok(entry) = entry else {
                break;
            };
            let raw = entry.file_name();
            let bytes = raw.to_bytes();
            if bytes == b"." || bytes == b".." || hidden_by_test(scan, OsStr::from_bytes(bytes)) {
                continue;
            }
            let listed = entry.file_type();
            let checked_type = matches!(listed, FileType::RegularFile | FileType::Directory);
            let mut item = if (stat_entries && checked_type) || listed == FileType::Unknown {
                let Ok(meta) = rustix::fs::statat(fd, raw, AtFlags::SYMLINK_NOFOLLOW) else {
                    continue; // removed meanwhile
                };
                Entry {
                    mode: meta.st_mode,
                    uid: meta.st_uid,
                    nlink: nlink_and_dev(&meta).0,
                    dev: nlink_and_dev(&meta).1,
                    stated: true,
                    ..Entry::default()
                }
            } else {
                Entry {
                    mode: listed.as_raw_mode(),
                    ..Entry::default()
                }
            };
            if item.is_dir() {
                listing.subdirs += 1;
            }
            if !room_for_one(scan.memory(), &mut listing.entries)
                || !room_for_bytes(scan, &mut listing.names, bytes.len())
            {
                // Too large to hold: no link count comparison for this directory.
                listing.nlink = u64::MAX;
                break;
            }
            item.name_start = listing.names.len();
            listing.names.extend_from_slice(bytes);
            item.name_end = listing.names.len();
            listing.entries.push(item);
        }
        if listing.nlink != listing.subdirs + 2 && listing.nlink != u64::MAX && seen.is_some() {
            // The parent's `lstat` may be seconds old (the walk went through the siblings
            // before): a difference is judged on the link count of now.
            match rustix::fs::fstat(fd) {
                Ok(stat) => listing.nlink = nlink_and_dev(&stat).0,
                Err(_) => return false,
            }
        }
        if listing.nlink != listing.subdirs + 2 && listing.nlink != u64::MAX {
            // `f_type` is i64 on some targets, u32 or i32 on others (32-bit ARM, where F2FS's
            // magic is negative as an i32): compared as its low 32 bits.
            #[allow(clippy::unnecessary_cast)]
            let fs_type = rustix::fs::fstatfs(fd)
                .ok()
                .map(|s| (s.f_type as i64) & 0xFFFF_FFFF);
            listing.fs_type = fs_type;
        }
        true
    }
}

/// Opens a waiting directory, relative to its parent's descriptor when it has one.
fn open_dir(dir: &Pending) -> Option<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match (&dir.parent, dir.path.file_name()) {
        (Some(parent), Some(name)) => {
            rustix::fs::openat(&**parent, name, flags, Mode::empty()).ok()
        }
        _ => rustix::fs::open(&dir.path, flags, Mode::empty()).ok(),
    }
}

/// Link count and device of a `stat` (their types differ between targets: `st_nlink` is u32
/// on aarch64).
#[allow(clippy::unnecessary_cast)]
fn nlink_and_dev(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_nlink as u64, stat.st_dev as u64)
}

/// Makes room for `n` more bytes in `buf` within the budget, growing by half at least.
fn room_for_bytes(scan: &Scan<'_>, buf: &mut Vec<u8>, n: usize) -> bool {
    if buf.capacity() - buf.len() >= n {
        return true;
    }
    let grow = (buf.len() / 2).max(n).max(256);
    let memory = scan.memory();
    memory.try_reserve(buf, grow).is_ok() || memory.try_reserve(buf, n).is_ok()
}

/// A directory as read: its link count and device, its entries.
#[derive(Default)]
struct Listing {
    nlink: u64,
    dev: u64,
    /// `statfs` type, read only when the counts disagree.
    fs_type: Option<i64>,
    subdirs: u64,
    entries: Vec<Entry>,
    /// The entries' names one after the other (one buffer, not a string per entry).
    names: Vec<u8>,
}

/// What the checks need of an entry's `lstat` (kept small: a directory's entries are held
/// while they are checked).
#[derive(Clone, Copy, Default)]
struct Entry {
    /// The name: `names[name_start..name_end]` of the listing.
    name_start: usize,
    name_end: usize,
    /// The file type bits, and the permission bits when `stated`.
    mode: u32,
    uid: u32,
    /// Link count and device, when `stated` (a subdirectory's are its first look, so that it
    /// need not be `fstat`ed when it is opened).
    nlink: u64,
    dev: u64,
    /// Whether `mode`, `uid`, `nlink` and `dev` come from `lstat` (else only the type, from
    /// the listing).
    stated: bool,
}

impl Entry {
    fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

impl Listing {
    /// Whether the link count disagrees with the subdirectories listed, on a file system where
    /// they must agree.
    fn mismatch(&self) -> bool {
        self.nlink != u64::MAX
            && self.nlink != self.subdirs + 2
            && self
                .fs_type
                .is_some_and(|t| NLINK_COUNTS_SUBDIRS.contains(&t))
    }
}

#[cfg(test)]
fn hidden_by_test(scan: &Scan<'_>, name: &OsStr) -> bool {
    scan.hide_from_readdir.is_some_and(|hide| hide(name))
}

#[cfg(not(test))]
fn hidden_by_test(_scan: &Scan<'_>, _name: &OsStr) -> bool {
    false
}
