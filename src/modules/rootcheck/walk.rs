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

use super::scan::{Finding, Scan};
use super::signatures::{rootkit_finding, RootkitFile};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Depth limit of the walk of `sys_dirs` (a guard against pathological trees).
const MAX_DEPTH: u32 = 64;

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
    let anywhere: Vec<&RootkitFile> = db.iter().filter(|e| e.anywhere).collect();
    let mut starts: Vec<(PathBuf, u32)> = Vec::new();
    for dir in &scan.config.sys_dirs {
        starts.push((scan.under_root(dir), MAX_DEPTH));
    }
    for dir in &scan.config.shallow_dirs {
        starts.push((scan.under_root(dir), scan.config.shallow_depth));
    }
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
        fs_cache: Vec::new(),
        started: Vec::new(),
        examined: 0,
    };
    for (start, depth) in starts {
        walker.walk(scan, start, depth).await;
    }
    scan.checked("files", walker.examined);
}

struct Walker<'d> {
    suid_dirs: Vec<PathBuf>,
    ww_dirs: Vec<PathBuf>,
    anywhere: Vec<&'d RootkitFile>,
    /// `(device, link counts meaningful)` per file system seen.
    fs_cache: Vec<(u64, bool)>,
    /// `(device, inode)` of the directories walks started from (each is walked once).
    started: Vec<(u64, u64)>,
    examined: u64,
}

impl Walker<'_> {
    async fn walk(&mut self, scan: &mut Scan<'_>, start: PathBuf, max_depth: u32) {
        // A starting directory that is a symlink (`/bin` -> `usr/bin`) is walked as its target.
        let Ok(meta) = std::fs::symlink_metadata(&start) else {
            return;
        };
        if !meta.is_dir() || self.started.contains(&(meta.dev(), meta.ino())) {
            return;
        }
        self.started.push((meta.dev(), meta.ino()));
        let device = meta.dev();
        let mut stack: Vec<(PathBuf, u32)> = vec![(start, 0)];
        while let Some((dir, depth)) = stack.pop() {
            scan.pacer.tick().await;
            let Some(listing) = list(scan, &dir) else {
                continue;
            };
            for entry in &listing.entries {
                scan.pacer.tick().await;
                self.examined += 1;
                let path = dir.join(&entry.name);
                self.check_entry(scan, &path, entry);
                if entry.is_dir()
                    && entry.dev == device
                    && depth + 1 < max_depth
                    && scan.memory().try_reserve(&mut stack, 1).is_ok()
                {
                    stack.push((path, depth + 1));
                }
            }
            if self.nlink_meaningful(&dir, listing.dev) && listing.mismatch() {
                self.recheck_links(scan, &dir);
            }
        }
    }

    fn check_entry(&self, scan: &mut Scan<'_>, path: &Path, entry: &Entry) {
        let mode = entry.mode;
        if entry.is_file()
            && mode & 0o6000 != 0
            && !self.suid_dirs.iter().any(|d| path.starts_with(d))
        {
            let which = match mode & 0o6000 {
                0o6000 => "SUID and SGID",
                0o4000 => "SUID",
                _ => "SGID",
            };
            scan.report(Finding::at_path(
                "suid_file",
                path,
                format!(
                    "{which} file '{}' outside the expected directories.",
                    path.display()
                ),
                format!("mode {:o}, owner uid {}", mode & 0o7777, entry.uid),
            ));
        }
        let sticky_dir = entry.is_dir() && mode & 0o1000 != 0;
        if (entry.is_file() || entry.is_dir())
            && mode & 0o002 != 0
            && !sticky_dir
            && self.ww_dirs.iter().any(|d| path.starts_with(d))
        {
            scan.report(Finding::at_path(
                "world_writable",
                path,
                format!(
                    "File '{}' is owned by uid {} and has written permissions to anyone.",
                    path.display(),
                    entry.uid
                ),
                format!("mode {:o} in a system directory", mode & 0o7777),
            ));
        }
        for known in &self.anywhere {
            if path.ends_with(&known.path) {
                scan.report(rootkit_finding(known, path));
            }
        }
    }

    fn nlink_meaningful(&mut self, dir: &Path, dev: u64) -> bool {
        if let Some((_, ok)) = self.fs_cache.iter().find(|(d, _)| *d == dev) {
            return *ok;
        }
        let ok = rustix::fs::statfs(dir)
            .map(|s| NLINK_COUNTS_SUBDIRS.contains(&(s.f_type as i64)))
            .unwrap_or(false);
        self.fs_cache.push((dev, ok));
        ok
    }

    /// Reads the directory again after a difference; reports it if it is still there, the same.
    fn recheck_links(&self, scan: &mut Scan<'_>, dir: &Path) {
        let Some(again) = list(scan, dir) else {
            return;
        };
        if !again.mismatch() {
            return;
        }
        scan.report(Finding::at_path(
            "hidden_file",
            dir,
            format!("Files hidden inside directory '{}'.", dir.display()),
            format!(
                "link count is {} but readdir returns {} subdirectories (expected link count {})",
                again.nlink,
                again.subdirs,
                again.subdirs + 2
            ),
        ));
    }
}

/// A directory as read: its link count and device, its entries with their `lstat`.
struct Listing {
    nlink: u64,
    dev: u64,
    subdirs: u64,
    entries: Vec<Entry>,
}

/// What the checks need of an entry's `lstat` (kept small: a directory's entries are held
/// while they are checked).
struct Entry {
    name: std::ffi::OsString,
    mode: u32,
    uid: u32,
    dev: u64,
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
    fn mismatch(&self) -> bool {
        self.nlink != self.subdirs + 2
    }
}

/// Reads a directory: `lstat` of it, then its entries (without the names a test hides).
fn list(scan: &Scan<'_>, dir: &Path) -> Option<Listing> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    let entries = std::fs::read_dir(dir).ok()?;
    let mut listing = Listing {
        nlink: meta.nlink(),
        dev: meta.dev(),
        subdirs: 0,
        entries: Vec::new(),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if hidden_by_test(scan, &name) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue; // removed meanwhile
        };
        if meta.is_dir() {
            listing.subdirs += 1;
        }
        if scan.memory().try_reserve(&mut listing.entries, 1).is_err() {
            // Too large to hold: no link count comparison for this directory.
            listing.nlink = listing.subdirs + 2;
            break;
        }
        listing.entries.push(Entry {
            name,
            mode: meta.mode(),
            uid: meta.uid(),
            dev: meta.dev(),
        });
    }
    Some(listing)
}

#[cfg(test)]
fn hidden_by_test(scan: &Scan<'_>, name: &OsStr) -> bool {
    scan.hide_from_readdir.is_some_and(|hide| hide(name))
}

#[cfg(not(test))]
fn hidden_by_test(_scan: &Scan<'_>, _name: &OsStr) -> bool {
    false
}
