//! `[modules.logcollector]`: which logs to read, in which format, within which bounds.
//!
//! Each `[[modules.logcollector.sources]]` entry is one location (a path that may hold globs and
//! `strftime` date patterns, or a journal file or directory) with its format. This file is always
//! compiled, so every configuration parses in every build.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Settings of the log collector module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogCollectorConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 1 MiB.
    pub budget_bytes: usize,
    /// Longest entry kept, in bytes; longer lines are cut and flagged. Default 64 KiB.
    pub max_line_bytes: usize,
    /// Files open at once (tailed plus rotated ones still being read). Default 256.
    pub max_open_files: usize,
    /// Bytes read from files before the module yields to other tasks. Default 64 KiB.
    pub read_bytes_per_turn: usize,
    /// The sources.
    pub sources: Vec<SourceConfig>,
}

impl Default for LogCollectorConfig {
    fn default() -> Self {
        LogCollectorConfig {
            enabled: false,
            budget_bytes: 1024 * 1024,
            max_line_bytes: 64 * 1024,
            max_open_files: 256,
            read_bytes_per_turn: 64 * 1024,
            sources: Vec::new(),
        }
    }
}

/// One `[[modules.logcollector.sources]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A file path; `*`, `?` and `[…]` match within one path component, `%Y %y %m %d %H %M %j
    /// %b %a %%` are replaced by the local date (as Wazuh's `strftime` locations). For `journald`:
    /// a journal file or a directory of journal files.
    pub location: String,
    /// `syslog` (one line per event, also for plain text), `json`, `multi-line:N`,
    /// `multi-line-regex`, `audit` or `journald`. Default `syslog`.
    #[serde(default)]
    pub format: Format,
    /// Name used as the events' source instead of the path.
    #[serde(default)]
    pub alias: Option<String>,
    /// Fields added to every `json` event (they replace fields of the same name).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// On first sight of a file (or journal), read only what is written from then on. Files that
    /// appear while the agent runs, and rotated successors, are always read from their start.
    /// Default true.
    #[serde(default = "yes")]
    pub only_future: bool,
    /// Settings of `multi-line-regex`.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

fn yes() -> bool {
    true
}

/// How lines are grouped into events.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Format {
    /// One event per line.
    #[default]
    Syslog,
    /// One event per line, parsed as JSON into fields.
    Json,
    /// Every N lines make one event.
    MultiLine(u16),
    /// Lines grouped by a regular expression (see [`MultilineConfig`]).
    MultiLineRegex,
    /// Linux audit records grouped by their `audit(…:ID)` event id.
    Audit,
    /// Entries of a systemd journal, read with `journalctl`.
    Journald,
}

impl TryFrom<String> for Format {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Ok(match text.as_str() {
            "syslog" | "plain" => Format::Syslog,
            "json" => Format::Json,
            "multi-line-regex" => Format::MultiLineRegex,
            "audit" => Format::Audit,
            "journald" => Format::Journald,
            "eventchannel" | "eventlog" => {
                return Err(format!(
                    "`{text}` is a Windows event channel; Linux gateways have none (see \
                     docs/PERFORMANCE.md, section Log collector)"
                ))
            }
            other => match other.strip_prefix("multi-line:").map(str::parse::<u16>) {
                Some(Ok(n)) if n >= 1 => Format::MultiLine(n),
                _ => {
                    return Err(format!(
                        "unknown format `{other}`; use syslog, json, multi-line:N (N ≥ 1), \
                         multi-line-regex, audit or journald"
                    ))
                }
            },
        })
    }
}

/// `multiline = { regex = "…", match = "start", timeout_ms = 5000 }`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// The regular expression (Rust `regex` syntax, without look-around).
    pub regex: String,
    /// `start`: a matching line starts an event; `end`: a matching line ends it; `all`: lines
    /// are grouped while they match. Default `start`.
    #[serde(default, rename = "match")]
    pub match_on: MatchOn,
    /// An incomplete group is sent after this many milliseconds without a new line. Default 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5000
}

/// Where the multi-line regular expression matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    /// A matching line begins a new event.
    #[default]
    Start,
    /// A matching line is the last of its event.
    End,
    /// Consecutive matching lines make one event.
    All,
}

/// Smallest `max_line_bytes`.
pub const MIN_LINE_BYTES: usize = 256;

impl LogCollectorConfig {
    /// Problems the types cannot express, as `(key, reason)`; empty when the settings are usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let key = |k: &str| format!("modules.logcollector.{k}");
        if self.max_line_bytes < MIN_LINE_BYTES {
            problems.push((
                key("max_line_bytes"),
                format!("at least {MIN_LINE_BYTES} bytes"),
            ));
        }
        if self.budget_bytes < 4 * (self.max_line_bytes + 1) {
            problems.push((
                key("budget_bytes"),
                format!(
                    "{} is too small for max_line_bytes = {}: at least 4 × (max_line_bytes + 1)",
                    self.budget_bytes, self.max_line_bytes
                ),
            ));
        }
        if self.max_open_files == 0 {
            problems.push((key("max_open_files"), "at least 1".into()));
        }
        if self.read_bytes_per_turn < 4096 {
            problems.push((key("read_bytes_per_turn"), "at least 4096 bytes".into()));
        }
        for (i, source) in self.sources.iter().enumerate() {
            let key = |k: &str| format!("modules.logcollector.sources[{i}].{k}");
            if !source.location.starts_with('/') {
                problems.push((key("location"), "give an absolute path".into()));
            }
            match (&source.format, &source.multiline) {
                (Format::MultiLineRegex, None) => problems.push((
                    key("multiline"),
                    "`multi-line-regex` needs `multiline = { regex = \"…\" }`".into(),
                )),
                (Format::MultiLineRegex, Some(m)) => {
                    if let Err(e) = regex_lite::Regex::new(&m.regex) {
                        problems.push((key("multiline.regex"), e.to_string()));
                    }
                }
                (_, Some(_)) => problems.push((
                    key("multiline"),
                    "only used with format = \"multi-line-regex\"".into(),
                )),
                _ => {}
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LogCollectorConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn formats_parse_by_their_wazuh_names() {
        let config = parse(
            "[[sources]]\nlocation = \"/a\"\nformat = \"multi-line:3\"\n\
             [[sources]]\nlocation = \"/b\"\nformat = \"audit\"\n",
        )
        .unwrap();
        assert_eq!(config.sources[0].format, Format::MultiLine(3));
        assert_eq!(config.sources[1].format, Format::Audit);
        assert!(
            config.sources[0].only_future,
            "only future lines by default"
        );
    }

    #[test]
    fn windows_event_channels_are_refused_with_a_reason() {
        let error =
            parse("[[sources]]\nlocation = \"/a\"\nformat = \"eventchannel\"\n").unwrap_err();
        assert!(error.contains("Windows event channel"), "{error}");
        assert!(parse("[[sources]]\nlocation = \"/a\"\nformat = \"multi-line:0\"\n").is_err());
    }

    #[test]
    fn problems_name_their_keys() {
        let config = parse(
            "budget_bytes = 4096\n[[sources]]\nlocation = \"relative.log\"\nformat = \"multi-line-regex\"\n\
             multiline = { regex = \"(\" }\n",
        )
        .unwrap();
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "modules.logcollector.budget_bytes",
                "modules.logcollector.sources[0].location",
                "modules.logcollector.sources[0].multiline.regex",
            ]
        );
    }
}
