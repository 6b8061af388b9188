//! `journald` sources: the journal's own reader, `journalctl --follow -o export`, as a child
//! process (see docs/adr/005-journald.md). Each entry's `__CURSOR` is stored as the source's
//! cursor with its event, and a restart passes it back with `--after-cursor`: nothing is read
//! twice, nothing skipped.
//!
//! The export format is parsed with bounds: a field is `NAME=value\n`, or `NAME\n` followed by a
//! 64-bit little-endian length and that many bytes (binary values); an empty line ends an entry.
//! Values beyond the maximum entry size are cut and flagged.

use super::config::SourceConfig;
use crate::runtime::child::{self, GroupChild};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::{FieldValue, LogEvent, LogField, LogText, Payload};
use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Fields of an entry kept beside its message (the rest are journal internals).
const MAX_FIELDS: usize = 64;
/// Bytes read from journalctl at a time.
const CHUNK: usize = 16 * 1024;

/// One journal source's reading loop.
type SourceTask<'a> = Pin<Box<dyn Future<Output = Result<(), ModuleError>> + 'a>>;

/// Runs every journal source concurrently; returns the first error (never returns otherwise).
pub async fn run_all(
    sources: Vec<&SourceConfig>,
    max_line: usize,
    ctx: &ModuleContext,
) -> Result<(), ModuleError> {
    if sources.is_empty() {
        return futures_lite::future::pending().await;
    }
    let mut tasks: Vec<SourceTask<'_>> = sources
        .into_iter()
        .map(|s| Box::pin(run_one(s, max_line, ctx)) as SourceTask<'_>)
        .collect();
    std::future::poll_fn(|cx| {
        for task in &mut tasks {
            if let Poll::Ready(result) = task.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
        }
        Poll::Pending
    })
    .await
}

/// The cursor key of a journal source.
pub fn key(source: &SourceConfig) -> String {
    format!("journald:{}", source.location)
}

/// The `journalctl` arguments for `source`, resuming after `cursor`.
pub fn arguments(source: &SourceConfig, cursor: Option<&str>) -> Vec<OsString> {
    let location = std::path::Path::new(&source.location);
    let mut argv: Vec<OsString> = vec!["journalctl".into()];
    if location.is_dir() {
        argv.push(format!("--directory={}", source.location).into());
    } else {
        argv.push(format!("--file={}", source.location).into());
    }
    argv.extend(["-o", "export", "--follow", "--no-pager"].map(OsString::from));
    match cursor {
        Some(c) => {
            argv.push(format!("--after-cursor={c}").into());
            argv.push("--lines=all".into());
        }
        None if source.only_future => argv.push("--lines=0".into()),
        None => argv.push("--lines=all".into()),
    }
    argv
}

async fn run_one(
    source: &SourceConfig,
    max_line: usize,
    ctx: &ModuleContext,
) -> Result<(), ModuleError> {
    let key = key(source);
    let cursor = ctx
        .cursor(&key)
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    let argv = arguments(source, cursor.as_deref());
    let mut child = child::spawn(&argv).map_err(|e| {
        ModuleError(format!(
            "journal {}: cannot run journalctl: {e}",
            source.location
        ))
    })?;
    let mut parser = ExportParser::new(max_line);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = read(&mut child, &mut chunk, ctx).await.map_err(|e| {
            ModuleError(format!(
                "journal {}: reading journalctl: {e}",
                source.location
            ))
        })?;
        let Some(n) = n else {
            return Ok(()); // stopping
        };
        if n == 0 {
            let status = child.wait().await?;
            return Err(ModuleError(format!(
                "journal {}: journalctl ended ({status})",
                source.location
            )));
        }
        let mut entries = Vec::new();
        parser.push(&chunk[..n], &mut entries);
        for entry in entries {
            let Some(cursor) = entry.cursor.clone() else {
                continue;
            };
            let payload = event(source, entry);
            ctx.send_with_cursor(payload, &key, cursor.into_bytes())
                .await?;
        }
    }
}

/// Reads from journalctl unless the agent stops first (`None`).
async fn read(
    child: &mut GroupChild,
    buf: &mut [u8],
    ctx: &ModuleContext,
) -> std::io::Result<Option<usize>> {
    use futures_lite::FutureExt;
    let data = async { child.read(buf).await.map(Some) };
    let stop = async {
        ctx.shutdown().wait().await;
        Ok(None)
    };
    data.or(stop).await
}

fn event(source: &SourceConfig, entry: JournalEntry) -> Payload {
    Payload::Log(LogEvent {
        source: source.alias.clone().unwrap_or_else(|| "journald".into()),
        text: LogText::from_bytes(entry.message),
        truncated: entry.truncated,
        fields: entry.fields,
    })
}

/// One parsed journal entry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JournalEntry {
    /// `__CURSOR`.
    pub cursor: Option<String>,
    /// `MESSAGE`.
    pub message: Vec<u8>,
    /// The other fields (at most [`MAX_FIELDS`], internal `__` fields left out).
    pub fields: Vec<LogField>,
    /// A value was cut.
    pub truncated: bool,
}

/// Incremental, bounded parser of journalctl's export format.
pub struct ExportParser {
    max: usize,
    state: State,
    /// Bytes of the field being read (name, or name=value); bounded by `max` + name.
    field: Vec<u8>,
    entry: JournalEntry,
}

enum State {
    /// Reading `NAME=value` or `NAME` up to a newline.
    Line,
    /// Reading the 8-byte length of a binary value (bytes seen so far).
    Length(Vec<u8>),
    /// Reading a binary value: bytes left, then its trailing newline.
    Binary { name: String, left: u64 },
    /// The newline after a binary value.
    BinaryEnd,
}

impl ExportParser {
    /// A parser that keeps at most `max` bytes of any value.
    pub fn new(max: usize) -> Self {
        ExportParser {
            max,
            state: State::Line,
            field: Vec::new(),
            entry: JournalEntry::default(),
        }
    }

    /// Feeds bytes; complete entries are appended to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<JournalEntry>) {
        while !data.is_empty() {
            match &mut self.state {
                State::Line => match memchr::memchr(b'\n', data) {
                    Some(i) => {
                        self.take_line_bytes(&data[..i]);
                        data = &data[i + 1..];
                        self.end_line(out);
                    }
                    None => {
                        self.take_line_bytes(data);
                        data = &[];
                    }
                },
                State::Length(bytes) => {
                    let need = 8 - bytes.len();
                    let take = need.min(data.len());
                    bytes.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if bytes.len() == 8 {
                        let mut le = [0u8; 8];
                        le.copy_from_slice(bytes);
                        let name = String::from_utf8_lossy(&self.field).into_owned();
                        self.field.clear();
                        self.state = State::Binary {
                            name,
                            left: u64::from_le_bytes(le),
                        };
                    }
                }
                State::Binary { left, .. } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    let room = (self.max + 1).saturating_sub(self.field.len());
                    self.field.extend_from_slice(&data[..take.min(room)]);
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        let State::Binary { name, .. } =
                            std::mem::replace(&mut self.state, State::BinaryEnd)
                        else {
                            continue;
                        };
                        let value = std::mem::take(&mut self.field);
                        self.add_field(name, value);
                    }
                }
                State::BinaryEnd => {
                    data = &data[1..];
                    self.state = State::Line;
                }
            }
        }
    }

    /// Keeps a line's bytes within the bound (name, `=`, and at most `max` bytes of value).
    fn take_line_bytes(&mut self, bytes: &[u8]) {
        let room = (self.max + 256).saturating_sub(self.field.len());
        if bytes.len() > room {
            self.entry.truncated = true;
        }
        self.field
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_line(&mut self, out: &mut Vec<JournalEntry>) {
        if self.field.is_empty() {
            // An empty line ends the entry.
            let entry = std::mem::take(&mut self.entry);
            if entry.cursor.is_some() || !entry.message.is_empty() {
                out.push(entry);
            }
            return;
        }
        match memchr::memchr(b'=', &self.field) {
            Some(eq) => {
                let name = String::from_utf8_lossy(&self.field[..eq]).into_owned();
                let value = self.field[eq + 1..].to_vec();
                self.field.clear();
                self.add_field(name, value);
            }
            // A name alone: a binary value follows.
            None => self.state = State::Length(Vec::with_capacity(8)),
        }
    }

    fn add_field(&mut self, name: String, mut value: Vec<u8>) {
        if value.len() > self.max {
            value.truncate(self.max);
            self.entry.truncated = true;
        }
        match name.as_str() {
            "__CURSOR" => self.entry.cursor = Some(String::from_utf8_lossy(&value).into_owned()),
            "MESSAGE" => self.entry.message = value,
            n if n.starts_with("__") => {}
            _ if self.entry.fields.len() >= MAX_FIELDS => {}
            _ => self.entry.fields.push(LogField {
                name,
                value: FieldValue::Text(String::from_utf8_lossy(&value).into_owned()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(data: &[u8], piece: usize) -> Vec<JournalEntry> {
        let mut parser = ExportParser::new(1024);
        let mut out = Vec::new();
        for chunk in data.chunks(piece) {
            parser.push(chunk, &mut out);
        }
        out
    }

    #[test]
    fn export_entries_with_text_and_binary_fields_are_parsed_in_any_pieces() {
        let mut data =
            b"__CURSOR=s=1;i=1\nMESSAGE=hello\nPRIORITY=6\n\n__CURSOR=s=1;i=2\nMESSAGE\n".to_vec();
        data.extend_from_slice(&5u64.to_le_bytes());
        data.extend_from_slice(b"a\nb\xff\n\n\n");
        for piece in [1, 3, 7, data.len()] {
            let entries = parse_in_pieces(&data, piece);
            assert_eq!(entries.len(), 2, "piece {piece}");
            assert_eq!(entries[0].cursor.as_deref(), Some("s=1;i=1"));
            assert_eq!(entries[0].message, b"hello");
            assert_eq!(entries[0].fields[0].name, "PRIORITY");
            assert_eq!(entries[1].message, b"a\nb\xff\n");
        }
    }

    #[test]
    fn a_value_over_the_maximum_is_cut_and_flagged() {
        let mut parser = ExportParser::new(4);
        let mut out = Vec::new();
        parser.push(b"__CURSOR=c\nMESSAGE=abcdefgh\n\n", &mut out);
        assert_eq!(out[0].message, b"abcd");
        assert!(out[0].truncated);
    }
}
