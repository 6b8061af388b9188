//! Loading the configuration: file → TOML → environment → host name → validation.
//!
//! Every step's problems are gathered into one [`ConfigError`] naming the file, so the user sees
//! all of them at once. A problem in a key that an installer variable set names the variable,
//! not the file; a problem in a key the file sets carries its line and column.

use super::check::validate;
use super::env::apply_env_tracked;
use super::error::{ConfigError, Key, Position, Problem};
use super::hostname::host_name;
use super::spans::{toml_problem, KeyIndex};
use super::{Config, DEFAULT_CONFIG_PATH};
use serde::Deserialize;
use std::path::Path;

/// Loads the configuration file at `path`, applies the `WAZUH_*` variables of the process
/// environment, names the agent after the host when nothing names it, and validates.
///
/// A missing file at [`DEFAULT_CONFIG_PATH`] means "all defaults" (the installer variables may
/// be all the configuration there is); a missing file given explicitly is an error.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(DEFAULT_CONFIG_PATH) =>
        {
            String::new()
        }
        Err(e) => {
            let problem = Problem {
                key: None,
                position: None,
                reason: format!("cannot read the configuration file: {e}"),
            };
            return Err(ConfigError::single(origin, problem));
        }
    };
    // Not `std::env::var`: a value that is not UTF-8 should be reported as bad, not ignored.
    let vars = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    load_str_with_env(&text, &origin, &vars)
}

/// Like [`load`], from `text`, without reading the process environment. `origin` is the file
/// name shown in messages.
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    load_str_with_env(text, origin, &|_| None)
}

/// Like [`load`], from `text`, with the installer variables given by `vars` (for tests and for
/// callers that hold their own environment).
pub fn load_str_with_env(
    text: &str,
    origin: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let fail = |problem: Problem| ConfigError::single(origin, problem);
    let document =
        toml::de::DeTable::parse(text).map_err(|e| fail(toml_problem(text, &e, None)))?;
    let index = KeyIndex::build(document.get_ref());
    let mut config = Config::deserialize(toml::de::Deserializer::from(document))
        .map_err(|e| fail(toml_problem(text, &e, Some(&index))))?;

    let mut applied = apply_env_tracked(&mut config, vars);
    let mut problems = std::mem::take(&mut applied.problems);

    let mut named_after_host = false;
    if config.agent.name.is_none() {
        config.agent.name = host_name();
        named_after_host = config.agent.name.is_some();
        if !named_after_host {
            problems.push(Problem::at_key(
                "agent.name",
                "not set and the host name is unknown; set `[agent] name` or WAZUH_AGENT_NAME",
            ));
        }
    }

    if let Err(invalid) = validate(&config) {
        for mut problem in invalid.into_problems() {
            if let Some(Key::File(key)) = &problem.key {
                if let Some(var) = applied.variable_for(key) {
                    problem.key = Some(Key::Env(var.to_owned()));
                } else {
                    problem.position = index
                        .value_offset(key)
                        .map(|offset| Position::of_offset(text, offset));
                    if named_after_host && key == "agent.name" {
                        problem.reason.push_str(
                            " (the name is the host name; set `[agent] name` or WAZUH_AGENT_NAME)",
                        );
                    }
                }
            }
            problems.push(problem);
        }
    }

    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::new(origin, problems))
    }
}

#[cfg(test)]
mod tests;
