//! Running processes, from `/proc/<pid>/{stat,status,statm,cmdline}`, one at a time.

use super::root::{read_small, Root};
use gatewatch_proto::inventory::Process;
use std::collections::HashMap;
use std::path::PathBuf;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on every Linux port we target).
const USER_HZ: u64 = 100;

/// User or group names by id, from `passwd` or `group` under the root.
#[derive(Debug, Default, Clone)]
pub struct Names(HashMap<u32, String>);

impl Names {
    /// Reads `name:x:id:…` lines of `abs` (e.g. `/etc/passwd`).
    pub fn load(root: &Root, abs: &str) -> Names {
        let text = root.read(abs).unwrap_or_default();
        Names(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((id, name.to_string()))
                })
                .collect(),
        )
    }

    /// The name of `id`, or the id itself.
    pub fn name(&self, id: u32) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }
}

/// The processes under a root, as an iterator (one `/proc/<pid>` read per step).
pub struct Processes {
    dirs: std::vec::IntoIter<(u32, PathBuf)>,
    users: Names,
    groups: Names,
    boot_time: u64,
}

impl Processes {
    /// Lists the pids now; each is read when the iterator reaches it (a process that exited
    /// meanwhile is skipped).
    pub fn new(root: &Root) -> Processes {
        let proc = root.path("/proc");
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir(&proc)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let pid = e.file_name().to_str()?.parse().ok()?;
                        Some((pid, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort_by_key(|(pid, _)| *pid);
        let boot_time = root
            .read("/proc/stat")
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        Processes {
            dirs: dirs.into_iter(),
            users: Names::load(root, "/etc/passwd"),
            groups: Names::load(root, "/etc/group"),
            boot_time,
        }
    }
}

impl Iterator for Processes {
    type Item = Process;

    fn next(&mut self) -> Option<Process> {
        loop {
            let (pid, dir) = self.dirs.next()?;
            if let Some(p) = read_process(pid, &dir, self) {
                return Some(p);
            }
        }
    }
}

fn read_process(pid: u32, dir: &std::path::Path, ctx: &Processes) -> Option<Process> {
    let stat = read_small(&dir.join("stat"))?;
    // `pid (comm) state …`: the name may hold spaces and parentheses; it ends at the last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let status = read_small(&dir.join("status")).unwrap_or_default();
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (uids, gids) = (ids("Uid:"), ids("Gid:"));
    let id = |list: &[u32], i: usize| list.get(i).copied().unwrap_or(0);
    let vm_size = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let statm = read_small(&dir.join("statm")).unwrap_or_default();
    let pages: Vec<u64> = statm
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let page = |i: usize| pages.get(i).copied().unwrap_or(0);
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let cmd = args.next().unwrap_or_default();
    let argvs = args.collect::<Vec<_>>().join(" ");
    Some(Process {
        pid,
        ppid: num(1) as u32,
        name,
        cmd,
        argvs,
        state: f.first().unwrap_or(&"").to_string(),
        euser: ctx.users.name(id(&uids, 1)),
        ruser: ctx.users.name(id(&uids, 0)),
        suser: ctx.users.name(id(&uids, 2)),
        egroup: ctx.groups.name(id(&gids, 1)),
        rgroup: ctx.groups.name(id(&gids, 0)),
        sgroup: ctx.groups.name(id(&gids, 2)),
        fgroup: ctx.groups.name(id(&gids, 3)),
        priority: num(15),
        nice: num(16),
        size: page(0),
        vm_size,
        resident: page(1),
        share: page(2),
        utime: num(11) as u64,
        stime: num(12) as u64,
        start_time: ctx.boot_time + num(19) as u64 / USER_HZ,
        pgrp: num(2),
        session: num(3),
        nlwp: num(17),
        tgid: status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(i64::from(pid)),
        tty: num(4),
        processor: num(36),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_the_name_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proc/42");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(p.join("cmdline"), b"/usr/bin/odd\0--flag\0x\0").unwrap();
        std::fs::write(p.join("status"), "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n").unwrap();
        std::fs::write(dir.path().join("proc/stat"), "cpu 1\nbtime 1700000000\n").unwrap();
        let procs: Vec<_> = Processes::new(&Root::new(dir.path())).collect();
        assert_eq!(procs.len(), 1);
        let p = &procs[0];
        assert_eq!((p.pid, p.ppid, p.name.as_str()), (42, 1, "my (odd) name"));
        assert_eq!(
            (p.cmd.as_str(), p.argvs.as_str()),
            ("/usr/bin/odd", "--flag x")
        );
        assert_eq!((p.utime, p.stime, p.start_time), (7, 3, 1_700_000_005));
        assert_eq!(p.processor, 1);
    }
}
