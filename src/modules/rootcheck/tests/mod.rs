//! Rootcheck tests: fixture roots that present a compromised host's inconsistencies (a `/proc`
//! missing a live process, a `/proc/net/tcp` missing a bound port, a directory whose `readdir`
//! hides a subdirectory, files in `/dev`), this machine as a clean host, and Wazuh's databases.

mod fixtures;

use super::scan::{Finding, Scan};
use super::signatures::{parse_rootkit_files, parse_trojans};
use super::state::Seen;
use super::{scan_events, RootcheckConfig};
use crate::runtime::budget::account_for;
use crate::runtime::MemoryAccount;
use fixtures::{fake_proc, only, write};
use gatewatch_proto::rootcheck::RootcheckEvent;
use std::path::{Path, PathBuf};

fn memory() -> MemoryAccount {
    MemoryAccount::new(account_for("test-rootcheck").unwrap(), 8 * 1024 * 1024)
}

fn run(config: &RootcheckConfig) -> Vec<Finding> {
    let memory = memory();
    smol::block_on(Scan::new(config, &memory).run()).findings
}

fn wazuh_db(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/wazuh-4.14.7/rootcheck/"
    ))
    .join(name)
}

fn shipped_db(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/rootcheck/")).join(name)
}

#[test]
fn hidden_process_is_found() {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start a child process");
    let hidden = child.id();
    let dir = tempfile::tempdir().unwrap();
    let proc_root = fake_proc(dir.path(), &[hidden]);
    let config = RootcheckConfig {
        proc_root,
        ..only(|c| c.check_pids = true)
    };
    let findings = run(&config);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        findings
            .iter()
            .any(|f| f.kind == "hidden_process" && f.pid == Some(hidden)),
        "the child {hidden} is hidden from the fixture /proc: {findings:#?}"
    );
    // This test process has several threads (the harness's): answering signals, listed only
    // under task/, they are not hidden processes.
    let own_threads: Vec<u32> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    assert!(
        !findings
            .iter()
            .any(|f| f.pid.is_some_and(|p| own_threads.contains(&p))),
        "threads are not reported: {findings:#?}"
    );
}

/// Binds a TCP listener and a UDP socket, leaves both out of a fixture of `/proc/net` (what a
/// rootkit's hook shows), and checks that the port check finds both, with the bind guard or
/// with a socket per free port.
fn hidden_ports_are_found(bpf_bind_guard: bool) {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let hidden = [
        ("tcp", listener.local_addr().unwrap().port()),
        ("udp", udp.local_addr().unwrap().port()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let proc_root = dir.path().join("proc");
    std::fs::create_dir_all(proc_root.join("net")).unwrap();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let real = std::fs::read_to_string(Path::new("/proc/net").join(table)).unwrap();
        let kept: String = real
            .lines()
            .filter(|l| {
                !hidden.iter().any(|(proto, port)| {
                    table == *proto
                        && l.split_whitespace()
                            .nth(1)
                            .is_some_and(|a| a.ends_with(&format!(":{port:04X}")))
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        write(&proc_root.join("net").join(table), kept.as_bytes());
    }
    let config = RootcheckConfig {
        proc_root,
        bpf_bind_guard,
        ..only(|c| c.check_ports = true)
    };
    let memory = memory();
    let scan = Scan::new(&config, &memory);
    let findings = smol::block_on(scan.run()).findings;
    drop((listener, udp));
    for (proto, port) in hidden {
        assert!(
            findings
                .iter()
                .any(|f| f.kind == "hidden_port" && f.port == Some((proto, port))),
            "{proto} port {port} is bound but missing from the fixture: {findings:#?}"
        );
    }
}

#[test]
fn hidden_port_is_found() {
    hidden_ports_are_found(true);
}

#[test]
fn hidden_port_is_found_without_the_bind_guard() {
    hidden_ports_are_found(false);
}

/// A directory with subdirectories `a`, `b` and `.kit`, on a file system whose link counts count
/// subdirectories (the temporary directory, or tmpfs in /dev/shm).
fn directory_with_subdirs() -> tempfile::TempDir {
    for base in [std::env::temp_dir(), PathBuf::from("/dev/shm")] {
        let Ok(dir) = tempfile::tempdir_in(&base) else {
            continue;
        };
        for sub in ["a", "b", ".kit"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        if std::fs::metadata(dir.path())
            .map(|m| std::os::unix::fs::MetadataExt::nlink(&m))
            .ok()
            == Some(5)
        {
            return dir;
        }
    }
    panic!("no temporary file system here counts subdirectories in link counts");
}

#[test]
fn hidden_file_is_found() {
    let dir = directory_with_subdirs();
    let config = RootcheckConfig {
        sys_dirs: vec![dir.path().to_path_buf()],
        ..only(|c| c.check_sys = true)
    };
    let memory = memory();
    let mut scan = Scan::new(&config, &memory);
    // What a rootkit hooking getdents does: the name is left out of the listing, while the
    // directory's real link count (from the file system) still counts it.
    scan.hide_from_readdir = Some(|name| name == ".kit");
    let findings = smol::block_on(scan.run()).findings;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].kind, "hidden_file");
    assert_eq!(
        findings[0].path.as_deref(),
        Some(dir.path().to_str().unwrap())
    );
    assert!(
        findings[0].details.contains("link count is 5"),
        "{findings:#?}"
    );
}

#[test]
fn hidden_file_in_a_subdirectory_is_found() {
    // A subdirectory is opened relative to its parent and its link count comes from the
    // parent's listing: the difference must still show there.
    let dir = directory_with_subdirs();
    for sub in ["a/c", "a/.kit"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let config = RootcheckConfig {
        sys_dirs: vec![dir.path().to_path_buf()],
        ..only(|c| c.check_sys = true)
    };
    let memory = memory();
    let mut scan = Scan::new(&config, &memory);
    scan.hide_from_readdir = Some(|name| name == ".kit");
    let mut found: Vec<(String, String)> = smol::block_on(scan.run())
        .findings
        .into_iter()
        .map(|f| (f.kind.to_string(), f.path.unwrap_or_default()))
        .collect();
    found.sort();
    let at = |path: &Path| ("hidden_file".to_string(), path.display().to_string());
    assert_eq!(found, vec![at(dir.path()), at(&dir.path().join("a"))]);
}

#[test]
fn directory_without_hidden_entries_has_no_finding() {
    let dir = directory_with_subdirs();
    let config = RootcheckConfig {
        sys_dirs: vec![dir.path().to_path_buf()],
        ..only(|c| c.check_sys = true)
    };
    assert_eq!(run(&config), Vec::new());
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn overlayfs_directories_give_no_false_positive() {
    // A merged overlayfs directory reports a link count of 1 whatever its subdirectories: the
    // walk must not compare there (container roots are overlays).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["lower/a", "lower/b", "upper/c", "work", "merged"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        d.join("lower").display(),
        d.join("upper").display(),
        d.join("work").display()
    );
    let mounted = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(d.join("merged"))
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "mounting an overlay needs root (CI runs as root)"
        );
        println!("skipped: cannot mount an overlay here (not root?)");
        return;
    }
    let _guard = Mounted(d.join("merged"));
    let nlink =
        std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(d.join("merged")).unwrap());
    assert_eq!(
        nlink, 1,
        "the merged directory's link count ignores its 3 subdirectories"
    );
    let config = RootcheckConfig {
        sys_dirs: vec![d.join("merged")],
        ..only(|c| c.check_sys = true)
    };
    assert_eq!(run(&config), Vec::new());
}

#[test]
fn dev_anomaly_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(dev.join("pts")).unwrap();
    std::os::unix::fs::symlink("/proc/self/fd", dev.join("fd")).unwrap();
    write(&dev.join("shm/app-buffer"), b"legitimate: shm holds files");
    write(&dev.join(".udev/db"), b"allowed by name");
    write(&dev.join("sdb1"), b"a regular file where a disk should be");
    std::fs::create_dir_all(dev.join(".lib/kit")).unwrap();
    let config = RootcheckConfig {
        dev_root: dev.clone(),
        ..only(|c| c.check_dev = true)
    };
    let mut found: Vec<String> = run(&config)
        .into_iter()
        .map(|f| format!("{} {}", f.kind, f.path.unwrap_or_default()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            format!("dev_anomaly {}", dev.join(".lib").display()),
            format!("dev_anomaly {}", dev.join("sdb1").display()),
        ]
    );
}

#[test]
fn promiscuous_interface_and_hidden_modules_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let proc_root = dir.path().join("proc");
    write(&sys.join("class/net/eth0/flags"), b"0x1103\n");
    write(&sys.join("class/net/lo/flags"), b"0x9\n");
    write(
        &proc_root.join("modules"),
        b"nf_tables 1 0 - Live 0x0\nkit 1 0 - Live 0x0\n",
    );
    write(&sys.join("module/nf_tables/initstate"), b"live\n");
    std::fs::create_dir_all(sys.join("module/printk")).unwrap(); // built in: no initstate
    write(&sys.join("module/diamorph/initstate"), b"live\n");
    let config = RootcheckConfig {
        sys_root: sys.clone(),
        proc_root,
        ..only(|c| {
            c.check_if = true;
            c.check_modules = true;
        })
    };
    let mut found: Vec<String> = run(&config)
        .into_iter()
        .map(|f| format!("{} {}", f.kind, f.path.unwrap_or_default()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            format!("hidden_module {}", sys.join("module/diamorph").display()),
            format!("hidden_module {}", sys.join("module/kit").display()),
            "promiscuous_interface eth0".to_string(),
        ]
    );
}

#[test]
fn signatures_find_rootkit_files_and_trojaned_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("usr/bin/adore"), b"");
    write(&root.join("var/lib/app/.t0rn"), b"");
    write(
        &root.join("bin/ls"),
        b"\x7fELF\0\0libc.so.6\0/usr/lib/libshow.so\0duarawkz\0",
    );
    write(&root.join("bin/ps"), b"\x7fELF\0\0an honest ps\0");
    let config = RootcheckConfig {
        root: root.to_path_buf(),
        rootkit_files: wazuh_db("rootkit_files.txt"),
        rootkit_trojans: wazuh_db("rootkit_trojans.txt"),
        sys_dirs: vec!["/var".into()],
        ..only(|c| {
            c.check_files = true;
            c.check_trojans = true;
            c.check_sys = true;
        })
    };
    let mut found: Vec<String> = run(&config)
        .into_iter()
        .map(|f| format!("{} {}", f.kind, f.path.unwrap_or_default()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            format!("rootkit_file {}", root.join("usr/bin/adore").display()),
            format!("rootkit_file {}", root.join("var/lib/app/.t0rn").display()),
            format!("trojaned_binary {}", root.join("bin/ls").display()),
        ]
    );
}

#[test]
fn suid_and_world_writable_files_are_found_where_they_do_not_belong() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let set_mode = |path: &Path, mode: u32| {
        write(path, b"x");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(&root.join("usr/bin/passwd"), 0o4755); // expected
    set_mode(&root.join("var/cache/.x/sh"), 0o4755);
    set_mode(&root.join("var/cache/wall"), 0o2755);
    set_mode(&root.join("etc/shadow"), 0o666);
    set_mode(&root.join("var/cache/scratch"), 0o666); // not a system directory
    std::fs::create_dir_all(root.join("etc/spool")).unwrap();
    std::fs::set_permissions(
        root.join("etc/spool"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap(); // sticky: allowed
    let config = RootcheckConfig {
        root: root.to_path_buf(),
        sys_dirs: vec!["/usr".into(), "/etc".into(), "/var".into()],
        ..only(|c| c.check_sys = true)
    };
    let mut found: Vec<String> = run(&config)
        .into_iter()
        .map(|f| format!("{} {}", f.kind, f.path.unwrap_or_default()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            format!("suid_file {}", root.join("var/cache/.x/sh").display()),
            format!("suid_file {}", root.join("var/cache/wall").display()),
            format!("world_writable {}", root.join("etc/shadow").display()),
        ]
    );
}

#[test]
fn finding_is_reported_once_and_again_after_it_went_away() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let config = RootcheckConfig {
        dev_root: dev.clone(),
        ..only(|c| c.check_dev = true)
    };
    let memory = memory();
    let mut seen = Seen::load(&dir.path().join("rootcheck.seen")).unwrap();
    let mut new_findings = || {
        let events = smol::block_on(scan_events(&config, &memory, &mut seen)).unwrap();
        assert!(matches!(events[0], RootcheckEvent::ScanStarted { .. }));
        assert!(matches!(
            events.last(),
            Some(RootcheckEvent::ScanEnded { .. })
        ));
        events
            .iter()
            .filter(|e| matches!(e, RootcheckEvent::Finding(_)))
            .count()
    };
    write(&dev.join("payload"), b"x");
    assert_eq!(new_findings(), 1, "first seen");
    assert_eq!(new_findings(), 0, "already reported");
    std::fs::remove_file(dev.join("payload")).unwrap();
    assert_eq!(new_findings(), 0, "gone");
    write(&dev.join("payload"), b"x");
    assert_eq!(new_findings(), 1, "back again");
}

#[test]
fn clean_host_has_no_findings() {
    let config = RootcheckConfig {
        enabled: true,
        cpu_share_percent: 100,
        rootkit_files: shipped_db("rootkit_files.txt"),
        rootkit_trojans: shipped_db("rootkit_trojans.txt"),
        ..RootcheckConfig::default()
    };
    let memory = MemoryAccount::new(
        account_for("test-rootcheck-live").unwrap(),
        config.budget_bytes,
    );
    let report = smol::block_on(Scan::new(&config, &memory).run());
    println!("checked {:?}, skipped {:?}", report.checked, report.skipped);
    assert_eq!(report.findings, Vec::new(), "this host is clean");
    for check in [
        "pids",
        "ports_tcp",
        "ports_udp",
        "dev",
        "interfaces",
        "files",
        "trojans",
    ] {
        assert!(
            report.checked.iter().any(|(c, n)| c == check && *n > 0),
            "{check} ran: {:?} / {:?}",
            report.checked,
            report.skipped
        );
    }
    assert!(
        memory.peak() <= config.budget_bytes,
        "peak {} within the budget",
        memory.peak()
    );
}

/// Entries of Wazuh's trojans database: every line but the unterminated `init` one.
const TROJANS: usize = 76;

#[test]
fn signature_databases_load_unchanged() {
    let files =
        parse_rootkit_files(&std::fs::read_to_string(wazuh_db("rootkit_files.txt")).unwrap());
    // `*/.owned | Sniffer log` has `|` for `!`: skipped, as Wazuh's reader skips it.
    assert_eq!(
        files.skipped,
        vec![(344, "no `!` after the path".to_string())]
    );
    assert_eq!(files.entries.len(), 271);
    assert_eq!(files.entries.iter().filter(|e| e.anywhere).count(), 31);
    let adore = &files.entries[2];
    assert_eq!(
        (
            adore.path.as_str(),
            adore.rootkit.as_str(),
            adore.reference.as_str()
        ),
        ("dev/.shit/red.tgz", "Adore Worm", "/rootkits/adorew.php")
    );
    let trojans = parse_trojans(&std::fs::read_to_string(wazuh_db("rootkit_trojans.txt")).unwrap());
    // `init !bash|/dev/h` has no closing `!`: the one line skipped.
    assert_eq!(trojans.skipped.len(), 1, "{:?}", trojans.skipped);
    assert!(trojans.skipped[0].1.contains("after the pattern"));
    let ours_files =
        parse_rootkit_files(&std::fs::read_to_string(shipped_db("rootkit_files.txt")).unwrap());
    let ours_trojans =
        parse_trojans(&std::fs::read_to_string(shipped_db("rootkit_trojans.txt")).unwrap());
    assert_eq!(
        (ours_files.skipped.len(), ours_trojans.skipped.len()),
        (0, 0)
    );
    assert!(ours_files.entries.len() >= 20 && ours_trojans.entries.len() >= 5);
    assert_eq!(trojans.entries.len(), TROJANS);
}
