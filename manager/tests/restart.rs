//! The data directory carries everything across restarts, including a SIGKILL of the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;
use gatewatch_manager::{start, AgentStatus};

#[test]
fn restart_with_the_same_data_dir_keeps_ca_agents_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let ca_before = std::fs::read(m.ca_pem_path()).unwrap();
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    send_events(&mut c, 1..=4);
    drop(c);
    m.shutdown();

    let m = manager(dir.path());
    assert_eq!(std::fs::read(m.ca_pem_path()).unwrap(), ca_before);
    let agents = m.agents().unwrap();
    assert_eq!(
        (agents[0].id, agents[0].name.as_str(), agents[0].status),
        (id, "gw1", AgentStatus::Disconnected)
    );
    let (mut c, ack_up_to) = session(&m, id, &key);
    assert_eq!(ack_up_to, 4);
    assert_eq!(send_events(&mut c, 5..=5), 5);
    assert_eq!(enroll_ok(&m, "gw2").0, 2);
}

/// The manager binary started on ephemeral loopback ports, and its announced addresses.
fn spawn_binary(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewatch-manager"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1",
            "--events-port",
            "0",
        ])
        .args(["--enroll-port", "0", "--log-level", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn binary_announces_its_ports_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, line) = spawn_binary(dir.path());
    assert!(
        line.starts_with("listening events=127.0.0.1:") && line.contains(" enroll=127.0.0.1:"),
        "{line}"
    );
    let ports = std::fs::read_to_string(dir.path().join("manager.ports")).unwrap();
    let events_port = line
        .split("events=127.0.0.1:")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        ports.starts_with(&format!("events={events_port}\nenroll=")),
        "{ports}"
    );
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn binary_names_the_bad_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatewatch-manager"))
        .args(["--data-dir", "/tmp/x", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn sigkill_after_an_ack_loses_no_acked_event() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _) = spawn_binary(dir.path());
    // A library handle on the same directory would open a second store: talk to the binary.
    let ports = std::fs::read_to_string(dir.path().join("manager.ports")).unwrap();
    let port = |key: &str| -> u16 {
        ports
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .parse()
            .unwrap()
    };
    let events: std::net::SocketAddr = ([127, 0, 0, 1], port("events=")).into();
    let enroll_addr: std::net::SocketAddr = ([127, 0, 0, 1], port("enroll=")).into();
    let ca = dir.path().join("ca.pem");
    let (id, key) = enroll_via(enroll_addr, &ca);
    let mut c = connect(events, &ca);
    let ack = {
        use gatewatch_proto::{
            session::auth_proof, AgentMessage, ManagerMessage, PROTOCOL_VERSION,
        };
        c.send(&AgentMessage::Hello {
            version: PROTOCOL_VERSION,
            agent_id: id,
        });
        let Some(ManagerMessage::Challenge { nonce, .. }) = c.recv() else {
            panic!("no challenge")
        };
        c.send(&AgentMessage::Auth {
            proof: auth_proof(key.as_bytes(), &nonce, id),
        });
        assert!(matches!(
            c.recv(),
            Some(ManagerMessage::Welcome { ack_up_to: 0, .. })
        ));
        send_events(&mut c, 1..=50)
    };
    assert_eq!(ack, 50);
    signal(&child, "-KILL");
    let _ = child.wait();

    let m = start(options(dir.path())).unwrap();
    let (_c, ack_up_to) = session(&m, id, &key);
    assert_eq!(ack_up_to, 50);
    assert_eq!(query(dir.path(), "SELECT COUNT(*) FROM events")[0][0], "50");
}

fn enroll_via(addr: std::net::SocketAddr, ca: &Path) -> (u32, String) {
    use gatewatch_proto::{EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
    let mut c = connect(addr, ca);
    c.send(&EnrollRequest {
        version: PROTOCOL_VERSION,
        name: "gw1".into(),
        groups: vec![],
        password: None,
    });
    match c.recv() {
        Some(EnrollResponse::Accepted { agent_id, key, .. }) => (agent_id, key),
        other => panic!("enrollment failed: {other:?}"),
    }
}
