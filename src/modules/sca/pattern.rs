//! Content tests: the part of a rule after ` -> ` that is matched against one line.
//!
//! ```text
//! content := minterm ( " && " minterm )*
//! minterm := [ "!" ] ( "r:" REGEX | "n:" REGEX " compare " OP INT | LITERAL )
//! ```
//! A line matches when every minterm holds. `r:` searches with the policy's regex engine
//! (OS_Regex unless `regex_type: pcre2`); `n:` captures a number with the regex and compares it;
//! anything else must equal the whole line, ignoring case. `!` inverts a minterm, but an
//! undecidable minterm stays undecidable.

use super::osregex::{MatchError, OsRegex};
use super::Tri;

/// The regex dialect of a policy or check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Wazuh's OS_Regex (the default).
    OsRegex,
    /// PCRE-style regular expressions (`regex_type: pcre2`), run by `regex-lite`.
    Pcre2,
}

/// A compiled regular expression of either dialect.
#[derive(Debug, Clone)]
pub enum Regex {
    Os(OsRegex),
    Pcre(regex_lite::Regex),
}

impl Regex {
    /// Compiles `pattern` for `engine`; the error says why it does not compile.
    pub fn new(engine: Engine, pattern: &str) -> Result<Regex, String> {
        match engine {
            Engine::OsRegex => OsRegex::new(pattern)
                .map(Regex::Os)
                .map_err(|e| format!("cannot compile regex '{pattern}': {e}")),
            Engine::Pcre2 => regex_lite::Regex::new(pattern)
                .map(Regex::Pcre)
                .map_err(|e| format!("cannot compile regex '{pattern}': {e}")),
        }
    }

    /// The first capture group of the first match: `Ok(None)` when nothing matches,
    /// `Ok(Some(None))` when it matches without capturing.
    fn first_group(&self, line: &[u8]) -> Result<Option<Option<Vec<u8>>>, MatchError> {
        match self {
            Regex::Os(re) => Ok(re.captures(line)?.map(|caps| {
                caps.first()
                    .copied()
                    .flatten()
                    .map(|(a, b)| line[a..b].to_vec())
            })),
            Regex::Pcre(re) => {
                let text = String::from_utf8_lossy(line);
                Ok(re
                    .captures(&text)
                    .map(|caps| caps.get(1).map(|m| m.as_str().as_bytes().to_vec())))
            }
        }
    }

    /// Whether the regex matches anywhere in `line`.
    pub fn is_match(&self, line: &[u8]) -> Result<bool, MatchError> {
        match self {
            Regex::Os(re) => re.is_match(line),
            Regex::Pcre(re) => Ok(re.is_match(&String::from_utf8_lossy(line))),
        }
    }
}

/// A comparison operator of `n:` minterms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
}

#[derive(Debug, Clone)]
enum Test {
    Regex(Regex),
    Numeric {
        re: Regex,
        op: Op,
        value: i64,
    },
    Literal(String),
    /// An `r:` regex that does not compile: like Wazuh, it never matches (the policy is at
    /// fault, so this is logged when the rule is compiled).
    NeverMatches,
    /// A minterm that can never be decided (bad regex, bad comparison), with the reason.
    Broken(String),
}

#[derive(Debug, Clone)]
struct Minterm {
    negated: bool,
    test: Test,
}

/// A compiled content test.
#[derive(Debug, Clone)]
pub struct Content {
    minterms: Vec<Minterm>,
}

impl Content {
    /// Compiles a content expression. It never fails: a minterm that cannot work makes every
    /// line undecidable, with the reason.
    pub fn new(engine: Engine, text: &str) -> Content {
        let minterms = text
            .split(" && ")
            .map(|term| {
                let (negated, term) = match term.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, term),
                };
                Minterm {
                    negated,
                    test: compile_minterm(engine, term),
                }
            })
            .collect();
        Content { minterms }
    }

    /// Tests one line: every minterm must hold. A failing minterm decides at once; otherwise an
    /// undecidable one makes the line undecidable.
    pub fn test(&self, line: &[u8]) -> Tri {
        let mut invalid = None;
        for m in &self.minterms {
            match m.test.eval(line) {
                Tri::Invalid(why) => invalid = invalid.or(Some(why)),
                Tri::Found if m.negated => return Tri::NotFound,
                Tri::NotFound if !m.negated => return Tri::NotFound,
                _ => {}
            }
        }
        invalid.map_or(Tri::Found, Tri::Invalid)
    }
}

fn compile_minterm(engine: Engine, term: &str) -> Test {
    let lower = term.get(..2).map(str::to_ascii_lowercase);
    match lower.as_deref() {
        Some("r:") => match Regex::new(engine, &term[2..]) {
            Ok(re) => Test::Regex(re),
            Err(why) => {
                log::warn!("sca: {why}; as in Wazuh, this pattern never matches");
                Test::NeverMatches
            }
        },
        Some("n:") => compile_numeric(engine, &term[2..]),
        _ => Test::Literal(term.to_string()),
    }
}

fn compile_numeric(engine: Engine, term: &str) -> Test {
    let Some((pattern, comparison)) = term.split_once(" compare ") else {
        return Test::Broken(format!(
            "Keyword 'compare' not found. Did you forget adding 'compare COMPARATOR VALUE' to your rule? '{term}'"
        ));
    };
    let re = match Regex::new(engine, pattern) {
        Ok(re) => re,
        Err(why) => return Test::Broken(why),
    };
    // The number is the first run of digits; the operator is looked for in Wazuh's order.
    let digits: String = comparison
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(value) = digits.parse::<i64>() else {
        return Test::Broken(format!(
            "No integer was found within the comparison '{comparison}'"
        ));
    };
    let op = if comparison.starts_with('=') {
        Op::Eq
    } else if comparison.contains("!=") {
        Op::Ne
    } else if comparison.contains("<=") {
        Op::Le
    } else if comparison.contains(">=") {
        Op::Ge
    } else if comparison.contains('<') {
        Op::Lt
    } else if comparison.contains('>') {
        Op::Gt
    } else {
        return Test::Broken(format!("Unrecognized operation: '{comparison}'"));
    };
    Test::Numeric { re, op, value }
}

impl Test {
    fn eval(&self, line: &[u8]) -> Tri {
        match self {
            Test::Literal(text) => Tri::from(line.eq_ignore_ascii_case(text.as_bytes())),
            Test::Broken(why) => Tri::Invalid(why.clone()),
            Test::NeverMatches => Tri::NotFound,
            Test::Regex(re) => match re.is_match(line) {
                Ok(hit) => Tri::from(hit),
                Err(MatchError::TooCostly) => Tri::Invalid(costly(line)),
            },
            Test::Numeric { re, op, value } => match re.first_group(line) {
                Err(MatchError::TooCostly) => Tri::Invalid(costly(line)),
                Ok(None) => Tri::NotFound,
                Ok(Some(None)) => Tri::Invalid(
                    "the regex matched, but no string was captured by it (no capture group?)"
                        .into(),
                ),
                Ok(Some(Some(group))) => match parse_long(&group) {
                    Some(n) => Tri::from(op.holds(n, *value)),
                    None => Tri::Invalid(format!(
                        "Conversion error. Cannot convert '{}' to integer.",
                        String::from_utf8_lossy(&group)
                    )),
                },
            },
        }
    }
}

impl Op {
    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Le => a <= b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Gt => a > b,
        }
    }
}

/// `strtol` base 10: leading spaces, an optional sign, then digits (the rest is ignored).
fn parse_long(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?.trim_start();
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse::<i64>().ok().map(|n| n * sign)
}

fn costly(line: &[u8]) -> String {
    format!(
        "matching a {}-byte line exceeded the regex step limit",
        line.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(content: &str, line: &str) -> Tri {
        Content::new(Engine::OsRegex, content).test(line.as_bytes())
    }

    #[test]
    fn literal_must_equal_the_whole_line_ignoring_case() {
        assert_eq!(t("Enabled", "enabled"), Tri::Found);
        assert_eq!(t("enabled", "enabled "), Tri::NotFound);
    }

    #[test]
    fn all_minterms_must_hold_and_bang_inverts() {
        assert_eq!(t("r:^PASS && !r:#", "PASS_MIN 1"), Tri::Found);
        assert_eq!(t("r:^PASS && !r:MIN", "PASS_MIN 1"), Tri::NotFound);
    }

    #[test]
    fn numeric_compare_uses_the_first_group() {
        let rule = r"n:^PASS_MAX_DAYS\s*\t*(\d+) compare <= 365";
        assert_eq!(t(rule, "PASS_MAX_DAYS 90"), Tri::Found);
        assert_eq!(t(rule, "PASS_MAX_DAYS 400"), Tri::NotFound);
        assert_eq!(t(rule, "PASS_MIN_DAYS 1"), Tri::NotFound);
        assert_eq!(t(r"n:x=(\d+) compare != 0", "x=3"), Tri::Found);
        assert_eq!(t(r"n:x=(\d+) compare > 2", "x=3"), Tri::Found);
        assert_eq!(t(r"n:x=(\d+) compare = 3", "x=3"), Tri::Found);
    }

    #[test]
    fn numeric_without_capture_or_compare_is_undecidable() {
        assert!(matches!(t(r"n:x=\d+ compare > 2", "x=3"), Tri::Invalid(_)));
        assert!(matches!(t(r"n:x=(\d+)", "x=3"), Tri::Invalid(_)));
        assert!(matches!(
            t(r"n:x=(\w+) compare > 2", "x=abc"),
            Tri::Invalid(_)
        ));
    }

    #[test]
    fn a_failing_minterm_beats_an_undecidable_one() {
        let bad_numeric = r"n:x=\q(\d+) compare > 1";
        assert_eq!(
            t(&format!("{bad_numeric} && r:nomatch"), "x=3"),
            Tri::NotFound
        );
        assert!(matches!(
            t(&format!("{bad_numeric} && r:x"), "x=3"),
            Tri::Invalid(_)
        ));
    }

    #[test]
    fn regex_that_does_not_compile_never_matches_as_in_wazuh() {
        assert_eq!(t(r"r:\+", "+legacy"), Tri::NotFound);
        assert_eq!(t(r"!r:\+", "+legacy"), Tri::Found);
    }

    #[test]
    fn pcre2_engine_uses_common_regex_syntax() {
        let c = Content::new(Engine::Pcre2, r"r:^\s*MaxAuthTries\s+[0-4]$");
        assert_eq!(c.test(b"\tMaxAuthTries 4"), Tri::Found);
        assert_eq!(c.test(b"MaxAuthTries 6"), Tri::NotFound);
    }
}
