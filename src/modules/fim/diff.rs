//! `report_changes`: the previous content of small text files, kept compressed under the module's
//! state directory within a disk quota, and a line diff (in `diff`'s normal format, as Wazuh
//! reports it) when the file changes.
//!
//! Never diffed: binaries (a NUL byte or invalid UTF-8), files over `diff_size_limit`, and paths
//! on the no-diff lists. The diff is computed on lines with the common head and tail removed;
//! the middle gets a longest-common-subsequence table only when it is small, otherwise it is
//! reported as one replaced block. The text is truncated to fit in one event.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest diff text in an event.
pub const MAX_DIFF_TEXT: usize = 16 * 1024;
/// Largest (old lines × new lines) middle section diffed line by line.
const MAX_TABLE_CELLS: usize = 40_000;

/// The stored copies and their quota.
pub struct DiffStore {
    dir: PathBuf,
    size_limit: u64,
    quota: u64,
    used: u64,
}

/// What became of a file's content.
#[derive(Debug, PartialEq, Eq)]
pub enum Content {
    /// Text, with the diff against the previous copy (`None` when there was no copy).
    Text(Option<String>),
    /// Not diffed, and why (binary, too large, no-diff list).
    NotDiffed(&'static str),
}

impl DiffStore {
    /// Opens (creating) the copies directory and counts what it holds.
    pub fn open(dir: &Path, size_limit: u64, quota: u64) -> std::io::Result<DiffStore> {
        std::fs::create_dir_all(dir)?;
        let mut used = 0;
        for entry in std::fs::read_dir(dir)? {
            used += entry?.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(DiffStore {
            dir: dir.to_path_buf(),
            size_limit,
            quota,
            used,
        })
    }

    /// Bytes the copies take.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used
    }

    fn copy_path(&self, path: &Path) -> PathBuf {
        let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.z", hex::encode(&digest[..16])))
    }

    /// Records the current content of `path` and returns the diff against the previous copy.
    /// `nodiff` forbids keeping content (a copy that exists is removed).
    pub fn update(&mut self, path: &Path, nodiff: bool) -> Content {
        if nodiff {
            self.forget(path);
            return Content::NotDiffed("on the no-diff list");
        }
        let new = match read_limited(path, self.size_limit) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.forget(path);
                return Content::NotDiffed("larger than diff_size_limit");
            }
            Err(_) => return Content::NotDiffed("unreadable"),
        };
        let Some(new_text) = as_text(&new) else {
            self.forget(path);
            return Content::NotDiffed("binary");
        };
        let copy = self.copy_path(path);
        let old = std::fs::read(&copy).ok().and_then(|z| {
            miniz_oxide::inflate::decompress_to_vec_with_limit(&z, self.size_limit as usize).ok()
        });
        let diff = old
            .as_deref()
            .and_then(as_text)
            .map(|old_text| line_diff(old_text, new_text));
        self.store(&copy, &new);
        Content::Text(diff)
    }

    /// Removes the copy of `path` (deleted file, or no longer diffable).
    pub fn forget(&mut self, path: &Path) {
        let copy = self.copy_path(path);
        if let Ok(meta) = std::fs::metadata(&copy) {
            if std::fs::remove_file(&copy).is_ok() {
                self.used = self.used.saturating_sub(meta.len());
            }
        }
    }

    fn store(&mut self, copy: &Path, content: &[u8]) {
        let old_len = std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0);
        let z = miniz_oxide::deflate::compress_to_vec(content, 6);
        if z.len() as u64 > self.quota {
            return;
        }
        if std::fs::write(copy, &z).is_err() {
            let _ = std::fs::remove_file(copy);
            return;
        }
        self.used = self.used.saturating_sub(old_len) + z.len() as u64;
        self.evict(copy);
    }

    /// Removes the oldest copies (but not `keep`) until the quota holds.
    fn evict(&mut self, keep: &Path) {
        while self.used > self.quota {
            let Ok(entries) = std::fs::read_dir(&self.dir) else {
                return;
            };
            let oldest = entries
                .filter_map(Result::ok)
                .filter(|e| e.path() != keep)
                .filter_map(|e| Some((e.metadata().ok()?, e.path())))
                .min_by_key(|(m, _)| m.modified().ok());
            let Some((meta, path)) = oldest else {
                return;
            };
            if std::fs::remove_file(&path).is_err() {
                return;
            }
            self.used = self.used.saturating_sub(meta.len());
        }
    }
}

/// The content of `path` if it is at most `limit` bytes; `None` if larger.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = std::fs::File::open(path)?;
    let mut out = Vec::new();
    file.take(limit + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}

/// The bytes as text, unless they look binary.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// `diff`'s normal format of `old` → `new`, truncated to [`MAX_DIFF_TEXT`].
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut out = String::new();
    for (i0, i1, j0, j1) in hunks(ma, mb) {
        hunk(&mut out, &a, &b, head + i0, head + i1, head + j0, head + j1);
        if out.len() > MAX_DIFF_TEXT {
            let mut cut = MAX_DIFF_TEXT;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("\n(diff truncated)\n");
            break;
        }
    }
    out
}

/// Changed blocks `(old start, old end, new start, new end)` of the middle sections.
fn hunks(a: &[&str], b: &[&str]) -> Vec<(usize, usize, usize, usize)> {
    if a.is_empty() && b.is_empty() {
        return Vec::new();
    }
    if a.len().saturating_mul(b.len()) > MAX_TABLE_CELLS || a.is_empty() || b.is_empty() {
        return vec![(0, a.len(), 0, b.len())];
    }
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut open: Option<(usize, usize)> = None;
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if let Some((i0, j0)) = open.take() {
                out.push((i0, i, j0, j));
            }
            i += 1;
            j += 1;
            continue;
        }
        open.get_or_insert((i, j));
        if j < b.len() && (i == a.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j]) {
            j += 1;
        } else {
            i += 1;
        }
    }
    if let Some((i0, j0)) = open {
        out.push((i0, a.len(), j0, b.len()));
    }
    out
}

fn range(start: usize, end: usize) -> String {
    if end - start == 1 {
        format!("{}", start + 1)
    } else {
        format!("{},{}", start + 1, end)
    }
}

fn hunk(out: &mut String, a: &[&str], b: &[&str], i0: usize, i1: usize, j0: usize, j1: usize) {
    use std::fmt::Write;
    let _ = match (i0 == i1, j0 == j1) {
        (true, _) => writeln!(out, "{i0}a{}", range(j0, j1)),
        (_, true) => writeln!(out, "{}d{j0}", range(i0, i1)),
        _ => writeln!(out, "{}c{}", range(i0, i1), range(j0, j1)),
    };
    for line in &a[i0..i1] {
        let _ = writeln!(out, "< {line}");
    }
    if i0 != i1 && j0 != j1 {
        out.push_str("---\n");
    }
    for line in &b[j0..j1] {
        let _ = writeln!(out, "> {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_uses_the_normal_format() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nB\nc\n"), "2c2\n< b\n---\n> B\n");
        assert_eq!(line_diff("a\n", "a\nb\n"), "1a2\n> b\n");
        assert_eq!(line_diff("a\nb\n", "b\n"), "1d0\n< a\n");
        assert_eq!(line_diff("same\n", "same\n"), "");
    }

    #[test]
    fn diff_finds_separate_changes() {
        let d = line_diff("1\n2\n3\n4\n5\n", "1\nx\n3\n4\n5\ny\n");
        assert_eq!(d, "2c2\n< 2\n---\n> x\n5a6\n> y\n");
    }

    #[test]
    fn copies_stay_within_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let mut store = DiffStore::open(dir.path(), 100_000, 2_000).unwrap();
        for i in 0..20 {
            let f = files.path().join(format!("f{i}"));
            // Incompressible-ish text so each copy takes a few hundred bytes.
            let text: String = (0..400)
                .map(|k| char::from(b'a' + ((k * 7 + i * 13) % 26) as u8))
                .collect();
            std::fs::write(&f, text).unwrap();
            store.update(&f, false);
        }
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 2_000, "{on_disk} bytes of copies");
        assert_eq!(on_disk, store.used());
    }
}
