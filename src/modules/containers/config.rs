//! `[modules.containers]`: which engine to watch, the bounds of what is read from it, and the
//! severities of its findings.
//!
//! Severities (fixed, documented here so operators can rely on them):
//!
//! | rule | severity |
//! |---|---|
//! | `privileged` (container or exec) | critical |
//! | `sensitive_mount`: an engine socket or `/` | critical |
//! | `sensitive_mount`: `/etc`, `/proc`, `/sys`, `/dev`, `/boot`, `/root`, `/home`, `/run`, `/var/run`, `/var/lib/docker`, `/var/lib/kubelet`, `/lib/modules`, `/usr` (or a parent of one) | high |
//! | `sensitive_mount`: a writable mount of a path below one of those | medium |
//! | `capability`: `ALL` | critical |
//! | `capability`: `SYS_ADMIN`, `SYS_MODULE`, `SYS_PTRACE`, `SYS_RAWIO`, `DAC_READ_SEARCH`, `BPF` | high |
//! | `capability`: `NET_ADMIN`, `NET_RAW`, `SYS_TIME`, `SYS_BOOT`, `MKNOD`, `MAC_ADMIN`, `MAC_OVERRIDE`, `DAC_OVERRIDE`, `PERFMON`, `SYSLOG` | medium |
//! | `capability`: any other added capability | low |
//! | `host_pid` | high |
//! | `host_network`, `host_ipc` | medium |
//! | `seccomp_unconfined` | high |
//! | `apparmor_unconfined` | medium |
//! | `device` (a host device given to the container) | high |
//! | `root_user` (no `User`, or user 0/root) | low |
//! | `interactive_shell` (an exec of a shell with a terminal and open input) | medium |

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the containers module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 1 MiB: the agent's event queue may hold up to
    /// `buffer.queue_capacity` (1024) of the module's events (~400 bytes each) while the
    /// spool catches up, beside one response body and the event buffer.
    pub budget_bytes: usize,
    /// The engine's API socket: Docker's, podman's compatibility service
    /// (`/run/podman/podman.sock`) or balenaEngine's (`/var/run/balena-engine.sock`).
    /// Default `/var/run/docker.sock`.
    pub socket: PathBuf,
    /// Largest event accepted from the event stream, in bytes; a larger one is skipped, counted
    /// and reported (`container.event_rejected`). Default 16 KiB.
    pub max_event_bytes: usize,
    /// Largest response body accepted (inspect, inventory), in bytes. Default 128 KiB.
    pub max_response_bytes: usize,
    /// Seconds between inventories of running containers (0: never). Default 600.
    pub inventory_interval_secs: u64,
    /// Most containers listed in one inventory event. Default 200.
    pub inventory_max: usize,
    /// Most attributes kept per engine event (labels included). Default 24.
    pub max_attributes: usize,
    /// Longest attribute value kept, in bytes (longer ones are cut). Default 256.
    pub max_attribute_bytes: usize,
    /// First delay before reconnecting to a lost engine, in milliseconds; it doubles on each
    /// failure. Default 500.
    pub reconnect_min_ms: u64,
    /// Longest delay between reconnections, in milliseconds. Default 30000.
    pub reconnect_max_ms: u64,
    /// Seconds a request (version, inspect, inventory) may take. Default 10.
    pub request_timeout_secs: u64,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            enabled: false,
            budget_bytes: 1024 * 1024,
            socket: PathBuf::from("/var/run/docker.sock"),
            max_event_bytes: 16 * 1024,
            max_response_bytes: 128 * 1024,
            inventory_interval_secs: 600,
            inventory_max: 200,
            max_attributes: 24,
            max_attribute_bytes: 256,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            request_timeout_secs: 10,
        }
    }
}

impl ContainersConfig {
    /// Problems the types cannot express, as `(key, reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, reason: &str| {
            problems.push((format!("modules.containers.{key}"), reason.to_string()))
        };
        if self.socket.as_os_str().is_empty() {
            problem("socket", "give the engine's socket path");
        }
        if self.max_event_bytes < 1024 {
            problem(
                "max_event_bytes",
                "at least 1024 (engine events are ~500 bytes)",
            );
        }
        if self.max_response_bytes < 4096 {
            problem("max_response_bytes", "at least 4096");
        }
        if self.max_event_bytes.max(self.max_response_bytes) * 2 > self.budget_bytes {
            problem(
                "budget_bytes",
                "at least twice max_event_bytes and max_response_bytes",
            );
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            problem(
                "reconnect_max_ms",
                "reconnect_min_ms ≥ 1 and reconnect_max_ms ≥ reconnect_min_ms",
            );
        }
        if self.request_timeout_secs == 0 {
            problem("request_timeout_secs", "at least 1 second");
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_every_key_parses() {
        assert!(ContainersConfig::default().problems().is_empty());
        let text = "enabled = true\nsocket = \"/run/podman/podman.sock\"\nmax_event_bytes = 4096\n\
                    max_response_bytes = 65536\ninventory_interval_secs = 60\ninventory_max = 10\n\
                    max_attributes = 8\nmax_attribute_bytes = 64\nreconnect_min_ms = 100\n\
                    reconnect_max_ms = 5000\nrequest_timeout_secs = 5\nbudget_bytes = 262144\n";
        let config: ContainersConfig = toml::from_str(text).unwrap();
        assert_eq!(config.socket, PathBuf::from("/run/podman/podman.sock"));
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn a_budget_smaller_than_its_buffers_is_a_problem() {
        let config = ContainersConfig {
            budget_bytes: 64 * 1024,
            ..ContainersConfig::default()
        };
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["modules.containers.budget_bytes"]);
    }
}
