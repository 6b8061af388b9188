//! Inventory end to end: collectors against fixture databases and the live system, change-only
//! scans, and a manager that converges after lost deltas.

mod module_support;

use gatewatch::modules::inventory::root::Root;
use gatewatch::modules::inventory::scan::{self, Sink};
use gatewatch::modules::inventory::state::State;
use gatewatch::modules::inventory::{os, packages, ports, processes, InventoryConfig};
use gatewatch::runtime::ModuleError;
use gatewatch_manager::Query;
use gatewatch_proto::inventory::{Change, InventoryEvent, Row, Table};
use module_support::{copy_tree, fixture_root, free_port, start_manager, wait_for, Agent};
use std::time::Duration;

/// Collects events instead of queueing them.
#[derive(Default)]
struct Collected(Vec<InventoryEvent>);

impl Sink for Collected {
    async fn send(&mut self, event: InventoryEvent) -> Result<(), ModuleError> {
        self.0.push(event);
        Ok(())
    }
}

#[test]
fn packages_from_dpkg_opkg_rpm_apk() {
    let all: Vec<_> = packages::collect(&Root::new(fixture_root())).collect();
    let names = |format: &str| -> Vec<String> {
        let mut n: Vec<_> = all
            .iter()
            .filter(|p| p.format == format)
            .map(|p| format!("{} {} {}", p.name, p.version, p.architecture))
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names("deb"),
        [
            "base-files 12.4+deb12u11 amd64",
            "ca-certificates 20230311+deb12u1 all",
            "libc6 2.36-9+deb12u14 amd64",
            "zlib1g 1:1.2.13.dfsg-1 amd64",
        ],
        "installed dpkg packages only (not a removed one with config files left)"
    );
    assert_eq!(
        names("ipk"),
        [
            "dropbear 2022.82-6 aarch64_cortex-a53",
            "mosquitto-nossl 2.0.18-1 aarch64_cortex-a53",
        ]
    );
    assert_eq!(
        names("rpm"),
        [
            "busybox-extras 1:1.36.1-3 noarch",
            "gw-firmware-tools 1:2.4.0-1 noarch",
        ],
        "built with rpmbuild and registered by rpm itself (make-rpmdb.sh)"
    );
    assert_eq!(
        names("apk"),
        ["busybox 1.36.1-r15 aarch64", "musl 1.2.4-r2 aarch64"]
    );
    let libc = all.iter().find(|p| p.name == "libc6").unwrap();
    assert_eq!(
        (libc.multiarch.as_str(), libc.source.as_str()),
        ("same", "glibc")
    );
    assert!(libc.size > 10_000_000, "Installed-Size is in KiB");
    let dropbear = all.iter().find(|p| p.name == "dropbear").unwrap();
    assert_eq!(dropbear.install_time, Some(1_713_891_224));
    let rpm = all.iter().find(|p| p.name == "gw-firmware-tools").unwrap();
    assert_eq!(
        (rpm.vendor.as_str(), rpm.section.as_str()),
        ("Gatewatch Fixtures", "System/Tools")
    );
    assert!(rpm.install_time.is_some());
    let musl = all.iter().find(|p| p.name == "musl").unwrap();
    assert_eq!((musl.size, musl.source.as_str()), (655_360, "musl"));
}

#[test]
fn ports_map_to_processes() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (tcp_port, udp_port) = (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let found = ports::collect(&Root::new("/"), false);
    let find = |proto: &str, port: u16| {
        found
            .iter()
            .find(|p| p.protocol == proto && p.local_port == port)
            .unwrap_or_else(|| panic!("{proto} port {port} not listed"))
    };
    let t = find("tcp", tcp_port);
    assert_eq!(
        (t.local_ip.as_str(), t.state.as_str()),
        ("127.0.0.1", "listening")
    );
    assert_eq!((t.pid, t.process.as_str()), (Some(me), comm.trim_end()));
    let u = find("udp", udp_port);
    assert_eq!(u.pid, Some(me));
    drop(tcp);
    let after = ports::collect(&Root::new("/"), false);
    assert!(
        !after
            .iter()
            .any(|p| p.protocol == "tcp" && p.local_port == tcp_port),
        "a closed listener is gone"
    );
}

fn pids_in_proc() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn processes_match_proc() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let me = std::process::id();
    let listed_before = pids_in_proc();
    let procs: Vec<_> = processes::Processes::new(&Root::new("/")).collect();
    let _ = child.kill();
    let _ = child.wait();
    let sleeper = procs
        .iter()
        .find(|p| p.pid == child.id())
        .expect("the child");
    assert_eq!((sleeper.ppid, sleeper.name.as_str()), (me, "sleep"));
    assert_eq!(
        (sleeper.cmd.as_str(), sleeper.argvs.as_str()),
        ("sleep", "30")
    );
    let own = procs.iter().find(|p| p.pid == me).expect("this process");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let ppid: u32 = after_name.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(own.ppid, ppid);
    assert_eq!(
        own.name,
        std::fs::read_to_string("/proc/self/comm")
            .unwrap()
            .trim_end()
    );
    let uid = rustix::process::getuid().as_raw();
    let user = if uid == 0 {
        "root".to_string()
    } else {
        own.ruser.clone()
    };
    assert_eq!(own.euser, user);
    assert!(own.start_time > 1_600_000_000, "start time is a Unix time");
    let collected: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    // Every process that lived through the whole collection was listed.
    let listed_after = pids_in_proc();
    let missing: Vec<_> = listed_before
        .iter()
        .filter(|p| listed_after.contains(p) && !collected.contains(p))
        .collect();
    assert!(missing.is_empty(), "in /proc but not listed: {missing:?}");
}

#[test]
fn yocto_os_release_is_recognised() {
    let os = os::collect(&Root::new(fixture_root()));
    assert_eq!(os.os_name, "Poky (Yocto Project Reference Distro)");
    assert_eq!(os.os_platform, "poky");
    assert_eq!(os.os_version, "4.0.17");
    assert_eq!(
        (
            os.os_major.as_str(),
            os.os_minor.as_str(),
            os.os_patch.as_str()
        ),
        ("4", "0", "17")
    );
    assert_eq!(os.os_codename, "kirkstone");
    assert_eq!(
        (os.sysname.as_str(), os.release.as_str()),
        ("Linux", "6.1.55-yocto-standard")
    );
    assert_eq!(
        (os.architecture.as_str(), os.hostname.as_str()),
        ("aarch64", "gw-fixture-01")
    );
}

fn config_for(root: &std::path::Path) -> InventoryConfig {
    InventoryConfig {
        root: root.to_path_buf(),
        sync_every_scans: 0,
        ..InventoryConfig::default()
    }
}

fn deltas(events: &[InventoryEvent]) -> Vec<(Table, Change, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            InventoryEvent::Delta {
                table, change, key, ..
            } => Some((*table, *change, key.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn only_differences_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture_root(), &root);
    let config = config_for(&root);
    let mut state = State::open(&dir.path().join("inventory.db")).unwrap();
    let scan = |state: &mut State| {
        let mut sink = Collected::default();
        let report = smol::block_on(scan::scan(&config, state, &mut sink)).unwrap();
        (report, sink.0)
    };

    let (first, events) = scan(&mut state);
    assert!(first.full, "a new state sends a snapshot");
    assert!(deltas(&events).is_empty());
    let states = events
        .iter()
        .filter(|e| matches!(e, InventoryEvent::State { .. }))
        .count();
    assert_eq!(
        states as u64,
        first.tables.iter().map(|(_, r)| r.rows).sum::<u64>()
    );

    let (second, events) = scan(&mut state);
    assert!(!second.full);
    assert!(
        deltas(&events).is_empty(),
        "nothing changed: {:?}",
        deltas(&events)
    );
    let checksums = events
        .iter()
        .filter(|e| matches!(e, InventoryEvent::Checksum { .. }))
        .count();
    assert_eq!(
        checksums,
        Table::ALL.len(),
        "one checksum per table, nothing else"
    );
    assert_eq!(events.len(), Table::ALL.len());

    // A package installed, a shell changed, a group deleted.
    let apk = root.join("lib/apk/db/installed");
    let mut db = std::fs::read_to_string(&apk).unwrap();
    db.push_str("\nP:mosquitto\nV:2.0.18-r0\nA:aarch64\nI:200000\nT:An MQTT broker\no:mosquitto\n");
    std::fs::write(&apk, db).unwrap();
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        passwd.replace("/home/gateway:/bin/sh", "/home/gateway:/bin/bash"),
    )
    .unwrap();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    std::fs::write(
        root.join("etc/group"),
        group.replace("dialout:x:20:gateway\n", ""),
    )
    .unwrap();

    let (_, events) = scan(&mut state);
    let mut changes = deltas(&events);
    changes.sort();
    assert_eq!(
        changes,
        [
            (
                Table::Packages,
                Change::Added,
                "apk:mosquitto:aarch64".to_string()
            ),
            (Table::Users, Change::Modified, "gateway".to_string()),
            (Table::Groups, Change::Removed, "dialout".to_string()),
        ]
    );
    let added = events.iter().find_map(|e| match e {
        InventoryEvent::Delta {
            row: Some(Row::Package(p)),
            ..
        } => Some(p),
        _ => None,
    });
    assert_eq!(added.map(|p| p.version.as_str()), Some("2.0.18-r0"));
}

#[test]
fn manager_converges_after_lost_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture_root(), &root);
    let (events_port, enroll_port) = (free_port(), free_port());
    let manager_dir = dir.path().join("manager");
    let manager = start_manager(&manager_dir, events_port, enroll_port);
    let modules = format!(
        "[modules.inventory]\nenabled = true\nroot = \"{}\"\ninterval_secs = 1\nsync_every_scans = 4\n",
        root.display()
    );
    let mut agent = Agent::start(&dir.path().join("agent"), &manager, &modules);
    let id = agent.wait_enrolled();
    let count = |m: &gatewatch_manager::ManagerHandle, kind: &str| {
        m.syscollector(id, kind, &Query::default())
            .map(|i| i.total)
            .unwrap_or(0)
    };
    wait_for(
        Duration::from_secs(60),
        "the inventory at the manager",
        || (count(&manager, "packages") == 10 && count(&manager, "groups") == 5).then_some(()),
    );
    let os = manager.syscollector(id, "os", &Query::default()).unwrap();
    assert_eq!(os.items[0]["os"]["platform"], "poky");
    assert_eq!(os.items[0]["agent_id"], format!("{id:03}"));

    // Deltas lost on the way: the manager's copy loses rows the agent believes it has sent,
    // and, while the manager is away, a group is deleted on the gateway.
    drop(manager);
    let conn = rusqlite::Connection::open(manager_dir.join("manager.db")).unwrap();
    let lost = conn
        .execute(
            "DELETE FROM inventory_rows WHERE tbl = 'packages' AND key LIKE 'deb:%'",
            [],
        )
        .unwrap();
    assert_eq!(lost, 4);
    drop(conn);
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    std::fs::write(
        root.join("etc/group"),
        group.replace("dialout:x:20:gateway\n", ""),
    )
    .unwrap();
    let manager = start_manager(&manager_dir, events_port, enroll_port);
    wait_for(
        Duration::from_secs(60),
        "the manager to notice the drift",
        || {
            let sync = manager.syscollector_sync(id, "packages").ok()??;
            (!sync.in_sync).then_some(())
        },
    );
    wait_for(
        Duration::from_secs(60),
        "convergence after the next snapshot",
        || {
            let sync = manager.syscollector_sync(id, "packages").ok()??;
            (sync.in_sync && count(&manager, "packages") == 10 && count(&manager, "groups") == 4)
                .then_some(())
        },
    );

    // A restart with the agent's state lost: its first scan is a snapshot that also removes
    // what the manager holds but the gateway no longer has.
    agent.stop();
    std::fs::remove_file(agent.state_dir.join("modules/inventory/inventory.db")).unwrap();
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        passwd.replace("daemon:x:1:1:daemon:/usr/sbin:/bin/sh\n", ""),
    )
    .unwrap();
    agent.spawn();
    wait_for(
        Duration::from_secs(60),
        "the snapshot after the restart",
        || (count(&manager, "users") == 3).then_some(()),
    );
    let sync = manager.syscollector_sync(id, "users").unwrap().unwrap();
    assert!(sync.in_sync);
}
