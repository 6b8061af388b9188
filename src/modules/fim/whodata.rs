//! Who-data: fanotify marks on the who-data directories; each modification event carries the
//! writer's pid, which is resolved at once through `/proc` into user, process and parent.
//!
//! fanotify needs `CAP_SYS_ADMIN`; where it is refused (not root, kernel without fanotify) the
//! module reports `fim.whodata_unavailable` and the directories stay in plain realtime. See
//! `docs/adr/006-fim-whodata.md` for why fanotify rather than the audit netlink interface.

use super::attrs::Names;
use async_io::Async;
use gatewatch_proto::fim::WhoData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Bytes read from fanotify at once.
const READ_BUFFER: usize = 4096;
/// Size of `struct fanotify_event_metadata`.
const METADATA_LEN: usize = 24;
/// Events asked for: content writes (the pid is the writer's).
const MASK: u64 = libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_EVENT_ON_CHILD;

/// The fanotify group.
pub struct Whodata {
    fd: Async<OwnedFd>,
    buf: Vec<u8>,
    own_pid: i32,
}

impl Whodata {
    /// A notification-class fanotify group; the error says why who-data cannot run here.
    pub fn open() -> Result<Whodata, String> {
        let flags = libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK;
        let event_flags = (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32;
        // SAFETY: plain system call; a non-negative result is a new descriptor we own.
        let raw = unsafe { libc::fanotify_init(flags, event_flags) };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) => format!("fanotify needs CAP_SYS_ADMIN (run as root): {e}"),
                Some(libc::ENOSYS) => format!("the kernel has no fanotify: {e}"),
                _ => format!("fanotify_init failed: {e}"),
            });
        }
        // SAFETY: `raw` is a valid descriptor returned above and owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        let fd = Async::new(owned).map_err(|e| format!("cannot register fanotify: {e}"))?;
        Ok(Whodata {
            fd,
            buf: vec![0; READ_BUFFER],
            own_pid: std::process::id() as i32,
        })
    }

    /// Marks directory `dir`: writes to its files are reported.
    pub fn mark(&self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
        // SAFETY: the descriptor is ours, `c` is a valid NUL-terminated string.
        let rc = unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                libc::FAN_MARK_ADD,
                MASK,
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

    /// Reads the queued events; calls `found` with each written path and its writer.
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
            let mut at = 0;
            let n = n as usize;
            while at + METADATA_LEN <= n {
                let field = |off: usize, len: usize| &self.buf[at + off..at + off + len];
                let event_len =
                    u32::from_ne_bytes(field(0, 4).try_into().unwrap_or([0; 4])) as usize;
                let fd = i32::from_ne_bytes(field(16, 4).try_into().unwrap_or([0; 4]));
                let pid = i32::from_ne_bytes(field(20, 4).try_into().unwrap_or([0; 4]));
                if event_len < METADATA_LEN {
                    return;
                }
                at += event_len;
                if fd < 0 {
                    continue;
                }
                // SAFETY: the kernel gave us this descriptor; we own it and close it here.
                let file = unsafe { OwnedFd::from_raw_fd(fd) };
                let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
                else {
                    continue;
                };
                drop(file);
                if pid == self.own_pid || pid <= 0 {
                    continue;
                }
                found(path, who(pid as u32, names));
            }
        }
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
