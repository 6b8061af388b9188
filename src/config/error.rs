//! The configuration error: every problem names where it is (file and line, or environment
//! variable), the key, and the reason, in one line a user can act on.
//!
//! Problems are collected rather than returned one at a time, so `check-config` can show all of
//! them at once instead of making the user fix and rerun once per mistake.

use std::fmt;

/// Where a problem's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A key of the configuration file, as a dotted path (`buffer.events_per_second`,
    /// `manager.addresses[1]`).
    File(String),
    /// An installer variable (`WAZUH_MANAGER_PORT`), or the deprecated alias actually used.
    Env(String),
}

/// A 1-based line and column in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, counting from 1.
    pub line: usize,
    /// Column in characters, counting from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the end of the text).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key or variable at fault; `None` when the problem is the file itself (unreadable,
    /// not TOML).
    pub key: Option<Key>,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// What is wrong and, where it helps, what to do; one line.
    pub reason: String,
}

impl Problem {
    /// A problem with a file key.
    pub fn at_key(key: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            key: Some(Key::File(key.into())),
            position: None,
            reason: reason.into(),
        }
    }

    /// A problem with an installer variable.
    pub fn at_var(var: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            key: Some(Key::Env(var.into())),
            position: None,
            reason: reason.into(),
        }
    }
}

/// The configuration could not be used: one or more [`Problem`]s in `origin`.
///
/// Display prints one line per problem:
/// `<file>[:line:col]: key `<key>`: <reason>`, or
/// `environment: variable `<NAME>`: <reason>` for installer variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    origin: String,
    problems: Vec<Problem>,
}

impl ConfigError {
    /// An error in `origin` (the file name shown in messages) made of `problems`.
    pub fn new(origin: impl Into<String>, problems: Vec<Problem>) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            problems,
        }
    }

    /// An error with a single problem.
    pub fn single(origin: impl Into<String>, problem: Problem) -> ConfigError {
        ConfigError::new(origin, vec![problem])
    }

    /// The file name shown in messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every problem found, in the order found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Takes the problems out (to merge them into another error).
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &problem.key {
                Some(Key::Env(var)) => write!(f, "environment: variable `{var}`: ")?,
                key => {
                    write!(f, "{}", self.origin)?;
                    if let Some(Position { line, column }) = problem.position {
                        write!(f, ":{line}:{column}")?;
                    }
                    match key {
                        Some(Key::File(key)) => write!(f, ": key `{key}`: ")?,
                        _ => write!(f, ": ")?,
                    }
                }
            }
            write!(f, "{}", problem.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_problem_shows_file_position_key_and_reason() {
        let mut problem = Problem::at_key("buffer.queue_capacity", "must be at least 1");
        problem.position = Some(Position {
            line: 3,
            column: 18,
        });
        let err = ConfigError::single("/etc/gatewatch/agent.toml", problem);
        assert_eq!(
            err.to_string(),
            "/etc/gatewatch/agent.toml:3:18: key `buffer.queue_capacity`: must be at least 1"
        );
    }

    #[test]
    fn env_problem_names_the_variable_not_the_file() {
        let problem = Problem::at_var("WAZUH_MANAGER_PORT", "not a port");
        let err = ConfigError::single("/etc/gatewatch/agent.toml", problem);
        assert_eq!(
            err.to_string(),
            "environment: variable `WAZUH_MANAGER_PORT`: not a port"
        );
    }

    #[test]
    fn several_problems_print_one_per_line() {
        let err = ConfigError::new(
            "a.toml",
            vec![
                Problem::at_key("agent.name", "bad"),
                Problem::at_key("agent.state_dir", "relative"),
            ],
        );
        assert_eq!(
            err.to_string(),
            "a.toml: key `agent.name`: bad\na.toml: key `agent.state_dir`: relative"
        );
    }

    #[test]
    fn position_counts_lines_and_characters_from_one() {
        let text = "a = 1\nnamé = 2\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        let offset = text.rfind('=').unwrap();
        assert_eq!(
            Position::of_offset(text, offset),
            Position { line: 2, column: 6 }
        );
    }
}
