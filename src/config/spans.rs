//! Turning TOML parse and serde errors into [`Problem`]s that name the key and its line.
//!
//! The `toml` crate reports where an error is (a byte span) but keeps the key path private, so
//! the parsed document is indexed once (every key and value with its span and dotted path) and
//! an error's span is looked up there. That also gives positions to problems found later by
//! validation.

use super::error::{Key, Position, Problem};
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// Every key of a parsed document with its dotted path and spans.
#[derive(Debug, Default)]
pub(super) struct KeyIndex {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// `manager.addresses`, `manager.addresses[1]`.
    path: String,
    /// Span of the key itself (of the value, for array elements).
    key: Range<usize>,
    /// Span of the value.
    value: Range<usize>,
}

impl KeyIndex {
    /// Indexes every key and array element of `root`.
    pub fn build(root: &DeTable<'_>) -> KeyIndex {
        let mut index = KeyIndex::default();
        index.add_table("", root);
        index
    }

    fn add_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.entries.push(Entry {
                path: path.clone(),
                key: key.span(),
                value: value.span(),
            });
            self.add_value(&path, value.get_ref());
        }
    }

    fn add_value(&mut self, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.add_table(path, table),
            DeValue::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    let element_path = format!("{path}[{i}]");
                    self.entries.push(Entry {
                        path: element_path.clone(),
                        key: element.span(),
                        value: element.span(),
                    });
                    self.add_value(&element_path, element.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The key an error at `span` is about: the key whose name is exactly there (unknown keys),
    /// else the deepest value exactly there (wrong types).
    fn key_at(&self, span: &Range<usize>) -> Option<&str> {
        if let Some(entry) = self.entries.iter().find(|e| e.key == *span) {
            return Some(&entry.path);
        }
        self.entries
            .iter()
            .filter(|e| e.value == *span)
            .max_by_key(|e| e.path.len())
            .map(|e| e.path.as_str())
    }

    /// The byte offset of the value of `path`, when the file sets it.
    pub fn value_offset(&self, path: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| e.value.start)
    }
}

/// A problem for a TOML parse error (`index` = `None`) or a serde error on the parsed document.
pub(super) fn toml_problem(text: &str, err: &toml::de::Error, index: Option<&KeyIndex>) -> Problem {
    let span = err.span();
    let key = span
        .as_ref()
        .and_then(|span| index?.key_at(span).map(str::to_owned))
        .or_else(|| index.and(keys_from_display(err)));
    let reason = match unknown_field(err.message()) {
        Some((field, expected)) => unknown_key_reason(field, &expected),
        None => readable(err.message()),
    };
    Problem {
        key: key.map(Key::File),
        position: span.map(|span| Position::of_offset(text, span.start)),
        reason,
    }
}

/// The key path `toml` prints (`in `a.b``) when it has no input to quote; a fallback for errors
/// without a span.
fn keys_from_display(err: &toml::de::Error) -> Option<String> {
    let mut bare = err.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let line = shown.lines().find_map(|l| l.strip_prefix("in `"))?;
    line.strip_suffix('`').map(str::to_owned)
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, expected))
}

fn unknown_key_reason(field: &str, expected: &[&str]) -> String {
    let mut reason = String::from("unknown key");
    if let Some(close) = closest(field, expected) {
        reason.push_str(&format!("; did you mean `{close}`?"));
    }
    if expected.is_empty() {
        reason.push_str("; this table takes no keys");
    } else {
        let known: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
        reason.push_str(&format!(" (known keys here: {})", known.join(", ")));
    }
    reason
}

/// The candidate nearest to `word` by edit distance, if near enough to be a likely typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (word.len().max(c.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `toml`/serde wording, on one line, with Rust type names said in TOML words.
fn readable(message: &str) -> String {
    let one_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    [
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected a sequence", "expected an array"),
        ("expected a borrowed string", "expected a string"),
    ]
    .iter()
    .fold(tables_named(one_line), |text, (rust, toml)| {
        text.replace(rust, toml)
    })
}

/// `expected struct AgentConfig` → `expected a table`: the Rust type name means nothing to a
/// user; what they wrote instead of a table does.
fn tables_named(mut text: String) -> String {
    const STRUCT: &str = "expected struct ";
    while let Some(start) = text.find(STRUCT) {
        let name_start = start + STRUCT.len();
        let name_len = text[name_start..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(text.len() - name_start);
        text.replace_range(start..name_start + name_len, "expected a table");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_and_substitutions() {
        assert_eq!(edit_distance("adress", "address"), 1);
        assert_eq!(edit_distance("prot", "port"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn a_likely_typo_gets_a_suggestion_and_a_stranger_does_not() {
        let keys = ["addresses", "port", "protocol"];
        assert_eq!(closest("adress", &keys), Some("addresses"));
        assert_eq!(closest("colour", &keys), None);
    }

    #[test]
    fn unknown_field_message_is_split_into_field_and_known_keys() {
        let parsed = unknown_field("unknown field `adress`, expected one of `addresses`, `port`");
        assert_eq!(parsed, Some(("adress", vec!["addresses", "port"])));
    }

    #[test]
    fn struct_names_are_said_as_tables() {
        assert_eq!(
            readable("invalid type: integer `5`, expected struct AgentConfig"),
            "invalid type: integer `5`, expected a table"
        );
    }

    #[test]
    fn rust_type_names_are_said_in_toml_words() {
        assert_eq!(
            readable("invalid type: string \"x\", expected u16\n"),
            "invalid type: string \"x\", expected an integer from 0 to 65535"
        );
    }
}
