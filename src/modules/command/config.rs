//! `[modules.command]`: the commands to run, each an `[[modules.command.entries]]` table.

use serde::Deserialize;

/// Settings of the command module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CommandConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 512 KiB.
    pub budget_bytes: usize,
    /// The commands.
    pub entries: Vec<CommandEntry>,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            enabled: false,
            budget_bytes: 512 * 1024,
            entries: Vec::new(),
        }
    }
}

/// One command (Wazuh's `<wodle name="command">`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    /// Tag of its events (Wazuh's `tag`).
    pub name: String,
    /// The argument vector; with `shell = true`, one string run by `/bin/sh -c`.
    pub command: Vec<String>,
    /// Run through `/bin/sh -c` (only when asked). Default false.
    #[serde(default)]
    pub shell: bool,
    /// Seconds between runs. Default 3600.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Run once when the module starts. Default true.
    #[serde(default = "yes")]
    pub run_on_start: bool,
    /// Seconds before the command's whole process group is killed. Default 60.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Send no output, only the run's end. Default false.
    #[serde(default)]
    pub ignore_output: bool,
    /// Output bytes kept per run; the rest is discarded and the run flagged. Default 64 KiB.
    #[serde(default = "default_cap")]
    pub max_output_bytes: usize,
    /// Hex SHA-256 the executable must have; it is not run otherwise. Default none.
    #[serde(default)]
    pub sha256: Option<String>,
    /// `lines` (one event per output line, default) or `whole` (one event per run).
    #[serde(default)]
    pub output: OutputMode,
}

fn default_interval() -> u64 {
    3600
}
fn default_timeout() -> u64 {
    60
}
fn default_cap() -> usize {
    64 * 1024
}
fn yes() -> bool {
    true
}

/// How a run's output becomes events.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// One event per line.
    #[default]
    Lines,
    /// One event for the whole output.
    Whole,
}

impl CommandEntry {
    /// The argument vector to execute (the shell wrapped around it when asked).
    pub fn argv(&self) -> Vec<String> {
        if self.shell {
            vec!["/bin/sh".into(), "-c".into(), self.command.join(" ")]
        } else {
            self.command.clone()
        }
    }
}

impl CommandConfig {
    /// Problems the types cannot express, as `(key, reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let key = |k: &str| format!("modules.command.entries[{i}].{k}");
            if e.name.is_empty() {
                problems.push((key("name"), "is empty".into()));
            }
            if e.command.is_empty() || e.command[0].is_empty() {
                problems.push((key("command"), "give at least the program".into()));
            }
            if e.interval_secs == 0 {
                problems.push((key("interval_secs"), "at least 1 second".into()));
            }
            if e.timeout_secs == 0 {
                problems.push((key("timeout_secs"), "at least 1 second".into()));
            }
            if let Some(hash) = &e.sha256 {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    problems.push((key("sha256"), "64 hexadecimal digits".into()));
                }
            }
        }
        problems
    }
}
