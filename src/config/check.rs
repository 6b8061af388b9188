//! Semantic validation: the rules serde cannot express (ranges, character sets, keys that go
//! together), each problem naming its key; and reading the enrollment password.
//!
//! [`validate`] reports every problem it finds, not just the first, so that `check-config` shows
//! the whole list at once.

use super::error::{ConfigError, Problem};
use super::{Config, EnrollmentConfig, Protocol};
use std::io::{BufRead, BufReader, Read};
use std::ops::RangeInclusive;

/// Smallest memory budget a module may be given, in bytes.
pub const MIN_MODULE_BUDGET: usize = 4096;
/// Allowed `manager.max_frame_bytes`.
pub const FRAME_BYTES: RangeInclusive<usize> = 1024..=1024 * 1024;
/// Allowed `buffer.queue_capacity`.
pub const QUEUE_CAPACITY: RangeInclusive<usize> = 1..=100_000;
/// Smallest `buffer.spool_segment_bytes`.
pub const MIN_SPOOL_SEGMENT: u64 = 4096;
/// Largest `modules.generator.body_bytes`.
pub const MAX_GENERATOR_BODY: usize = 16 * 1024;
/// Longest agent or group name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest password file first line read, in bytes (the file is not trusted to be small).
const MAX_PASSWORD_LINE: u64 = 4096;

/// Origin shown when [`validate`] is called on its own ([`super::load`] shows the file).
const ORIGIN: &str = "configuration";

/// Checks the rules serde cannot: every problem is reported, each naming its key.
///
/// An unset `agent.name` is accepted: [`super::load`] fills it with the host name.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    check_agent(config, &mut problems);
    check_manager(config, &mut problems);
    check_enrollment(&config.enrollment, &mut problems);
    check_buffer(config, &mut problems);
    check_modules(config, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::new(ORIGIN, problems))
    }
}

fn check_agent(config: &Config, problems: &mut Vec<Problem>) {
    let agent = &config.agent;
    if let Some(name) = &agent.name {
        if let Some(reason) = name_problem(name) {
            problems.push(Problem::at_key("agent.name", reason));
        }
    }
    for (i, group) in agent.groups.iter().enumerate() {
        let reason = if group == "." || group == ".." {
            Some(format!("`{group}` is not a group name"))
        } else {
            name_problem(group)
        };
        if let Some(reason) = reason {
            problems.push(Problem::at_key(format!("agent.groups[{i}]"), reason));
        }
    }
    if !agent.state_dir.is_absolute() {
        problems.push(Problem::at_key(
            "agent.state_dir",
            format!(
                "`{}` is relative; give an absolute path on persistent storage",
                agent.state_dir.display()
            ),
        ));
    }
}

/// Why `name` is not a valid agent or group name (`[A-Za-z0-9._-]{1,128}`), if it is not.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} allowed",
            name.len()
        ));
    }
    let bad = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))?;
    Some(format!(
        "`{name}` contains {bad:?}; use only letters, digits, `.`, `_` and `-`"
    ))
}

fn check_manager(config: &Config, problems: &mut Vec<Problem>) {
    let manager = &config.manager;
    if manager.addresses.is_empty() {
        problems.push(Problem::at_key(
            "manager.addresses",
            "no manager address; set WAZUH_MANAGER or `[manager] addresses`",
        ));
    }
    for (i, address) in manager.addresses.iter().enumerate() {
        let reason = if address.is_empty() {
            "is empty".to_owned()
        } else if address.chars().any(char::is_whitespace) {
            format!("`{address}` contains a space; give a host name or an IP address")
        } else if address.contains(',') {
            format!("`{address}` contains a comma; give each address as its own list entry")
        } else {
            continue;
        };
        problems.push(Problem::at_key(format!("manager.addresses[{i}]"), reason));
    }
    if manager.port == 0 {
        problems.push(Problem::at_key("manager.port", "must be from 1 to 65535"));
    }
    if manager.protocol == Protocol::Udp {
        problems.push(Problem::at_key(
            "manager.protocol",
            "`udp` is not available in this version; use `tcp`",
        ));
    }
    if manager.keepalive_secs == 0 {
        problems.push(Problem::at_key(
            "manager.keepalive_secs",
            "must be at least 1 second",
        ));
    }
    if !FRAME_BYTES.contains(&manager.max_frame_bytes) {
        problems.push(Problem::at_key(
            "manager.max_frame_bytes",
            format!(
                "{} is out of range; must be from {} to {}",
                manager.max_frame_bytes,
                FRAME_BYTES.start(),
                FRAME_BYTES.end()
            ),
        ));
    }
}

fn check_enrollment(enrollment: &EnrollmentConfig, problems: &mut Vec<Problem>) {
    if enrollment.port == 0 {
        problems.push(Problem::at_key(
            "enrollment.port",
            "must be from 1 to 65535",
        ));
    }
    if enrollment.password.is_some() && enrollment.password_file.is_some() {
        problems.push(Problem::at_key(
            "enrollment.password",
            "both `password` and `password_file` are set; keep one",
        ));
    }
    match (&enrollment.certificate, &enrollment.key) {
        (Some(_), None) => problems.push(Problem::at_key(
            "enrollment.key",
            "`certificate` is set but `key` is not; give both or neither",
        )),
        (None, Some(_)) => problems.push(Problem::at_key(
            "enrollment.certificate",
            "`key` is set but `certificate` is not; give both or neither",
        )),
        _ => {}
    }
}

fn check_buffer(config: &Config, problems: &mut Vec<Problem>) {
    let buffer = &config.buffer;
    if !QUEUE_CAPACITY.contains(&buffer.queue_capacity) {
        problems.push(Problem::at_key(
            "buffer.queue_capacity",
            format!(
                "{} is out of range; must be from {} to {}",
                buffer.queue_capacity,
                QUEUE_CAPACITY.start(),
                QUEUE_CAPACITY.end()
            ),
        ));
    }
    if buffer.spool_segment_bytes < MIN_SPOOL_SEGMENT {
        problems.push(Problem::at_key(
            "buffer.spool_segment_bytes",
            format!(
                "{} is too small; must be at least {MIN_SPOOL_SEGMENT}",
                buffer.spool_segment_bytes
            ),
        ));
    } else if buffer.spool_segment_bytes > buffer.spool_max_bytes / 2 {
        // At least two segments: the one being written and one being sent.
        problems.push(Problem::at_key(
            "buffer.spool_segment_bytes",
            format!(
                "{} is more than half of `spool_max_bytes` ({}); the spool needs room for two \
                 segments",
                buffer.spool_segment_bytes, buffer.spool_max_bytes
            ),
        ));
    }
    if buffer.fsync_interval_ms == 0 {
        problems.push(Problem::at_key(
            "buffer.fsync_interval_ms",
            "must be at least 1 millisecond",
        ));
    }
}

#[cfg(feature = "generator")]
fn check_modules(config: &Config, problems: &mut Vec<Problem>) {
    let generator = &config.modules.generator;
    check_budget(
        "modules.generator.budget_bytes",
        generator.budget_bytes,
        problems,
    );
    if generator.body_bytes > MAX_GENERATOR_BODY {
        problems.push(Problem::at_key(
            "modules.generator.body_bytes",
            format!(
                "{} is too large; at most {MAX_GENERATOR_BODY}",
                generator.body_bytes
            ),
        ));
    }
}

#[cfg(not(feature = "generator"))]
fn check_modules(_config: &Config, _problems: &mut Vec<Problem>) {}

/// What is wrong with the settings of the enabled modules, as `(key, reason)`: the checks each
/// module also makes when it starts (a module with bad settings fails alone, and the agent runs
/// on), made up front by `gatewatch check-config`.
pub fn module_problems(config: &Config) -> Vec<(String, String)> {
    let m = &config.modules;
    let mut problems = Vec::new();
    if m.logcollector.enabled {
        problems.extend(m.logcollector.problems());
    }
    if m.command.enabled {
        problems.extend(m.command.problems());
    }
    if m.containers.enabled {
        problems.extend(m.containers.problems());
    }
    if m.response.enabled {
        problems.extend(m.response.problems());
    }
    #[cfg(feature = "cloud")]
    if m.cloud.enabled {
        problems.extend(
            crate::modules::cloud::problems(&m.cloud)
                .into_iter()
                .map(|reason| ("modules.cloud".to_string(), reason)),
        );
    }
    problems
}

/// A module's memory budget must leave it room to work at all.
#[cfg_attr(not(feature = "generator"), allow(dead_code))]
fn check_budget(key: &str, budget: usize, problems: &mut Vec<Problem>) {
    if budget < MIN_MODULE_BUDGET {
        problems.push(Problem::at_key(
            key,
            format!("{budget} is too small; at least {MIN_MODULE_BUDGET} bytes"),
        ));
    }
}

/// The enrollment password: `password`, else the first line of `password_file`, else none.
///
/// Errors name the password file; the password itself is never put in a message.
pub fn effective_password(enrollment: &EnrollmentConfig) -> Result<Option<String>, ConfigError> {
    if let Some(password) = &enrollment.password {
        return Ok(Some(password.clone()));
    }
    let Some(path) = &enrollment.password_file else {
        return Ok(None);
    };
    let origin = path.display().to_string();
    let fail = |reason: String| {
        ConfigError::single(
            origin.clone(),
            Problem::at_key("enrollment.password_file", reason),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    BufReader::new(file.take(MAX_PASSWORD_LINE))
        .read_until(b'\n', &mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 == MAX_PASSWORD_LINE && !bytes.ends_with(b"\n") {
        return Err(fail(format!(
            "the first line is longer than {MAX_PASSWORD_LINE} bytes"
        )));
    }
    let line =
        String::from_utf8(bytes).map_err(|_| fail("the first line is not UTF-8 text".into()))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(fail(
            "the first line is empty; put the password there".into(),
        ));
    }
    Ok(Some(password.to_owned()))
}

#[cfg(test)]
mod tests;
