//! HTTP/1.1 response bodies, decoded without I/O and without buffering: `Content-Length`,
//! `Transfer-Encoding: chunked`, or read until the engine closes the connection.
//!
//! The decoder hands back slices of its input, so a body of any length (the endless event
//! stream) goes through a fixed read buffer. Chunk-size lines and trailers are parsed byte by
//! byte with a bound on their length: a malformed or hostile body is an error, never growth.

use std::ops::Range;

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: u32 = 1024;

/// How the body's end is known (from the response head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the connection closes.
    UntilClose,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `Content-Length` bytes still to come.
    Length(u64),
    /// Reading a chunk-size line: the size so far, hex digits seen, in an extension, line length.
    SizeLine {
        size: u64,
        digits: u8,
        extension: bool,
        len: u32,
    },
    /// Bytes of the current chunk still to come.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; the current line's length.
    Trailer(u32),
    UntilClose,
    Done,
}

/// A malformed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub &'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed HTTP body: {}", self.0)
    }
}

/// Decodes one response body.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::SizeLine {
                size: 0,
                digits: 0,
                extension: false,
                len: 0,
            },
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the body may end at the connection's end (no length was announced).
    pub fn ends_at_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Decodes from `input`: returns how many input bytes were used and where the body bytes
    /// among them are (a range of `input`). Call again with the rest until it is used up.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Range<usize>), BodyError> {
        let mut used = 0;
        while used < input.len() {
            match self.state {
                State::Done => return Ok((input.len(), used..used)),
                State::UntilClose => return Ok((input.len(), used..input.len())),
                State::Length(n) => {
                    let take = take(n, input.len() - used);
                    self.state = if take as u64 == n {
                        State::Done
                    } else {
                        State::Length(n - take as u64)
                    };
                    return Ok((used + take, used..used + take));
                }
                State::Data(n) => {
                    let take = take(n, input.len() - used);
                    self.state = if take as u64 == n {
                        State::DataEnd
                    } else {
                        State::Data(n - take as u64)
                    };
                    return Ok((used + take, used..used + take));
                }
                _ => {
                    self.control_byte(input[used])?;
                    used += 1;
                }
            }
        }
        Ok((used, used..used))
    }

    /// One byte of a chunk-size line, of the CRLF after data, or of a trailer.
    fn control_byte(&mut self, byte: u8) -> Result<(), BodyError> {
        self.state = match (self.state, byte) {
            (State::SizeLine { len, .. }, _) if len >= MAX_LINE => {
                return Err(BodyError("chunk-size line too long"))
            }
            (State::SizeLine { size, digits, .. }, b'\n') => {
                if digits == 0 {
                    return Err(BodyError("chunk-size line without a size"));
                }
                if size == 0 {
                    State::Trailer(0)
                } else {
                    State::Data(size)
                }
            }
            (
                State::SizeLine {
                    size,
                    digits,
                    extension,
                    len,
                },
                b,
            ) => {
                if !extension && b.is_ascii_hexdigit() {
                    if digits >= 15 {
                        return Err(BodyError("chunk size too large"));
                    }
                    let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                    State::SizeLine {
                        size: size * 16 + digit,
                        digits: digits + 1,
                        extension,
                        len: len + 1,
                    }
                } else if extension || matches!(b, b'\r' | b' ' | b'\t' | b';') {
                    // The rest of the line (chunk extensions) is ignored.
                    State::SizeLine {
                        size,
                        digits,
                        extension: true,
                        len: len + 1,
                    }
                } else {
                    return Err(BodyError("bad chunk size"));
                }
            }
            (State::DataEnd, b'\r') => State::DataEnd,
            (State::DataEnd, b'\n') => State::SizeLine {
                size: 0,
                digits: 0,
                extension: false,
                len: 0,
            },
            (State::DataEnd, _) => return Err(BodyError("chunk data longer than its size")),
            (State::Trailer(0), b'\n') => State::Done,
            (State::Trailer(_), b'\n') => State::Trailer(0),
            (State::Trailer(len), b'\r') => State::Trailer(len),
            (State::Trailer(len), _) if len >= MAX_LINE => {
                return Err(BodyError("trailer line too long"))
            }
            (State::Trailer(len), _) => State::Trailer(len + 1),
            (state, _) => state,
        };
        Ok(())
    }
}

fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, input: &[u8], step: usize) -> Result<Vec<u8>, BodyError> {
        let mut decoder = BodyDecoder::new(framing);
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, data) = decoder.decode(rest)?;
                out.extend_from_slice(&rest[data]);
                rest = &rest[used..];
            }
        }
        assert!(decoder.is_done() || decoder.ends_at_close());
        Ok(out)
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, body.len()] {
            assert_eq!(
                decode_all(Framing::Chunked, body, step).unwrap(),
                b"hello, world"
            );
        }
    }

    #[test]
    fn content_length_stops_at_the_length() {
        let mut decoder = BodyDecoder::new(Framing::Length(3));
        let (used, data) = decoder.decode(b"abcdef").unwrap();
        assert_eq!((used, data), (3, 0..3));
        assert!(decoder.is_done());
    }

    #[test]
    fn endless_size_lines_and_bad_sizes_are_errors() {
        let long = [b'0'; 2000];
        assert!(decode_all(Framing::Chunked, &long, 100).is_err());
        assert!(decode_all(Framing::Chunked, b"zz\r\n", 1).is_err());
        assert!(decode_all(Framing::Chunked, b"2\r\nabc\r\n", 1).is_err());
    }
}
