//! Active response end to end: a real agent process whose log collector tails a test auth log
//! and whose response module acts on it while the manager is down; a reversal that survives a
//! SIGKILL of the agent; and a response ordered through the manager's REST API (`PUT
//! /active-response` with a JWT, through curl) whose action event reaches the manager.
//!
//! The responses act on a `hosts.deny` in the test's directory (the host-deny response), so the
//! tests need no privileges and leave the machine as it was; the firewall responses are tested
//! in network namespaces by the module's own tests.

mod common;

use common::api::curl;
use common::{enrolled_agent, wait_for, Agent, Manager};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Three failed SSH logins from one address within a minute block it for `timeout` seconds.
fn response_config(log: &Path, deny: &Path, threshold: u32, timeout: u64) -> String {
    format!(
        "[modules.logcollector]\nenabled = true\n\n[[modules.logcollector.sources]]\nlocation = \"{}\"\nonly_future = false\n\n\
         [modules.response]\nenabled = true\nhosts_deny = \"{}\"\n\n\
         [[modules.response.rules]]\nname = \"sshd-bruteforce\"\nmodule = \"logcollector\"\nkind = \"log.line\"\n\
         pattern = 'sshd\\[\\d+\\]: Failed password for .* from (?P<target>[0-9a-f.:]+) port'\n\
         threshold = {threshold}\nwindow_secs = 60\nresponse = \"host-deny\"\ntimeout_secs = {timeout}\n",
        log.display(),
        deny.display(),
    )
}

fn failed_login(log: &Path, from: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("auth log");
    writeln!(
        file,
        "Nov 28 06:00:00 gw sshd[4242]: Failed password for root from {from} port 50022 ssh2"
    )
    .expect("write auth log");
}

fn denied(deny: &Path) -> String {
    std::fs::read_to_string(deny).unwrap_or_default()
}

/// The `response.*` events the manager stored for `agent_id`, as (kind, payload JSON).
fn response_events(manager: &Manager, agent_id: u32) -> Vec<(String, Value)> {
    manager
        .events(agent_id)
        .into_iter()
        .filter(|(_, kind, _)| kind.starts_with("response."))
        .map(|(_, kind, payload)| (kind, serde_json::from_str(&payload).expect("payload JSON")))
        .collect()
}

#[test]
fn local_rule_blocks_ssh_bruteforce_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = Manager::start(&dir.path().join("manager"), None);
    let (log, deny) = (dir.path().join("auth.log"), dir.path().join("hosts.deny"));
    std::fs::write(&log, "").unwrap();
    let extra = response_config(&log, &deny, 3, 600);
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    manager.kill();
    agent.spawn();
    for _ in 0..3 {
        failed_login(&log, "203.0.113.50");
    }
    for _ in 0..2 {
        failed_login(&log, "198.51.100.2");
    }
    wait_for(Duration::from_secs(30), "the offline block", || {
        denied(&deny).contains("ALL: 203.0.113.50").then_some(())
    });
    assert!(
        !denied(&deny).contains("198.51.100.2"),
        "below the threshold: {}",
        denied(&deny)
    );
    // The manager comes back: the action's event, spooled meanwhile, reaches it.
    manager.spawn();
    let (kind, event) = wait_for(Duration::from_secs(60), "the action's event", || {
        response_events(&manager, id).into_iter().next()
    });
    assert_eq!(kind, "response.done", "{event}");
    let event = &event["Response"];
    assert_eq!(event["command"], "host-deny", "{event}");
    assert_eq!(event["target"], "203.0.113.50", "{event}");
    assert_eq!(event["trigger"], "rule:sshd-bruteforce", "{event}");
    assert_eq!(event["phase"], "Add", "{event}");
}

#[test]
fn reversal_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = Manager::start(&dir.path().join("manager"), None);
    let (log, deny) = (dir.path().join("auth.log"), dir.path().join("hosts.deny"));
    std::fs::write(&log, "").unwrap();
    let extra = response_config(&log, &deny, 1, 3);
    let mut agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    manager.kill();
    agent.spawn();
    failed_login(&log, "203.0.113.51");
    wait_for(Duration::from_secs(30), "the block", || {
        denied(&deny).contains("ALL: 203.0.113.51").then_some(())
    });
    agent.kill();
    // Past the timeout with no agent: nobody lifted the block.
    std::thread::sleep(Duration::from_secs(4));
    assert!(denied(&deny).contains("ALL: 203.0.113.51"));
    agent.spawn();
    wait_for(Duration::from_secs(30), "the overdue reversal", || {
        (!denied(&deny).contains("203.0.113.51")).then_some(())
    });
}

/// The API's address, admin credentials and CA of a manager process.
struct Api {
    url: String,
    ca: PathBuf,
    token: String,
}

impl Api {
    fn login(manager: &Manager) -> Api {
        let port: u16 = wait_for(Duration::from_secs(10), "the API port", || {
            let text = std::fs::read_to_string(manager.dir.join("manager.ports")).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("api="))
                .and_then(|p| p.parse().ok())
        });
        let url = format!("https://127.0.0.1:{port}");
        let admin = std::fs::read_to_string(manager.dir.join("api-admin.txt")).expect("admin");
        let login = format!("{url}/security/user/authenticate?raw=true");
        let ca = manager.ca_pem();
        let (status, token) = curl(&ca, &["-u", admin.trim_end(), "-X", "POST", &login]);
        assert_eq!(status, 200, "login: {token}");
        Api { url, ca, token }
    }

    /// `PUT /active-response?<query>` with `body`: (status, JSON).
    fn active_response(&self, query: &str, body: &str) -> (u16, Value) {
        let url = format!("{}/active-response?{query}", self.url);
        let bearer = format!("Authorization: Bearer {}", self.token);
        let args = [
            "-X",
            "PUT",
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &url,
        ];
        let (status, text) = curl(&self.ca, &args);
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        (status, json)
    }
}

#[test]
fn manager_triggered_response() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let deny = dir.path().join("hosts.deny");
    let extra = format!(
        "[modules.response]\nenabled = true\nhosts_deny = \"{}\"\n",
        deny.display()
    );
    let mut agent: Agent = enrolled_agent(&dir.path().join("agent"), &manager, &extra);
    let id = agent.agent_id();
    agent.spawn();
    let api = Api::login(&manager);
    let body =
        r#"{"command":"host-deny600","arguments":[],"alert":{"data":{"srcip":"203.0.113.77"}}}"#;
    let query = format!("agents_list={id:03},999");
    // Until the agent's session is up, it is a 1707 ("not active").
    let reply = wait_for(
        Duration::from_secs(30),
        "the agent to take the order",
        || {
            let (status, reply) = api.active_response(&query, body);
            assert_eq!(status, 200, "{reply}");
            (reply["data"]["total_affected_items"] == 1).then_some(reply)
        },
    );
    assert_eq!(reply["data"]["affected_items"][0], format!("{id:03}"));
    assert_eq!(reply["message"], "AR command was not sent to some agents");
    assert_eq!(
        reply["data"]["failed_items"][0]["error"]["code"], 1701,
        "{reply}"
    );
    assert_eq!(reply["data"]["failed_items"][0]["id"][0], "999", "{reply}");
    let (kind, event) = wait_for(Duration::from_secs(30), "the action's event", || {
        response_events(&manager, id).into_iter().next()
    });
    assert_eq!(kind, "response.done", "{event}");
    let event = &event["Response"];
    assert_eq!(
        (&event["command"], &event["target"], &event["trigger"]),
        (
            &"host-deny".into(),
            &"203.0.113.77".into(),
            &"manager".into()
        ),
        "{event}"
    );
    assert_eq!(event["timeout_secs"], 600, "Wazuh's timeout suffix");
    assert!(denied(&deny).contains("ALL: 203.0.113.77"));
    let (status, bad) = api.active_response(&query, r#"{"arguments":[]}"#);
    assert_eq!(status, 400, "{bad}");
}

#[test]
fn ordered_response_is_refused_when_the_module_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let mut agent: Agent = enrolled_agent(&dir.path().join("agent"), &manager, "");
    let id = agent.agent_id();
    agent.spawn();
    let api = Api::login(&manager);
    let body = r#"{"command":"firewall-drop","alert":{"data":{"srcip":"203.0.113.78"}}}"#;
    let query = format!("agents_list={id:03}");
    wait_for(
        Duration::from_secs(30),
        "the agent to take the order",
        || {
            let (_, reply) = api.active_response(&query, body);
            (reply["data"]["total_affected_items"] == 1).then_some(())
        },
    );
    let db = manager.db();
    let outcome: String = wait_for(Duration::from_secs(30), "the command's outcome", || {
        db.query_row(
            "SELECT outcome FROM command_results WHERE agent_id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()
    });
    assert!(outcome.contains("Refused"), "{outcome}");
    assert!(outcome.contains("modules.response.enabled"), "{outcome}");
    assert!(response_events(&manager, id).is_empty());
}
