//! The built-in responses and their reversals: firewall drop (nftables set with a timeout per
//! element, iptables rules as the fallback), host deny, null route, kill, quarantine, disable
//! account. Tools run as child processes on the executor ([`crate::runtime::child`]), inside
//! `netns` when one is configured; their output becomes the error of a failure.

use super::action::Action;
use super::config::{FirewallTool, ResponseConfig};
use super::{quarantine, safety};
use crate::runtime::child;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tool output kept for an error message.
const OUTPUT_CAP: usize = 4096;
/// Seconds an nftables element outlives its reversal: a backstop if the agent never comes back,
/// while the agent's own reversal (an event) is what normally lifts the block.
const NFT_MARGIN_SECS: u64 = 30;

/// Carries out built-in actions.
pub struct Builtins {
    config: ResponseConfig,
    quarantine_dir: PathBuf,
    state_dir: PathBuf,
    tool: FirewallTool,
}

impl Builtins {
    /// For `config`, keeping its files (nft ruleset, quarantine by default) in `state_dir`.
    pub fn new(config: &ResponseConfig, state_dir: &Path) -> Builtins {
        let tool = match config.firewall {
            FirewallTool::Auto if find_program("nft").is_some() => FirewallTool::Nft,
            FirewallTool::Auto => FirewallTool::Iptables,
            chosen => chosen,
        };
        Builtins {
            quarantine_dir: super::quarantine_dir(config, state_dir),
            config: config.clone(),
            state_dir: state_dir.to_path_buf(),
            tool,
        }
    }

    /// Takes `action` (id `id`, reversed after `timeout_secs`). `Err` is the failure's text.
    pub async fn apply(&self, id: &str, action: &Action, timeout_secs: u64) -> Result<(), String> {
        match action {
            Action::FirewallDrop { ip } => self.firewall(*ip, true, timeout_secs).await,
            Action::HostDeny { ip } => host_deny(&self.config.hosts_deny, *ip, true),
            Action::NullRoute { ip } => self.null_route(*ip, true).await,
            Action::Kill { target } => kill(target),
            Action::Quarantine { path } => quarantine::quarantine(&self.quarantine_dir, id, path)
                .await
                .map(drop),
            Action::DisableAccount { user } => self.account(user, true).await,
            Action::Restore { id } => quarantine::restore(&self.quarantine_dir, id).map(drop),
            Action::Custom { .. } => Err("a custom response is not a built-in".into()),
        }
    }

    /// Undoes `action`.
    pub async fn revert(&self, action: &Action) -> Result<(), String> {
        match action {
            Action::FirewallDrop { ip } => self.firewall(*ip, false, 0).await,
            Action::HostDeny { ip } => host_deny(&self.config.hosts_deny, *ip, false),
            Action::NullRoute { ip } => self.null_route(*ip, false).await,
            Action::DisableAccount { user } => self.account(user, false).await,
            other => Err(format!("{} is not undone by a timeout", other.command())),
        }
    }

    async fn firewall(&self, ip: IpAddr, add: bool, timeout_secs: u64) -> Result<(), String> {
        match self.tool {
            FirewallTool::Iptables => {
                let tool = if ip.is_ipv4() {
                    "iptables"
                } else {
                    "ip6tables"
                };
                let op = if add { "-I" } else { "-D" };
                for chain in ["INPUT", "FORWARD"] {
                    let ip = ip.to_string();
                    self.tool_run(&[tool, "-w", op, chain, "-s", &ip, "-j", "DROP"])
                        .await?;
                }
                Ok(())
            }
            _ => {
                self.nft_ready().await?;
                let set = if ip.is_ipv4() { "blocked4" } else { "blocked6" };
                let table = &self.config.nft_table;
                if add {
                    let element = match timeout_secs {
                        0 => format!("{{ {ip} }}"),
                        t => format!("{{ {ip} timeout {}s }}", t + NFT_MARGIN_SECS),
                    };
                    // Replaced, so a renewed block gets the new timeout.
                    let _ = self.delete_element(table, set, ip).await;
                    self.tool_run(&["nft", "add", "element", "inet", table, set, &element])
                        .await
                } else {
                    self.delete_element(table, set, ip).await
                }
            }
        }
    }

    async fn delete_element(&self, table: &str, set: &str, ip: IpAddr) -> Result<(), String> {
        let element = format!("{{ {ip} }}");
        match self
            .tool_run(&["nft", "delete", "element", "inet", table, set, &element])
            .await
        {
            // Already gone (the element's own timeout, or a reboot): the reversal holds.
            Err(e) if e.contains("No such file or directory") => Ok(()),
            other => other,
        }
    }

    /// Creates the table, its two sets and the drop rules once (they survive the agent).
    async fn nft_ready(&self) -> Result<(), String> {
        let table = &self.config.nft_table;
        if self
            .tool_run(&["nft", "list", "set", "inet", table, "blocked4"])
            .await
            .is_ok()
        {
            return Ok(());
        }
        let ruleset = format!(
            "table inet {table} {{\n\
             \tset blocked4 {{ type ipv4_addr; flags timeout; }}\n\
             \tset blocked6 {{ type ipv6_addr; flags timeout; }}\n\
             \tchain input {{ type filter hook input priority -10; policy accept; ip saddr @blocked4 drop; ip6 saddr @blocked6 drop; }}\n\
             \tchain forward {{ type filter hook forward priority -10; policy accept; ip saddr @blocked4 drop; ip6 saddr @blocked6 drop; }}\n\
             }}\n"
        );
        let file = self.state_dir.join("nft-ruleset.nft");
        std::fs::write(&file, ruleset).map_err(|e| format!("{}: {e}", file.display()))?;
        let file = file.to_string_lossy().into_owned();
        self.tool_run(&["nft", "-f", &file]).await
    }

    async fn null_route(&self, ip: IpAddr, add: bool) -> Result<(), String> {
        let op = if add { "add" } else { "del" };
        let ip = ip.to_string();
        self.tool_run(&["ip", "route", op, "blackhole", &ip]).await
    }

    async fn account(&self, user: &str, lock: bool) -> Result<(), String> {
        safety::check_account(user)?;
        let template = if lock {
            &self.config.lock_account
        } else {
            &self.config.unlock_account
        };
        let argv: Vec<String> = template.iter().map(|a| a.replace("{user}", user)).collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.run_argv(&argv, false).await
    }

    /// Runs a network tool (inside the configured namespace).
    async fn tool_run(&self, argv: &[&str]) -> Result<(), String> {
        self.run_argv(argv, true).await
    }

    async fn run_argv(&self, argv: &[&str], in_netns: bool) -> Result<(), String> {
        let mut full: Vec<OsString> = Vec::new();
        if let (true, Some(ns)) = (in_netns, &self.config.netns) {
            full.extend(["ip", "netns", "exec", ns].map(OsString::from));
        }
        full.extend(argv.iter().map(OsString::from));
        let timeout = Duration::from_secs(self.config.run_timeout_secs.max(1));
        let keep = |_: &mut Vec<u8>, _: usize| true;
        let out = child::run(&full, timeout, OUTPUT_CAP, &keep)
            .await
            .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
        match out.exit_code {
            Some(0) => Ok(()),
            _ => Err(format!(
                "{} failed ({}): {}",
                argv.join(" "),
                match (out.exit_code, out.timed_out) {
                    (_, true) => "timed out".to_string(),
                    (Some(code), _) => format!("exit {code}"),
                    (None, _) => format!("signal {}", out.signal.unwrap_or(0)),
                },
                String::from_utf8_lossy(&out.output).trim()
            )),
        }
    }
}

/// The file `name` in `PATH` (or the sbin directories, often missing from a service's PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Adds (or removes) the `ALL: <ip>` line; the file is rewritten through a renamed temporary.
fn host_deny(path: &Path, ip: IpAddr, add: bool) -> Result<(), String> {
    let line = format!("ALL: {ip}");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let present = text.lines().any(|l| l.trim() == line);
    let new = match (add, present) {
        (true, true) | (false, false) => return Ok(()),
        (true, false) => {
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            format!("{text}{sep}{line}\n")
        }
        (false, true) => text
            .lines()
            .filter(|l| l.trim() != line)
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    let tmp = path.with_extension("gatewatch-tmp");
    std::fs::write(&tmp, new)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// SIGKILL to pid `target`, or to every process named `target` (never pid 1, the agent or its
/// ancestors: those are refused).
pub fn kill(target: &str) -> Result<(), String> {
    let pids: Vec<i32> = match target.parse::<i32>() {
        Ok(pid) => vec![pid],
        Err(_) => processes_named(target),
    };
    if pids.is_empty() {
        return Err(format!("no process named {target:?}"));
    }
    let mut refused = Vec::new();
    let mut killed = 0;
    for pid in pids {
        if let Err(reason) = safety::check_kill(pid) {
            refused.push(reason);
            continue;
        }
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        rustix::process::kill_process(p, rustix::process::Signal::KILL)
            .map_err(|e| format!("kill {pid}: {e}"))?;
        killed += 1;
    }
    match (killed, refused.is_empty()) {
        (0, false) => Err(format!("refused: {}", refused.join("; "))),
        _ => Ok(()),
    }
}

/// Pids whose `comm` is `name` (the kernel keeps its first 15 bytes).
fn processes_named(name: &str) -> Vec<i32> {
    let comm: String = name.chars().take(15).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end_matches('\n') == comm)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_response_refuses_pid1_and_self() {
        let me = std::process::id().to_string();
        for target in ["1", "0", "-1", me.as_str()] {
            let refused = kill(target).unwrap_err();
            assert!(refused.contains("refused"), "{target}: {refused}");
        }
        let parent = std::os::unix::process::parent_id().to_string();
        assert!(kill(&parent).unwrap_err().contains("ancestor"));
    }

    #[test]
    fn kill_by_name_ends_the_process() {
        // A copy of sleep under a name no other process has.
        let dir = tempfile::tempdir().unwrap();
        let name = format!("gwkill{}", std::process::id());
        let program = dir.path().join(&name);
        std::fs::copy(find_program("sleep").expect("sleep"), &program).unwrap();
        let mut sleeper = std::process::Command::new(&program)
            .arg("300")
            .spawn()
            .unwrap();
        // Its name is in /proc once exec is done.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while processes_named(&name).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        kill(&name).unwrap();
        let status = sleeper.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }

    #[test]
    fn host_deny_adds_then_removes_its_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.deny");
        std::fs::write(&file, "# keep\nsshd: 10.0.0.1").unwrap();
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        host_deny(&file, ip, true).unwrap();
        host_deny(&file, ip, true).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, "# keep\nsshd: 10.0.0.1\nALL: 203.0.113.5\n");
        host_deny(&file, ip, false).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, "# keep\nsshd: 10.0.0.1\n");
    }
}
