//! A real container engine for the tests: `dockerd` started as a child process with its own data
//! root, exec root, socket and pid file in a temp dir, and without the host-wide networking it
//! would otherwise set up (`docker0`, iptables, ip_forward), so several engines run side by side;
//! or podman's Docker-compatible service (`podman system service`) with its own root, run root,
//! temp dir and configuration. Containers run with `--network none`. The image is a static busybox
//! imported from a tarball (no registry is needed). Dropping the engine stops it, its containers
//! and (for Docker) its containerd, leaving no process behind.
//!
//! Without the engine the tests are skipped (printing why), unless `CI` is set: then they fail.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The image every engine gets (a static busybox, `CMD ["sh"]`).
pub const IMAGE: &str = "gwtest/busybox:1";

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Docker,
    Podman,
}

/// A running engine of the tests' own.
pub struct Engine {
    kind: Kind,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The engine's API socket.
    pub socket: PathBuf,
}

static SHARED: Mutex<Weak<Engine>> = Mutex::new(Weak::new());

impl Engine {
    /// The engine shared by the tests running at the same time (started by the first of them,
    /// stopped when the last lets go). `None` when the tests are skipped.
    pub fn shared() -> Option<Arc<Engine>> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = shared.upgrade() {
            return Some(engine);
        }
        let engine = Arc::new(Engine::start()?);
        *shared = Arc::downgrade(&engine);
        Some(engine)
    }

    /// A new engine of the caller's own, with the test image imported. `None` (printing why)
    /// when `dockerd` is not installed or cannot start and `CI` is not set.
    pub fn start() -> Option<Engine> {
        Engine::start_kind(Kind::Docker)
    }

    /// A new podman service of the caller's own, as [`Engine::start`].
    pub fn start_podman() -> Option<Engine> {
        Engine::start_kind(Kind::Podman)
    }

    fn start_kind(kind: Kind) -> Option<Engine> {
        let server = match kind {
            Kind::Docker => "dockerd",
            Kind::Podman => "podman",
        };
        if !on_path(server) || !on_path("docker") || !Path::new("/bin/busybox").exists() {
            return skip(&format!(
                "{server}, docker or /bin/busybox is missing (scripts/ci-docker.sh installs them)"
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("gwdk")
            .tempdir()
            .unwrap_or_else(|e| panic!("a temp dir for the engine: {e}"));
        let socket = dir.path().join("docker.sock");
        let mut engine = Engine {
            kind,
            dir,
            child: None,
            socket,
        };
        if let Err(why) = engine.launch() {
            return skip(&why);
        }
        engine.import_image();
        Some(engine)
    }

    /// The server's command line.
    fn server(&self) -> Command {
        let d = self.dir.path();
        match self.kind {
            Kind::Docker => {
                let mut cmd = Command::new("dockerd");
                cmd.arg("--data-root")
                    .arg(d.join("data"))
                    .arg("--exec-root")
                    .arg(d.join("exec"))
                    .arg("--pidfile")
                    .arg(d.join("docker.pid"))
                    .arg("-H")
                    .arg(format!("unix://{}", self.socket.display()))
                    .args([
                        "--bridge=none",
                        "--iptables=false",
                        "--ip6tables=false",
                        "--ip-forward=false",
                        "--ip-masq=false",
                        "--storage-driver=vfs",
                        "--shutdown-timeout=1",
                    ]);
                cmd
            }
            Kind::Podman => {
                let mut cmd = self.podman();
                cmd.args(["system", "service", "--time=0"])
                    .arg(format!("unix://{}", self.socket.display()));
                cmd
            }
        }
    }

    /// The podman command with this engine's storage, run state and configuration.
    fn podman(&self) -> Command {
        let d = self.dir.path();
        // What the platform notes found podman needs here: ulimits it may set, and runc.
        let conf = d.join("containers.conf");
        let text = "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n\
                    [engine]\nruntime = \"runc\"\n";
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", conf)
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args([
                "--storage-driver=vfs",
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
            ]);
        cmd
    }

    /// Starts the server and waits until `/_ping` answers; or why not, with its last log lines.
    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.join("dockerd.log").display()));
        let child = self
            .server()
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("dockerd log: {e}")),
            )
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run the {:?} engine: {e}", self.kind))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pings() {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default();
                let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join("\n");
                self.stop();
                return Err(format!(
                    "the {:?} engine did not start ({exited:?}); last log lines, newest first:\n{tail}",
                    self.kind
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the engine answers `GET /_ping`.
    fn pings(&self) -> bool {
        let Ok(mut conn) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut answer = [0u8; 64];
        conn.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_ok()
            && conn
                .read(&mut answer)
                .is_ok_and(|n| answer[..n].starts_with(b"HTTP/1.0 200"))
    }

    /// Stops the engine and then restarts it on the same data root and socket.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(why) = self.launch() {
            panic!("the engine did not restart: {why}");
        }
    }

    /// Runs the docker client against this engine; its standard output, or a panic with its
    /// error output.
    pub fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// Runs the docker client; its standard output or its error output.
    pub fn try_docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Imports a busybox rootfs tarball as `tag` (an `image import` event).
    pub fn import(&self, tag: &str) {
        let tar = self.dir.path().join("rootfs.tar");
        if !tar.exists() {
            let root = self.dir.path().join("rootfs");
            let bin = root.join("bin");
            std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            std::fs::copy("/bin/busybox", bin.join("busybox"))
                .unwrap_or_else(|e| panic!("copying /bin/busybox: {e}"));
            for tool in ["sh", "sleep", "id", "true", "cat", "ls"] {
                let _ = std::os::unix::fs::symlink("busybox", bin.join(tool));
            }
            let status = Command::new("tar")
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&tar)
                .arg(".")
                .status()
                .unwrap_or_else(|e| panic!("cannot run tar: {e}"));
            assert!(status.success(), "tar of the busybox rootfs failed");
        }
        let tar = tar.to_string_lossy().into_owned();
        self.docker(&["import", "--change", "CMD [\"sh\"]", &tar, tag]);
    }

    fn import_image(&self) {
        self.import(IMAGE);
    }

    /// Stops the engine (SIGTERM, SIGKILL after 20 s), its containers, and the containerd
    /// dockerd started.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.kind == Kind::Podman {
            // podman's containers live on (under conmon) without the service: remove them.
            let _ = self
                .podman()
                .args(["rm", "--all", "--force", "--time", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let containerd_pid = self.dir.path().join("exec/containerd/containerd.pid");
        let containerd = std::fs::read_to_string(&containerd_pid)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        signal(child.id() as i32, libc::SIGTERM);
        if !wait_exit(&mut child, Duration::from_secs(20)) {
            signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
        }
        // Whatever still names this engine's directory (podman's exec monitors, a shim) goes too.
        for pid in processes_mentioning(self.dir.path()) {
            signal(pid, libc::SIGKILL);
        }
        if let Some(pid) = containerd {
            // dockerd stops its containerd on the way out; make sure, without waiting forever.
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Without an engine the tests fail when `CI` is set, and are skipped (saying why) otherwise.
fn skip(why: &str) -> Option<Engine> {
    if std::env::var_os("CI").is_some() {
        panic!("container engine tests cannot run: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Processes whose command line mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid we started; no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
