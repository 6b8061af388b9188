//! Wazuh's rootcheck signature databases, in their own formats (loaded unchanged):
//!
//! - `rootkit_files.txt`: `path ! Rootkit name ::reference`; the path is relative to the file
//!   system root, or `*/name` for a name searched in every directory the walk visits.
//! - `rootkit_trojans.txt`: `binary !regex!description`; the binary is a name looked for in each
//!   `bin_dirs` directory, or an absolute path; the regex (POSIX extended syntax) is tested
//!   against each printable string of at least 4 characters in the file, as `strings` shows them.
//!
//! Blank lines and `#` comments are ignored; a line that does not parse (e.g. a trojan pattern
//! without its closing `!`) or whose regex does not compile is skipped and counted.

use super::scan::{room_for_one, Finding, Scan};
use regex_lite::Regex;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An entry of the rootkit files database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootkitFile {
    /// The path relative to the root, or (for `*` entries) the bare file name.
    pub path: String,
    /// Whether the name is searched everywhere (`*/name`).
    pub anywhere: bool,
    /// The rootkit's name.
    pub rootkit: String,
    /// The reference after `::` (may be empty).
    pub reference: String,
}

/// An entry of the trojans database.
#[derive(Debug, Clone)]
pub struct Trojan {
    /// A binary name, or an absolute path.
    pub binary: String,
    /// The pattern as written.
    pub pattern: String,
    /// The pattern, compiled.
    pub regex: Regex,
    /// What the entry says about a match (may be empty).
    pub description: String,
}

/// A parsed database: its entries and how many lines were skipped.
#[derive(Debug, Clone)]
pub struct Database<T> {
    /// The entries, in file order.
    pub entries: Vec<T>,
    /// Lines that are neither blank, comments nor entries (with their numbers and why).
    pub skipped: Vec<(usize, String)>,
}

fn meaningful(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Parses a rootkit files database.
pub fn parse_rootkit_files(text: &str) -> Database<RootkitFile> {
    let mut db = Database {
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    for (number, line) in meaningful(text) {
        let Some((path, rest)) = line.split_once('!') else {
            db.skipped.push((number, "no `!` after the path".into()));
            continue;
        };
        let path = path.trim();
        let (rootkit, reference) = rest.split_once("::").unwrap_or((rest, ""));
        let (anywhere, path) = match path.strip_prefix('*') {
            Some(name) => (true, name.trim_start_matches('/')),
            None => (false, path.trim_start_matches('/')),
        };
        if path.is_empty() {
            db.skipped.push((number, "empty path".into()));
            continue;
        }
        db.entries.push(RootkitFile {
            path: path.to_string(),
            anywhere,
            rootkit: rootkit.trim().to_string(),
            reference: reference.trim().to_string(),
        });
    }
    db
}

/// Parses a trojans database.
pub fn parse_trojans(text: &str) -> Database<Trojan> {
    let mut db = Database {
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    for (number, line) in meaningful(text) {
        let (binary, rest) = line.split_at(line.find([' ', '\t']).unwrap_or(line.len()));
        let Some(rest) = rest.trim_start().strip_prefix('!') else {
            db.skipped
                .push((number, "no `!` before the pattern".into()));
            continue;
        };
        let Some((pattern, description)) = rest.split_once('!') else {
            db.skipped.push((number, "no `!` after the pattern".into()));
            continue;
        };
        match Regex::new(pattern) {
            Ok(regex) => db.entries.push(Trojan {
                binary: binary.to_string(),
                pattern: pattern.to_string(),
                regex,
                description: description.trim().to_string(),
            }),
            Err(e) => db
                .skipped
                .push((number, format!("pattern `{pattern}`: {e}"))),
        }
    }
    db
}

/// Loads the rootkit files database named in the configuration (empty, with a note, when it
/// cannot be read).
pub fn load_files_db(scan: &mut Scan<'_>) -> Vec<RootkitFile> {
    let path = scan.config.rootkit_files.clone();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_rootkit_files(&text).entries,
        Err(e) => {
            scan.skip(format!("rootkit files: {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Looks for every fixed path of the rootkit files database under the root, by `lstat` (which
/// finds a file that a rootkit hides from directory listings); a file found that its directory's
/// listing leaves out is said so in the finding.
pub async fn check_files(scan: &mut Scan<'_>, db: &[RootkitFile]) {
    let mut examined = 0u64;
    for entry in db.iter().filter(|e| !e.anywhere) {
        scan.pacer.tick().await;
        examined += 1;
        let path = scan.config.root.join(&entry.path);
        if std::fs::symlink_metadata(&path).is_ok() {
            let mut finding = rootkit_finding(entry, &path);
            if !listed_in_parent(&path) {
                finding
                    .details
                    .push_str("; stat finds it but its directory's listing does not show it");
            }
            scan.report(finding);
        }
    }
    scan.checked("rootkit_files", examined);
}

/// Whether `path`'s name is among the entries its directory lists.
fn listed_in_parent(path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return true;
    };
    match std::fs::read_dir(parent) {
        Ok(entries) => entries.flatten().any(|e| e.file_name() == name),
        Err(_) => true, // cannot tell
    }
}

/// The finding for a file of the rootkit files database found at `path`.
pub fn rootkit_finding(entry: &RootkitFile, path: &Path) -> Finding {
    Finding::at_path(
        "rootkit_file",
        path,
        format!(
            "Rootkit '{}' detected by the presence of file '{}'.",
            entry.rootkit,
            path.display()
        ),
        if entry.reference.is_empty() {
            "listed in the rootkit files database".into()
        } else {
            format!("listed in the rootkit files database ({})", entry.reference)
        },
    )
}

/// Size of one read of a binary.
const CHUNK: usize = 64 * 1024;
/// Longest string kept whole; longer runs are tested in pieces.
const MAX_STRING: usize = 4096;
/// Shortest run of printable characters that counts as a string (as `strings`).
const MIN_STRING: usize = 4;

/// Tests the binaries of the trojans database.
pub async fn check_trojans(scan: &mut Scan<'_>) {
    let db_path = scan.config.rootkit_trojans.clone();
    let db = match std::fs::read_to_string(&db_path) {
        Ok(text) => parse_trojans(&text),
        Err(e) => {
            scan.skip(format!("trojans: {}: {e}", db_path.display()));
            return;
        }
    };
    let mut buffer = Vec::new();
    let mut chunk = Vec::new();
    if scan.memory().try_reserve(&mut buffer, MAX_STRING).is_err()
        || scan.memory().try_reserve(&mut chunk, CHUNK).is_err()
    {
        scan.skip("trojans: no memory for the read buffers".into());
        return;
    }
    chunk.resize(CHUNK, 0);
    let mut examined = 0u64;
    let mut seen: Vec<(u64, u64)> = Vec::new();
    // One binary may have several entries; they are grouped so it is read once.
    let mut binaries: Vec<&str> = db.entries.iter().map(|t| t.binary.as_str()).collect();
    binaries.sort_unstable();
    binaries.dedup();
    for binary in binaries {
        let entries: Vec<&Trojan> = db.entries.iter().filter(|t| t.binary == binary).collect();
        for path in candidates(scan, binary) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            // /bin and /usr/bin are often the same directory: read each file once.
            let id = (meta.dev(), meta.ino());
            if !meta.is_file() || seen.contains(&id) {
                continue;
            }
            if room_for_one(scan.memory(), &mut seen) {
                seen.push(id);
            }
            examined += 1;
            let found = scan_binary(scan, &path, &entries, &mut chunk, &mut buffer).await;
            if let Some((entry, string)) = found {
                scan.report(Finding::at_path(
                    "trojaned_binary",
                    &path,
                    format!(
                        "Trojaned version of file '{}' detected. Signature used: '{}' ({}).",
                        path.display(),
                        entry.pattern,
                        if entry.description.is_empty() {
                            "Generic"
                        } else {
                            &entry.description
                        }
                    ),
                    format!("the string {string:?} matches"),
                ));
            }
        }
    }
    scan.checked("trojans", examined);
}

/// Where a trojans entry's binary is looked for.
fn candidates(scan: &Scan<'_>, binary: &str) -> Vec<PathBuf> {
    if binary.starts_with('/') {
        return vec![scan.under_root(Path::new(binary))];
    }
    scan.config
        .bin_dirs
        .iter()
        .map(|dir| scan.under_root(dir).join(binary))
        .collect()
}

/// Reads `path` in chunks and tests each printable string against the entries; the first match.
async fn scan_binary<'t>(
    scan: &mut Scan<'_>,
    path: &Path,
    entries: &[&'t Trojan],
    chunk: &mut [u8],
    buffer: &mut Vec<u8>,
) -> Option<(&'t Trojan, String)> {
    let mut file = std::fs::File::open(path).ok()?;
    buffer.clear();
    loop {
        scan.pacer.tick_n(16).await;
        let n = match file.read(chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &chunk[..n] {
            if byte == b'\t' || (0x20..0x7f).contains(&byte) {
                buffer.push(byte);
                if buffer.len() < MAX_STRING {
                    continue;
                }
            }
            if let Some(found) = test_string(buffer, entries) {
                return Some(found);
            }
            buffer.clear();
        }
    }
    test_string(buffer, entries)
}

fn test_string<'t>(buffer: &[u8], entries: &[&'t Trojan]) -> Option<(&'t Trojan, String)> {
    if buffer.len() < MIN_STRING {
        return None;
    }
    // Only printable ASCII was pushed.
    let text = std::str::from_utf8(buffer).ok()?;
    entries
        .iter()
        .find(|t| t.regex.is_match(text))
        .map(|t| (*t, text.to_string()))
}
