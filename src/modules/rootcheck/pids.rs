//! Hidden processes: pids that answer `kill(pid, 0)`, `getpgid`, `getsid` or
//! `sched_getscheduler` but that the `/proc` listing leaves out.
//!
//! Not hidden, and so never reported: threads (their ids answer signals but are listed only
//! under `/proc/<pid>/task`), processes that started or exited between the listing and the probes
//! (every candidate is probed again against a fresh listing after a short pause), and processes
//! of other pid namespaces (they do not answer us). The check does not run when the `/proc` it
//! reads is not of our own pid namespace (its `self` is not us), nor, when the agent is not root,
//! on a `/proc` mounted with `hidepid` (others' processes answer but are not listed).

use super::scan::{room_for_one, Finding, Scan};
use std::path::Path;
use std::time::Duration;

/// Pause before a candidate is probed again.
const RECHECK_AFTER: Duration = Duration::from_millis(100);

/// Runs the hidden process check.
pub async fn check(scan: &mut Scan<'_>) {
    let proc_root = scan.config.proc_root.clone();
    if let Err(why) = own_namespace(&proc_root) {
        scan.skip(format!("pids: {why}"));
        return;
    }
    let pid_max = std::fs::read_to_string(proc_root.join("sys/kernel/pid_max"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .unwrap_or(32_768);
    let limit = match scan.config.max_pid {
        0 => pid_max,
        n => n.min(pid_max),
    };
    let listed = match listing(&proc_root, scan) {
        Ok(listed) => listed,
        Err(why) => {
            scan.skip(format!("pids: {why}"));
            return;
        }
    };
    let mut candidates: Vec<u32> = Vec::new();
    for pid in 1..limit {
        scan.pacer.tick().await;
        if listed.binary_search(&pid).is_ok() {
            continue;
        }
        if answers(pid).is_some() && room_for_one(scan.memory(), &mut candidates) {
            candidates.push(pid);
        }
    }
    drop(listed);
    scan.checked("pids", u64::from(limit.saturating_sub(1)));
    if candidates.is_empty() {
        return;
    }
    smol::Timer::after(RECHECK_AFTER).await;
    // A fresh listing and the threads of every listed process, for the second look.
    let listed = match listing(&proc_root, scan) {
        Ok(listed) => listed,
        Err(_) => return,
    };
    let threads = threads_of(&proc_root, &listed, scan).await;
    for pid in candidates {
        if listed.binary_search(&pid).is_ok() || threads.binary_search(&pid).is_ok() {
            continue;
        }
        if is_thread_by_status(&proc_root, pid, &listed) {
            continue;
        }
        let Some(calls) = answers(pid) else {
            continue; // exited meanwhile
        };
        let stat_ok = proc_root.join(pid.to_string()).exists();
        let how = if stat_ok {
            "listed by no readdir of /proc, though /proc/<pid> can be opened"
        } else {
            "absent from /proc"
        };
        scan.report(Finding {
            kind: "hidden_process",
            title: format!("Process '{pid}' hidden from /proc."),
            path: None,
            pid: Some(pid),
            port: None,
            details: format!("answers {calls} but is {how}"),
        });
    }
}

/// Whether `proc_root` is a `/proc` of our own pid namespace: its `self` must name us. Also
/// refuses a `hidepid` mount when we are not root.
fn own_namespace(proc_root: &Path) -> Result<(), String> {
    let me = std::process::id().to_string();
    let link = proc_root.join("self");
    let target =
        std::fs::read_link(&link).map_err(|e| format!("cannot read {}: {e}", link.display()))?;
    if target.as_os_str() != me.as_str() {
        return Err(format!(
            "{} is not of this pid namespace ({} names {}, we are {me})",
            proc_root.display(),
            link.display(),
            target.display()
        ));
    }
    if !rustix::process::geteuid().is_root() && hidepid(proc_root) {
        return Err(format!(
            "{} is mounted with hidepid and the agent is not root",
            proc_root.display()
        ));
    }
    Ok(())
}

/// Whether the proc file system at `proc_root` hides other users' processes.
fn hidepid(proc_root: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 3
            && fields[2] == "proc"
            && Path::new(fields[1]) == proc_root
            && fields[3]
                .split(',')
                .any(|o| o.starts_with("hidepid=") && !matches!(o, "hidepid=0" | "hidepid=off"))
    })
}

/// The numeric entries of `proc_root`, sorted.
fn listing(proc_root: &Path, scan: &Scan<'_>) -> Result<Vec<u32>, String> {
    let entries =
        std::fs::read_dir(proc_root).map_err(|e| format!("{}: {e}", proc_root.display()))?;
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        {
            if !room_for_one(scan.memory(), &mut pids) {
                return Err(format!(
                    "listing {}: memory budget full",
                    proc_root.display()
                ));
            }
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// The thread ids under `proc_root/<pid>/task` of every listed process, sorted.
async fn threads_of(proc_root: &Path, listed: &[u32], scan: &mut Scan<'_>) -> Vec<u32> {
    let mut tids = Vec::new();
    for pid in listed {
        scan.pacer.tick().await;
        let Ok(entries) = std::fs::read_dir(proc_root.join(pid.to_string()).join("task")) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Some(tid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            {
                if tid != *pid && room_for_one(scan.memory(), &mut tids) {
                    tids.push(tid);
                }
            }
        }
    }
    tids.sort_unstable();
    tids
}

/// Whether `proc_root/<pid>/status` says `pid` is a thread of a listed process (a thread that
/// started after the task directories were read).
fn is_thread_by_status(proc_root: &Path, pid: u32, listed: &[u32]) -> bool {
    let Ok(status) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .is_some_and(|tgid| tgid != pid && listed.binary_search(&tgid).is_ok())
}

/// Which calls say `pid` exists (success, or a refusal for lack of permission), if any.
pub fn answers(pid: u32) -> Option<&'static str> {
    let raw = libc::pid_t::try_from(pid).ok()?;
    let exists = |rc: libc::c_int| {
        rc >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    };
    // SAFETY (each call): it takes a pid by value and touches no memory of ours; signal 0 only
    // checks that the process exists and may be signalled. errno is read right after each call.
    if exists(unsafe { libc::kill(raw, 0) }) {
        return Some("kill(pid, 0)");
    }
    if exists(unsafe { libc::getpgid(raw) }) {
        return Some("getpgid");
    }
    if exists(unsafe { libc::getsid(raw) }) {
        return Some("getsid");
    }
    if exists(unsafe { libc::sched_getscheduler(raw) }) {
        return Some("sched_getscheduler");
    }
    None
}
