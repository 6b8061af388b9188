//! A small HTTP/1.1 client for an engine's unix socket: one request per connection, bounded
//! response heads and bodies.
//!
//! Only what the Engine API needs: `GET`, a status line, `Content-Length` or chunked bodies (see
//! [`super::body`]). [`get`] reads a whole body up to a maximum (charged to the module's memory
//! account); [`Stream`] reads an endless body (the event stream) through a fixed buffer. It never
//! follows redirects and never keeps a connection open after its response.

use super::body::{BodyDecoder, BodyError, Framing};
use crate::runtime::budget::MemoryAccount;
use async_net::unix::UnixStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest response head (status line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// Read buffer of a connection.
const READ_BUF: usize = 4 * 1024;

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    Io {
        socket: PathBuf,
        error: std::io::Error,
    },
    /// The response was not HTTP/1.x as expected.
    Malformed { socket: PathBuf, what: String },
    /// The body was larger than allowed (or than the memory budget leaves).
    TooLarge { target: String, limit: usize },
    /// The engine answered with an error status; the start of its message.
    Status {
        target: String,
        status: u16,
        message: String,
    },
    /// No complete answer within the request timeout.
    Timeout { target: String },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Io { socket, error } => write!(f, "{}: {error}", socket.display()),
            HttpError::Malformed { socket, what } => {
                write!(f, "{}: bad HTTP response: {what}", socket.display())
            }
            HttpError::TooLarge { target, limit } => {
                write!(f, "GET {target}: response larger than {limit} bytes")
            }
            HttpError::Status {
                target,
                status,
                message,
            } => write!(f, "GET {target}: status {status}: {message}"),
            HttpError::Timeout { target } => write!(f, "GET {target}: no answer in time"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A response whose body was read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An open response whose body is read as it arrives.
pub struct Stream {
    socket: PathBuf,
    conn: UnixStream,
    decoder: BodyDecoder,
    buf: Box<[u8; READ_BUF]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Stream {
    /// Sends `GET target` on a new connection to `socket` and reads the response head.
    pub async fn open(socket: &Path, target: &str) -> Result<(u16, Stream), HttpError> {
        let io = |error| HttpError::Io {
            socket: socket.to_path_buf(),
            error,
        };
        let mut conn = UnixStream::connect(socket).await.map_err(io)?;
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: engine\r\nUser-Agent: gatewatch\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.map_err(io)?;
        let mut buf = Box::new([0u8; READ_BUF]);
        let mut head: Vec<u8> = Vec::new();
        loop {
            let n = conn.read(&mut buf[..]).await.map_err(io)?;
            if n == 0 {
                return Err(malformed(socket, "connection closed in the response head"));
            }
            let before = head.len();
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&head, b"\r\n\r\n") {
                let (status, framing) =
                    parse_head(&head[..end]).map_err(|what| malformed(socket, &what))?;
                // What followed the head in this read is the body's start.
                let body_start = end + 4 - before;
                let stream = Stream {
                    socket: socket.to_path_buf(),
                    conn,
                    decoder: BodyDecoder::new(framing),
                    buf,
                    start: body_start,
                    end: n,
                    eof: false,
                };
                return Ok((status, stream));
            }
            if head.len() > MAX_HEAD {
                return Err(malformed(socket, "response head too long"));
            }
        }
    }

    /// Reads more bytes from the connection (cancel-safe: nothing read is lost if the future is
    /// dropped). Returns false at the end of the connection.
    pub async fn fill(&mut self) -> Result<bool, HttpError> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        let n = self
            .conn
            .read(&mut self.buf[..])
            .await
            .map_err(|error| HttpError::Io {
                socket: self.socket.clone(),
                error,
            })?;
        self.start = 0;
        self.end = n;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next decoded body bytes from what was read (`None`: read more with [`Stream::fill`]).
    pub fn decoded(&mut self) -> Result<Option<&[u8]>, HttpError> {
        while self.start < self.end {
            let (used, data) = self
                .decoder
                .decode(&self.buf[self.start..self.end])
                .map_err(|e: BodyError| malformed(&self.socket, &e.to_string()))?;
            let (from, to) = (self.start + data.start, self.start + data.end);
            self.start += used;
            if to > from {
                return Ok(Some(&self.buf[from..to]));
            }
        }
        Ok(None)
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done() || (self.eof && self.decoder.ends_at_close())
    }
}

/// `GET target`, the whole body read up to `max_body` bytes (reserved from `memory`), within
/// `timeout`. A status other than 2xx is an error carrying the engine's message.
pub async fn get(
    socket: &Path,
    target: &str,
    max_body: usize,
    memory: &MemoryAccount,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let work = async {
        let (status, mut stream) = Stream::open(socket, target).await?;
        let mut body: Vec<u8> = Vec::new();
        loop {
            while let Some(data) = stream.decoded()? {
                let needed = body.len() + data.len();
                // Grow by doubling (not by each read), never past the maximum.
                let grow_to = needed.max(body.capacity() * 2).clamp(1024, max_body);
                let additional = grow_to.max(needed) - body.len();
                if needed > max_body || memory.try_reserve(&mut body, additional).is_err() {
                    return Err(HttpError::TooLarge {
                        target: target.to_string(),
                        limit: max_body,
                    });
                }
                body.extend_from_slice(data);
            }
            if stream.is_done() {
                break;
            }
            if !stream.fill().await? {
                if stream.is_done() {
                    break;
                }
                return Err(malformed(socket, "connection closed in the body"));
            }
        }
        if !(200..300).contains(&status) {
            let message = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(HttpError::Status {
                target: target.to_string(),
                status,
                message,
            });
        }
        Ok(Response { status, body })
    };
    let expired = async {
        async_io::Timer::after(timeout).await;
        Err(HttpError::Timeout {
            target: target.to_string(),
        })
    };
    work.or(expired).await
}

fn malformed(socket: &Path, what: &str) -> HttpError {
    HttpError::Malformed {
        socket: socket.to_path_buf(),
        what: what.to_string(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the status line and the headers that say how the body is framed.
fn parse_head(head: &[u8]) -> Result<(u16, Framing), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:.80}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {status_line:.80}"))?;
    let mut framing = Framing::UntilClose;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            } else {
                return Err(format!("unsupported transfer encoding {value:.40}"));
            }
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let length = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:.40}"))?;
            framing = Framing::Length(length);
        }
    }
    if status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok((status, framing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_give_the_status_and_the_framing() {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked";
        assert_eq!(parse_head(head), Ok((200, Framing::Chunked)));
        let head = b"HTTP/1.1 404 Not Found\r\ncontent-length: 12";
        assert_eq!(parse_head(head), Ok((404, Framing::Length(12))));
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
    }
}
