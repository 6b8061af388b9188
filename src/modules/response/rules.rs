//! Local rules: tapped events (see [`crate::pipeline::tap`]) matched by module, kind and a
//! regular expression, counted per target within a time window; a rule that reaches its
//! threshold for a target fires once and its count starts again.
//!
//! The text a rule matches is the log entry for `logcollector` events, the path for `fim`
//! changes, and the event's debug form for other modules (e.g. rootcheck findings). The counts
//! are bounded: at most [`MAX_TRACKED`] targets per rule, the stalest forgotten first.

use super::config::RuleConfig;
use gatewatch_proto::{EventBody, Payload};
use regex_lite::Regex;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Targets counted at most per rule.
pub const MAX_TRACKED: usize = 256;
/// Longest event text matched (a longer one is cut).
const MAX_TEXT: usize = 8 * 1024;

/// A rule that fired for a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// Index of the rule in the configuration.
    pub rule: usize,
    /// What the response acts on.
    pub target: String,
    /// The event text that completed the count.
    pub text: String,
}

struct Compiled {
    config: RuleConfig,
    regex: Regex,
    seen: HashMap<String, VecDeque<Instant>>,
}

/// The rules and their counts.
pub struct Rules {
    rules: Vec<Compiled>,
}

impl Rules {
    /// Compiles the rules (the configuration check has validated the patterns).
    pub fn new(configs: &[RuleConfig]) -> Result<Rules, String> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Regex::new(&c.pattern)
                    .map(|regex| Compiled {
                        config: c.clone(),
                        regex,
                        seen: HashMap::new(),
                    })
                    .map_err(|e| format!("modules.response.rules[{i}].pattern: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    /// The configuration of rule `i`.
    pub fn config(&self, i: usize) -> &RuleConfig {
        &self.rules[i].config
    }

    /// Counts `event` against every rule; returns the rules it made fire.
    pub fn observe(&mut self, event: &EventBody, now: Instant) -> Vec<Firing> {
        let mut text = None;
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            if rule.config.module != event.module {
                continue;
            }
            if let Some(kind) = &rule.config.kind {
                if kind != event.payload.kind() {
                    continue;
                }
            }
            let field_value;
            let text: &String = match &rule.config.field {
                Some(name) => match field_of(&event.payload, name) {
                    Some(value) => {
                        field_value = value;
                        &field_value
                    }
                    None => continue,
                },
                None => text.get_or_insert_with(|| text_of(&event.payload)),
            };
            let Some(captures) = rule.regex.captures(text) else {
                continue;
            };
            let target = captures
                .name("target")
                .or_else(|| captures.get(1))
                .or_else(|| captures.get(0))
                .map_or("", |m| m.as_str())
                .to_string();
            if rule.count(&target, now) {
                out.push(Firing {
                    rule: i,
                    target,
                    text: text.clone(),
                });
            }
        }
        out
    }
}

impl Compiled {
    /// Adds a match for `target`; true when it reaches the threshold (the count then restarts).
    fn count(&mut self, target: &str, now: Instant) -> bool {
        let window = Duration::from_secs(self.config.window_secs);
        if !self.seen.contains_key(target) && self.seen.len() >= MAX_TRACKED {
            let stalest = self
                .seen
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                self.seen.remove(&k);
            }
        }
        let times = self.seen.entry(target.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        times.push_back(now);
        if times.len() >= self.config.threshold as usize {
            self.seen.remove(target);
            return true;
        }
        false
    }
}

/// A named field of a log entry, as text.
fn field_of(payload: &Payload, name: &str) -> Option<String> {
    use gatewatch_proto::FieldValue;
    let Payload::Log(log) = payload else {
        return None;
    };
    let field = log.fields.iter().find(|f| f.name == name)?;
    Some(match &field.value {
        FieldValue::Text(t) | FieldValue::Number(t) => t.clone(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Null | FieldValue::Empty => String::new(),
    })
}

/// The text a rule matches for a payload.
fn text_of(payload: &Payload) -> String {
    let mut text = match payload {
        Payload::Log(log) => String::from_utf8_lossy(log.text.as_bytes()).into_owned(),
        Payload::Fim(gatewatch_proto::fim::FimEvent::Change(change)) => change.path.clone(),
        other => format!("{other:?}"),
    };
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::{LogEvent, LogText};

    fn ssh_rule(threshold: u32) -> RuleConfig {
        RuleConfig {
            name: "sshd-bruteforce".into(),
            module: "logcollector".into(),
            kind: Some("log.line".into()),
            pattern: r"sshd\[\d+\]: Failed password for .* from (?P<target>[0-9.]+)".into(),
            threshold,
            window_secs: 60,
            field: None,
            response: "firewall-drop".into(),
            arguments: Vec::new(),
            timeout_secs: Some(60),
        }
    }

    fn line(text: &str) -> EventBody {
        EventBody {
            time_ms: 0,
            module: "logcollector".into(),
            payload: Payload::Log(LogEvent {
                source: "/var/log/auth.log".into(),
                text: LogText::Text(text.into()),
                truncated: false,
                fields: Vec::new(),
            }),
        }
    }

    const FAIL: &str =
        "Nov 28 06:00:00 gw sshd[123]: Failed password for root from 203.0.113.7 port 22 ssh2";

    #[test]
    fn the_threshold_fires_once_per_target() {
        let mut rules = Rules::new(&[ssh_rule(3)]).unwrap();
        let now = Instant::now();
        assert!(rules.observe(&line(FAIL), now).is_empty());
        assert!(rules.observe(&line("unrelated"), now).is_empty());
        assert!(rules.observe(&line(FAIL), now).is_empty());
        let fired = rules.observe(&line(FAIL), now);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].target, "203.0.113.7");
        assert!(
            rules.observe(&line(FAIL), now).is_empty(),
            "count restarted"
        );
    }

    #[test]
    fn matches_outside_the_window_do_not_count() {
        let mut rules = Rules::new(&[ssh_rule(2)]).unwrap();
        let start = Instant::now();
        assert!(rules.observe(&line(FAIL), start).is_empty());
        let later = start + Duration::from_secs(61);
        assert!(rules.observe(&line(FAIL), later).is_empty());
        assert_eq!(rules.observe(&line(FAIL), later).len(), 1);
    }

    #[test]
    fn a_rule_on_a_field_matches_that_field_only() {
        let mut rule = ssh_rule(1);
        rule.field = Some("src".into());
        rule.pattern = "^(?P<target>[0-9.]+)$".into();
        let mut rules = Rules::new(&[rule]).unwrap();
        let mut event = line("203.0.113.1 in the text");
        assert!(rules.observe(&event, Instant::now()).is_empty(), "no field");
        if let Payload::Log(log) = &mut event.payload {
            log.fields.push(gatewatch_proto::LogField {
                name: "src".into(),
                value: gatewatch_proto::FieldValue::Text("198.51.100.3".into()),
            });
        }
        let fired = rules.observe(&event, Instant::now());
        assert_eq!(fired[0].target, "198.51.100.3");
    }

    #[test]
    fn a_fim_change_under_a_path_fires_with_the_path() {
        use gatewatch_proto::fim::{ChangeType, FimChange, FimEvent, FimMode};
        let rule = RuleConfig {
            module: "fim".into(),
            kind: Some("fim.added".into()),
            pattern: "^/srv/upload/.*\\.sh$".into(),
            response: "quarantine".into(),
            ..ssh_rule(1)
        };
        let mut rules = Rules::new(&[rule]).unwrap();
        let change = |path: &str| EventBody {
            time_ms: 0,
            module: "fim".into(),
            payload: Payload::Fim(FimEvent::Change(Box::new(FimChange {
                path: path.into(),
                event: ChangeType::Added,
                mode: FimMode::Realtime,
                attributes: None,
                old_attributes: None,
                changed_attributes: Vec::new(),
                tags: Vec::new(),
                audit: None,
                content_changes: None,
            }))),
        };
        assert!(rules
            .observe(&change("/srv/upload/a.txt"), Instant::now())
            .is_empty());
        let fired = rules.observe(&change("/srv/upload/x.sh"), Instant::now());
        assert_eq!(fired[0].target, "/srv/upload/x.sh");
    }

    #[test]
    fn other_modules_do_not_count() {
        let mut rules = Rules::new(&[ssh_rule(1)]).unwrap();
        let mut event = line(FAIL);
        event.module = "command".into();
        assert!(rules.observe(&event, Instant::now()).is_empty());
    }
}
