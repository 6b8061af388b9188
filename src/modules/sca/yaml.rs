//! Reading a YAML policy one node at a time, straight from the file.
//!
//! A CIS policy is hundreds of kilobytes, nearly all of it prose. Instead of loading the whole
//! document, [`YamlReader`] pulls parser events (saphyr-parser) from a buffered file and builds
//! small [`Node`] trees on demand: the policy header, then one check at a time. Memory stays at
//! one check plus the parser's buffers, and the caller can yield between checks.
//!
//! Limits: anchors and aliases are refused (no shipped policy uses them); a single node may hold
//! at most [`MAX_NODE_BYTES`] of text.

use saphyr_parser::{BufferedInput, Event, Parser, ScanError};
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// Most text one node (a check, the header) may hold.
pub const MAX_NODE_BYTES: usize = 256 * 1024;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 16;

/// A YAML value: scalars are kept as text, as Wazuh's YAML-to-JSON step does for strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Scalar(String),
    Seq(Vec<Node>),
    /// Keys in document order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar under `key`.
    pub fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }
}

/// A problem reading the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError(pub String);

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters decoded from a byte stream; an I/O or UTF-8 error ends the stream and is kept.
struct Chars<R: Read> {
    bytes: std::io::Bytes<BufReader<R>>,
    error: Rc<RefCell<Option<String>>>,
}

impl<R: Read> Chars<R> {
    fn fail(&mut self, why: String) -> Option<char> {
        *self.error.borrow_mut() = Some(why);
        None
    }
}

impl<R: Read> Iterator for Chars<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let first = match self.bytes.next()? {
            Ok(b) => b,
            Err(e) => return self.fail(format!("read error: {e}")),
        };
        let len = match first {
            0x00..=0x7f => return Some(first as char),
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return self.fail("the file is not UTF-8".into()),
        };
        let mut buf = [first, 0, 0, 0];
        for slot in buf.iter_mut().take(len).skip(1) {
            match self.bytes.next() {
                Some(Ok(b)) => *slot = b,
                Some(Err(e)) => return self.fail(format!("read error: {e}")),
                None => return self.fail("the file ends inside a UTF-8 sequence".into()),
            }
        }
        match std::str::from_utf8(&buf[..len]) {
            Ok(s) => s.chars().next(),
            Err(_) => self.fail("the file is not UTF-8".into()),
        }
    }
}

type Source = Chars<File>;

/// A pull reader over one YAML file.
pub struct YamlReader {
    parser: Parser<'static, BufferedInput<Source>>,
    error: Rc<RefCell<Option<String>>>,
}

impl YamlReader {
    /// Opens `path` and reads up to the start of the top-level mapping.
    pub fn open(path: &Path) -> Result<YamlReader, YamlError> {
        let file = File::open(path).map_err(|e| YamlError(format!("cannot open: {e}")))?;
        let error = Rc::new(RefCell::new(None));
        let chars = Chars {
            bytes: BufReader::with_capacity(8192, file).bytes(),
            error: error.clone(),
        };
        let mut reader = YamlReader {
            parser: Parser::new_from_iter(chars),
            error,
        };
        loop {
            match reader.next_event()? {
                Event::StreamStart | Event::DocumentStart(_) => {}
                Event::MappingStart(..) => return Ok(reader),
                Event::StreamEnd => return Err(YamlError("the file is empty".into())),
                _ => return Err(YamlError("the document is not a mapping".into())),
            }
        }
    }

    fn next_event(&mut self) -> Result<Event<'static>, YamlError> {
        let result = self.parser.next_event();
        if let Some(why) = self.error.borrow_mut().take() {
            return Err(YamlError(why));
        }
        match result {
            Some(Ok((event, _))) => Ok(event),
            Some(Err(e)) => Err(scan_error(&e)),
            None => Err(YamlError("unexpected end of the document".into())),
        }
    }

    /// The next key of the top-level mapping, or `None` at its end.
    pub fn next_key(&mut self) -> Result<Option<String>, YamlError> {
        match self.next_event()? {
            Event::MappingEnd => Ok(None),
            Event::Scalar(key, ..) => Ok(Some(key.into_owned())),
            _ => Err(YamlError("a top-level key is not a plain string".into())),
        }
    }

    /// Reads the whole value that follows a key (or a sequence item).
    pub fn read_node(&mut self) -> Result<Node, YamlError> {
        let first = self.next_event()?;
        let mut budget = MAX_NODE_BYTES;
        self.build(first, 0, &mut budget)
    }

    /// Skips the value that follows a key.
    pub fn skip_node(&mut self) -> Result<(), YamlError> {
        let mut depth = 0usize;
        loop {
            match self.next_event()? {
                Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
                Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
                Event::Scalar(..) | Event::Alias(_) => {}
                Event::StreamEnd | Event::DocumentEnd => {
                    return Err(YamlError("unexpected end of the document".into()))
                }
                _ => {}
            }
            if depth == 0 {
                return Ok(());
            }
        }
    }

    /// Enters the sequence that follows a key; then call [`YamlReader::next_item`].
    pub fn enter_seq(&mut self) -> Result<(), YamlError> {
        match self.next_event()? {
            Event::SequenceStart(..) => Ok(()),
            _ => Err(YamlError("expected a list".into())),
        }
    }

    /// The next item of the entered sequence, or `None` at its end.
    pub fn next_item(&mut self) -> Result<Option<Node>, YamlError> {
        match self.next_event()? {
            Event::SequenceEnd => Ok(None),
            event => {
                let mut budget = MAX_NODE_BYTES;
                self.build(event, 0, &mut budget).map(Some)
            }
        }
    }

    fn build(
        &mut self,
        event: Event<'static>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match event {
            Event::Scalar(text, ..) => {
                *budget = budget.checked_sub(text.len()).ok_or_else(too_big)?;
                Ok(Node::Scalar(text.into_owned()))
            }
            Event::SequenceStart(anchor, _) => {
                refuse_anchor(anchor)?;
                let mut items = Vec::new();
                loop {
                    match self.next_event()? {
                        Event::SequenceEnd => return Ok(Node::Seq(items)),
                        e => items.push(self.build(e, depth + 1, budget)?),
                    }
                }
            }
            Event::MappingStart(anchor, _) => {
                refuse_anchor(anchor)?;
                let mut entries = Vec::new();
                loop {
                    let key = match self.next_event()? {
                        Event::MappingEnd => return Ok(Node::Map(entries)),
                        Event::Scalar(key, ..) => key.into_owned(),
                        _ => return Err(YamlError("a mapping key is not a string".into())),
                    };
                    *budget = budget.checked_sub(key.len()).ok_or_else(too_big)?;
                    let value = self.next_event()?;
                    entries.push((key, self.build(value, depth + 1, budget)?));
                }
            }
            Event::Alias(_) => Err(YamlError("YAML aliases are not supported".into())),
            _ => Err(YamlError("unexpected end of the document".into())),
        }
    }
}

fn refuse_anchor(anchor: usize) -> Result<(), YamlError> {
    if anchor == 0 {
        Ok(())
    } else {
        Err(YamlError("YAML anchors are not supported".into()))
    }
}

fn too_big() -> YamlError {
    YamlError(format!("a node holds more than {MAX_NODE_BYTES} bytes"))
}

fn scan_error(e: &ScanError) -> YamlError {
    let at = e.marker();
    YamlError(format!(
        "line {}, column {}: {}",
        at.line(),
        at.col() + 1,
        e.info()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> (tempfile::TempDir, YamlReader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, text).unwrap();
        let r = YamlReader::open(&path).unwrap();
        (dir, r)
    }

    #[test]
    fn sequence_items_are_read_one_at_a_time() {
        let (_d, mut r) =
            reader("a: {x: '1'}\nlist:\n  - id: 1\n    t: \"one\"\n  - id: 2\nz: end\n");
        assert_eq!(r.next_key().unwrap().as_deref(), Some("a"));
        assert_eq!(r.read_node().unwrap().str_at("x"), Some("1"));
        assert_eq!(r.next_key().unwrap().as_deref(), Some("list"));
        r.enter_seq().unwrap();
        assert_eq!(r.next_item().unwrap().unwrap().str_at("t"), Some("one"));
        assert_eq!(r.next_item().unwrap().unwrap().str_at("id"), Some("2"));
        assert_eq!(r.next_item().unwrap(), None);
        assert_eq!(r.next_key().unwrap().as_deref(), Some("z"));
        r.skip_node().unwrap();
        assert_eq!(r.next_key().unwrap(), None);
    }

    #[test]
    fn syntax_error_names_the_line() {
        let (_d, mut r) = reader("a: [1, 2\nb: 3\n");
        let _ = r.next_key();
        let e = r.read_node().unwrap_err();
        assert!(e.0.contains("line"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, b"a: b\nc: \xff\xfe\n").unwrap();
        let read_all = || -> Result<(), YamlError> {
            let mut r = YamlReader::open(&path)?;
            while r.next_key()?.is_some() {
                r.read_node()?;
            }
            Ok(())
        };
        let e = read_all().unwrap_err();
        assert!(e.0.contains("UTF-8"), "{e}");
    }

    #[test]
    fn aliases_are_refused() {
        let (_d, mut r) = reader("a: &x [1]\nb: *x\n");
        let _ = r.next_key();
        assert!(r.read_node().is_err());
    }
}
