//! `[modules.inventory]`: what the system inventory collects, how often, and under which root.

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the inventory module (Wazuh's syscollector).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 2 MiB.
    pub budget_bytes: usize,
    /// Seconds between scans. Default 3600, as Wazuh.
    pub interval_secs: u64,
    /// Scan as soon as the agent starts (otherwise after one interval). Default true.
    pub scan_on_start: bool,
    /// Directory every collector reads under (`/etc/os-release` is read as
    /// `<root>/etc/os-release`, `/proc` as `<root>/proc`). Default `/`.
    pub root: PathBuf,
    /// Collect the operating system. Default true.
    pub os: bool,
    /// Collect the hardware (CPU, memory, board serial). Default true.
    pub hardware: bool,
    /// Collect network interfaces and their addresses. Default true.
    pub network: bool,
    /// Collect open ports. Default true.
    pub ports: bool,
    /// Every TCP connection, not only listening sockets (UDP sockets are always listed).
    /// Default false.
    pub ports_all: bool,
    /// Collect running processes. Default true.
    pub processes: bool,
    /// Collect installed packages (dpkg, opkg, rpm, apk). Default true.
    pub packages: bool,
    /// Collect local users and groups. Default true.
    pub users: bool,
    /// Every this many scans, send a full snapshot of every table so that the manager converges
    /// after any lost change. Default 24 (daily at the default interval).
    pub sync_every_scans: u32,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            enabled: false,
            budget_bytes: 2 * 1024 * 1024,
            interval_secs: 3600,
            scan_on_start: true,
            root: PathBuf::from("/"),
            os: true,
            hardware: true,
            network: true,
            ports: true,
            ports_all: false,
            processes: true,
            packages: true,
            users: true,
            sync_every_scans: 24,
        }
    }
}
