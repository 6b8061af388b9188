//! Evaluating rules against the system: files, directories, processes, commands.
//!
//! Each rule gives [`Tri::Found`], [`Tri::NotFound`] or [`Tri::Invalid`] with the reason, with
//! Wazuh's semantics (see `reference/wazuh-agent.md` §9.2). Long work yields to the executor:
//! every few hundred lines of a file and every few dozen directory entries.

use super::command::{self, CommandOutput};
use super::pattern::Content;
use super::rule::{Kind, NamePattern, Rule};
use super::Tri;
use crate::runtime::MemoryAccount;
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest line tested, as Wazuh's `fgets` buffer (longer lines are tested in pieces).
const MAX_LINE: usize = 2047;
/// Command output is tested as this many pieces at most; the last one holds the remainder.
const MAX_PIECES: usize = 256;
/// Work units (lines, directory entries) between two yields.
const YIELD_EVERY: u32 = 256;
/// Deepest directory walk of a `d:` rule.
const MAX_WALK_DEPTH: usize = 32;
/// Bytes of command output kept for reuse within one policy scan.
const CACHE_BYTES: usize = 192 * 1024;
/// Larger outputs are not kept for reuse.
const CACHE_ENTRY_BYTES: usize = 48 * 1024;
/// `statfs` magic of NFS.
const NFS_SUPER_MAGIC: i64 = 0x6969;

/// What the rules of one check looked at (the `file`, `directory`, `process`, `command` fields).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub files: Vec<String>,
    pub dirs: Vec<String>,
    pub processes: Vec<String>,
    pub commands: Vec<String>,
}

impl Inspected {
    fn note(list: &mut Vec<String>, what: &str) {
        if !list.iter().any(|w| w == what) {
            list.push(what.to_string());
        }
    }
}

/// Evaluation settings and the per-scan caches (process names, command outputs).
pub struct Evaluator {
    memory: MemoryAccount,
    timeout: Duration,
    skip_nfs: bool,
    processes: Option<Vec<String>>,
    outputs: HashMap<String, CommandOutput>,
    cached_bytes: usize,
    work: u32,
}

impl Evaluator {
    /// An evaluator; create one per policy scan (its caches live as long as it does).
    pub fn new(memory: MemoryAccount, timeout: Duration, skip_nfs: bool) -> Self {
        Evaluator {
            memory,
            timeout,
            skip_nfs,
            processes: None,
            outputs: HashMap::new(),
            cached_bytes: 0,
            work: 0,
        }
    }

    /// Evaluates one rule, noting what it looked at.
    pub async fn rule(&mut self, rule: &Rule, seen: &mut Inspected) -> Tri {
        let result = match &rule.kind {
            Kind::File { paths, content } => {
                Inspected::note(&mut seen.files, paths);
                self.file_list(paths, content.as_ref()).await
            }
            Kind::Dir {
                dirs,
                names,
                content,
            } => {
                Inspected::note(&mut seen.dirs, dirs);
                self.dir_list(dirs, names.as_ref(), content.as_ref()).await
            }
            Kind::Process { pattern, content } => {
                Inspected::note(&mut seen.processes, pattern);
                processes_match(self.process_names(), content)
            }
            Kind::Command { command, content } => {
                Inspected::note(&mut seen.commands, command);
                match content {
                    // Wazuh does not even run a command that has no pattern.
                    None => Tri::Found,
                    Some(content) => self.command(command, content).await,
                }
            }
            Kind::Registry { key } => {
                Tri::Invalid(format!("registry rules apply to Windows only: '{key}'"))
            }
        };
        match result {
            Tri::Found if rule.negated => Tri::NotFound,
            Tri::NotFound if rule.negated => Tri::Found,
            other => other,
        }
    }

    async fn tick(&mut self) {
        self.work += 1;
        if self.work % YIELD_EVERY == 0 {
            futures_lite::future::yield_now().await;
        }
    }

    async fn file_list(&mut self, paths: &str, content: Option<&Content>) -> Tri {
        let mut acc = Tri::NotFound;
        for path in paths.split(',').filter(|p| !p.is_empty()) {
            let result = match content {
                None => file_exists(path),
                Some(content) => match file_exists(path) {
                    Tri::Found => self.file_contents(path, content).await,
                    Tri::Invalid(why) => Tri::Invalid(why),
                    Tri::NotFound => Tri::Invalid(format!("Could not open file '{path}'")),
                },
            };
            match result {
                Tri::Found => return Tri::Found,
                Tri::Invalid(why) => acc = keep_first_reason(acc, why),
                Tri::NotFound => {}
            }
        }
        acc
    }

    async fn file_contents(&mut self, path: &str, content: &Content) -> Tri {
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Tri::Invalid(format!("Could not open file '{path}': {e}")),
        };
        let mut reader = BufReader::with_capacity(4096, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_piece(&mut reader, &mut line) {
                Ok(0) => return Tri::NotFound,
                Ok(_) => {}
                Err(e) => return Tri::Invalid(format!("Could not read file '{path}': {e}")),
            }
            trim_crlf(&mut line);
            // Like Wazuh, a line that matches or that cannot be decided ends the file.
            match content.test(&line) {
                Tri::NotFound => {}
                decided => return decided,
            }
            self.tick().await;
        }
    }

    async fn dir_list(
        &mut self,
        dirs: &str,
        names: Option<&NamePattern>,
        content: Option<&Content>,
    ) -> Tri {
        let mut acc = Tri::NotFound;
        for dir in dirs.split(',').filter(|d| !d.is_empty()) {
            let result = if self.skip_nfs && is_nfs(dir) {
                Tri::Invalid(format!(
                    "Directory '{dir}' flagged as NFS and skip_nfs is enabled"
                ))
            } else {
                match names {
                    None => dir_exists(dir),
                    Some(names) => self.walk(dir, names, content).await,
                }
            };
            match result {
                Tri::Found => return Tri::Found,
                Tri::Invalid(why) => acc = keep_first_reason(acc, why),
                Tri::NotFound => {}
            }
        }
        acc
    }

    /// Walks `dir` depth-first; FOUND when a selected file exists (or has a matching line).
    async fn walk(&mut self, dir: &str, names: &NamePattern, content: Option<&Content>) -> Tri {
        if fs::canonicalize(dir).is_err() {
            return Tri::Invalid(format!("Could not open dir '{dir}'"));
        }
        let top = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => return Tri::Invalid(format!("Could not open '{dir}': {e}")),
        };
        let mut acc = Tri::NotFound;
        let mut stack = vec![(PathBuf::from(dir), top)];
        while let Some((base, entries)) = stack.last_mut() {
            let Some(entry) = entries.next() else {
                stack.pop();
                continue;
            };
            self.tick().await;
            let Ok(entry) = entry else { continue };
            let path = base.join(entry.file_name());
            let shown = path.display().to_string();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                acc = keep_first_reason(acc, format!("Cannot check directory entry '{shown}'"));
                continue;
            };
            if meta.is_dir() {
                if stack.len() >= MAX_WALK_DEPTH {
                    acc = keep_first_reason(acc, format!("'{shown}' is nested too deep"));
                    continue;
                }
                match fs::read_dir(&path) {
                    Ok(sub) => stack.push((path, sub)),
                    Err(e) => {
                        acc = keep_first_reason(acc, format!("Could not open '{shown}': {e}"))
                    }
                }
                continue;
            }
            let selected = match names.selects(entry.file_name().as_encoded_bytes()) {
                Ok(selected) => selected,
                Err(why) => return Tri::Invalid(why),
            };
            if !selected {
                continue;
            }
            match self.file_list(&shown, content).await {
                Tri::Found => return Tri::Found,
                Tri::Invalid(why) => acc = keep_first_reason(acc, why),
                Tri::NotFound => {}
            }
        }
        acc
    }

    fn process_names(&mut self) -> &[String] {
        self.processes.get_or_insert_with(read_process_names)
    }

    async fn command(&mut self, line: &str, content: &Content) -> Tri {
        let output = match self.outputs.get(line) {
            Some(output) => output.clone(),
            None => {
                let output = command::run(line, self.timeout, &self.memory).await;
                self.remember(line, &output);
                output
            }
        };
        let bytes = match output {
            CommandOutput::Failed(why) => return Tri::Invalid(why),
            CommandOutput::Ran(bytes) => bytes,
        };
        if bytes.is_empty() {
            return Tri::NotFound;
        }
        let mut result = Tri::NotFound;
        for piece in pieces(&bytes) {
            let mut piece = piece.to_vec();
            trim_crlf(&mut piece);
            result = content.test(&piece);
            if result == Tri::Found {
                break;
            }
            self.tick().await;
        }
        result
    }

    /// Keeps an output for reuse by later rules of the scan (the same command often repeats:
    /// `sshd -T`, `auditctl -l`), within a byte cap and never under memory pressure.
    fn remember(&mut self, line: &str, output: &CommandOutput) {
        let size = match output {
            CommandOutput::Ran(bytes) => bytes.len(),
            CommandOutput::Failed(why) => why.len(),
        } + line.len();
        if self.memory.should_shed() {
            self.outputs.clear();
            self.cached_bytes = 0;
            return;
        }
        if size > CACHE_ENTRY_BYTES || self.cached_bytes + size > CACHE_BYTES {
            return;
        }
        self.cached_bytes += size;
        self.outputs.insert(line.to_string(), output.clone());
    }
}

/// Keeps the first reason seen, as Wazuh reports the first one.
fn keep_first_reason(acc: Tri, why: String) -> Tri {
    match acc {
        Tri::Invalid(first) => Tri::Invalid(first),
        _ => Tri::Invalid(why),
    }
}

/// `f:` existence: the path, with symlinks resolved, is a regular file.
fn file_exists(path: &str) -> Tri {
    let real = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Tri::NotFound,
        Err(e) => return Tri::Invalid(format!("Could not resolve the real path of '{path}': {e}")),
    };
    match fs::symlink_metadata(&real) {
        Ok(meta) if meta.is_file() => Tri::Found,
        Ok(_) => Tri::Invalid(format!(
            "FILE_EXISTS({path}) -> RETURN_INVALID: Not a regular file."
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Tri::NotFound,
        Err(e) => Tri::Invalid(format!("Could not open '{path}': {e}")),
    }
}

/// `d:` existence.
fn dir_exists(dir: &str) -> Tri {
    let real = match fs::canonicalize(dir) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Tri::NotFound,
        Err(e) => return Tri::Invalid(format!("Could not resolve the real path of '{dir}': {e}")),
    };
    match fs::read_dir(&real) {
        Ok(_) => Tri::Found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Tri::NotFound,
        Err(e) => Tri::Invalid(format!(
            "Could not check directory existence for '{dir}': {e}"
        )),
    }
}

// `f_type` is i64 on x86_64 but a 32-bit type on ARM: the cast is needed there.
#[allow(clippy::unnecessary_cast)]
fn is_nfs(dir: &str) -> bool {
    rustix::fs::statfs(Path::new(dir)).is_ok_and(|s| s.f_type as i64 == NFS_SUPER_MAGIC)
}

/// Reads up to a newline (kept) or [`MAX_LINE`] bytes, like `fgets`.
fn read_piece(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(out.len());
        }
        let room = MAX_LINE - out.len();
        let take = buf.len().min(room);
        let (n, done) = match buf[..take].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (take, take == room),
        };
        out.extend_from_slice(&buf[..n]);
        reader.consume(n);
        if done {
            return Ok(out.len());
        }
    }
}

fn trim_crlf(line: &mut Vec<u8>) {
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
}

/// Splits command output like Wazuh's `OS_StrBreak('\n', out, 256)`: 255 lines, then the rest.
fn pieces(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while out.len() + 1 < MAX_PIECES {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The command names of running processes (what `ps -p PID` shows as CMD).
fn read_process_names() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
        .map(|name| name.trim_end_matches('\n').to_string())
        .collect()
}

fn processes_match(names: &[String], content: &Content) -> Tri {
    if names.is_empty() {
        return Tri::Invalid("Process list is empty.".into());
    }
    let mut acc = Tri::NotFound;
    for name in names {
        match content.test(name.as_bytes()) {
            Tri::Found => return Tri::Found,
            Tri::Invalid(why) => acc = keep_first_reason(acc, why),
            Tri::NotFound => {}
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_read_in_fgets_sized_pieces() {
        let text = format!("{}\nshort\n", "x".repeat(5000));
        let mut reader = BufReader::new(text.as_bytes());
        let mut sizes = Vec::new();
        loop {
            let mut piece = Vec::new();
            if read_piece(&mut reader, &mut piece).unwrap() == 0 {
                break;
            }
            sizes.push(piece.len());
        }
        assert_eq!(sizes, [2047, 2047, 907, 6]);
    }

    #[test]
    fn output_is_split_into_at_most_256_pieces() {
        let out: String = (0..300).map(|i| format!("l{i}\n")).collect();
        let parts = pieces(out.as_bytes());
        assert_eq!(parts.len(), 256);
        assert_eq!(parts[254], b"l254");
        assert!(parts[255].starts_with(b"l255\nl256"));
    }
}
