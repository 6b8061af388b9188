//! `[modules.response]`: active response — safety limits, built-in responses' settings, custom
//! responses' directory, and the local rules (`[[modules.response.rules]]`) that work offline.

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the response module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 256 KiB.
    pub budget_bytes: usize,
    /// Report what would be done, do nothing. Default false.
    pub dry_run: bool,
    /// Run network commands (`nft`, `iptables`, `ip route`) in this network namespace
    /// (`ip netns exec`). Default none: the agent's own.
    pub netns: Option<String>,
    /// Addresses never acted on (CIDRs, `10.0.0.0/8`, `2001:db8::/32`, or single addresses),
    /// besides the manager's, loopback, link-local and this host's own. Default none.
    pub allow_list: Vec<String>,
    /// Seconds before an action is reversed when its trigger gives none. Default 600.
    pub default_timeout_secs: u64,
    /// Timeout multipliers for repeated offenders: the 2nd action on the same target within
    /// `offender_memory_secs` gets the first, the 3rd the second, and so on (the last repeats).
    /// Default `[2, 4, 8]`.
    pub repeated_offenders: Vec<u32>,
    /// Seconds an offender is remembered after its last action. Default 86400.
    pub offender_memory_secs: u64,
    /// Firewall tool: `auto` (nft when installed, else iptables), `nft` or `iptables`.
    pub firewall: FirewallTool,
    /// nftables table (family `inet`) holding the blocked-address sets. Default `gatewatch`.
    pub nft_table: String,
    /// File of the host-deny response. Default `/etc/hosts.deny`.
    pub hosts_deny: PathBuf,
    /// Where quarantined files go. Default: `quarantine` in the module's state directory.
    pub quarantine_dir: Option<PathBuf>,
    /// The only directory custom responses (`!name`) are taken from. Default none: custom
    /// responses are refused.
    pub custom_dir: Option<PathBuf>,
    /// Seconds a custom response (or a tool) may run before its group is killed. Default 30.
    pub run_timeout_secs: u64,
    /// Locks an account; `{user}` is replaced. Default `["usermod", "-L", "{user}"]`.
    pub lock_account: Vec<String>,
    /// Unlocks it again. Default `["usermod", "-U", "{user}"]`.
    pub unlock_account: Vec<String>,
    /// Tapped events waiting for the rules; more are skipped (and counted). Default 32 (a log
    /// batch holds up to 16 KiB of lines, so at most about 512 KiB wait).
    pub tap_capacity: usize,
    /// Local rules.
    pub rules: Vec<RuleConfig>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        ResponseConfig {
            enabled: false,
            budget_bytes: 256 * 1024,
            dry_run: false,
            netns: None,
            allow_list: Vec::new(),
            default_timeout_secs: 600,
            repeated_offenders: vec![2, 4, 8],
            offender_memory_secs: 86_400,
            firewall: FirewallTool::Auto,
            nft_table: "gatewatch".into(),
            hosts_deny: PathBuf::from("/etc/hosts.deny"),
            quarantine_dir: None,
            custom_dir: None,
            run_timeout_secs: 30,
            lock_account: ["usermod", "-L", "{user}"].map(String::from).to_vec(),
            unlock_account: ["usermod", "-U", "{user}"].map(String::from).to_vec(),
            tap_capacity: 32,
            rules: Vec::new(),
        }
    }
}

/// Which firewall tool blocks addresses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FirewallTool {
    /// nft when it is installed, iptables otherwise.
    #[default]
    Auto,
    /// nftables: a set with a timeout per element.
    Nft,
    /// iptables / ip6tables: one rule per address.
    Iptables,
}

/// A local rule: events of a module whose text matches, `threshold` times for the same target
/// within `window_secs`, trigger `response` on that target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name, reported as the trigger (`rule:<name>`).
    pub name: String,
    /// Module whose events are matched: `logcollector` (the line), `fim` (the changed path),
    /// or any other (its event's text form, e.g. `rootcheck` findings).
    pub module: String,
    /// Only events of this kind (`log.line`, `fim.modified`, …). Default: any.
    #[serde(default)]
    pub kind: Option<String>,
    /// Match this field of a log entry (a parsed JSON or journal field, a label) instead of its
    /// text. Default: the text.
    #[serde(default)]
    pub field: Option<String>,
    /// Regular expression (regex-lite) over the event's text; the group named `target`, else the
    /// first group, else the whole match, is what the response acts on.
    pub pattern: String,
    /// Matches needed for the same target. Default 1.
    #[serde(default = "one")]
    pub threshold: u32,
    /// Seconds the matches must fall within. Default 60.
    #[serde(default = "sixty")]
    pub window_secs: u64,
    /// The response: a built-in name, or `!name` for a custom one.
    pub response: String,
    /// Extra arguments given to the response, after the target. Default none.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Seconds before the reversal; 0 never reverses. Default: `default_timeout_secs`.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn one() -> u32 {
    1
}
fn sixty() -> u64 {
    60
}

impl ResponseConfig {
    /// Problems the types cannot express, as `(key, reason)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, cidr) in self.allow_list.iter().enumerate() {
            if let Err(e) = super::safety::Cidr::parse(cidr) {
                problems.push((format!("modules.response.allow_list[{i}]"), e));
            }
        }
        if self.repeated_offenders.contains(&0) {
            problems.push((
                "modules.response.repeated_offenders".into(),
                "multipliers are at least 1".into(),
            ));
        }
        for (key, argv) in [
            ("lock_account", &self.lock_account),
            ("unlock_account", &self.unlock_account),
        ] {
            if argv.first().is_none_or(String::is_empty) {
                problems.push((
                    format!("modules.response.{key}"),
                    "give at least the program".into(),
                ));
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let key = |k: &str| format!("modules.response.rules[{i}].{k}");
            if let Err(e) = regex_lite::Regex::new(&rule.pattern) {
                problems.push((key("pattern"), e.to_string()));
            }
            if rule.threshold == 0 {
                problems.push((key("threshold"), "at least 1".into()));
            }
            if rule.response.is_empty() {
                problems.push((key("response"), "is empty".into()));
            }
        }
        problems
    }
}
