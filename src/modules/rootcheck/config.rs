//! `[modules.rootcheck]`: which checks run, where they look, and how gently.
//!
//! ```toml
//! [modules.rootcheck]
//! enabled = true
//! interval_secs = 43200          # 12 h, as Wazuh's rootcheck `frequency`
//! cpu_share_percent = 20         # pauses between probe batches keep the scan under this share
//! # bpf_bind_guard = true        # port sweep through a cgroup BPF bind guard (false: no BPF)
//! # proc_root = "/proc"          # roots a test (or a chroot) can point elsewhere
//! # sys_root = "/sys"
//! # dev_root = "/dev"
//! # root = "/"                   # the file system the file checks and signatures look in
//! # rootkit_files = "/etc/gatewatch/rootcheck/rootkit_files.txt"
//! # rootkit_trojans = "/etc/gatewatch/rootcheck/rootkit_trojans.txt"
//! ```

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the rootkit and anomaly detection module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RootcheckConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 1 MiB (a scan holds one directory listing per level of
    /// the walk, the signature lists and one 64 KiB read buffer).
    pub budget_bytes: usize,
    /// Seconds between scans. Default 43200 (12 h), as Wazuh's rootcheck `frequency`.
    pub interval_secs: u64,
    /// Scan as soon as the agent starts. Default true.
    pub scan_on_start: bool,
    /// Share of one CPU a scan may use, in percent (1–100). After each batch of probes the scan
    /// sleeps (on a timer, the executor keeps running) for as long as the batch took in CPU time
    /// times `(100 - share) / share`. Default 20.
    pub cpu_share_percent: u8,
    /// Probes (pids, ports, files) per batch between two pauses. Default 512.
    pub probe_batch: u32,
    /// Where `/proc` is. Default `/proc`.
    pub proc_root: PathBuf,
    /// Where `/sys` is. Default `/sys`.
    pub sys_root: PathBuf,
    /// Where `/dev` is. Default `/dev`.
    pub dev_root: PathBuf,
    /// The file system root under which `sys_dirs`, `bin_dirs`, the expected directories and the
    /// signature paths are taken. Default `/`.
    pub root: PathBuf,
    /// Look for processes that answer `kill(pid, 0)`, `getpgid`, `getsid` or
    /// `sched_getscheduler` but are not listed in `proc_root`. Default true.
    pub check_pids: bool,
    /// Highest pid probed; 0 = `proc_root/sys/kernel/pid_max`. Default 0.
    pub max_pid: u32,
    /// Look for TCP/UDP ports that cannot be bound (on 0.0.0.0) though no socket in
    /// `proc_root/net/{tcp,tcp6,udp,udp6}` holds them. Default true.
    pub check_ports: bool,
    /// Probe ports through the bind guard: a small cgroup BPF program, attached for the length
    /// of the sweep, that refuses the probe sockets' binds after the kernel's conflict check, so
    /// one socket serves every port (about a fifth of the CPU). Needs root, cgroup v2 and Linux
    /// 5.8; where it cannot be attached the sweep makes a socket per free port. Set false where
    /// loading BPF programs is not wanted. Default true.
    pub bpf_bind_guard: bool,
    /// Walk `sys_dirs` for hidden files (directory link counts against the subdirectories
    /// listed), SUID/SGID files outside `suid_dirs`, world-writable files in
    /// `world_writable_dirs`, and the `*` names of the rootkit files database. Default true.
    pub check_sys: bool,
    /// Look for regular or hidden files under `dev_root`. Default true.
    pub check_dev: bool,
    /// Look for promiscuous interfaces (`sys_root/class/net/*/flags`). Default true.
    pub check_if: bool,
    /// Compare `proc_root/modules` with `sys_root/module`. Default true.
    pub check_modules: bool,
    /// Look for the files of the rootkit files database. Default true.
    pub check_files: bool,
    /// Look for the strings of the trojans database in the binaries of `bin_dirs`. Default true.
    pub check_trojans: bool,
    /// Rootkit files database (Wazuh's `rootkit_files.txt` format). Default
    /// `/etc/gatewatch/rootcheck/rootkit_files.txt`.
    pub rootkit_files: PathBuf,
    /// Trojaned binaries database (Wazuh's `rootkit_trojans.txt` format). Default
    /// `/etc/gatewatch/rootcheck/rootkit_trojans.txt`.
    pub rootkit_trojans: PathBuf,
    /// Where the trojans database's binaries are looked for. Default `/bin`, `/sbin`,
    /// `/usr/bin`, `/usr/sbin`.
    pub bin_dirs: Vec<PathBuf>,
    /// Directories walked by the file checks (one file system each: mounts below are not
    /// entered). Default: the system directories of a gateway (`/bin`, `/sbin`, `/lib`, `/usr/bin`,
    /// `/usr/sbin`, `/usr/lib`, `/usr/libexec`, `/usr/local`, `/etc`, `/boot`, `/opt`); see also
    /// `shallow_dirs`. `/usr/share` and data directories are left out to keep a scan short.
    pub sys_dirs: Vec<PathBuf>,
    /// Directories walked only to `shallow_depth` levels (large scratch trees). Default `/tmp`,
    /// `/var/tmp`, `/dev/shm`, `/root`, `/home`.
    pub shallow_dirs: Vec<PathBuf>,
    /// Depth of the walk of `shallow_dirs`. Default 3.
    pub shallow_depth: u32,
    /// Directories where SUID/SGID files are expected (and not reported). Default `/bin`,
    /// `/sbin`, `/usr/bin`, `/usr/sbin`, `/usr/lib`, `/usr/lib64`, `/usr/libexec`, `/lib`,
    /// `/lib64`.
    pub suid_dirs: Vec<PathBuf>,
    /// Directories whose files must not be world-writable (symlinks and sticky directories
    /// excepted). Default `/bin`, `/sbin`, `/lib`, `/usr/bin`, `/usr/sbin`, `/usr/lib`,
    /// `/usr/libexec`, `/etc`, `/boot`.
    pub world_writable_dirs: Vec<PathBuf>,
    /// Paths never reported by any check (e.g. a vendor's SUID helper). Default empty.
    pub ignore: Vec<PathBuf>,
    /// Names under `dev_root` allowed to be regular or hidden files (Wazuh's list plus container
    /// runtimes'). Default: `MAKEDEV`, `README.MAKEDEV`, `MAKEDEV.README`, `MAKEDEV.local`,
    /// `.udevdb`, `.udev.tdb`, `.initramfs-tools`, `.initramfs`, `.udev`, `.lxc`, `.lxc-boot-id`,
    /// `.lxd-mounts`, `oprofile`, `fd`, `cgroup`, `termination-log`, `shm`, `mqueue`,
    /// `hugepages`, `.mdadm`, `.blkid.tab`, `.blkid.tab.old`.
    pub dev_allowed: Vec<String>,
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

impl Default for RootcheckConfig {
    fn default() -> Self {
        RootcheckConfig {
            enabled: false,
            budget_bytes: 1024 * 1024,
            interval_secs: 43_200,
            scan_on_start: true,
            cpu_share_percent: 20,
            probe_batch: 512,
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
            root: PathBuf::from("/"),
            check_pids: true,
            max_pid: 0,
            check_ports: true,
            bpf_bind_guard: true,
            check_sys: true,
            check_dev: true,
            check_if: true,
            check_modules: true,
            check_files: true,
            check_trojans: true,
            rootkit_files: PathBuf::from("/etc/gatewatch/rootcheck/rootkit_files.txt"),
            rootkit_trojans: PathBuf::from("/etc/gatewatch/rootcheck/rootkit_trojans.txt"),
            bin_dirs: paths(&["/bin", "/sbin", "/usr/bin", "/usr/sbin"]),
            sys_dirs: paths(&[
                "/bin",
                "/sbin",
                "/lib",
                "/usr/bin",
                "/usr/sbin",
                "/usr/lib",
                "/usr/libexec",
                "/usr/local",
                "/etc",
                "/boot",
                "/opt",
            ]),
            shallow_dirs: paths(&["/tmp", "/var/tmp", "/dev/shm", "/root", "/home"]),
            shallow_depth: 3,
            suid_dirs: paths(&[
                "/bin",
                "/sbin",
                "/usr/bin",
                "/usr/sbin",
                "/usr/lib",
                "/usr/lib64",
                "/usr/libexec",
                "/lib",
                "/lib64",
            ]),
            world_writable_dirs: paths(&[
                "/bin",
                "/sbin",
                "/lib",
                "/usr/bin",
                "/usr/sbin",
                "/usr/lib",
                "/usr/libexec",
                "/etc",
                "/boot",
            ]),
            ignore: Vec::new(),
            dev_allowed: [
                "MAKEDEV",
                "README.MAKEDEV",
                "MAKEDEV.README",
                "MAKEDEV.local",
                ".udevdb",
                ".udev.tdb",
                ".initramfs-tools",
                ".initramfs",
                ".udev",
                ".lxc",
                ".lxc-boot-id",
                ".lxd-mounts",
                "oprofile",
                "fd",
                "cgroup",
                "termination-log",
                "shm",
                "mqueue",
                "hugepages",
                ".mdadm",
                ".blkid.tab",
                ".blkid.tab.old",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}
