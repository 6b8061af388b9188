//! Rootcheck end to end: a real agent process scans fixture roots of a compromised host (a file
//! in `/dev`, a rootkit's file), and the findings reach the real manager's event store.

mod module_support;

use module_support::{free_port, start_manager, wait_for, Agent};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `(kind, payload JSON)` of every event the manager stored.
fn stored_events(data_dir: &Path) -> Vec<(String, String)> {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        data_dir.join("manager.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return Vec::new();
    };
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let Ok(mut stmt) = db.prepare("SELECT kind, payload FROM events ORDER BY seq") else {
        return Vec::new();
    };
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn rootcheck_findings_reach_the_manager() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(dev.join("pts")).unwrap();
    std::fs::write(dev.join("sdb1"), b"a regular file where a disk should be").unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("usr/bin/adore"), b"").unwrap();
    let wazuh = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/wazuh-4.14.7/rootcheck/"
    ));
    let data = dir.path().join("manager");
    let manager = start_manager(&data, free_port(), free_port());
    let modules = format!(
        "[modules.rootcheck]\nenabled = true\ndev_root = \"{}\"\nroot = \"{}\"\n\
         rootkit_files = \"{}\"\nrootkit_trojans = \"{}\"\n\
         check_pids = false\ncheck_ports = false\ncheck_sys = false\ncheck_if = false\n\
         check_modules = false\n",
        dev.display(),
        root.display(),
        wazuh.join("rootkit_files.txt").display(),
        wazuh.join("rootkit_trojans.txt").display(),
    );
    let mut agent = Agent::start(&dir.path().join("agent"), &manager, &modules);
    agent.wait_enrolled();
    let events = wait_for(
        Duration::from_secs(60),
        "the scan's end at the manager",
        || {
            let events = stored_events(&data);
            events
                .iter()
                .any(|(kind, _)| kind == "rootcheck.scan_ended")
                .then_some(events)
        },
    );
    agent.stop();
    let findings: Vec<&String> = events
        .iter()
        .filter(|(kind, _)| kind == "rootcheck.finding")
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    let dev_file = dev.join("sdb1").display().to_string();
    assert!(
        findings
            .iter()
            .any(|p| p.contains("dev_anomaly") && p.contains(&dev_file)),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|p| p.contains("rootkit_file") && p.contains("Adore Worm")),
        "{findings:#?}"
    );
    assert!(
        events
            .iter()
            .any(|(kind, _)| kind == "rootcheck.scan_started"),
        "{events:#?}"
    );
}
