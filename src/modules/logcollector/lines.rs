//! Bounded line reading by offset: complete lines are cut from a shared chunk buffer; a line
//! without its newline yet is read again next time (no per-file buffer), and a line longer than
//! the maximum keeps only its head, is flagged, and its rest is skipped up to its newline.
//!
//! Positions are file offsets, so a reader never holds more than the one chunk buffer the module
//! owns, whatever the number of files or the length of their lines.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// One line as read: without its newline, cut to the maximum when longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The bytes (at most the maximum line size).
    pub bytes: Vec<u8>,
    /// The line was longer and was cut.
    pub truncated: bool,
    /// File offset just after the line's newline.
    pub end: u64,
}

/// Where reading stands in one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineState {
    /// Offset of the first byte not yet part of a returned line.
    pub next: u64,
    /// Set while skipping an overlong line: `(its start, offset scanned up to)`.
    overlong: Option<(u64, u64)>,
}

impl LineState {
    /// Reading starts at `offset`.
    pub fn at(offset: u64) -> Self {
        LineState {
            next: offset,
            overlong: None,
        }
    }
}

/// Reads one chunk at the state's position and appends the complete lines to `out`. Returns the
/// bytes read (0 at the end of the file).
pub fn read_lines(
    file: &File,
    state: &mut LineState,
    buf: &mut [u8],
    max_line: usize,
    out: &mut Vec<Line>,
) -> std::io::Result<usize> {
    let from = state.overlong.map_or(state.next, |(_, scanned)| scanned);
    let n = file.read_at(buf, from)?;
    if n == 0 {
        return Ok(0);
    }
    let chunk = &buf[..n];
    let mut pos = 0;
    if let Some((start, _)) = state.overlong {
        match memchr::memchr(b'\n', chunk) {
            Some(i) => {
                let end = from + i as u64 + 1;
                out.push(Line {
                    bytes: read_head(file, start, max_line)?,
                    truncated: true,
                    end,
                });
                state.next = end;
                state.overlong = None;
                pos = i + 1;
            }
            None => {
                state.overlong = Some((start, from + n as u64));
                return Ok(n);
            }
        }
    }
    let base = from;
    while let Some(i) = memchr::memchr(b'\n', &chunk[pos..]) {
        let line = &chunk[pos..pos + i];
        let truncated = line.len() > max_line;
        let kept = if truncated {
            &line[..char_boundary(line, max_line)]
        } else {
            line
        };
        pos += i + 1;
        out.push(Line {
            bytes: kept.to_vec(),
            truncated,
            end: base + pos as u64,
        });
        state.next = base + pos as u64;
    }
    if n - pos > max_line {
        // No newline within the maximum: keep the head for later, skip to the newline.
        state.overlong = Some((state.next, base + n as u64));
    }
    Ok(n)
}

/// The unterminated last line of a file that will not grow any more (rotated away), if any.
pub fn final_line(
    file: &File,
    state: &mut LineState,
    max_line: usize,
) -> std::io::Result<Option<Line>> {
    let len = file.metadata()?.len();
    if len <= state.next {
        return Ok(None);
    }
    let truncated = state.overlong.is_some() || len - state.next > max_line as u64;
    let bytes = read_head(file, state.next, max_line)?;
    *state = LineState::at(len);
    Ok(Some(Line {
        bytes,
        truncated,
        end: len,
    }))
}

/// The first `max_line` bytes from `start` (up to a newline), cut at a character boundary.
fn read_head(file: &File, start: u64, max_line: usize) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; max_line];
    let mut filled = 0;
    while filled < max_line {
        let got = file.read_at(&mut head[filled..], start + filled as u64)?;
        if got == 0 {
            break;
        }
        filled += got;
    }
    head.truncate(filled);
    if let Some(i) = memchr::memchr(b'\n', &head) {
        head.truncate(i);
    }
    let keep = char_boundary(&head, head.len());
    head.truncate(keep);
    Ok(head)
}

/// The largest cut at or below `max` that does not split a UTF-8 character of otherwise valid
/// text (bytes that are not UTF-8 are cut at `max` exactly).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    if max >= bytes.len() {
        return bytes.len();
    }
    match std::str::from_utf8(&bytes[..max]) {
        Ok(_) => max,
        // Only a character cut in two at the end: cut before it.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn an_unterminated_line_waits_for_its_newline() {
        let (_dir, file) = file_with(b"one\ntw");
        let mut state = LineState::default();
        let mut out = Vec::new();
        read_lines(&file, &mut state, &mut [0u8; 64], 16, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bytes, b"one");
        assert_eq!(state.next, 4, "the partial line will be read again");
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_cut_and_its_rest_skipped() {
        let mut content = vec![b'a'; 100];
        content.extend_from_slice(b"\nnext\n");
        let (_dir, file) = file_with(&content);
        let mut state = LineState::default();
        let mut out = Vec::new();
        let mut buf = [0u8; 17];
        while read_lines(&file, &mut state, &mut buf, 16, &mut out).unwrap() > 0 {}
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].bytes, vec![b'a'; 16]);
        assert!(out[0].truncated);
        assert_eq!(out[0].end, 101);
        assert_eq!(out[1].bytes, b"next");
        assert!(!out[1].truncated);
    }

    #[test]
    fn a_cut_does_not_split_a_character() {
        assert_eq!(char_boundary("aé".as_bytes(), 2), 1);
        assert_eq!(char_boundary(b"\xff\xfe\xfd", 2), 2);
    }
}
