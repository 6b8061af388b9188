//! Framing: how lines become entries — one per line, every N lines, groups delimited by a regular
//! expression, or Linux audit records grouped by their event id.
//!
//! A group being built is held until it is complete, its timeout passes, or its file is retired;
//! its size is bounded by the maximum entry size (later lines are consumed but cut and flagged).
//! Each entry carries the file offset after its last line: the position committed with it.

use super::config::{Format, MatchOn, MultilineConfig};
use super::lines::Line;
use crate::runtime::MemoryAccount;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long an incomplete audit or `multi-line:N` group waits for its next line.
pub const GROUP_TIMEOUT: Duration = Duration::from_millis(1000);

/// One entry, ready to become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The lines, joined with `\n`.
    pub text: Vec<u8>,
    /// Some line was cut, or the group was longer than the maximum.
    pub truncated: bool,
    /// File offset after the entry's last line.
    pub end: u64,
}

/// Lines waiting to be sent as one entry.
#[derive(Debug, Default)]
struct Group {
    text: Vec<u8>,
    lines: u32,
    truncated: bool,
    end: u64,
    last: Option<Instant>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Adds a line within `max` bytes; growth is charged to `memory` (a refusal cuts the group).
    fn add(&mut self, line: Line, max: usize, memory: &MemoryAccount) {
        let sep = usize::from(self.lines > 0);
        let room = max.saturating_sub(self.text.len() + sep);
        let take = line.bytes.len().min(room);
        if take + sep > 0 && memory.try_reserve(&mut self.text, take + sep).is_err() {
            self.truncated = true;
        } else {
            if sep == 1 && take > 0 {
                self.text.push(b'\n');
            }
            self.text.extend_from_slice(&line.bytes[..take]);
            self.truncated |= take < line.bytes.len();
        }
        self.truncated |= line.truncated;
        self.lines += 1;
        self.end = line.end;
        self.last = Some(Instant::now());
    }

    fn take(&mut self) -> Option<Entry> {
        if self.is_empty() {
            return None;
        }
        let group = std::mem::take(self);
        Some(Entry {
            text: group.text,
            truncated: group.truncated,
            end: group.end,
        })
    }
}

/// The framing state of one open file.
pub struct Framer {
    kind: Kind,
    group: Group,
    /// Audit event id of the group being built.
    audit_id: Vec<u8>,
}

/// How a source frames its lines, shared by its files (the regular expression is compiled once).
#[derive(Clone)]
pub struct FrameSpec(Kind);

#[derive(Clone)]
enum Kind {
    Line,
    Count(u32),
    Regex {
        regex: Rc<regex_lite::Regex>,
        match_on: MatchOn,
        timeout: Duration,
    },
    Audit,
}

impl FrameSpec {
    /// The framing of `format`; `multiline` is needed for `multi-line-regex`.
    pub fn new(format: &Format, multiline: Option<&MultilineConfig>) -> Result<Self, String> {
        let kind = match format {
            Format::Syslog | Format::Json | Format::Journald => Kind::Line,
            Format::MultiLine(n) => Kind::Count(u32::from(*n)),
            Format::Audit => Kind::Audit,
            Format::MultiLineRegex => {
                let m = multiline.ok_or("multi-line-regex without `multiline` settings")?;
                let regex = regex_lite::Regex::new(&m.regex)
                    .map_err(|e| format!("multiline regex `{}`: {e}", m.regex))?;
                Kind::Regex {
                    regex: Rc::new(regex),
                    match_on: m.match_on,
                    timeout: Duration::from_millis(m.timeout_ms),
                }
            }
        };
        Ok(FrameSpec(kind))
    }

    /// A fresh framer (for a file just opened, or one that starts over).
    pub fn framer(&self) -> Framer {
        Framer {
            kind: self.0.clone(),
            group: Group::default(),
            audit_id: Vec::new(),
        }
    }
}

impl Framer {
    /// Takes one line; complete entries are appended to `out`.
    pub fn push(&mut self, line: Line, max: usize, memory: &MemoryAccount, out: &mut Vec<Entry>) {
        match &self.kind {
            Kind::Line => out.push(Entry {
                text: line.bytes,
                truncated: line.truncated,
                end: line.end,
            }),
            Kind::Count(n) => {
                let n = *n;
                self.group.add(line, max, memory);
                if self.group.lines >= n {
                    out.extend(self.group.take());
                }
            }
            Kind::Regex {
                regex, match_on, ..
            } => {
                let matched = regex.is_match(&String::from_utf8_lossy(&line.bytes));
                match (match_on, matched) {
                    (MatchOn::Start, true) => {
                        out.extend(self.group.take());
                        self.group.add(line, max, memory);
                    }
                    (MatchOn::Start, false) => self.group.add(line, max, memory),
                    (MatchOn::End, _) => {
                        self.group.add(line, max, memory);
                        if matched {
                            out.extend(self.group.take());
                        }
                    }
                    (MatchOn::All, true) => self.group.add(line, max, memory),
                    (MatchOn::All, false) => {
                        out.extend(self.group.take());
                        self.group.add(line, max, memory);
                        out.extend(self.group.take());
                    }
                }
            }
            Kind::Audit => self.push_audit(line, max, memory, out),
        }
    }

    fn push_audit(&mut self, line: Line, max: usize, memory: &MemoryAccount, out: &mut Vec<Entry>) {
        let Some(id) = audit_id(&line.bytes) else {
            // Not an audit record: on its own.
            out.extend(self.group.take());
            self.group.add(line, max, memory);
            out.extend(self.group.take());
            return;
        };
        if id != self.audit_id.as_slice() {
            out.extend(self.group.take());
            self.audit_id.clear();
            self.audit_id.extend_from_slice(id);
        }
        let end_of_event = line.bytes.starts_with(b"type=EOE ");
        self.group.add(line, max, memory);
        if end_of_event {
            out.extend(self.group.take());
            self.audit_id.clear();
        }
    }

    /// When the group being built must be sent even without another line.
    pub fn deadline(&self) -> Option<Instant> {
        let last = self.group.last?;
        let timeout = match &self.kind {
            Kind::Regex { timeout, .. } => *timeout,
            _ => GROUP_TIMEOUT,
        };
        Some(last + timeout)
    }

    /// Sends the group being built (timeout, or the file is done).
    pub fn flush(&mut self, out: &mut Vec<Entry>) {
        out.extend(self.group.take());
        self.audit_id.clear();
    }
}

/// The `TIMESTAMP:ID` of an audit record's `msg=audit(TIMESTAMP:ID):`.
pub fn audit_id(line: &[u8]) -> Option<&[u8]> {
    let start = memchr::memmem::find(line, b"audit(")? + 6;
    let len = memchr::memchr(b')', &line[start..])?;
    let id = &line[start..start + len];
    id.contains(&b':').then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;

    fn memory() -> MemoryAccount {
        MemoryAccount::new(account_for("test-framer").unwrap(), 1 << 20)
    }

    fn run(format: Format, multiline: Option<MultilineConfig>, lines: &[&str]) -> Vec<String> {
        let mut framer = FrameSpec::new(&format, multiline.as_ref())
            .unwrap()
            .framer();
        let memory = memory();
        let mut out = Vec::new();
        let mut end = 0;
        for line in lines {
            end += line.len() as u64 + 1;
            let line = Line {
                bytes: line.as_bytes().to_vec(),
                truncated: false,
                end,
            };
            framer.push(line, 4096, &memory, &mut out);
        }
        framer.flush(&mut out);
        out.into_iter()
            .map(|e| String::from_utf8(e.text).unwrap())
            .collect()
    }

    #[test]
    fn multi_line_count_groups_every_n_lines() {
        let got = run(Format::MultiLine(2), None, &["a", "b", "c"]);
        assert_eq!(got, ["a\nb", "c"]);
    }

    #[test]
    fn multiline_end_and_all_modes_group_as_configured() {
        let end = MultilineConfig {
            regex: ";$".into(),
            match_on: MatchOn::End,
            timeout_ms: 1000,
        };
        assert_eq!(
            run(Format::MultiLineRegex, Some(end), &["a", "b;", "c;"]),
            ["a\nb;", "c;"]
        );
        let all = MultilineConfig {
            regex: "^ ".into(),
            match_on: MatchOn::All,
            timeout_ms: 1000,
        };
        assert_eq!(
            run(Format::MultiLineRegex, Some(all), &[" a", " b", "c", " d"]),
            [" a\n b", "c", " d"]
        );
    }

    #[test]
    fn a_group_is_bounded_by_the_maximum_entry_size() {
        let mut framer = FrameSpec::new(&Format::MultiLine(3), None)
            .unwrap()
            .framer();
        let memory = memory();
        let mut out = Vec::new();
        for i in 0..3u64 {
            let line = Line {
                bytes: vec![b'x'; 100],
                truncated: false,
                end: (i + 1) * 101,
            };
            framer.push(line, 150, &memory, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text.len(), 150);
        assert!(out[0].truncated);
        assert_eq!(out[0].end, 303);
    }

    #[test]
    fn the_audit_id_is_found_in_the_msg_field() {
        let line = b"type=SYSCALL msg=audit(1700000000.123:4567): arch=c000003e";
        assert_eq!(audit_id(line), Some(&b"1700000000.123:4567"[..]));
        assert_eq!(audit_id(b"no audit here"), None);
    }
}
