//! Agent ↔ manager end to end: enrollment, streaming, crashes on either side, full spool,
//! fail-over. Real processes, real TLS on loopback, the manager's real SQLite file.

mod common;

use common::{enrolled_agent, wait_for, Agent, Manager};
use std::time::Duration;

/// A generator table for the agent configuration.
fn generator(count: u64, rate: u32, body_bytes: usize) -> String {
    format!("[modules.generator]\nenabled = true\ncount = {count}\nrate = {rate}\nbody_bytes = {body_bytes}\n")
}

/// Waits until the manager holds `count` generator events of the agent; returns them.
fn wait_for_numbers(manager: &Manager, agent_id: u32, count: usize, timeout: Duration) -> Vec<u64> {
    wait_for(
        timeout,
        &format!("{count} generator events at the manager"),
        || {
            let numbers = manager.generator_numbers(agent_id);
            (numbers.len() >= count).then_some(numbers)
        },
    )
}

#[test]
fn enroll_then_stream() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), Some("s3cret-enroll"));
    let extra = format!(
        "[buffer]\nevents_per_second = 0\n\n{}",
        generator(10_000, 0, 200)
    );
    let mut agent = Agent::configure(&dir.path().join("agent"), &manager, &extra);
    agent.spawn(); // enrolls automatically: no credentials yet
    let id = agent.wait_enrolled();
    let numbers = wait_for_numbers(&manager, id, 10_000, Duration::from_secs(180));
    assert_eq!(
        numbers,
        (0..10_000).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
    let seqs: Vec<u64> = manager.events(id).iter().map(|e| e.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "stored in sequence order"
    );
}

#[test]
fn wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = Manager::start(&dir.path().join("manager"), Some("the-right-one"));
    manager.password = Some("a-wrong-one".into());
    let agent = Agent::configure(&dir.path().join("agent"), &manager, "");
    let out = agent.command(&["enroll"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password"),
        "the error names the cause: {stderr}"
    );
    assert!(
        !stderr.contains("a-wrong-one"),
        "the password is never printed: {stderr}"
    );
    assert!(
        !agent.state_dir.join("client.keys").exists(),
        "no credentials written"
    );
    assert!(
        !agent.state_dir.join("manager-ca.pem").exists(),
        "no CA pinned"
    );
}

#[test]
fn manager_sigkill_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = Manager::start(&dir.path().join("manager"), None);
    let extra = format!(
        "[buffer]\nevents_per_second = 0\n\n{}",
        generator(20_000, 4_000, 100)
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    agent.spawn();
    wait_for_numbers(&manager, id, 2_000, Duration::from_secs(60));
    manager.kill();
    std::thread::sleep(Duration::from_millis(1500));
    manager.spawn();
    let numbers = wait_for_numbers(&manager, id, 20_000, Duration::from_secs(180));
    assert_eq!(
        numbers,
        (0..20_000).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
}

#[test]
fn agent_sigkill_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let total = 40_000u64;
    let extra = format!(
        "[buffer]\nevents_per_second = 0\n\n{}",
        generator(total, 5_000, 100)
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    // Deterministic pseudo-random kill points between 50 and 450 ms after start.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..20 {
        agent.spawn();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(50 + x % 400));
        agent.kill();
    }
    agent.spawn();
    let numbers = wait_for_numbers(&manager, id, total as usize, Duration::from_secs(240));
    assert_eq!(numbers.len() as u64, total, "nothing repeated");
    assert_eq!(
        numbers,
        (0..total).collect::<Vec<_>>(),
        "every event exactly once, in order"
    );
}

#[test]
fn full_spool_drops_oldest_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = Manager::start(&dir.path().join("manager"), None);
    let cap = 64 * 1024u64;
    let extra = format!(
        "[buffer]\nevents_per_second = 0\nspool_max_bytes = {cap}\nspool_segment_bytes = 8192\n\n{}",
        generator(3_000, 0, 100)
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    manager.kill();
    agent.spawn();
    // While the manager is down the generator overruns the spool; it must never exceed its cap.
    let spool_dir = agent.state_dir.join("spool");
    let mut largest = 0;
    for _ in 0..60 {
        largest = largest.max(dir_size(&spool_dir));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        largest <= cap,
        "spool reached {largest} bytes on disk, cap {cap}"
    );
    manager.spawn();
    let all_sent = wait_for(
        Duration::from_secs(120),
        "the agent to deliver its spool",
        || {
            let out = agent.command(&["status"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (out.status.success() && text.contains("pending=0") && manager.events(id).len() > 100)
                .then_some(text)
        },
    );
    let events = manager.events(id);
    let highest = events.iter().map(|e| e.0).max().unwrap();
    let lost = highest - events.len() as u64;
    assert!(lost > 0, "the test must overrun the spool ({all_sent})");
    let reported: u64 = events
        .iter()
        .filter(|e| e.1 == "agent.dropped")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.2).unwrap();
            v["Agent"]["Dropped"]["count"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(
        reported, lost,
        "Dropped events count exactly the sequence numbers missing"
    );
}

#[test]
fn fails_over_to_second_manager() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &generator(100, 0, 50));
    let id = agent.agent_id();
    // 127.0.0.2 is loopback too, but nothing listens there: the first manager is down.
    agent.spawn_with_env(&[("WAZUH_MANAGER", "127.0.0.2,127.0.0.1")]);
    let numbers = wait_for_numbers(&manager, id, 100, Duration::from_secs(60));
    assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    let status = agent.command(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("manager=127.0.0.1"),
        "connected to the second manager: {text}"
    );
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
