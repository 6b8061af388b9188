//! `WAZUH_*` installer variables: they override the configuration file, with the meaning and
//! defaults the Wazuh agent packages give them (reference: wazuh-agent.md §8).
//!
//! Deprecated aliases (`WAZUH_MANAGER_IP`, `WAZUH_NOTIFY_TIME`, …) are honoured when the new name
//! is unset. A variable that is empty (or only blanks) counts as unset. Values are never logged:
//! one of them is the enrollment password.

use super::error::{ConfigError, Problem};
use super::{Config, Protocol};
use std::path::PathBuf;

/// Origin shown for errors that come only from the environment.
const ENV_ORIGIN: &str = "environment";

/// Applies the installer variables found by `vars` to `config` (the environment wins over the
/// file). Every bad variable is reported, each naming the variable and the reason; the good
/// ones are applied even when others are bad.
///
/// `vars` is `|name| std::env::var(name).ok()` in the agent, a closure over a table in tests.
pub fn apply_env(
    config: &mut Config,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let applied = apply_env_tracked(config, vars);
    if applied.problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::new(ENV_ORIGIN, applied.problems))
    }
}

/// What [`apply_env_tracked`] did: which file keys variables replaced, and what was wrong.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// `(dotted key, variable actually set)` for each key a variable replaced, so problems found
    /// later in those keys can name the variable instead of the file.
    pub overrides: Vec<(&'static str, &'static str)>,
    /// Bad variables.
    pub problems: Vec<Problem>,
}

impl Applied {
    /// The variable that set `key` (a dotted path, possibly with an `[index]`), if any.
    pub fn variable_for(&self, key: &str) -> Option<&'static str> {
        let base = key.split('[').next().unwrap_or(key);
        self.overrides
            .iter()
            .find(|(k, _)| *k == base)
            .map(|(_, var)| *var)
    }
}

/// [`apply_env`], also telling which keys were replaced by which variable.
pub(super) fn apply_env_tracked(
    config: &mut Config,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Applied {
    let mut env = Env {
        vars,
        applied: Applied::default(),
    };

    if let Some((var, value)) = env.get("WAZUH_MANAGER", Some("WAZUH_MANAGER_IP")) {
        let addresses = comma_list(&value);
        if addresses.is_empty() {
            env.problem(
                var,
                "lists no address; give one or more, separated by commas",
            );
        } else {
            config.manager.addresses = addresses;
            env.set("manager.addresses", var);
        }
    }
    if let Some((var, value)) = env.get("WAZUH_MANAGER_PORT", None) {
        if let Some(port) = env.port(var, &value) {
            config.manager.port = port;
            env.set("manager.port", var);
        }
    }
    if let Some((var, value)) = env.get("WAZUH_PROTOCOL", None) {
        if let Some(protocol) = env.protocol(var, &value) {
            config.manager.protocol = protocol;
            env.set("manager.protocol", var);
        }
    }
    if let Some((var, value)) = env.get("WAZUH_KEEP_ALIVE_INTERVAL", Some("WAZUH_NOTIFY_TIME")) {
        if let Some(secs) = env.seconds(var, &value) {
            config.manager.keepalive_secs = secs;
            env.set("manager.keepalive_secs", var);
        }
    }
    if let Some((var, value)) = env.get("WAZUH_TIME_RECONNECT", None) {
        if let Some(secs) = env.seconds(var, &value) {
            config.manager.reconnect_secs = secs;
            env.set("manager.reconnect_secs", var);
        }
    }

    // Wazuh inserts an `<enrollment><enabled>yes` block as soon as one registration variable is
    // given, so any of them switches enrollment on.
    let mut registration = false;
    if let Some((var, value)) = env.get("WAZUH_REGISTRATION_SERVER", Some("WAZUH_AUTHD_SERVER")) {
        config.enrollment.server = Some(value.trim().to_owned());
        env.set("enrollment.server", var);
        registration = true;
    }
    if let Some((var, value)) = env.get("WAZUH_REGISTRATION_PORT", Some("WAZUH_AUTHD_PORT")) {
        if let Some(port) = env.port(var, &value) {
            config.enrollment.port = port;
            env.set("enrollment.port", var);
        }
        registration = true;
    }
    if let Some((var, value)) = env.get("WAZUH_REGISTRATION_PASSWORD", Some("WAZUH_PASSWORD")) {
        // Wazuh writes the variable into `authd.pass` and points the agent at that file, so the
        // variable replaces whichever password source the file gave. Not trimmed: it is a secret
        // compared byte for byte by the manager.
        config.enrollment.password = Some(value);
        config.enrollment.password_file = None;
        env.set("enrollment.password", var);
        env.set("enrollment.password_file", var);
        registration = true;
    }
    type PathField = fn(&mut Config) -> &mut Option<PathBuf>;
    let paths: [(&'static str, &'static str, &'static str, PathField); 3] = [
        (
            "WAZUH_REGISTRATION_CA",
            "WAZUH_CERTIFICATE",
            "enrollment.ca",
            |c| &mut c.enrollment.ca,
        ),
        (
            "WAZUH_REGISTRATION_CERTIFICATE",
            "WAZUH_PEM",
            "enrollment.certificate",
            |c| &mut c.enrollment.certificate,
        ),
        (
            "WAZUH_REGISTRATION_KEY",
            "WAZUH_KEY",
            "enrollment.key",
            |c| &mut c.enrollment.key,
        ),
    ];
    for (name, alias, key, field) in paths {
        if let Some((var, value)) = env.get(name, Some(alias)) {
            *field(config) = Some(PathBuf::from(value.trim()));
            env.set(key, var);
            registration = true;
        }
    }
    if let Some((var, value)) = env.get("WAZUH_AGENT_NAME", None) {
        config.agent.name = Some(value.trim().to_owned());
        env.set("agent.name", var);
        registration = true;
    }
    if let Some((var, value)) = env.get("WAZUH_AGENT_GROUP", Some("WAZUH_GROUP")) {
        config.agent.groups = comma_list(&value);
        env.set("agent.groups", var);
        registration = true;
    }
    if registration {
        config.enrollment.enabled = true;
    }
    env.applied
}

/// Reads variables and records what was applied and what was wrong.
struct Env<'a> {
    vars: &'a dyn Fn(&str) -> Option<String>,
    applied: Applied,
}

impl Env<'_> {
    /// The value of `name`, else of its deprecated `alias`, with the name actually used.
    /// Empty and blank values count as unset.
    fn get(
        &self,
        name: &'static str,
        alias: Option<&'static str>,
    ) -> Option<(&'static str, String)> {
        for var in std::iter::once(name).chain(alias) {
            if let Some(value) = (self.vars)(var).filter(|v| !v.trim().is_empty()) {
                if var != name {
                    log::warn!("{var} is deprecated; use {name}");
                }
                return Some((var, value));
            }
        }
        None
    }

    fn set(&mut self, key: &'static str, var: &'static str) {
        self.applied.overrides.push((key, var));
    }

    fn problem(&mut self, var: &'static str, reason: impl Into<String>) {
        self.applied.problems.push(Problem::at_var(var, reason));
    }

    /// A TCP port, 1..=65535.
    fn port(&mut self, var: &'static str, value: &str) -> Option<u16> {
        match value.trim().parse::<u16>() {
            Ok(port) if port >= 1 => Some(port),
            _ => {
                self.problem(
                    var,
                    format!(
                        "must be a port number from 1 to 65535, got `{}`",
                        value.trim()
                    ),
                );
                None
            }
        }
    }

    /// A whole number of seconds, at least 1.
    fn seconds(&mut self, var: &'static str, value: &str) -> Option<u64> {
        match value.trim().parse::<u64>() {
            Ok(secs) if secs >= 1 => Some(secs),
            _ => {
                self.problem(
                    var,
                    format!(
                        "must be a whole number of seconds, at least 1, got `{}`",
                        value.trim()
                    ),
                );
                None
            }
        }
    }

    /// `tcp` or `udp`, any case; Wazuh allows one per manager (comma list), this agent one for
    /// all, so a list is accepted when every entry is the same.
    fn protocol(&mut self, var: &'static str, value: &str) -> Option<Protocol> {
        let mut found: Option<Protocol> = None;
        for entry in comma_list(value) {
            let protocol = match entry.to_ascii_lowercase().as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => {
                    self.problem(var, format!("`{entry}` is not a protocol; use `tcp`"));
                    return None;
                }
            };
            match found {
                Some(previous) if previous != protocol => {
                    self.problem(
                        var,
                        "gives different protocols for different managers; this agent uses one \
                         protocol for all of them, so give one (`tcp`)",
                    );
                    return None;
                }
                _ => found = Some(protocol),
            }
        }
        found
    }
}

/// A comma-separated list: entries trimmed, empty ones removed, duplicates removed (first kept).
fn comma_list(value: &str) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !list.iter().any(|seen| seen == entry) {
            list.push(entry.to_owned());
        }
    }
    list
}

#[cfg(test)]
mod tests;
