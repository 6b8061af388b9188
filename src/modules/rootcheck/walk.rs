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

use super::scan::{room_for_one, Finding, Scan};
use super::signatures::{rootkit_finding, RootkitFile};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStringExt;
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
            // Whether the directory's entries are in an expected SUID directory, in a directory
            // that must not be world-writable (decided once per directory, not per file). Where
            // neither check can report, entries are not `stat`ed: the listing's types suffice.
            let suid_ok = self.suid_dirs.iter().any(|d| dir.starts_with(d));
            let ww_watched = self.ww_dirs.iter().any(|d| dir.starts_with(d));
            let Some(listing) = list(scan, &dir, !suid_ok || ww_watched) else {
                continue;
            };
            if listing.dev != device {
                continue; // another file system is mounted here
            }
            for entry in &listing.entries {
                scan.pacer.tick().await;
                self.examined += 1;
                let path = dir.join(&entry.name);
                if entry.stated {
                    self.check_entry(scan, &path, entry, suid_ok, ww_watched);
                } else if entry.is_dir() && self.ww_dirs.contains(&path) {
                    // A listed world-writable-checked directory met inside a start directory.
                    if let Ok(meta) = std::fs::symlink_metadata(&path) {
                        let stated = Entry {
                            name: entry.name.clone(),
                            mode: meta.mode(),
                            uid: meta.uid(),
                            stated: true,
                        };
                        self.check_entry(scan, &path, &stated, suid_ok, true);
                    }
                }
                for known in &self.anywhere {
                    if entry.name == *known.0 && path.ends_with(&known.1.path) {
                        scan.report(rootkit_finding(known.1, &path));
                    }
                }
                if entry.is_dir()
                    && depth + 1 < max_depth
                    && room_for_one(scan.memory(), &mut stack)
                {
                    stack.push((path, depth + 1));
                }
            }
            if listing.mismatch() {
                let first = (listing.nlink, listing.subdirs);
                drop(listing);
                self.recheck_links(scan, &dir, !suid_ok || ww_watched, first)
                    .await;
            }
        }
    }

    fn check_entry(
        &self,
        scan: &mut Scan<'_>,
        path: &Path,
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
        if (entry.is_file() || entry.is_dir()) && mode & 0o002 != 0 && !sticky_dir && ww_watched {
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
    }

    /// A directory whose entries change (e.g. `/tmp` while programs make temporary directories)
    /// can show a difference for a moment: it is read again after a pause, and reported only if
    /// the same difference (same link count, same subdirectories listed) is still there.
    async fn recheck_links(
        &self,
        scan: &mut Scan<'_>,
        dir: &Path,
        stat_entries: bool,
        first: (u64, u64),
    ) {
        smol::Timer::after(std::time::Duration::from_millis(50)).await;
        let Some(again) = list(scan, dir, stat_entries) else {
            return;
        };
        if !again.mismatch() || (again.nlink, again.subdirs) != first {
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
    /// `statfs` type, read only when the counts disagree.
    fs_type: Option<i64>,
    subdirs: u64,
    entries: Vec<Entry>,
}

/// What the checks need of an entry's `lstat` (kept small: a directory's entries are held
/// while they are checked).
struct Entry {
    name: std::ffi::OsString,
    /// The file type bits, and the permission bits when `stated`.
    mode: u32,
    uid: u32,
    /// Whether `mode` and `uid` come from `lstat` (else only the type, from the listing).
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

/// Reads a directory: `fstat` of it, then its entries (without the names a test hides), with
/// `stat_entries` each `lstat`ed relative to the open directory (no path lookup from the root
/// for every file); without, only those whose type the listing does not give.
fn list(scan: &Scan<'_>, dir: &Path, stat_entries: bool) -> Option<Listing> {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let stat = rustix::fs::fstat(&fd).ok()?;
    let mut listing = Listing {
        nlink: stat.st_nlink as u64,
        dev: stat.st_dev as u64,
        fs_type: None,
        subdirs: 0,
        entries: Vec::new(),
    };
    // The stream takes the descriptor (`read_from` would open the directory a second time).
    let mut entries = rustix::fs::Dir::new(fd).ok()?;
    while let Some(entry) = entries.read() {
        let Ok(entry) = entry else {
            break;
        };
        let raw = entry.file_name();
        let bytes = raw.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let name = std::ffi::OsString::from_vec(bytes.to_vec());
        if hidden_by_test(scan, &name) {
            continue;
        }
        let listed_type = entry.file_type();
        let entry = if stat_entries || listed_type == rustix::fs::FileType::Unknown {
            let Ok(meta) = entries
                .fd()
                .and_then(|fd| rustix::fs::statat(fd, raw, AtFlags::SYMLINK_NOFOLLOW))
            else {
                continue; // removed meanwhile
            };
            Entry {
                name,
                mode: meta.st_mode,
                uid: meta.st_uid,
                stated: true,
            }
        } else {
            Entry {
                name,
                mode: listed_type.as_raw_mode(),
                uid: 0,
                stated: false,
            }
        };
        if entry.is_dir() {
            listing.subdirs += 1;
        }
        if !room_for_one(scan.memory(), &mut listing.entries) {
            // Too large to hold: no link count comparison for this directory.
            listing.nlink = u64::MAX;
            break;
        }
        listing.entries.push(entry);
    }
    if listing.nlink != listing.subdirs + 2 && listing.nlink != u64::MAX {
        // `f_type` is i64 on some targets, u32 or i32 on others (32-bit ARM, where F2FS's magic
        // is negative as an i32): compared as its low 32 bits.
        #[allow(clippy::unnecessary_cast)]
        let fs_type = entries
            .statfs()
            .ok()
            .map(|s| (s.f_type as i64) & 0xFFFF_FFFF);
        listing.fs_type = fs_type;
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
