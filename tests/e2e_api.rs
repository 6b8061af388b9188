//! The manager's REST API with real agent processes: the seed's curl enrollment flow, restart
//! commands reaching running agents, and deleted agents being refused (or re-enrolling when
//! configured to). The API is driven with the real `curl` binary, as operators do.

mod common;

use common::{agent_bin, wait_for, Agent, Manager};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The manager's API port, from `manager.ports` (`api=<port>`).
fn api_port(manager: &Manager) -> u16 {
    wait_for(
        Duration::from_secs(10),
        "the API port in manager.ports",
        || {
            let text = std::fs::read_to_string(manager.dir.join("manager.ports")).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("api="))
                .and_then(|p| p.parse().ok())
        },
    )
}

/// `user:password` of the API admin, from the file the manager wrote at its first start.
fn admin(manager: &Manager) -> String {
    let text = std::fs::read_to_string(manager.dir.join("api-admin.txt")).expect("api-admin.txt");
    text.trim_end().to_string()
}

/// The API through curl, verifying the manager with its CA.
struct Api {
    url: String,
    ca: PathBuf,
    token: String,
}

impl Api {
    fn new(manager: &Manager) -> Api {
        let url = format!("https://127.0.0.1:{}", api_port(manager));
        let ca = manager.ca_pem();
        let login = format!("{url}/security/user/authenticate?raw=true");
        let token = curl(&[
            "--cacert",
            path(&ca),
            "-u",
            &admin(manager),
            "-X",
            "POST",
            &login,
        ]);
        assert_eq!(token.split('.').count(), 3, "a token: {token}");
        Api { url, ca, token }
    }

    fn call(&self, method: &str, path_and_query: &str, body: Option<&str>) -> Value {
        let url = format!("{}{path_and_query}", self.url);
        let bearer = format!("Authorization: Bearer {}", self.token);
        let mut args = vec!["--cacert", path(&self.ca), "-X", method, "-H", &bearer];
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        let out = curl(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e}): {out}"))
    }

    /// Registers `name` and returns (id, registration key).
    fn add(&self, name: &str) -> (String, String) {
        let reply = self.call("POST", "/agents", Some(&format!("{{\"name\":\"{name}\"}}")));
        let data = &reply["data"];
        (
            data["id"].as_str().expect("id").to_string(),
            data["key"].as_str().expect("key").to_string(),
        )
    }

    fn status(&self, id: &str) -> Option<String> {
        let reply = self.call(
            "GET",
            &format!("/agents?agents_list={id}&select=status"),
            None,
        );
        reply["data"]["affected_items"][0]["status"]
            .as_str()
            .map(str::to_string)
    }

    fn wait_status(&self, id: &str, status: &str) {
        wait_for(
            Duration::from_secs(60),
            &format!("agent {id} {status}"),
            || (self.status(id).as_deref() == Some(status)).then_some(()),
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs curl (silent, failing on HTTP errors) and returns its output.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Imports a registration key into the agent's state with `gatewatch enroll --key`.
fn import_key(agent: &Agent, manager: &Manager, key: &str) {
    let out = agent.command(&["enroll", "--key", key, "--ca", path(&manager.ca_pem())]);
    assert!(
        out.status.success(),
        "enroll --key failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An agent process whose stderr goes to a file, to read what it told its operator.
struct Watched {
    child: Child,
    stderr: PathBuf,
}

impl Watched {
    fn spawn(agent: &Agent, name: &str) -> Watched {
        let stderr = agent.state_dir.with_file_name(format!("{name}.stderr"));
        let file = std::fs::File::create(&stderr).expect("stderr file");
        let child = Command::new(agent_bin())
            .arg("run")
            .arg("--config")
            .arg(&agent.config)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the agent");
        Watched { child, stderr }
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_for(timeout, "the agent to exit", || {
            self.child.try_wait().expect("wait")
        })
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn started_events(manager: &Manager, id: u32) -> usize {
    manager
        .events(id)
        .iter()
        .filter(|(_, kind, _)| kind == "agent.started")
        .count()
}

#[test]
fn seed_api_enrollment_flow() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let (user_password, port) = (admin(&manager), api_port(&manager));
    let (user, password) = user_password.split_once(':').unwrap();
    // The seed's two commands, as written, run by a shell.
    let script = format!(
        r#"TOKEN=$(curl -u {user}:{password} -k -X POST "https://127.0.0.1:{port}/security/user/authenticate?raw=true")
curl -k -X POST -d '{{"name":"test-agent"}}' "https://127.0.0.1:{port}/agents?pretty=true" -H "Content-Type:application/json" -H "Authorization: Bearer $TOKEN""#
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\n   \"data\": {"), "pretty JSON: {text}");
    let reply: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(reply["error"], 0);
    let key = reply["data"]["key"].as_str().expect("a key");

    let mut agent = Agent::configure(&dir.path().join("agent"), &manager, "");
    import_key(&agent, &manager, key);
    let keys = std::fs::read_to_string(agent.state_dir.join("client.keys")).unwrap();
    assert!(keys.starts_with("001 test-agent any "), "{keys}");
    agent.spawn();
    let api = Api::new(&manager);
    api.wait_status("001", "active");
    let listed = api.call("GET", "/agents?agents_list=001", None);
    let item = &listed["data"]["affected_items"][0];
    assert_eq!(item["name"], "test-agent");
    assert_eq!(item["ip"], "127.0.0.1");
    assert_eq!(item["registerIP"], "any");
}

#[test]
fn restart_reaches_agent() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let api = Api::new(&manager);
    let mut agents = Vec::new();
    for name in ["gw-a", "gw-b"] {
        let (id, key) = api.add(name);
        let mut agent = Agent::configure(&dir.path().join(name), &manager, "");
        import_key(&agent, &manager, &key);
        agent.spawn();
        agents.push((id, agent));
    }
    let (offline, _) = api.add("gw-offline");
    for (id, agent) in &agents {
        api.wait_status(id, "active");
        let n = agent.agent_id();
        wait_for(Duration::from_secs(30), "the agent.started event", || {
            (started_events(&manager, n) == 1).then_some(())
        });
    }
    let pids: Vec<u32> = agents.iter().map(|(_, a)| a.pid()).collect();

    let reply = api.call(
        "PUT",
        &format!("/agents/restart?agents_list=001,002,{offline}"),
        None,
    );
    assert_eq!(reply["error"], 2, "{reply}");
    assert_eq!(
        reply["data"]["affected_items"],
        serde_json::json!(["001", "002"])
    );
    assert_eq!(reply["data"]["failed_items"][0]["error"]["code"], 1707);
    assert_eq!(
        reply["data"]["failed_items"][0]["id"],
        serde_json::json!([offline])
    );

    // Each agent re-executes itself (same pid, new process image) and opens a new session.
    for ((id, agent), pid) in agents.iter().zip(&pids) {
        let n = agent.agent_id();
        wait_for(
            Duration::from_secs(60),
            "a second agent.started event",
            || (started_events(&manager, n) == 2).then_some(()),
        );
        api.wait_status(id, "active");
        assert_eq!(agent.pid(), *pid);
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "the agent is still running"
        );
    }
    // Without a list: every active agent, failures dropped.
    let all = api.call("PUT", "/agents/restart", None);
    assert_eq!(all["error"], 0, "{all}");
    assert_eq!(
        all["data"]["affected_items"],
        serde_json::json!(["001", "002"])
    );
    for (id, agent) in &agents {
        let n = agent.agent_id();
        wait_for(
            Duration::from_secs(60),
            "a third agent.started event",
            || (started_events(&manager, n) == 3).then_some(()),
        );
        api.wait_status(id, "active");
    }
}

#[test]
fn deleted_agent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let api = Api::new(&manager);
    let (id, key) = api.add("test-agent");
    let agent = Agent::configure(&dir.path().join("agent"), &manager, "");
    import_key(&agent, &manager, &key);
    let mut running = Watched::spawn(&agent, "first");
    api.wait_status(&id, "active");

    let reply = api.call(
        "DELETE",
        &format!("/agents?agents_list={id}&status=all&older_than=0s"),
        None,
    );
    assert_eq!(reply["data"]["affected_items"], serde_json::json!([id]));
    // The live session is closed with a refusal: the agent stops, non-zero, saying why.
    let status = running.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let said = running.stderr();
    assert!(
        said.contains("revoked") && said.contains("deleted"),
        "{said}"
    );
    // It does not re-enroll on its own: same credentials, refused again at the next start.
    let keys = std::fs::read_to_string(agent.state_dir.join("client.keys")).unwrap();
    assert!(keys.starts_with(&format!("{id} test-agent ")), "{keys}");
    let mut again = Watched::spawn(&agent, "second");
    assert!(!again.wait_exit(Duration::from_secs(30)).success());
    assert!(again.stderr().contains("revoked"), "{}", again.stderr());
    let listed = api.call("GET", "/agents", None);
    assert_eq!(
        listed["data"]["total_affected_items"], 1,
        "only agent 000: {listed}"
    );
}

#[test]
fn deleted_agent_reenrolls_when_configured_to() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::start(&dir.path().join("manager"), None);
    let api = Api::new(&manager);
    let (id, key) = api.add("test-agent");
    // Appended right after the [enrollment] keys of the generated configuration.
    let agent = Agent::configure(
        &dir.path().join("agent"),
        &manager,
        "reenroll_when_refused = true\n",
    );
    import_key(&agent, &manager, &key);
    let mut running = Watched::spawn(&agent, "agent");
    api.wait_status(&id, "active");

    api.call(
        "DELETE",
        &format!("/agents?agents_list={id}&status=all&older_than=0s"),
        None,
    );
    // Enrolled again on 1515 under a new id, and connected.
    wait_for(Duration::from_secs(60), "the new credentials", || {
        let keys = std::fs::read_to_string(agent.state_dir.join("client.keys")).ok()?;
        (!keys.starts_with(&format!("{id} "))).then_some(())
    });
    let new_id = format!("{:03}", agent.agent_id());
    api.wait_status(&new_id, "active");
    assert!(running.child.try_wait().unwrap().is_none(), "still running");
    assert!(
        running.stderr().contains("enrolling again"),
        "{}",
        running.stderr()
    );
}
