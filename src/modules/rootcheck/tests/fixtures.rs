//! Fixture roots for the rootcheck tests.

use super::super::RootcheckConfig;
use std::path::{Path, PathBuf};

/// A configuration with every check off but those `enable` turns on, paced at 100 % (tests
/// should not wait), and no signature databases.
pub fn only(enable: impl FnOnce(&mut RootcheckConfig)) -> RootcheckConfig {
    let mut config = RootcheckConfig {
        enabled: true,
        cpu_share_percent: 100,
        check_pids: false,
        check_ports: false,
        check_sys: false,
        check_dev: false,
        check_if: false,
        check_modules: false,
        check_files: false,
        check_trojans: false,
        rootkit_files: PathBuf::from("/nonexistent/rootkit_files.txt"),
        rootkit_trojans: PathBuf::from("/nonexistent/rootkit_trojans.txt"),
        shallow_dirs: Vec::new(),
        ..RootcheckConfig::default()
    };
    enable(&mut config);
    config
}

/// Writes a file, creating its directory.
pub fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A copy of this host's `/proc` listing as a rootkit would present it: a directory per process
/// and per thread (`<pid>/task/<tid>`) but those in `hidden`, `self` naming this process, and
/// `sys/kernel/pid_max`.
pub fn fake_proc(dir: &Path, hidden: &[u32]) -> PathBuf {
    let root = dir.join("proc");
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if hidden.contains(&pid) {
            continue;
        }
        let task = root.join(pid.to_string()).join("task");
        std::fs::create_dir_all(&task).unwrap();
        for thread in std::fs::read_dir(entry.path().join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::create_dir(task.join(thread.file_name()));
        }
    }
    std::os::unix::fs::symlink(std::process::id().to_string(), root.join("self")).unwrap();
    write(
        &root.join("sys/kernel/pid_max"),
        &std::fs::read("/proc/sys/kernel/pid_max").unwrap(),
    );
    root
}
