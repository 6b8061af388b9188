//! Harness for the inventory and SCA end-to-end tests: a real manager started in this process
//! (so the tests can call its query functions) and a real agent process talking to it over TLS
//! on loopback. Everything lives in the test's temporary directory.
#![allow(dead_code)]

use gatewatch_manager::{start, ManagerHandle, ManagerOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Starts a manager in this process on fixed loopback ports (so it can be restarted on them).
pub fn start_manager(dir: &Path, events_port: u16, enroll_port: u16) -> ManagerHandle {
    let mut opts = ManagerOptions::new(dir);
    opts.listen_addr = "127.0.0.1".parse().expect("loopback");
    opts.names = vec!["127.0.0.1".into()];
    opts.events_port = events_port;
    opts.enroll_port = enroll_port;
    start(opts).expect("start the manager")
}

/// An agent process.
pub struct Agent {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Writes a configuration for `manager` with `modules` (TOML tables) and starts the agent;
    /// it enrolls by itself.
    pub fn start(dir: &Path, manager: &ManagerHandle, modules: &str) -> Agent {
        std::fs::create_dir_all(dir).expect("agent dir");
        let state_dir = dir.join("state");
        let config = dir.join("agent.toml");
        let text = format!(
            "[agent]\nname = \"module-test\"\nstate_dir = \"{}\"\n\n[manager]\naddresses = [\"127.0.0.1\"]\nport = {}\nkeepalive_secs = 2\nreconnect_secs = 6\n\n[enrollment]\nport = {}\nca = \"{}\"\n\n[buffer]\nevents_per_second = 0\n\n{modules}\n",
            state_dir.display(),
            manager.events_addr().port(),
            manager.enroll_addr().port(),
            manager.ca_pem_path().display(),
        );
        std::fs::write(&config, text).expect("agent config");
        let mut agent = Agent {
            config,
            state_dir,
            child: None,
        };
        agent.spawn();
        agent
    }

    /// Starts the agent process (again).
    pub fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_gatewatch"))
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
    }

    /// Waits for enrollment and returns the agent id.
    pub fn wait_enrolled(&self) -> u32 {
        let keys = self.state_dir.join("client.keys");
        wait_for(Duration::from_secs(30), "enrollment", || {
            let text = std::fs::read_to_string(&keys).ok()?;
            text.split_whitespace().next()?.parse().ok()
        })
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies a directory tree (files, directories and symlinks).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read link");
            std::os::unix::fs::symlink(link, &target).expect("copy link");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// The inventory fixture root in the repository.
pub fn fixture_root() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/inventory/gateway-root"
    ))
}
