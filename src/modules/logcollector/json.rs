//! A small, bounded JSON reader that flattens one object into dotted fields
//! (`{"user":{"name":"a"},"tags":["x"]}` → `user.name = "a"`, `tags.0 = "x"`).
//!
//! Bounded in depth ([`MAX_DEPTH`]) and in fields ([`MAX_FIELDS`]); numbers keep their text. Any
//! malformed input is an error, never a panic, and the line is then sent without fields.

use gatewatch_proto::{FieldValue, LogField};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most fields taken from one line.
pub const MAX_FIELDS: usize = 256;

/// Why a line is not a JSON object we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub at: usize,
}

/// Parses `input` as one JSON object and appends its flattened fields to `out`.
pub fn flatten(input: &[u8], out: &mut Vec<LogField>) -> Result<(), JsonError> {
    let mut p = Parser {
        s: input,
        i: 0,
        out,
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err());
    }
    let mut path = String::new();
    p.value(&mut path, 0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err());
    }
    Ok(())
}

struct Parser<'a, 'o> {
    s: &'a [u8],
    i: usize,
    out: &'o mut Vec<LogField>,
}

impl Parser<'_, '_> {
    fn err(&self) -> JsonError {
        JsonError { at: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn push(&mut self, path: &str, value: FieldValue) -> Result<(), JsonError> {
        if self.out.len() >= MAX_FIELDS {
            return Err(self.err());
        }
        self.out.push(LogField {
            name: path.to_string(),
            value,
        });
        Ok(())
    }

    fn value(&mut self, path: &mut String, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err());
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(path, depth),
            Some(b'[') => self.array(path, depth),
            Some(b'"') => {
                let text = self.string()?;
                self.push(path, FieldValue::Text(text))
            }
            Some(b't') => self.word(b"true", path, FieldValue::Bool(true)),
            Some(b'f') => self.word(b"false", path, FieldValue::Bool(false)),
            Some(b'n') => self.word(b"null", path, FieldValue::Null),
            Some(b'-' | b'0'..=b'9') => {
                let number = self.number()?;
                self.push(path, FieldValue::Number(number))
            }
            _ => Err(self.err()),
        }
    }

    fn word(&mut self, word: &[u8], path: &str, value: FieldValue) -> Result<(), JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            self.push(path, value)
        } else {
            Err(self.err())
        }
    }

    /// Appends `.name` (or `name` at the top) to `path`; returns the length to cut back to.
    fn enter(path: &mut String, name: &str) -> usize {
        let before = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        before
    }

    fn object(&mut self, path: &mut String, depth: usize) -> Result<(), JsonError> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return if path.is_empty() {
                Ok(())
            } else {
                self.push(path, FieldValue::Empty)
            };
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.eat(b':')?;
            let before = Self::enter(path, &key);
            self.value(path, depth + 1)?;
            path.truncate(before);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(&mut self, path: &mut String, depth: usize) -> Result<(), JsonError> {
        self.i += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return self.push(path, FieldValue::Empty);
        }
        let mut index = 0usize;
        loop {
            let before = Self::enter(path, &index.to_string());
            self.value(path, depth + 1)?;
            path.truncate(before);
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn number(&mut self) -> Result<String, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > from
        };
        if !digits(self) {
            return Err(self.err());
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err());
            }
        }
        // Only ASCII digits and signs were accepted.
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.err());
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err());
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0..=0x1f => return Err(self.err()),
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err())
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let Some(c) = self.peek() else {
            return Err(self.err());
        };
        self.i += 1;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let ch = self.unicode()?;
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                return Ok(());
            }
            _ => return Err(self.err()),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(self.err())?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err())?;
        let value = u32::from_str_radix(text, 16).map_err(|_| self.err())?;
        self.i += 4;
        Ok(value)
    }

    fn unicode(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.s[self.i..].starts_with(b"\\u") {
                return Err(self.err());
            }
            self.i += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.err());
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(input: &str) -> Result<Vec<(String, FieldValue)>, JsonError> {
        let mut out = Vec::new();
        flatten(input.as_bytes(), &mut out)?;
        Ok(out.into_iter().map(|f| (f.name, f.value)).collect())
    }

    #[test]
    fn nested_objects_and_arrays_become_dotted_fields() {
        let got = fields(r#"{"a":{"b":1.5e3,"c":[true,null,"x\u00e9"]},"d":{},"e":[]}"#).unwrap();
        assert_eq!(
            got,
            vec![
                ("a.b".into(), FieldValue::Number("1.5e3".into())),
                ("a.c.0".into(), FieldValue::Bool(true)),
                ("a.c.1".into(), FieldValue::Null),
                ("a.c.2".into(), FieldValue::Text("xé".into())),
                ("d".into(), FieldValue::Empty),
                ("e".into(), FieldValue::Empty),
            ]
        );
    }

    #[test]
    fn malformed_or_non_object_input_is_an_error() {
        for bad in [
            "[1]",
            "{\"a\":}",
            "{\"a\":1",
            "{\"a\":1} x",
            "{\"a\":01x}",
            "\"s\"",
            "{\"a\":\"\\ud800\"}",
        ] {
            assert!(fields(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let deep = format!("{}{}", "{\"a\":".repeat(MAX_DEPTH + 2), "1");
        let closed = format!("{deep}{}", "}".repeat(MAX_DEPTH + 2));
        assert!(fields(&closed).is_err());
    }
}
