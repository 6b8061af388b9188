//! A real Docker engine for the tests: `dockerd` started as a child process with its own data
//! root, exec root, socket and pid file in a temp dir, and without the host-wide networking it
//! would otherwise set up (`docker0`, iptables, ip_forward), so several engines run side by side.
//! Containers run with `--network none`. The image is a static busybox imported from a tarball
//! (no registry is needed). Dropping the engine stops it, and its containerd, leaving nothing.
//!
//! Without `dockerd` the tests are skipped (printing why), unless `CI` is set: then they fail.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The image every engine gets (a static busybox, `CMD ["sh"]`).
pub const IMAGE: &str = "gwtest/busybox:1";

/// A running engine of the tests' own.
pub struct Engine {
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
        if !on_path("dockerd") || !on_path("docker") || !Path::new("/bin/busybox").exists() {
            return skip(
                "dockerd, docker or /bin/busybox is missing (scripts/ci-docker.sh installs them)",
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("gwdk")
            .tempdir()
            .unwrap_or_else(|e| panic!("a temp dir for the engine: {e}"));
        let socket = dir.path().join("docker.sock");
        let mut engine = Engine {
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

    /// Starts `dockerd` and waits until `/_ping` answers; or why not, with its last log lines.
    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.join("dockerd.log").display()));
        let child = Command::new("dockerd")
            .arg("--data-root")
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
            ])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .unwrap_or_else(|e| panic!("dockerd log: {e}")),
            )
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run dockerd: {e}"))?;
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
                    "dockerd did not start ({exited:?}); last log lines, newest first:\n{tail}"
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

    /// Stops dockerd (SIGTERM, SIGKILL after 20 s) and the containerd it started.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let containerd_pid = self.dir.path().join("exec/containerd/containerd.pid");
        let containerd = std::fs::read_to_string(&containerd_pid)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        signal(child.id() as i32, libc::SIGTERM);
        if !wait_exit(&mut child, Duration::from_secs(20)) {
            signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
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
