//! `[modules.sca]`: which policies run, how often, and the limits of command rules.

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the security configuration assessment module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScaConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 3 MiB (a CIS policy runs in well under 2 MiB).
    pub budget_bytes: usize,
    /// Seconds between scans. Default 43200 (12 h), as Wazuh's shipped configuration.
    pub interval_secs: u64,
    /// Scan as soon as the agent starts. Default true.
    pub scan_on_start: bool,
    /// Folder whose `*.yml` / `*.yaml` policies all run (the shipped IoT gateway policy is
    /// installed here). Default `/etc/gatewatch/sca`.
    pub policies_dir: PathBuf,
    /// Further policy files to run.
    pub policies: Vec<PathBuf>,
    /// Policy ids (or file names) that must not run.
    pub disabled: Vec<String>,
    /// Seconds a command rule may run before its process group is killed (the rule is then not
    /// applicable). Default 30, as Wazuh's `sca.commands_timeout`.
    pub commands_timeout_secs: u64,
    /// Directory rules on NFS mounts are not applicable instead of walked. Default true.
    pub skip_nfs: bool,
    /// Every this many scans, every check result is sent again (not only changes), so that the
    /// manager converges after any loss. Default 2 (daily at the default interval).
    pub sync_every_scans: u32,
}

impl Default for ScaConfig {
    fn default() -> Self {
        ScaConfig {
            enabled: false,
            budget_bytes: 3 * 1024 * 1024,
            interval_secs: 43_200,
            scan_on_start: true,
            policies_dir: PathBuf::from("/etc/gatewatch/sca"),
            policies: Vec::new(),
            disabled: Vec::new(),
            commands_timeout_secs: 30,
            skip_nfs: true,
            sync_every_scans: 2,
        }
    }
}
