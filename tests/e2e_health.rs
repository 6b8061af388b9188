//! The OTA health gate, `gatewatch check --health`, against each state an update can leave.

mod common;

use common::{wait_for, Agent, Manager};
use std::time::Duration;

fn health(agent: &Agent, within: &str) -> (bool, String) {
    let out = agent.command(&["check", "--health", "--within", within]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn health_gate_reports_state() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let mut agent = Agent::configure(&dir.path().join("agent"), &manager, "");

    // Not enrolled yet.
    let (ok, text) = health(&agent, "1");
    assert!(!ok && text.contains("not enrolled"), "{text}");

    // Enrolled, but the agent is not running.
    assert!(agent.command(&["enroll"]).status.success());
    let (ok, text) = health(&agent, "1");
    assert!(!ok && text.contains("not connected"), "{text}");

    // Running and connected.
    agent.spawn();
    let (ok, text) = health(&agent, "30");
    assert!(ok && text.contains("healthy: agent 001"), "{text}");

    // Running but its manager is gone: not healthy any more.
    drop(manager);
    let text = wait_for(
        Duration::from_secs(40),
        "the gate to notice the lost manager",
        || {
            let (ok, text) = health(&agent, "1");
            (!ok).then_some(text)
        },
    );
    assert!(text.contains("not connected"), "{text}");

    // A broken configuration fails the gate whatever else holds.
    std::fs::write(&agent.config, "[manager]\nport = \"not a number\"\n").unwrap();
    let (ok, text) = health(&agent, "1");
    assert!(
        !ok && text.contains("configuration is invalid") && text.contains("manager.port"),
        "{text}"
    );
}
