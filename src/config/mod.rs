//! Agent configuration: one TOML file, overridden by the Wazuh installer's `WAZUH_*` variables.
//!
//! Every field has a documented default, so an empty file (plus `WAZUH_MANAGER`) is a working
//! configuration. Unknown keys and bad values are errors that name the file, the key and the
//! reason (`gatewatch check-config` prints them without starting anything).

mod check;
mod env;
mod error;
mod hostname;
mod load;
mod redact;
mod spans;
#[cfg(test)]
mod test_env;

pub use check::{
    effective_password, module_problems, validate, FRAME_BYTES, MAX_GENERATOR_BODY, MAX_NAME_LEN,
    MIN_MODULE_BUDGET, MIN_SPOOL_SEGMENT, QUEUE_CAPACITY,
};
pub use env::apply_env;
pub use error::{ConfigError, Key, Position, Problem};
pub use hostname::host_name;
pub use load::{load, load_str, load_str_with_env};

use serde::Deserialize;
use std::path::PathBuf;

/// Default path of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gatewatch/agent.toml";

/// The whole agent configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Who this agent is and where it keeps its state.
    pub agent: AgentConfig,
    /// Where the managers are and how to talk to them (port 1514).
    pub manager: ManagerConfig,
    /// How the agent registers itself (port 1515).
    pub enrollment: EnrollmentConfig,
    /// Queue, rate limit and on-disk spool between modules and the manager.
    pub buffer: BufferConfig,
    /// The modules and their settings.
    pub modules: ModulesConfig,
}

/// `[agent]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Agent name used at enrollment. Default: the host name. (`WAZUH_AGENT_NAME`)
    pub name: Option<String>,
    /// Groups requested at enrollment. Default: none (the manager assigns `default`).
    /// (`WAZUH_AGENT_GROUP`, comma-separated)
    pub groups: Vec<String>,
    /// Directory for credentials, spool and module state; must be on persistent storage.
    /// Default: `/var/lib/gatewatch`.
    pub state_dir: PathBuf,
    /// What `restart` commands do: `reexec` (the agent replaces itself) or `exit` (it exits with
    /// status 75 so a service manager starts it again). Default: `reexec`.
    pub restart_mode: RestartMode,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: None,
            groups: Vec::new(),
            state_dir: PathBuf::from("/var/lib/gatewatch"),
            restart_mode: RestartMode::Reexec,
        }
    }
}

/// How the agent restarts itself on a manager's `restart` command.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RestartMode {
    /// Replace the process image with a fresh copy of the agent (same pid).
    Reexec,
    /// Exit with [`RESTART_EXIT_CODE`] and let the service manager start the agent again.
    Exit,
}

/// Exit status of an agent that stops so that its service manager restarts it.
pub const RESTART_EXIT_CODE: i32 = 75;

/// `[manager]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerConfig {
    /// Manager addresses (host names or IP literals), tried in order. (`WAZUH_MANAGER`)
    pub addresses: Vec<String>,
    /// Event port. Default 1514. (`WAZUH_MANAGER_PORT`)
    pub port: u16,
    /// Transport: `tcp` (default) or `udp`. (`WAZUH_PROTOCOL`)
    pub protocol: Protocol,
    /// Seconds between keep-alives. Default 20, as Wazuh 4.13+. (`WAZUH_KEEP_ALIVE_INTERVAL`)
    pub keepalive_secs: u64,
    /// Seconds of silence from the manager after which the agent reconnects. Default 60.
    /// Forced to 3 × keep-alive when not larger than it, as Wazuh does. (`WAZUH_TIME_RECONNECT`)
    pub reconnect_secs: u64,
    /// Largest frame sent or accepted, in bytes. Default 65536.
    pub max_frame_bytes: usize,
    /// Remote commands (other than restart) are refused unless this is true. Default false.
    pub remote_commands: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            addresses: Vec::new(),
            port: 1514,
            protocol: Protocol::Tcp,
            keepalive_secs: 20,
            reconnect_secs: 60,
            max_frame_bytes: gatewatch_proto::frame::DEFAULT_MAX_FRAME,
            remote_commands: false,
        }
    }
}

impl ManagerConfig {
    /// The reconnect time in force: Wazuh forces it to 3 × keep-alive when it is not larger.
    pub fn effective_reconnect_secs(&self) -> u64 {
        if self.reconnect_secs <= self.keepalive_secs {
            self.keepalive_secs.saturating_mul(3)
        } else {
            self.reconnect_secs
        }
    }
}

/// Transport to the manager.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TLS 1.3 over TCP.
    Tcp,
    /// Sealed datagrams (not available in this version; `check-config` says so).
    Udp,
}

/// `[enrollment]` (its `Debug` output hides the password: see `redact.rs`)
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// Enroll automatically at start when there are no credentials. Default true.
    pub enabled: bool,
    /// Registration server. Default: the manager addresses. (`WAZUH_REGISTRATION_SERVER`)
    pub server: Option<String>,
    /// Registration port. Default 1515. (`WAZUH_REGISTRATION_PORT`)
    pub port: u16,
    /// Enrollment password. (`WAZUH_REGISTRATION_PASSWORD`) Never logged.
    pub password: Option<String>,
    /// File whose first line is the enrollment password (Wazuh's `authd.pass`).
    pub password_file: Option<PathBuf>,
    /// CA that signs the manager's certificate; without it the first manager seen is trusted and
    /// pinned, with a warning. (`WAZUH_REGISTRATION_CA`)
    pub ca: Option<PathBuf>,
    /// Agent certificate (PEM, P-256) presented to the registration server.
    /// (`WAZUH_REGISTRATION_CERTIFICATE`)
    pub certificate: Option<PathBuf>,
    /// Key of that certificate (PEM, PKCS#8 or SEC1). (`WAZUH_REGISTRATION_KEY`)
    pub key: Option<PathBuf>,
    /// When the manager refuses this agent's identity (deleted, unknown, wrong key): delete the
    /// credentials and enroll again (once per start) instead of stopping. Default false.
    pub reenroll_when_refused: bool,
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        EnrollmentConfig {
            enabled: true,
            server: None,
            port: 1515,
            password: None,
            password_file: None,
            ca: None,
            certificate: None,
            key: None,
            reenroll_when_refused: false,
        }
    }
}

/// `[buffer]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Events that may wait in memory between modules and the spool. Default 1024.
    pub queue_capacity: usize,
    /// Events sent to the manager per second; the rest wait in the spool. 0 = no limit.
    /// Default 500, as Wazuh's client buffer.
    pub events_per_second: u32,
    /// Backlog (events waiting) at which one `agent.flood` event is reported. Default 5000.
    pub flood_threshold: u64,
    /// Upper bound of the spool on disk, in bytes. Default 32 MiB.
    pub spool_max_bytes: u64,
    /// Size at which a spool segment is closed and a new one started. Default 1 MiB.
    pub spool_segment_bytes: u64,
    /// Milliseconds between fsyncs of the spool (batched to spare flash). Default 1000.
    pub fsync_interval_ms: u64,
    /// What happens when the spool is full: `drop_oldest` (default) or `block` (modules wait).
    pub when_full: WhenFull,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            queue_capacity: 1024,
            events_per_second: 500,
            flood_threshold: 5000,
            spool_max_bytes: 32 * 1024 * 1024,
            spool_segment_bytes: 1024 * 1024,
            fsync_interval_ms: 1000,
            when_full: WhenFull::DropOldest,
        }
    }
}

/// Spool policy when full.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Remove the oldest segment and report an `agent.dropped` event.
    DropOldest,
    /// Make modules wait until the manager acknowledges enough to make room.
    Block,
}

/// `[modules]`: one table per module.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// `[modules.generator]`
    pub generator: crate::modules::generator::GeneratorConfig,
    /// `[modules.inventory]`
    pub inventory: crate::modules::inventory::InventoryConfig,
    /// `[modules.sca]`
    pub sca: crate::modules::sca::ScaConfig,
    /// `[modules.logcollector]`
    pub logcollector: crate::modules::logcollector::LogCollectorConfig,
    /// `[modules.command]`
    pub command: crate::modules::command::CommandConfig,
    /// `[modules.fim]`
    pub fim: crate::modules::fim::FimConfig,
    /// `[modules.response]`
    pub response: crate::modules::response::ResponseConfig,
    /// `[modules.containers]`
    pub containers: crate::modules::containers::ContainersConfig,
    /// `[modules.cloud]`
    pub cloud: crate::modules::cloud::CloudConfig,
    /// `[modules.rootcheck]`
    pub rootcheck: crate::modules::rootcheck::RootcheckConfig,
}
