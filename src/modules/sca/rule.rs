//! Parsing one rule string of a check into what to evaluate.
//!
//! ```text
//! rule := [ "not " | "NOT " ] type ":" target [ " -> " arg2 [ " -> " arg3 ] ]
//! ```
//! `f:` files, `d:` directories (arg2 a file-name pattern, arg3 content), `p:` processes (the
//! whole value is a content test), `c:` commands, `r:` Windows registry. `$variables` are
//! replaced (longest name first) in the target of `f:`, `d:` and `c:` rules only.

use super::osregex::{OsMatch, OsRegex};
use super::pattern::{Content, Engine};

/// Separator between a rule's parts (exactly space, hyphen, greater-than, space).
const ARROW: &str = " -> ";

/// How a `d:` rule selects file names.
#[derive(Debug, Clone)]
pub enum NamePattern {
    /// `r:` – always OS_Regex, whatever the policy's engine (as Wazuh does).
    Regex(Result<OsRegex, String>),
    /// Anything else: an OS_Match pattern.
    Match(OsMatch),
}

impl NamePattern {
    /// Whether a file name is selected; `Err` with the reason when the regex does not compile.
    pub fn selects(&self, name: &[u8]) -> Result<bool, String> {
        match self {
            NamePattern::Regex(Ok(re)) => re
                .is_match(name)
                .map_err(|_| "file-name regex exceeded the step limit".to_string()),
            NamePattern::Regex(Err(why)) => Err(why.clone()),
            NamePattern::Match(m) => Ok(m.is_match(name)),
        }
    }
}

/// What a rule looks at.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `f:` comma-separated files, optionally with a content test.
    File {
        paths: String,
        content: Option<Content>,
    },
    /// `d:` comma-separated directories, optionally a file-name pattern and a content test.
    Dir {
        dirs: String,
        names: Option<NamePattern>,
        content: Option<Content>,
    },
    /// `p:` a content test against every process name.
    Process { pattern: String, content: Content },
    /// `c:` a command, optionally with a content test against its output lines.
    Command {
        command: String,
        content: Option<Content>,
    },
    /// `r:` Windows registry: never applicable here.
    Registry { key: String },
}

/// A parsed rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `not ` prefix: FOUND and NOT_FOUND swap.
    pub negated: bool,
    pub kind: Kind,
}

/// Why a rule string is not a rule (the policy is then refused, as Wazuh does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl Rule {
    /// Parses `text`, substituting `variables` (`(name, value)`, longest name first).
    pub fn parse(
        text: &str,
        engine: Engine,
        variables: &[(String, String)],
    ) -> Result<Rule, RuleError> {
        let (negated, kind, value) = split_kind(text)?;
        let kind = match kind {
            "f" => {
                let (target, content) = split_arrow(value);
                Kind::File {
                    paths: substitute(target, variables),
                    content: content.map(|c| Content::new(engine, c)),
                }
            }
            "d" => {
                let (target, rest) = split_arrow(value);
                let (names, content) = match rest {
                    Some(rest) => {
                        let (names, content) = split_arrow(rest);
                        (Some(name_pattern(names)), content)
                    }
                    None => (None, None),
                };
                Kind::Dir {
                    dirs: substitute(target, variables),
                    names,
                    content: content.map(|c| Content::new(engine, c)),
                }
            }
            "p" => Kind::Process {
                pattern: value.to_string(),
                content: Content::new(engine, value),
            },
            "c" => {
                let (target, content) = split_arrow(value);
                Kind::Command {
                    command: substitute(target, variables),
                    content: content.map(|c| Content::new(engine, c)),
                }
            }
            "r" => Kind::Registry {
                key: value.to_string(),
            },
            _ => return Err(kind_error(kind, text)),
        };
        Ok(Rule { negated, kind })
    }

    /// Checks that `text` is a rule of a known type, without compiling its patterns.
    pub fn check_syntax(text: &str) -> Result<(), RuleError> {
        match split_kind(text)? {
            (_, "f" | "d" | "p" | "c" | "r", _) => Ok(()),
            (_, kind, _) => Err(kind_error(kind, text)),
        }
    }
}

/// `[not ]type:value` → (negated, type, value); a `!` before the type is ignored, as Wazuh does.
fn split_kind(text: &str) -> Result<(bool, &str, &str), RuleError> {
    let (negated, rest) = match text.get(..4) {
        Some("not " | "NOT ") => (true, &text[4..]),
        _ => (false, text),
    };
    let (kind, value) = rest
        .split_once(':')
        .ok_or_else(|| RuleError(format!("invalid rule: '{text}'")))?;
    Ok((negated, kind.strip_prefix('!').unwrap_or(kind), value))
}

fn kind_error(kind: &str, text: &str) -> RuleError {
    if kind.is_empty() {
        RuleError(format!("empty rule type: '{text}'"))
    } else {
        RuleError(format!("unknown rule type '{kind}': '{text}'"))
    }
}

/// Splits at the first ` -> `.
fn split_arrow(value: &str) -> (&str, Option<&str>) {
    match value.split_once(ARROW) {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    }
}

fn name_pattern(text: &str) -> NamePattern {
    match text.strip_prefix("r:") {
        Some(re) => NamePattern::Regex(
            OsRegex::new(re).map_err(|e| format!("cannot compile regex '{re}': {e}")),
        ),
        None => NamePattern::Match(OsMatch::new(text)),
    }
}

/// Replaces every variable (the list is sorted longest name first) everywhere in `target`.
fn substitute(target: &str, variables: &[(String, String)]) -> String {
    let mut out = target.to_string();
    for (name, value) in variables {
        if out.contains(name.as_str()) {
            out = out.replace(name.as_str(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Rule {
        Rule::parse(text, Engine::OsRegex, &[]).unwrap()
    }

    #[test]
    fn not_prefix_negates_and_arrows_split_the_parts() {
        let rule = parse("not f:/etc/a,/etc/b -> r:^x");
        assert!(rule.negated);
        assert!(
            matches!(rule.kind, Kind::File { ref paths, content: Some(_) } if paths == "/etc/a,/etc/b")
        );
        let rule = parse(r"d:/etc/audit/rules.d -> r:\.+.rules$ -> r:-e 2");
        assert!(matches!(
            rule.kind,
            Kind::Dir {
                names: Some(NamePattern::Regex(Ok(_))),
                content: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn command_without_arrow_has_no_content() {
        assert!(matches!(
            parse("c:sshd -T").kind,
            Kind::Command { ref command, content: None } if command == "sshd -T"
        ));
    }

    #[test]
    fn variables_are_replaced_longest_first_in_targets_only() {
        let vars = vec![
            ("$sshd_file".to_string(), "/etc/ssh/sshd_config".to_string()),
            ("$sshd".to_string(), "/wrong".to_string()),
        ];
        let rule = Rule::parse("f:$sshd_file -> r:$sshd", Engine::OsRegex, &vars).unwrap();
        assert!(
            matches!(rule.kind, Kind::File { ref paths, .. } if paths == "/etc/ssh/sshd_config")
        );
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(Rule::parse("x:/etc", Engine::OsRegex, &[]).is_err());
        assert!(Rule::parse("no colon", Engine::OsRegex, &[]).is_err());
    }
}
