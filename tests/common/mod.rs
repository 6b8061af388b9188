//! Shared harness of the end-to-end tests: a real manager process, real agent processes, the
//! manager's real SQLite file. Every test works in its own temporary directory on loopback.
#![allow(dead_code)]

pub mod api;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The agent binary built for these tests.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatewatch"))
}

/// The manager binary, built beside the agent by `cargo build --workspace` / `cargo test --workspace`.
pub fn manager_bin() -> PathBuf {
    let path = agent_bin().with_file_name("gatewatch-manager");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Sends SIGKILL to a child and reaps it.
pub fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM to a child.
pub fn sigterm(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("child pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

/// A manager process with its data directory.
pub struct Manager {
    pub dir: PathBuf,
    pub events_port: u16,
    pub enroll_port: u16,
    pub password: Option<String>,
    child: Option<Child>,
}

impl Manager {
    /// Starts a manager on fixed loopback ports (so a restarted manager is found again).
    pub fn start(dir: &Path, password: Option<&str>) -> Manager {
        let mut manager = Manager {
            dir: dir.to_path_buf(),
            events_port: free_port(),
            enroll_port: free_port(),
            password: password.map(str::to_string),
            child: None,
        };
        manager.spawn();
        manager
    }

    /// Starts the process again with the same directory and ports.
    pub fn spawn(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("manager dir");
        let ports = self.dir.join("manager.ports");
        let _ = std::fs::remove_file(&ports);
        let mut cmd = Command::new(manager_bin());
        cmd.arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen", "127.0.0.1", "--name", "127.0.0.1"])
            .args(["--events-port", &self.events_port.to_string()])
            .args(["--enroll-port", &self.enroll_port.to_string()])
            .args(["--api-port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(password) = &self.password {
            let file = self.dir.join("authd.pass");
            std::fs::write(&file, password).expect("password file");
            cmd.arg("--password-file").arg(file);
        }
        self.child = Some(cmd.spawn().expect("start the manager"));
        wait_for(Duration::from_secs(30), "the manager to listen", || {
            ports.exists().then_some(())
        });
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigkill(&mut child);
        }
    }

    /// Path of the manager's CA certificate (what agents pin).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Opens the manager's database read-only.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.dir.join("manager.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open manager.db");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn
    }

    /// (seq, kind, payload JSON) of every stored event of `agent_id`, in sequence order.
    pub fn events(&self, agent_id: u32) -> Vec<(u64, String, String)> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT seq, kind, payload FROM events WHERE agent_id = ?1 ORDER BY seq")
            .expect("query events");
        let rows = stmt
            .query_map([agent_id], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })
            .expect("events rows");
        rows.map(|r| r.expect("event row")).collect()
    }

    /// The numbers `n` of the generator events stored for `agent_id`, in sequence order.
    pub fn generator_numbers(&self, agent_id: u32) -> Vec<u64> {
        self.events(agent_id)
            .into_iter()
            .filter(|(_, kind, _)| kind == "generator.event")
            .map(|(_, _, payload)| {
                let value: serde_json::Value =
                    serde_json::from_str(&payload).expect("payload JSON");
                value["Generator"]["n"].as_u64().expect("generator n")
            })
            .collect()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Configures an agent and enrolls it with `gatewatch enroll` (it is not started).
pub fn enrolled_agent(dir: &Path, manager: &Manager, extra: &str) -> Agent {
    let agent = Agent::configure(dir, manager, extra);
    let out = agent.command(&["enroll"]);
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent
}

/// An agent process with its own configuration and state directory.
pub struct Agent {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Writes the agent's configuration: `extra` is appended TOML (e.g. module tables).
    pub fn configure(dir: &Path, manager: &Manager, extra: &str) -> Agent {
        Self::configure_for(
            dir,
            &[format!("127.0.0.1:{}", manager.events_port)],
            manager,
            extra,
        )
    }

    /// The same, listing several manager `host:port` pairs (all with the same port).
    pub fn configure_for(
        dir: &Path,
        _managers: &[String],
        manager: &Manager,
        extra: &str,
    ) -> Agent {
        std::fs::create_dir_all(dir).expect("agent dir");
        let state_dir = dir.join("state");
        let config = dir.join("agent.toml");
        let password = manager
            .password
            .as_deref()
            .map(|p| format!("password = \"{p}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "[agent]\nname = \"test-agent\"\nstate_dir = \"{}\"\n\n[manager]\naddresses = [\"127.0.0.1\"]\nport = {}\nkeepalive_secs = 2\nreconnect_secs = 6\n\n[enrollment]\nport = {}\nca = \"{}\"\n{password}\n{extra}\n",
            state_dir.display(),
            manager.events_port,
            manager.enroll_port,
            manager.ca_pem().display(),
        );
        let mut file = std::fs::File::create(&config).expect("agent config");
        file.write_all(text.as_bytes()).expect("write agent config");
        Agent {
            config,
            state_dir,
            child: None,
        }
    }

    /// Starts `gatewatch run`.
    pub fn spawn(&mut self) {
        self.spawn_with_env(&[]);
    }

    /// Starts `gatewatch run` with extra environment variables.
    pub fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(agent_bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start the agent"));
    }

    /// The running agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("agent running").id()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigkill(&mut child);
        }
    }

    /// SIGTERM, then waits for the exit (at most `timeout`) and returns its status.
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        sigterm(&child);
        wait_for(timeout, "the agent to exit after SIGTERM", || {
            child.try_wait().expect("wait agent")
        })
    }

    /// Runs a `gatewatch` subcommand against this agent's configuration.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(agent_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run gatewatch")
    }

    /// Waits until the running agent has enrolled (its credentials exist); returns its id.
    pub fn wait_enrolled(&self) -> u32 {
        wait_for(Duration::from_secs(30), "enrollment", || {
            self.state_dir
                .join("client.keys")
                .exists()
                .then(|| self.agent_id())
        })
    }

    /// The agent id from the stored credentials (`client.keys`).
    pub fn agent_id(&self) -> u32 {
        let keys =
            std::fs::read_to_string(self.state_dir.join("client.keys")).expect("client.keys");
        keys.split_whitespace()
            .next()
            .expect("agent id")
            .parse()
            .expect("numeric agent id")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}
