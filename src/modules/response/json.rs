//! The little JSON the response module speaks: Wazuh's active-response messages written by hand,
//! and single fields read from alerts, scripts' `check_keys` lines and quarantine sidecars.
//!
//! The agent has no JSON library (the gateway binary must stay small); this reader only finds the
//! first member with a given name anywhere in the text and decodes its string, number or array of
//! strings. Malformed input gives `None`, never a panic.

use std::fmt::Write;

/// Appends `s` as a JSON string (quoted, escaped) to `out`.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

/// A JSON array of strings.
pub fn string_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, item);
    }
    out.push(']');
    out
}

/// A value read by [`find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string, decoded.
    Str(String),
    /// A number, as written (or `true`/`false`/`null`).
    Scalar(String),
    /// An array whose items are all strings.
    Strings(Vec<String>),
    /// An object or a mixed array.
    Other,
}

impl Value {
    /// The string or scalar as text.
    pub fn text(self) -> Option<String> {
        match self {
            Value::Str(s) | Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// The value of the first member named `key`, at any depth.
pub fn find(json: &str, key: &str) -> Option<Value> {
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let (s, next) = read_string(b, i)?;
            i = skip_ws(b, next);
            if i < b.len() && b[i] == b':' {
                if s == key {
                    return read_value(b, skip_ws(b, i + 1));
                }
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Text of the first member named `key`, when it is a string or scalar.
pub fn find_text(json: &str, key: &str) -> Option<String> {
    find(json, key)?.text()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Decodes the string starting at the quote `b[start]`; returns it and the index after it.
fn read_string(b: &[u8], start: usize) -> Option<(String, usize)> {
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
            b'\\' => {
                let esc = *b.get(i + 1)?;
                i += 2;
                let c = match esc {
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'u' => {
                        let hex = std::str::from_utf8(b.get(i..i + 4)?).ok()?;
                        i += 4;
                        char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}')
                    }
                    other => other as char,
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    None
}

fn read_value(b: &[u8], i: usize) -> Option<Value> {
    match *b.get(i)? {
        b'"' => Some(Value::Str(read_string(b, i)?.0)),
        b'[' => {
            let mut items = Vec::new();
            let mut j = skip_ws(b, i + 1);
            loop {
                match *b.get(j)? {
                    b']' => return Some(Value::Strings(items)),
                    b'"' => {
                        let (s, next) = read_string(b, j)?;
                        items.push(s);
                        j = skip_ws(b, next);
                        if b.get(j) == Some(&b',') {
                            j = skip_ws(b, j + 1);
                        }
                    }
                    _ => return Some(Value::Other),
                }
            }
        }
        b'{' => Some(Value::Other),
        _ => {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .map_or(b.len(), |p| i + p);
            Some(Value::Scalar(
                std::str::from_utf8(&b[i..end]).ok()?.to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_members_are_found_and_unescaped() {
        let alert = r#"{"rule":{"id":"5712"},"data":{"srcip":"203.0.113.7","note":"a \"q\" \u00e9"},"pid":42}"#;
        assert_eq!(find_text(alert, "srcip").as_deref(), Some("203.0.113.7"));
        assert_eq!(find_text(alert, "note").as_deref(), Some("a \"q\" é"));
        assert_eq!(find_text(alert, "pid").as_deref(), Some("42"));
        assert_eq!(find(alert, "data"), Some(Value::Other));
        assert_eq!(find(alert, "missing"), None);
    }

    #[test]
    fn string_arrays_are_read() {
        let line = r#"{"command":"check_keys","parameters":{"keys":["1.2.3.4", "x"]}}"#;
        assert_eq!(
            find(line, "keys"),
            Some(Value::Strings(vec!["1.2.3.4".into(), "x".into()]))
        );
    }

    #[test]
    fn written_strings_read_back() {
        let s = "tab\t \"quote\" back\\slash \u{1}";
        let doc = format!("{{\"k\":{}}}", quoted(s));
        assert_eq!(find_text(&doc, "k").as_deref(), Some(s));
    }

    #[test]
    fn truncated_input_is_none() {
        assert_eq!(find(r#"{"k":"abc"#, "k"), None);
        assert_eq!(find(r#"{"k\"#, "k"), None);
    }
}
