//! Garbage on either port closes that connection; the manager keeps serving everyone else.

mod common;

use std::io::Write;

use common::*;
use gatewatch_manager::ManagerHandle;
use gatewatch_proto::{AgentMessage, ManagerMessage, Refusal, PROTOCOL_VERSION};

/// After the abuse, a fresh agent can still open a session and store an event.
fn still_serving(m: &ManagerHandle, name: &str) {
    let (id, key) = enroll_ok(m, name);
    let (mut c, _) = session(m, id, &key);
    assert_eq!(send_events(&mut c, 1..=1), 1);
}

#[test]
fn truncated_frame_then_close_keeps_the_manager_serving() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    c.send_raw(&[20, 0, 0, 0, 1, 2, 3]);
    c.tls.conn.send_close_notify();
    let _ = c.tls.flush();
    drop(c);
    still_serving(&m, "gw1");
}

#[test]
fn oversized_frame_header_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    c.send_raw(&(1u32 << 30).to_le_bytes());
    assert!(c.is_closed());
    still_serving(&m, "gw1");
}

#[test]
fn random_bytes_in_a_frame_are_a_protocol_violation() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    c.send_raw(&[8, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x42, 0x99]);
    let answer = c.recv::<ManagerMessage>();
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::ProtocolViolation,
                ..
            })
        ),
        "{answer:?}"
    );
    assert!(c.is_closed());
    still_serving(&m, "gw1");
}

#[test]
fn events_before_authentication_are_a_protocol_violation() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    let rec = record(1);
    c.send(&AgentMessage::Events {
        first_seq: 1,
        records: vec![&rec],
    });
    let answer = c.recv::<ManagerMessage>();
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::ProtocolViolation,
                ..
            })
        ),
        "{answer:?}"
    );
    assert!(query(dir.path(), "SELECT COUNT(*) FROM events")[0][0] == "0");
}

#[test]
fn hello_inside_an_open_session_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    c.send(&AgentMessage::Hello {
        version: PROTOCOL_VERSION,
        agent_id: id,
    });
    let answer = c.recv::<ManagerMessage>();
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::ProtocolViolation,
                ..
            })
        ),
        "{answer:?}"
    );
    assert!(c.is_closed());
    still_serving(&m, "gw2");
}

#[test]
fn sequence_numbers_that_overflow_are_a_protocol_violation() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    let rec = record(1);
    c.send(&AgentMessage::Events {
        first_seq: u64::MAX,
        records: vec![&rec, &rec],
    });
    let answer = c.recv::<ManagerMessage>();
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::ProtocolViolation,
                ..
            })
        ),
        "{answer:?}"
    );
}

#[test]
fn plain_tcp_garbage_fails_the_tls_handshake_on_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    for addr in [m.events_addr(), m.enroll_addr()] {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        tcp.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\xff\xfe garbage")
            .unwrap();
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut tcp, &mut buf);
    }
    still_serving(&m, "gw1");
}

#[test]
fn undecodable_enrollment_request_is_closed_without_storing() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let mut c = connect(m.enroll_addr(), &m.ca_pem_path());
    c.send_raw(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
    assert!(c.is_closed());
    assert!(m.agents().unwrap().is_empty());
    still_serving(&m, "gw1");
}

#[test]
fn silent_tcp_connection_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.io_timeout = std::time::Duration::from_millis(300);
    let m = gatewatch_manager::start(o).unwrap();
    let mut tcp = std::net::TcpStream::connect(m.events_addr()).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut tcp, &mut buf).unwrap_or(0), 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.max_sessions = 1;
    let m = gatewatch_manager::start(o).unwrap();
    let first = connect(m.events_addr(), &m.ca_pem_path());
    let mut second = std::net::TcpStream::connect(m.events_addr()).unwrap();
    second
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut second, &mut buf).unwrap_or(0),
        0,
        "over the limit: closed"
    );
    drop(first);
    // The slot frees once the manager has seen the close; until then connections are refused.
    eventually("a free slot", || {
        let Ok(mut c) = connect_as(m.events_addr(), &m.ca_pem_path(), "localhost", None) else {
            return false;
        };
        c.try_send(&AgentMessage::Hello {
            version: PROTOCOL_VERSION,
            agent_id: 9,
        });
        c.recv::<ManagerMessage>().is_some()
    });
}
