//! Containers end to end: a real Docker engine (started by the test, see the module's engine
//! helper), the real agent binary watching it, and the real manager storing what it reports.

mod common;
#[path = "../src/modules/containers/tests/engine.rs"]
#[allow(dead_code)]
mod engine;

use common::{enrolled_agent, wait_for, Manager};
use engine::{Engine, IMAGE};
use std::time::Duration;

#[test]
fn container_findings_and_execs_reach_the_manager() {
    let Some(engine) = Engine::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), Some("containers-pass"));
    let modules = format!(
        "[modules.containers]\nenabled = true\nsocket = \"{}\"\ninventory_interval_secs = 1\n",
        engine.socket.display()
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &modules);
    agent.spawn();
    let id = agent.wait_enrolled();
    wait_for(Duration::from_secs(30), "the engine connection", || {
        manager
            .events(id)
            .iter()
            .any(|(_, kind, _)| kind == "container.engine_connected")
            .then_some(())
    });
    engine.docker(&["create", "--privileged", "--name", "e2e-priv", IMAGE]);
    engine.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "e2e-exec",
        IMAGE,
        "sleep",
        "60",
    ]);
    engine.docker(&["exec", "-u", "1000", "e2e-exec", "id", "-u"]);

    let find = |kind: &str, needles: &[&str]| {
        manager
            .events(id)
            .into_iter()
            .find(|(_, k, payload)| k == kind && needles.iter().all(|n| payload.contains(n)))
    };
    wait_for(Duration::from_secs(30), "the privileged alert", || {
        find(
            "container.alert",
            &["\"privileged\"", "e2e-priv", "Critical"],
        )
    });
    let (_, _, exec) = wait_for(Duration::from_secs(30), "the exec", || {
        find("container.exec", &["exec_start", "e2e-exec"])
    });
    let exec: serde_json::Value = serde_json::from_str(&exec).unwrap();
    let info = &exec["Container"]["Engine"]["exec"];
    assert_eq!(info["command"], serde_json::json!(["id", "-u"]), "{exec}");
    assert_eq!(info["user"], "1000", "{exec}");
    wait_for(
        Duration::from_secs(30),
        "an inventory listing the container",
        || find("container.inventory", &["e2e-exec"]),
    );
    engine.docker(&["rm", "-f", "e2e-priv", "e2e-exec"]);
    agent.stop(Duration::from_secs(20));
}

#[test]
fn events_while_the_agent_was_down_arrive_once_after_its_restart() {
    let Some(engine) = Engine::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), Some("containers-pass"));
    let modules = format!(
        "[modules.containers]\nenabled = true\nsocket = \"{}\"\ninventory_interval_secs = 0\n",
        engine.socket.display()
    );
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &modules);
    agent.spawn();
    let id = agent.wait_enrolled();
    let creates = |name: &str| {
        manager
            .events(id)
            .into_iter()
            .filter(|(_, kind, payload)| {
                kind == "container.container"
                    && payload.contains("\"action\":\"create\"")
                    && payload.contains(&format!("\"{name}\""))
            })
            .count()
    };
    wait_for(Duration::from_secs(30), "the engine connection", || {
        manager
            .events(id)
            .iter()
            .any(|(_, kind, _)| kind == "container.engine_connected")
            .then_some(())
    });
    engine.docker(&["create", "--name", "e2e-before", IMAGE]);
    wait_for(Duration::from_secs(30), "the first create", || {
        (creates("e2e-before") == 1).then_some(())
    });
    agent.stop(Duration::from_secs(20));
    // While the agent is down: the engine keeps the event, the agent resumes from its cursor.
    engine.docker(&["create", "--name", "e2e-while-down", IMAGE]);
    agent.spawn();
    wait_for(
        Duration::from_secs(30),
        "the create made while down",
        || (creates("e2e-while-down") == 1).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(creates("e2e-before"), 1, "not repeated");
    assert_eq!(creates("e2e-while-down"), 1, "not repeated");
    engine.docker(&["rm", "-f", "e2e-before", "e2e-while-down"]);
    agent.stop(Duration::from_secs(20));
}
