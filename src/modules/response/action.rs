//! What a trigger asks for, resolved into a typed [`Action`]: the response's name, the target
//! taken from the arguments or the alert, and Wazuh's timeout suffix (`firewall-drop600`).

use super::json;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;

/// One response on one target. Stored in the ledger of pending reversals, so variants are
/// appended, never reordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Drop packets from an address (nftables set, or iptables rules).
    FirewallDrop { ip: IpAddr },
    /// An `ALL: <ip>` line in hosts.deny.
    HostDeny { ip: IpAddr },
    /// A blackhole route to an address.
    NullRoute { ip: IpAddr },
    /// SIGKILL to a pid, or to every process with that name.
    Kill { target: String },
    /// Move a file into the quarantine directory.
    Quarantine { path: PathBuf },
    /// Lock an account.
    DisableAccount { user: String },
    /// Put a quarantined file back.
    Restore { id: String },
    /// An executable of the allow-listed directory, given Wazuh's JSON on stdin.
    Custom {
        name: String,
        arguments: Vec<String>,
        alert: String,
    },
}

impl Action {
    /// The response's name, as in events.
    pub fn command(&self) -> String {
        match self {
            Action::FirewallDrop { .. } => "firewall-drop".into(),
            Action::HostDeny { .. } => "host-deny".into(),
            Action::NullRoute { .. } => "null-route".into(),
            Action::Kill { .. } => "kill".into(),
            Action::Quarantine { .. } => "quarantine".into(),
            Action::DisableAccount { .. } => "disable-account".into(),
            Action::Restore { .. } => "restore".into(),
            Action::Custom { name, .. } => format!("!{name}"),
        }
    }

    /// What it acts on, as text.
    pub fn target(&self) -> String {
        match self {
            Action::FirewallDrop { ip } | Action::HostDeny { ip } | Action::NullRoute { ip } => {
                ip.to_string()
            }
            Action::Kill { target } => target.clone(),
            Action::Quarantine { path } => path.display().to_string(),
            Action::DisableAccount { user } => user.clone(),
            Action::Restore { id } => id.clone(),
            Action::Custom {
                arguments, alert, ..
            } => json::find_text(alert, "srcip")
                .or_else(|| arguments.first().cloned())
                .unwrap_or_default(),
        }
    }

    /// Whether a timeout undoes it (a killed process or a quarantine is not undone by time).
    pub fn reversible(&self) -> bool {
        matches!(
            self,
            Action::FirewallDrop { .. }
                | Action::HostDeny { .. }
                | Action::NullRoute { .. }
                | Action::DisableAccount { .. }
                | Action::Custom { .. }
        )
    }

    /// Identity of the action for repeated offenders and "already in effect".
    pub fn key(&self) -> String {
        format!("{} {}", self.command(), self.target())
    }
}

/// Splits Wazuh's `<name><timeout>` (`firewall-drop600`) into the name and the timeout.
pub fn split_timeout(command: &str) -> (&str, Option<u64>) {
    let digits = command.len() - command.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits == command.len() {
        return (command, None);
    }
    let (name, secs) = command.split_at(command.len() - digits);
    (name, secs.parse().ok())
}

/// Resolves a trigger into an action. The target is the first argument, else the alert's field
/// Wazuh's scripts read (`srcip`, `pid`/`process`, `path`, `dstuser`). `Err` says why not.
pub fn resolve(name: &str, arguments: &[String], alert: &str) -> Result<Action, String> {
    if let Some(custom) = name.strip_prefix('!') {
        if custom.is_empty() || custom.contains('/') || custom.starts_with('.') {
            return Err(format!(
                "{name:?} is not a file name in the custom directory"
            ));
        }
        return Ok(Action::Custom {
            name: custom.into(),
            arguments: arguments.to_vec(),
            alert: alert.into(),
        });
    }
    let target = |fields: &[&str]| -> Result<String, String> {
        arguments
            .first()
            .cloned()
            .or_else(|| fields.iter().find_map(|f| json::find_text(alert, f)))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!(
                    "{name}: no target (give it as the first argument or the alert's {fields:?})"
                )
            })
    };
    let ip = || -> Result<IpAddr, String> {
        let text = target(&["srcip"])?;
        text.parse()
            .map_err(|_| format!("{name}: {text:?} is not an IP address"))
    };
    Ok(match name {
        "firewall-drop" | "firewalld-drop" => Action::FirewallDrop { ip: ip()? },
        "host-deny" => Action::HostDeny { ip: ip()? },
        "null-route" | "route-null" => Action::NullRoute { ip: ip()? },
        "kill" => Action::Kill {
            target: target(&["pid", "process"])?,
        },
        "quarantine" => Action::Quarantine {
            path: PathBuf::from(target(&["path", "file"])?),
        },
        "disable-account" => Action::DisableAccount {
            user: target(&["dstuser", "user"])?,
        },
        "restore" => Action::Restore {
            id: target(&["id"])?,
        },
        other => return Err(format!("unknown response {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wazuh_timeout_suffix_is_split_off() {
        assert_eq!(
            split_timeout("firewall-drop600"),
            ("firewall-drop", Some(600))
        );
        assert_eq!(split_timeout("host-deny"), ("host-deny", None));
        assert_eq!(split_timeout("42"), ("42", None));
    }

    #[test]
    fn the_address_comes_from_the_argument_or_the_alert() {
        let alert = r#"{"data":{"srcip":"203.0.113.9"}}"#;
        let from_alert = resolve("firewall-drop", &[], alert).unwrap();
        assert_eq!(from_alert.target(), "203.0.113.9");
        let from_arg = resolve("host-deny", &["198.51.100.1".into()], alert).unwrap();
        assert_eq!(from_arg.target(), "198.51.100.1");
        assert!(resolve("firewall-drop", &["nope".into()], "{}").is_err());
        assert!(resolve("firewall-drop", &[], "{}").is_err());
    }

    #[test]
    fn custom_names_stay_inside_the_directory() {
        assert!(resolve("!../bin/sh", &[], "{}").is_err());
        assert!(resolve("!.hidden", &[], "{}").is_err());
        assert!(matches!(
            resolve("!block.sh", &[], "{}"),
            Ok(Action::Custom { .. })
        ));
    }
}
