//! HTTP/1.1 response parsing: the head, and where a body ends (length, chunked, or close).
//! Pure functions over bytes, so every bound is tested without a socket.

/// Largest response head accepted.
pub const MAX_HEAD: usize = 32 * 1024;

/// A parsed status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    Close,
}

/// Parses a head from `buf` if complete: the head and the offset of the body.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("response head over {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not text")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: `{status_line}`"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line `{line}`"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Some((Head { status, headers }, end + 4)))
}

/// The body framing of a response to `method`.
pub fn framing(head: &Head, method: &str) -> Result<Framing, String> {
    if method == "HEAD" || head.status == 204 || head.status == 304 || head.status / 100 == 1 {
        return Ok(Framing::Empty);
    }
    if head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        return Ok(Framing::Chunked);
    }
    match head.header("content-length") {
        Some(len) => len
            .parse()
            .map(Framing::Length)
            .map_err(|_| format!("bad Content-Length `{len}`")),
        None => Ok(Framing::Close),
    }
}

/// Where a chunked body stands after scanning what has arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkScan {
    /// Offset (in the raw body) of the next chunk-size line not yet scanned.
    next: usize,
    /// Payload bytes seen so far.
    pub payload: usize,
    /// The last chunk (size 0) has been seen.
    pub done: bool,
}

impl ChunkScan {
    /// Scans `raw` (the body bytes so far) from where the last call stopped.
    pub fn advance(&mut self, raw: &[u8]) -> Result<(), String> {
        while !self.done {
            let Some(line_len) = memchr::memmem::find(&raw[self.next.min(raw.len())..], b"\r\n")
            else {
                return Ok(());
            };
            let size = chunk_size(&raw[self.next..self.next + line_len])?;
            if size == 0 {
                self.done = true;
                return Ok(());
            }
            let end = self.next + line_len + 2 + size + 2;
            if raw.len() < end {
                return Ok(());
            }
            self.payload += size;
            self.next = end;
        }
        Ok(())
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(line).map_err(|_| "bad chunk size line")?;
    let hex = text.split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size `{hex}`"))
}

/// Removes the chunk framing of a complete chunked body, in place.
pub fn dechunk(raw: &mut Vec<u8>) -> Result<(), String> {
    let (mut read, mut write) = (0, 0);
    loop {
        let line_len = memchr::memmem::find(&raw[read..], b"\r\n").ok_or("truncated chunk")?;
        let size = chunk_size(&raw[read..read + line_len])?;
        read += line_len + 2;
        if size == 0 {
            break;
        }
        if raw.len() < read + size {
            return Err("truncated chunk".into());
        }
        raw.copy_within(read..read + size, write);
        write += size;
        read += size + 2;
    }
    raw.truncate(write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_parsed_with_lower_case_names() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Ms-Version: 1\r\n\r\nhello";
        let (head, body_at) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("x-ms-version"), Some("1"));
        assert_eq!(framing(&head, "GET").unwrap(), Framing::Length(5));
        assert_eq!(&raw[body_at..], b"hello");
    }

    #[test]
    fn an_endless_head_is_refused() {
        let raw = vec![b'a'; MAX_HEAD + 1];
        assert!(parse_head(&raw).is_err());
    }

    #[test]
    fn chunked_body_is_found_complete_and_unframed() {
        let mut raw = b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec();
        let mut scan = ChunkScan::default();
        scan.advance(&raw[..9]).unwrap();
        assert!(!scan.done);
        scan.advance(&raw).unwrap();
        assert!(scan.done);
        assert_eq!(scan.payload, 11);
        dechunk(&mut raw).unwrap();
        assert_eq!(raw, b"hello world");
    }
}
