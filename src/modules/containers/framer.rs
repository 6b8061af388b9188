//! Splits the engine's event stream into events, with a fixed maximum event size.
//!
//! Docker, podman and balenaEngine write one JSON object per line on `/events`. The framer keeps
//! at most `max` bytes of the current line in a buffer reserved once; a longer line is not kept:
//! the framer skips to its end (resynchronising on the next newline), counts it, and reports its
//! size once. Memory never grows with what the engine sends.

use crate::runtime::budget::{MemoryAccount, OverBudget};

/// What feeding bytes produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// The input was used up without finishing a line.
    NeedMore,
    /// A complete line is in [`Framer::line`]; call [`Framer::clear`] once it is handled.
    Line,
    /// A line longer than the maximum ended; it was skipped. Its size in bytes.
    Oversized(u64),
}

/// A bounded line splitter.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max: usize,
    /// Bytes of the oversized line being skipped (0: not skipping).
    skipping: u64,
    rejected: u64,
}

impl Framer {
    /// A framer for lines of at most `max` bytes, its buffer reserved from `memory`.
    pub fn new(max: usize, memory: &MemoryAccount) -> Result<Self, OverBudget> {
        let mut buf = Vec::new();
        memory.try_reserve(&mut buf, max)?;
        Ok(Framer {
            buf,
            max,
            skipping: 0,
            rejected: 0,
        })
    }

    /// Oversized lines skipped so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The maximum line size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The complete line (without its newline), after [`Fed::Line`].
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets the handled line.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Forgets a partial line (the stream it came from ended).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.skipping = 0;
    }

    /// Feeds `input`; returns how many bytes were used and what they completed. Stops after each
    /// complete line, so call again with the rest.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Fed) {
        let newline = memchr::memchr(b'\n', input);
        let piece = &input[..newline.unwrap_or(input.len())];
        let used = newline.map_or(input.len(), |n| n + 1);
        if self.skipping == 0 && self.buf.len() + piece.len() <= self.max {
            // Within capacity: never reallocates.
            self.buf.extend_from_slice(piece);
        } else {
            self.skipping += (self.buf.len() + piece.len()) as u64;
            self.buf.clear();
        }
        if newline.is_none() {
            return (used, Fed::NeedMore);
        }
        if self.skipping > 0 {
            let size = self.skipping;
            self.skipping = 0;
            self.rejected += 1;
            return (used, Fed::Oversized(size));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.is_empty() {
            // Blank lines (keep-alive newlines) carry nothing.
            return (used, Fed::NeedMore);
        }
        (used, Fed::Line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;

    fn framer(max: usize) -> Framer {
        let account = account_for("containers-framer-test").expect("an account");
        Framer::new(max, &MemoryAccount::new(account, 1 << 20)).expect("room for the buffer")
    }

    /// Feeds `input` in pieces of `step` bytes; returns the lines and oversize reports.
    fn frames(framer: &mut Framer, input: &[u8], step: usize) -> Vec<Result<String, u64>> {
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, fed) = framer.feed(rest);
                rest = &rest[used..];
                match fed {
                    Fed::Line => {
                        out.push(Ok(String::from_utf8_lossy(framer.line()).into_owned()));
                        framer.clear();
                    }
                    Fed::Oversized(n) => out.push(Err(n)),
                    Fed::NeedMore => {}
                }
            }
        }
        out
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        let mut f = framer(64);
        let got = frames(&mut f, b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\"", 3);
        assert_eq!(got, vec![Ok("{\"a\":1}".into()), Ok("{\"b\":2}".into())]);
    }

    #[test]
    fn an_oversized_line_is_skipped_once_and_the_next_line_is_read() {
        let mut f = framer(16);
        let capacity = f.buf.capacity();
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\n{\"ok\":true}\n");
        let got = frames(&mut f, &input, 7);
        assert_eq!(got, vec![Err(1000), Ok("{\"ok\":true}".into())]);
        assert_eq!(f.rejected(), 1);
        assert_eq!(f.buf.capacity(), capacity, "the buffer never grew");
    }
}
