//! Wazuh's two pattern dialects, as SCA policies use them: OS_Regex (`r:` patterns) and OS_Match
//! (file-name patterns of `d:` rules).
//!
//! OS_Regex is not PCRE. Matching is case-insensitive; `|` separates whole alternatives (never
//! inside a group); `^` and `$` anchor an alternative at its start and end; `(…)` captures (one
//! level only). A backslash escape is a one-character class, and only a class may be followed by
//! `+` or `*`: `\d` digit, `\w` `[A-Za-z0-9_@-]`, `\s` **the space only**, `\p` the punctuation
//! ``!"#$%&'()*+,-.:;<=>?[]{|}``, `\D \W \S` their complements, `\.` **any character**, `\t`
//! tab, and `\\ \( \) \$ \| \<` the character itself. Any other escape is an error; every other
//! character (including `.`, `?`, `[`, `{`, and a `+` after a plain character) is a literal.
//!
//! The matcher backtracks (leftmost match, greedy repetition) with a step limit, so a pattern
//! can never stall the single agent thread: past the limit a match is reported as
//! [`MatchError::TooCostly`].

/// Longest pattern accepted (Wazuh's `OS_PATTERN_MAXSIZE`).
pub const MAX_PATTERN: usize = 2048;
/// Matching steps allowed for one subject string.
const MAX_STEPS: u32 = 200_000;

/// A one-character class (a backslash escape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    Word,
    Space,
    Punct,
    NotDigit,
    NotWord,
    NotSpace,
    Any,
    Byte(u8),
}

impl Class {
    fn from_escape(c: u8) -> Option<Class> {
        Some(match c {
            b'd' => Class::Digit,
            b'w' => Class::Word,
            b's' => Class::Space,
            b'p' => Class::Punct,
            b'D' => Class::NotDigit,
            b'W' => Class::NotWord,
            b'S' => Class::NotSpace,
            b'.' => Class::Any,
            b't' => Class::Byte(b'\t'),
            b'\\' | b'(' | b')' | b'$' | b'|' | b'<' => Class::Byte(c),
            _ => return None,
        })
    }

    fn matches(self, b: u8) -> bool {
        let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'-');
        match self {
            Class::Digit => b.is_ascii_digit(),
            Class::Word => word(b),
            Class::Space => b == b' ',
            Class::Punct => b"!\"#$%&'()*+,-.:;<=>?[]{|}".contains(&b),
            Class::NotDigit => !b.is_ascii_digit(),
            Class::NotWord => !word(b),
            Class::NotSpace => b != b' ',
            Class::Any => true,
            Class::Byte(c) => b.eq_ignore_ascii_case(&c),
        }
    }
}

/// How often a class may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    One,
    /// `+`
    OneOrMore,
    /// `*`
    ZeroOrMore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A plain character (stored lower-case).
    Literal(u8),
    Class(Class, Repeat),
    /// Start of capture group n.
    Open(usize),
    /// End of capture group n.
    Close(usize),
}

/// One `|` alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    begin: bool,
    end: bool,
    tokens: Vec<Token>,
    groups: usize,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// Longer than [`MAX_PATTERN`].
    TooLong,
    /// `\x` with an `x` OS_Regex does not know.
    BadEscape(char),
    /// Nested, unbalanced, or a `|` inside a group.
    BadParenthesis,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::TooLong => write!(f, "pattern longer than {MAX_PATTERN} bytes"),
            CompileError::BadEscape(c) => write!(f, "unknown escape \\{c}"),
            CompileError::BadParenthesis => {
                f.write_str("parentheses nested, unbalanced, or around a `|`")
            }
        }
    }
}

/// Byte ranges of the capture groups of a match (`None` for a group that did not take part).
pub type Captures = Vec<Option<(usize, usize)>>;

/// Why a match could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchError {
    /// The step limit was reached (a pathological pattern and subject).
    TooCostly,
}

/// A compiled OS_Regex pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRegex {
    alternatives: Vec<Alternative>,
}

impl OsRegex {
    /// Compiles `pattern` in the OS_Regex dialect.
    pub fn new(pattern: &str) -> Result<OsRegex, CompileError> {
        if pattern.len() > MAX_PATTERN {
            return Err(CompileError::TooLong);
        }
        let mut alternatives = Vec::new();
        let mut current = Vec::new();
        let mut depth = 0usize;
        let mut groups = 0usize;
        let bytes = pattern.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'\\' => {
                    let Some(&e) = bytes.get(i + 1) else {
                        return Err(CompileError::BadEscape(' '));
                    };
                    let class = Class::from_escape(e).ok_or(CompileError::BadEscape(e as char))?;
                    let repeat = match bytes.get(i + 2) {
                        Some(b'+') => Repeat::OneOrMore,
                        Some(b'*') => Repeat::ZeroOrMore,
                        _ => Repeat::One,
                    };
                    i += if repeat == Repeat::One { 2 } else { 3 };
                    current.push(Token::Class(class, repeat));
                    continue;
                }
                b'(' => {
                    depth += 1;
                    if depth > 1 {
                        return Err(CompileError::BadParenthesis);
                    }
                    current.push(Token::Open(groups));
                }
                b')' => {
                    if depth != 1 {
                        return Err(CompileError::BadParenthesis);
                    }
                    depth = 0;
                    current.push(Token::Close(groups));
                    groups += 1;
                }
                b'|' => {
                    if depth != 0 {
                        return Err(CompileError::BadParenthesis);
                    }
                    alternatives.push(Alternative::from_tokens(std::mem::take(&mut current)));
                }
                _ => current.push(Token::Literal(b.to_ascii_lowercase())),
            }
            i += 1;
        }
        if depth != 0 {
            return Err(CompileError::BadParenthesis);
        }
        alternatives.push(Alternative::from_tokens(current));
        Ok(OsRegex { alternatives })
    }

    /// Whether the pattern matches anywhere in `subject`.
    pub fn is_match(&self, subject: &[u8]) -> Result<bool, MatchError> {
        Ok(self.captures(subject)?.is_some())
    }

    /// The first match's capture groups (byte ranges of `subject`; `None` for a group that did
    /// not take part), or `None` when nothing matches.
    pub fn captures(&self, subject: &[u8]) -> Result<Option<Captures>, MatchError> {
        let mut steps = 0u32;
        for alt in &self.alternatives {
            let last_start = if alt.begin { 0 } else { subject.len() };
            for start in 0..=last_start {
                let mut caps = vec![None; alt.groups];
                let mut open = vec![0usize; alt.groups];
                let mut m = Matcher {
                    alt,
                    subject,
                    steps: &mut steps,
                    caps: &mut caps,
                    open: &mut open,
                };
                if m.run(0, start)? {
                    return Ok(Some(caps));
                }
            }
        }
        Ok(None)
    }
}

impl Alternative {
    fn from_tokens(mut tokens: Vec<Token>) -> Alternative {
        let begin = tokens.first() == Some(&Token::Literal(b'^'));
        if begin {
            tokens.remove(0);
        }
        let end = tokens.last() == Some(&Token::Literal(b'$'));
        if end {
            tokens.pop();
        }
        let groups = tokens
            .iter()
            .filter(|t| matches!(t, Token::Close(_)))
            .count();
        Alternative {
            begin,
            end,
            tokens,
            groups,
        }
    }
}

struct Matcher<'a> {
    alt: &'a Alternative,
    subject: &'a [u8],
    steps: &'a mut u32,
    caps: &'a mut Vec<Option<(usize, usize)>>,
    open: &'a mut Vec<usize>,
}

impl Matcher<'_> {
    /// Matches tokens from `ti` against the subject from `si`; records groups on success.
    fn run(&mut self, ti: usize, si: usize) -> Result<bool, MatchError> {
        *self.steps += 1;
        if *self.steps > MAX_STEPS {
            return Err(MatchError::TooCostly);
        }
        let Some(token) = self.alt.tokens.get(ti) else {
            return Ok(!self.alt.end || si == self.subject.len());
        };
        match *token {
            Token::Literal(c) => match self.subject.get(si) {
                Some(&b) if b.to_ascii_lowercase() == c => self.run(ti + 1, si + 1),
                _ => Ok(false),
            },
            Token::Open(g) => {
                let saved = self.open[g];
                self.open[g] = si;
                let ok = self.run(ti + 1, si)?;
                if !ok {
                    self.open[g] = saved;
                }
                Ok(ok)
            }
            Token::Close(g) => {
                let saved = self.caps[g];
                self.caps[g] = Some((self.open[g], si));
                let ok = self.run(ti + 1, si)?;
                if !ok {
                    self.caps[g] = saved;
                }
                Ok(ok)
            }
            Token::Class(class, Repeat::One) => match self.subject.get(si) {
                Some(&b) if class.matches(b) => self.run(ti + 1, si + 1),
                _ => Ok(false),
            },
            Token::Class(class, repeat) => {
                let min = usize::from(repeat == Repeat::OneOrMore);
                let max = self.subject[si..]
                    .iter()
                    .take_while(|&&b| class.matches(b))
                    .count();
                if max < min {
                    return Ok(false);
                }
                // Greedy: the longest run first, then shorter ones.
                for n in (min..=max).rev() {
                    if self.run(ti + 1, si + n)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

/// A compiled OS_Match pattern: `|`-separated literal alternatives, case-insensitive, each a
/// substring test unless anchored with `^` (prefix) and/or `$` (suffix); a leading `!` negates
/// the whole pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsMatch {
    negated: bool,
    alternatives: Vec<(bool, bool, Vec<u8>)>,
}

impl OsMatch {
    /// Compiles `pattern` (it cannot fail: every character is a literal).
    pub fn new(pattern: &str) -> OsMatch {
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let alternatives = body
            .split('|')
            .map(|alt| {
                let (begin, alt) = match alt.strip_prefix('^') {
                    Some(rest) => (true, rest),
                    None => (false, alt),
                };
                let (end, alt) = match alt.strip_suffix('$') {
                    Some(rest) => (true, rest),
                    None => (false, alt),
                };
                (begin, end, alt.to_ascii_lowercase().into_bytes())
            })
            .collect();
        OsMatch {
            negated,
            alternatives,
        }
    }

    /// Whether `subject` matches.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        let lower = subject.to_ascii_lowercase();
        let hit = self
            .alternatives
            .iter()
            .any(|(begin, end, lit)| match (begin, end) {
                (true, true) => lower == *lit,
                (true, false) => lower.starts_with(lit),
                (false, true) => lower.ends_with(lit),
                (false, false) => lit.is_empty() || lower.windows(lit.len()).any(|w| w == lit),
            });
        hit != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(pattern: &str, subject: &str) -> bool {
        OsRegex::new(pattern)
            .unwrap()
            .is_match(subject.as_bytes())
            .unwrap()
    }

    #[test]
    fn dot_escape_is_any_character_and_plain_dot_is_literal() {
        assert!(is(r"^a\.c$", "abc"));
        assert!(is(r"^a.c$", "a.c"));
        assert!(!is(r"^a.c$", "abc"));
        assert!(is(r"\.+.rules$", "50-audit.rules"));
    }

    #[test]
    fn space_class_is_the_space_character_only() {
        assert!(is(r"^\s*PermitRootLogin\s+no", "  PermitRootLogin no"));
        assert!(!is(r"^\s*PermitRootLogin\s+no", "\tPermitRootLogin no"));
        assert!(is(r"^\s*\t*x", "\t\tx"));
    }

    #[test]
    fn matching_ignores_case() {
        assert!(is("PASS_MAX_DAYS", "pass_max_days 90"));
        assert!(is(r"^\w+$", "Root@host-1_x"));
    }

    #[test]
    fn plus_after_a_plain_character_is_literal() {
        assert!(is("a+b", "xa+by"));
        assert!(!is("a+b", "aab"));
    }

    #[test]
    fn alternatives_are_whole_patterns_with_their_own_anchors() {
        let re = OsRegex::new("^active$|^enabled$").unwrap();
        assert!(re.is_match(b"active").unwrap());
        assert!(re.is_match(b"enabled").unwrap());
        assert!(!re.is_match(b"inactive").unwrap());
    }

    #[test]
    fn groups_capture_and_may_not_nest_or_hold_alternatives() {
        let re = OsRegex::new(r"PASS_MAX_DAYS\s*(\d+)").unwrap();
        let caps = re.captures(b"PASS_MAX_DAYS 365").unwrap().unwrap();
        assert_eq!(caps[0], Some((14, 17)));
        assert_eq!(OsRegex::new("((a))"), Err(CompileError::BadParenthesis));
        assert_eq!(OsRegex::new("(a|b)"), Err(CompileError::BadParenthesis));
        assert_eq!(OsRegex::new("(a"), Err(CompileError::BadParenthesis));
    }

    #[test]
    fn unknown_escape_does_not_compile() {
        assert_eq!(OsRegex::new(r"\x"), Err(CompileError::BadEscape('x')));
        assert!(OsRegex::new(r"\$\|\(\)\\\<").is_ok());
    }

    #[test]
    fn escaped_dollar_is_not_an_anchor() {
        assert!(is(r"^\s*\t*\$FileCreateMode", "$FileCreateMode 0640"));
        assert!(is(r"cost\$", "cost$ here"));
    }

    #[test]
    fn greedy_repetition_backtracks() {
        assert!(is(r"^\w+d$", "word"));
        assert!(is(r"^\.*=\s*2$", "kernel.randomize_va_space = 2"));
    }

    #[test]
    fn pathological_pattern_hits_the_step_limit() {
        let re = OsRegex::new(r"\.*\.*\.*\.*\.*\.*\.*x$").unwrap();
        let subject = vec![b'a'; 2000];
        assert_eq!(re.is_match(&subject), Err(MatchError::TooCostly));
    }

    #[test]
    fn os_match_anchors_alternatives_and_negation() {
        assert!(OsMatch::new("^sshd").is_match(b"sshd_config"));
        assert!(OsMatch::new("config$").is_match(b"SSHD_CONFIG"));
        assert!(OsMatch::new("^a$|b").is_match(b"xbx"));
        assert!(!OsMatch::new("^a$").is_match(b"ab"));
        assert!(OsMatch::new("!tmp").is_match(b"file"));
        assert!(!OsMatch::new("!tmp").is_match(b"a.tmp"));
    }
}
