//! Who-data: fanotify marks on the who-data directories; each event carries the pid of the
//! process that made the change, resolved at once through `/proc` into user, process and parent.
//!
//! Two modes. Where the kernel reports directory handles and names (`FAN_REPORT_DFID_NAME`,
//! Linux 5.9+), every kind of change is named: create, delete, move, attributes, writes; the
//! directory is found by its file handle, recorded when it was marked. Elsewhere, content writes
//! only (`FAN_MODIFY`, with an open descriptor of the file); the other changes stay plain realtime.
//!
//! fanotify needs `CAP_SYS_ADMIN`; where it is refused (not root, kernel without fanotify) the
//! module reports `fim.whodata_unavailable` and the directories stay in plain realtime. See
//! `docs/adr/006-fim-whodata.md` for why fanotify rather than the audit netlink interface.

use super::attrs::Names;
use crate::runtime::budget::MemoryAccount;
use async_io::Async;
use gatewatch_proto::fim::WhoData;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Bytes read from fanotify at once.
const READ_BUFFER: usize = 4096;
/// Size of `struct fanotify_event_metadata`.
const METADATA_LEN: usize = 24;
/// Largest file handle (`MAX_HANDLE_SZ`).
const MAX_HANDLE: usize = 128;
/// Content writes (both modes).
const WRITES: u64 = libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_EVENT_ON_CHILD;
/// Everything else, with directory handles and names.
const NAMED: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

/// The fanotify group.
pub struct Whodata {
    fd: Async<OwnedFd>,
    buf: Vec<u8>,
    own_pid: i32,
    /// `Some` in the named mode: (handle type and bytes, directory), sorted by handle.
    dirs: Option<Vec<(Vec<u8>, PathBuf)>>,
    memory: MemoryAccount,
}

fn init(flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
    let flags = flags | libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
    // SAFETY: plain system call; a non-negative result is a new descriptor we own.
    let raw = unsafe { libc::fanotify_init(flags, event_flags) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid descriptor returned above and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The file handle of `dir` (type, then bytes), as fanotify reports it for events in `dir`.
fn handle_of(dir: &Path) -> std::io::Result<Vec<u8>> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }
    let mut raw = [0u32; 2 + MAX_HANDLE / 4];
    raw[0] = MAX_HANDLE as u32;
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `raw` is an aligned `file_handle` with room for `MAX_HANDLE` bytes.
    let rc = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            raw.as_mut_ptr().cast(),
            &mut mount_id,
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let len = (raw[0] as usize).min(MAX_HANDLE);
    let bytes: Vec<u8> = raw.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes[4..8 + len].to_vec())
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Whodata {
    /// A notification-class fanotify group (the named mode when the kernel has it); the error
    /// says why who-data cannot run here. Its table of directories grows within `memory`.
    pub fn open(memory: MemoryAccount) -> Result<Whodata, String> {
        // Since Linux 5.13 an unprivileged group may be created, but its events carry pid 0:
        // without CAP_SYS_ADMIN there is nobody to name.
        use rustix::thread::{capabilities, CapabilitySet};
        let caps = capabilities(None).map_err(|e| format!("cannot read capabilities: {e}"))?;
        if !caps.effective.contains(CapabilitySet::SYS_ADMIN) {
            return Err(
                "fanotify names the writer only with CAP_SYS_ADMIN (run the agent as root)".into(),
            );
        }
        let (owned, named) = match init(libc::FAN_REPORT_DFID_NAME) {
            Ok(fd) => (fd, true),
            // EINVAL: a kernel before 5.9; EPERM is answered below.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (init(0).map_err(explain)?, false),
            Err(e) => return Err(explain(e)),
        };
        let fd = Async::new(owned).map_err(|e| format!("cannot register fanotify: {e}"))?;
        Ok(Whodata {
            fd,
            buf: vec![0; READ_BUFFER],
            own_pid: std::process::id() as i32,
            dirs: named.then(Vec::new),
            memory,
        })
    }

    /// Whether every kind of change is named (not only content writes).
    pub fn names_every_change(&self) -> bool {
        self.dirs.is_some()
    }

    /// Marks directory `dir`: changes to its entries are reported.
    pub fn mark(&mut self, dir: &Path) -> std::io::Result<()> {
        let mask = if self.dirs.is_some() {
            WRITES | NAMED
        } else {
            WRITES
        };
        if let Some(dirs) = self.dirs.as_mut() {
            let handle = handle_of(dir)?;
            if let Err(i) = dirs.binary_search_by(|(h, _)| h.as_slice().cmp(&handle)) {
                let more = dirs.len().max(16);
                if dirs.len() == dirs.capacity()
                    && self.memory.try_reserve(dirs, more).is_err()
                    && self.memory.try_reserve(dirs, 1).is_err()
                {
                    return Err(std::io::Error::other("no room in the memory budget"));
                }
                dirs.insert(i, (handle, dir.to_path_buf()));
            }
        }
        let c = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
        // SAFETY: the descriptor is ours, `c` is a valid NUL-terminated string.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD,
                mask,
                libc::AT_FDCWD,
                c.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until events can be read.
    pub async fn readable(&self) {
        let _ = self.fd.readable().await;
    }

    /// Reads the queued events; calls `found` with each changed path and who changed it.
    pub fn read(&mut self, names: &mut Names, mut found: impl FnMut(PathBuf, WhoData)) {
        loop {
            // SAFETY: reading into our own buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                )
            };
            if n <= 0 {
                return;
            }
            let n = n as usize;
            let mut at = 0;
            while at + METADATA_LEN <= n {
                let event_len = ne_u32(&self.buf, at).unwrap_or(0) as usize;
                if event_len < METADATA_LEN || at + event_len > n {
                    return;
                }
                let event = &self.buf[at..at + event_len];
                at += event_len;
                let fd = ne_u32(event, 16).unwrap_or(u32::MAX) as i32;
                let pid = ne_u32(event, 20).unwrap_or(0) as i32;
                let path = if fd >= 0 {
                    // SAFETY: the kernel gave us this descriptor; we own it and close it here.
                    let file = unsafe { OwnedFd::from_raw_fd(fd) };
                    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
                } else {
                    self.named_path(&event[METADATA_LEN..])
                };
                let Some(path) = path else {
                    continue;
                };
                if pid != self.own_pid && pid > 0 {
                    found(path, who(pid as u32, names));
                }
            }
        }
    }

    /// The path a named event's information records stand for: its directory (found by handle)
    /// joined with the entry's name. `None` for the directory itself or an unknown directory.
    fn named_path(&self, mut info: &[u8]) -> Option<PathBuf> {
        let dirs = self.dirs.as_ref()?;
        // Records: { u8 type; u8 pad; u16 len; } then, for DFID_NAME: fsid (8 bytes),
        // { u32 handle_bytes; i32 handle_type; handle }, the name NUL-terminated.
        while info.len() >= 4 {
            let len = u16::from_ne_bytes([info[2], info[3]]) as usize;
            if len < 4 || len > info.len() {
                return None;
            }
            let (record, rest) = info.split_at(len);
            info = rest;
            if record[0] != libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
                continue;
            }
            let handle_bytes = ne_u32(record, 12)? as usize;
            let handle = record.get(16..20 + handle_bytes)?;
            let name = record.get(20 + handle_bytes..)?;
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name.is_empty() || name == b"." {
                return None;
            }
            let i = dirs
                .binary_search_by(|(h, _)| h.as_slice().cmp(handle))
                .ok()?;
            return Some(dirs[i].1.join(OsStr::from_bytes(name)));
        }
        None
    }
}

fn explain(e: std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => format!("fanotify needs CAP_SYS_ADMIN (run as root): {e}"),
        Some(libc::ENOSYS) => format!("the kernel has no fanotify: {e}"),
        _ => format!("fanotify_init failed: {e}"),
    }
}

/// The user and process behind `pid`, read from `/proc` (fields empty if it already exited).
pub fn who(pid: u32, names: &mut Names) -> WhoData {
    let (name, ppid, uid) = status(pid);
    let (parent_name, _, _) = status(ppid);
    WhoData {
        user_id: uid,
        user_name: names.user(uid),
        process_id: pid,
        process_name: name,
        path: exe(pid),
        ppid,
        parent_name,
        parent_path: exe(ppid),
    }
}

/// (name, parent pid, real uid) from `/proc/<pid>/status`.
fn status(pid: u32) -> (String, u32, u32) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (String::new(), 0, 0);
    };
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let first_number = |v: String| v.split_whitespace().next().and_then(|n| n.parse().ok());
    (
        field("Name:"),
        first_number(field("PPid:")).unwrap_or(0),
        first_number(field("Uid:")).unwrap_or(0),
    )
}

fn exe(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_names_this_process_and_its_parent() {
        let me = who(std::process::id(), &mut Names::default());
        assert_eq!(me.process_id, std::process::id());
        assert_eq!(me.user_id, rustix::process::getuid().as_raw());
        assert!(!me.process_name.is_empty());
        assert_eq!(me.path, std::env::current_exe().unwrap().to_string_lossy());
        assert!(me.ppid > 0 && !me.parent_name.is_empty());
    }
}
