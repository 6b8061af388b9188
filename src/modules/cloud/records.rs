//! Splitting a log object into records without parsing it whole: a CloudTrail-style
//! `{"Records": [...]}` document, a JSON array, JSON values one after another (JSON lines, or
//! Firehose's objects back to back), or text lines (VPC flow logs, with their header line).
//!
//! The scanner only finds where each JSON value ends (strings, escapes and nesting); records are
//! handed out as slices of the object, so splitting allocates nothing.

/// Where the records of an object are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Elements of an array; `pos` is inside it.
    Array,
    /// Top-level JSON values one after another.
    Values,
    /// Non-empty text lines.
    Lines,
}

/// The records of one object, in order.
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    mode: Mode,
    done: bool,
    /// The header line of a text log (VPC flow logs start with one), if any.
    pub header: Option<&'a str>,
}

impl<'a> Records<'a> {
    /// Finds the records of `data`. A text object whose first line starts with `header_prefix`
    /// has that line taken as its header rather than a record.
    pub fn new(data: &'a [u8], header_prefix: Option<&str>) -> Result<Records<'a>, String> {
        let start = skip_ws(data, 0);
        let mut records = Records {
            data,
            pos: start,
            mode: Mode::Values,
            done: start >= data.len(),
            header: None,
        };
        match data.get(start) {
            Some(b'{') => {
                if let Some(inside) = records_array(data, start)? {
                    records.mode = Mode::Array;
                    records.pos = inside;
                }
            }
            Some(b'[') => {
                records.mode = Mode::Array;
                records.pos = start + 1;
            }
            Some(_) => {
                records.mode = Mode::Lines;
                records.pos = 0;
                let first = line_at(data, 0).0;
                if let Some(prefix) = header_prefix {
                    let first = std::str::from_utf8(first).unwrap_or_default();
                    if first.starts_with(prefix) {
                        records.header = Some(first.trim_end_matches('\r'));
                        records.pos = line_at(data, 0).1;
                    }
                }
            }
            None => {}
        }
        Ok(records)
    }

    fn next_array(&mut self) -> Option<Result<&'a [u8], String>> {
        let at = skip_ws(self.data, self.pos);
        match self.data.get(at) {
            Some(b']') => {
                self.done = true;
                return None;
            }
            None => return Some(Err("unterminated array".into())),
            _ => {}
        }
        let end = match value_end(self.data, at) {
            Ok(end) => end,
            Err(e) => return Some(Err(e)),
        };
        let after = skip_ws(self.data, end);
        match self.data.get(after) {
            Some(b',') => self.pos = after + 1,
            Some(b']') => {
                self.pos = after;
            }
            _ => return Some(Err(format!("expected `,` or `]` at byte {after}"))),
        }
        Some(Ok(&self.data[at..end]))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.mode {
            Mode::Array => self.next_array(),
            Mode::Values => {
                let at = skip_ws(self.data, self.pos);
                if at >= self.data.len() {
                    self.done = true;
                    return None;
                }
                match value_end(self.data, at) {
                    Ok(end) => {
                        self.pos = end;
                        Some(Ok(&self.data[at..end]))
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            Mode::Lines => loop {
                if self.pos >= self.data.len() {
                    self.done = true;
                    return None;
                }
                let (line, next) = line_at(self.data, self.pos);
                self.pos = next;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    break Some(Ok(line));
                }
            },
        };
        if matches!(item, Some(Err(_))) {
            self.done = true;
        }
        item
    }
}

/// The line at `pos` (without its newline) and where the next one starts.
fn line_at(data: &[u8], pos: usize) -> (&[u8], usize) {
    match memchr::memchr(b'\n', &data[pos..]) {
        Some(i) => (&data[pos..pos + i], pos + i + 1),
        None => (&data[pos..], data.len()),
    }
}

fn skip_ws(data: &[u8], mut pos: usize) -> usize {
    while data.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// If the object at `start` has a top-level `"Records"` array, the offset just inside it.
fn records_array(data: &[u8], start: usize) -> Result<Option<usize>, String> {
    let mut pos = start + 1;
    loop {
        pos = skip_ws(data, pos);
        match data.get(pos) {
            Some(b'}') | None => return Ok(None),
            Some(b'"') => {}
            Some(_) => return Err(format!("expected a member name at byte {pos}")),
        }
        let key_end = string_end(data, pos)?;
        let key = &data[pos + 1..key_end - 1];
        pos = skip_ws(data, key_end);
        if data.get(pos) != Some(&b':') {
            return Err(format!("expected `:` at byte {pos}"));
        }
        pos = skip_ws(data, pos + 1);
        if key == b"Records" && data.get(pos) == Some(&b'[') {
            return Ok(Some(pos + 1));
        }
        pos = skip_ws(data, value_end(data, pos)?);
        if data.get(pos) == Some(&b',') {
            pos += 1;
        }
    }
}

/// The end (exclusive) of the string starting with `"` at `start`.
fn string_end(data: &[u8], start: usize) -> Result<usize, String> {
    let mut pos = start + 1;
    while let Some(i) = memchr::memchr2(b'"', b'\\', &data[pos.min(data.len())..]) {
        pos += i;
        if data[pos] == b'\\' {
            pos += 2;
        } else {
            return Ok(pos + 1);
        }
    }
    Err(format!("unterminated string at byte {start}"))
}

/// The end (exclusive) of the JSON value starting at `start`.
pub fn value_end(data: &[u8], start: usize) -> Result<usize, String> {
    match data.get(start) {
        Some(b'"') => string_end(data, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut pos = start;
            while pos < data.len() {
                match data[pos] {
                    b'"' => {
                        pos = string_end(data, pos)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            Err(format!("unterminated value at byte {start}"))
        }
        Some(_) => {
            let len = data[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(data.len() - start);
            if len == 0 {
                return Err(format!("unexpected byte at {start}"));
            }
            Ok(start + len)
        }
        None => Err("unexpected end of JSON".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &str, header: Option<&str>) -> Vec<String> {
        Records::new(data.as_bytes(), header)
            .unwrap()
            .map(|r| String::from_utf8(r.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn cloudtrail_records_are_split_whatever_comes_first() {
        let doc = r#"{"Other": {"x": "}]"}, "Records": [{"a": "b\"]"}, {"c": [1, 2]} ] }"#;
        assert_eq!(all(doc, None), [r#"{"a": "b\"]"}"#, r#"{"c": [1, 2]}"#]);
    }

    #[test]
    fn json_lines_and_back_to_back_objects_are_records() {
        assert_eq!(
            all("{\"a\":1}\n{\"b\":2}\n", None),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!(all("{\"a\":1}{\"b\":2}", None), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(all("[{\"a\":1}, {\"b\":2}]", None).len(), 2);
    }

    #[test]
    fn text_lines_skip_the_header_and_blank_lines() {
        let log = "version account-id action\n2 123 ACCEPT\r\n\n2 123 REJECT\n";
        let mut records = Records::new(log.as_bytes(), Some("version ")).unwrap();
        assert_eq!(records.header, Some("version account-id action"));
        assert_eq!(records.next().unwrap().unwrap(), b"2 123 ACCEPT");
        assert_eq!(records.next().unwrap().unwrap(), b"2 123 REJECT");
        assert!(records.next().is_none());
    }

    #[test]
    fn truncated_json_is_an_error_not_a_panic() {
        let mut records = Records::new(br#"{"Records": [{"a": "#, None).unwrap();
        assert!(records.next().unwrap().is_err());
        assert!(records.next().is_none());
    }
}
