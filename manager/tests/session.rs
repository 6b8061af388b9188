//! Event sessions on the TLS event port: handshake, storage, acks, keep-alives and commands.

mod common;

use std::time::Duration;

use common::*;
use gatewatch_manager::{AgentStatus, NotConnected};
use gatewatch_proto::{
    AgentMessage, Command, CommandOutcome, KeepaliveStatus, ManagerMessage, Refusal,
    PROTOCOL_VERSION,
};

#[test]
fn events_resent_after_their_ack_are_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let feed = m.subscribe();
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, ack_up_to) = session(&m, id, &key);
    assert_eq!(ack_up_to, 0);
    assert_eq!(send_events(&mut c, 1..=3), 3);
    assert_eq!(send_events(&mut c, 2..=5), 5);
    assert_eq!(send_events(&mut c, 1..=5), 5);
    drop(c);
    let (_c, ack_up_to) = session(&m, id, &key);
    assert_eq!(ack_up_to, 5);
    let rows = query(
        dir.path(),
        "SELECT seq, module, kind FROM events ORDER BY seq",
    );
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0], vec!["1", "generator", "generator.event"]);
    let seqs: Vec<u64> = std::iter::from_fn(|| feed.try_recv().ok())
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

#[test]
fn events_jsonl_has_one_valid_json_line_per_stored_event() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    send_events(&mut c, 1..=2);
    send_events(&mut c, 2..=3);
    let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["agent"],
        serde_json::json!({"id": "001", "name": "gw1"})
    );
    assert_eq!(lines[2]["seq"], 3);
    assert_eq!(lines[2]["module"], "generator");
    assert_eq!(lines[2]["kind"], "generator.event");
    assert_eq!(lines[2]["time_ms"], 1_700_000_000_003u64);
    assert_eq!(lines[2]["payload"]["Generator"]["n"], 3);
}

#[test]
fn undecodable_record_is_stored_as_malformed_and_acked() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    let good = record(1);
    c.send(&AgentMessage::Events {
        first_seq: 1,
        records: vec![&good, &[0xff, 0xff, 0xff]],
    });
    assert_eq!(
        c.recv::<ManagerMessage>(),
        Some(ManagerMessage::Ack { up_to: 2 })
    );
    let rows = query(dir.path(), "SELECT kind, payload FROM events WHERE seq = 2");
    assert_eq!(rows[0][0], "malformed");
    let payload: serde_json::Value = serde_json::from_str(&rows[0][1]).unwrap();
    assert_eq!(payload["hex"], "ffffff");
}

#[test]
fn wrong_proof_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, _key) = enroll_ok(&m, "gw1");
    let (mut c, answer) = handshake(&m, id, &"0".repeat(64));
    assert!(
        matches!(
            answer,
            ManagerMessage::Refused {
                reason: Refusal::BadProof,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(c.is_closed());
    assert_eq!(m.agents().unwrap()[0].status, AgentStatus::NeverConnected);
}

#[test]
fn unknown_agent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let answer = hello(&m, 7, PROTOCOL_VERSION);
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::UnknownAgent,
                ..
            })
        ),
        "{answer:?}"
    );
}

#[test]
fn newer_protocol_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, _) = enroll_ok(&m, "gw1");
    let answer = hello(&m, id, PROTOCOL_VERSION + 1);
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::UnsupportedVersion,
                ..
            })
        ),
        "{answer:?}"
    );
}

#[test]
fn keepalive_is_answered_and_recorded_and_status_follows_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    let status = KeepaliveStatus {
        version: "0.1.0".into(),
        uptime_secs: 5,
        spooled: 0,
        dropped_total: 0,
    };
    c.send(&AgentMessage::Keepalive { status });
    assert_eq!(
        c.recv::<ManagerMessage>(),
        Some(ManagerMessage::KeepaliveAck)
    );
    let agent = &m.agents().unwrap()[0];
    assert_eq!(
        (agent.status, agent.version.as_deref()),
        (AgentStatus::Active, Some("0.1.0"))
    );
    assert!(agent.last_keepalive_ms.is_some());
    c.send(&AgentMessage::Goodbye);
    eventually("disconnected status", || {
        m.agents().unwrap()[0].status == AgentStatus::Disconnected
    });
    eventually("connected flag cleared", || {
        query(dir.path(), "SELECT connected FROM agents")[0][0] == "0"
    });
}

#[test]
fn command_reaches_the_agent_and_its_result_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    let command_id = m.send_command(id, Command::Restart).unwrap();
    assert_eq!(
        c.recv::<ManagerMessage>(),
        Some(ManagerMessage::Command {
            id: command_id,
            command: Command::Restart
        })
    );
    c.send(&AgentMessage::CommandResult {
        id: command_id,
        outcome: CommandOutcome::Done,
    });
    eventually("the stored result", || {
        query(
            dir.path(),
            "SELECT command_id, agent_id, outcome FROM command_results",
        ) == vec![vec![
            command_id.to_string(),
            id.to_string(),
            "\"Done\"".to_string(),
        ]]
    });
}

#[test]
fn command_for_an_agent_without_session_is_not_connected() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, _) = enroll_ok(&m, "gw1");
    assert_eq!(
        m.send_command(id, Command::Restart),
        Err(NotConnected { agent_id: id })
    );
}

#[test]
fn second_session_for_an_agent_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut first, _) = session(&m, id, &key);
    let (mut second, _) = session(&m, id, &key);
    assert!(first.is_closed(), "the first session must be closed");
    assert_eq!(send_events(&mut second, 1..=1), 1);
    let command_id = m.send_command(id, Command::Restart).unwrap();
    assert_eq!(
        second.recv::<ManagerMessage>(),
        Some(ManagerMessage::Command {
            id: command_id,
            command: Command::Restart
        })
    );
    assert_eq!(m.agents().unwrap()[0].status, AgentStatus::Active);
}

#[test]
fn silent_session_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.session_idle_timeout = Duration::from_millis(300);
    let m = gatewatch_manager::start(o).unwrap();
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    assert!(c.is_closed());
    eventually("disconnected status", || {
        m.agents().unwrap()[0].status == AgentStatus::Disconnected
    });
}

#[test]
fn frames_written_together_are_stored_and_the_last_is_acked() {
    // Ten Events frames and a keep-alive in one write: the manager stores the frames it already
    // holds in one transaction (group commit), acks up to the last, then answers the keep-alive.
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (mut c, _) = session(&m, id, &key);
    let mut bytes = Vec::new();
    for frame_no in 0..10u64 {
        let first = frame_no * 3 + 1;
        let records: Vec<Vec<u8>> = (first..first + 3).map(record).collect();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let msg = AgentMessage::Events {
            first_seq: first,
            records: refs,
        };
        bytes.extend(gatewatch_proto::frame::encode(&msg, 64 * 1024).unwrap());
    }
    let keepalive = AgentMessage::Keepalive {
        status: KeepaliveStatus {
            version: "test".into(),
            ..Default::default()
        },
    };
    bytes.extend(gatewatch_proto::frame::encode(&keepalive, 64 * 1024).unwrap());
    c.send_raw(&bytes);
    let mut acked = 0;
    loop {
        match c.recv::<ManagerMessage>() {
            Some(ManagerMessage::Ack { up_to }) => {
                assert!(up_to > acked, "acks only move forward");
                acked = up_to;
            }
            Some(ManagerMessage::KeepaliveAck) => break,
            other => panic!("expected acks then a keep-alive answer, got {other:?}"),
        }
    }
    assert_eq!(
        acked, 30,
        "every frame before the keep-alive was acknowledged"
    );
    let rows = query(dir.path(), "SELECT COUNT(*) FROM events");
    assert_eq!(rows, vec![vec!["30"]]);
}
