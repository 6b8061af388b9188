//! `gatewatch status`: the running agent serves a snapshot of itself on a Unix socket in its
//! state directory (`status.sock`, mode 0600); the CLI reads and prints it.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// File name of the status socket inside the state directory.
pub const SOCKET_NAME: &str = "status.sock";
/// Largest report accepted by the CLI.
const MAX_REPORT: usize = 256 * 1024;

/// A snapshot of the running agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub agent_id: u32,
    pub agent_name: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// `connecting`, `connected`, `backoff`, `refused`.
    pub link_state: String,
    pub manager: Option<String>,
    pub last_error: Option<String>,
    pub modules: Vec<ModuleReport>,
    /// Bytes held by everything outside modules (pipeline, link, runtime).
    pub core_current_bytes: u64,
    pub core_peak_bytes: u64,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub spool_pending: u64,
    pub spool_bytes: u64,
    pub spool_max_bytes: u64,
    /// Events accepted into the spool since start.
    pub generated: u64,
    /// Events sent to the manager since start.
    pub sent: u64,
    /// Highest sequence number the manager acknowledged.
    pub acked_seq: u64,
    /// Records dropped because the spool was full (since the state was created).
    pub dropped: u64,
}

/// One module's line in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleReport {
    pub name: String,
    pub state: String,
    pub failures: u32,
    pub current_bytes: u64,
    pub peak_bytes: u64,
    pub budget_bytes: u64,
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "gatewatch {} (pid {}), agent {:03} {}, up {} s",
            self.version, self.pid, self.agent_id, self.agent_name, self.uptime_secs
        )?;
        writeln!(
            f,
            "link: {} manager={}",
            self.link_state,
            self.manager.as_deref().unwrap_or("-")
        )?;
        if let Some(e) = &self.last_error {
            writeln!(f, "last error: {e}")?;
        }
        writeln!(
            f,
            "events: generated={} sent={} acked_seq={} dropped={}",
            self.generated, self.sent, self.acked_seq, self.dropped
        )?;
        writeln!(
            f,
            "queue: depth={} capacity={}  spool: pending={} bytes={} max_bytes={}",
            self.queue_depth,
            self.queue_capacity,
            self.spool_pending,
            self.spool_bytes,
            self.spool_max_bytes
        )?;
        writeln!(
            f,
            "memory: core current={} peak={}",
            self.core_current_bytes, self.core_peak_bytes
        )?;
        for m in &self.modules {
            writeln!(
                f,
                "module {} {} current={} peak={} budget={} failures={}",
                m.name, m.state, m.current_bytes, m.peak_bytes, m.budget_bytes, m.failures
            )?;
        }
        Ok(())
    }
}

/// Serves `snapshot()` to every client of the socket until `shutdown`.
pub async fn serve(
    path: &Path,
    snapshot: Rc<dyn Fn() -> StatusReport>,
    shutdown: super::Shutdown,
) -> std::io::Result<()> {
    use futures_lite::{AsyncWriteExt, FutureExt};
    let _ = std::fs::remove_file(path);
    let listener = async_net::unix::UnixListener::bind(path)?;
    set_owner_only(path)?;
    loop {
        let accepted = async { Some(listener.accept().await) }.or(async {
            shutdown.wait().await;
            None
        });
        let Some(accepted) = accepted.await else {
            break;
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let report = snapshot();
        let bytes = postcard::to_allocvec(&report).unwrap_or_default();
        // A client that does not read within a second is dropped; the agent never waits on it.
        let write = async {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.close().await;
        };
        let timeout = async {
            async_io::Timer::after(Duration::from_secs(1)).await;
        };
        write.or(timeout).await;
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn set_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Reads the report of the agent whose state directory is `state_dir` (used by the CLI).
pub fn fetch(state_dir: &Path) -> Result<StatusReport, String> {
    let path = state_dir.join(SOCKET_NAME);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the agent at {}: {e} (is it running with this state directory?)",
            path.display()
        )
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut bytes = Vec::new();
    stream
        .by_ref()
        .take(MAX_REPORT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if bytes.len() > MAX_REPORT {
        return Err(format!(
            "status from {} is larger than {MAX_REPORT} bytes",
            path.display()
        ));
    }
    postcard::from_bytes(&bytes)
        .map_err(|e| format!("status from {} is not readable: {e}", path.display()))
}
