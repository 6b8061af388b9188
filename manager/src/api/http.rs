//! HTTP/1.1 for the API, just what it needs: one bounded request at a time read from a (TLS)
//! stream, responses with a `Content-Length`, connections kept alive between requests.
//!
//! Bounds, so that no client can make the manager hold much memory or wait forever: the request
//! line and headers fit in [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers, a body in
//! [`MAX_BODY`] bytes (by `Content-Length`; chunked bodies are refused), a request must arrive
//! within the I/O timeout once its first byte did, and an idle kept-alive connection is closed.
//! This file knows nothing about JSON or the API's routes.

use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conn::timeout;

/// Largest request line plus headers.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Largest request body.
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// Most headers in one request.
pub(crate) const MAX_HEADERS: usize = 64;
/// Size of one read from the stream.
const READ_CHUNK: usize = 8 * 1024;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// `GET`, `POST`, … as sent.
    pub method: String,
    /// The path, without the query string, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), empty when there is none.
    pub query: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first header of that (lower-case) name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Headers besides `Content-Type`, `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Why no request was read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection between requests, or stayed idle too long.
    Closed,
    /// The socket or TLS layer failed, or the client stopped in the middle of a request.
    Io(std::io::Error),
    /// The request is unacceptable: answer with this status and detail, then close.
    Bad { status: u16, detail: String },
}

fn bad(status: u16, detail: impl Into<String>) -> ReadError {
    ReadError::Bad {
        status,
        detail: detail.into(),
    }
}

/// An HTTP connection over `stream`.
pub(crate) struct HttpConn<S> {
    stream: S,
    buf: Vec<u8>,
    io_timeout: Duration,
    idle_timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpConn<S> {
    /// A connection whose requests must arrive within `io_timeout` once started, and which is
    /// closed after `idle_timeout` without a new request.
    pub(crate) fn new(stream: S, io_timeout: Duration, idle_timeout: Duration) -> Self {
        HttpConn {
            stream,
            buf: Vec::new(),
            io_timeout,
            idle_timeout,
        }
    }

    /// Reads more bytes into the buffer before `deadline` (or within the idle timeout when there
    /// is none); false at end of stream.
    async fn fill(&mut self, deadline: Option<Instant>) -> Result<bool, ReadError> {
        let mut chunk = [0u8; READ_CHUNK];
        let limit = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => self.idle_timeout,
        };
        match timeout(limit, self.stream.read(&mut chunk)).await {
            None if deadline.is_none() => Err(ReadError::Closed),
            None => Err(bad(408, "the request did not arrive in time")),
            Some(Ok(0)) => Ok(false),
            Some(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Some(Err(e)) => Err(ReadError::Io(e)),
        }
    }

    /// Reads the next request.
    pub(crate) async fn read_request(&mut self) -> Result<Request, ReadError> {
        let mut deadline = (!self.buf.is_empty()).then(|| Instant::now() + self.io_timeout);
        let head_len = loop {
            if let Some(pos) = find_head_end(&self.buf) {
                break pos;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(bad(
                    431,
                    format!("request head larger than {MAX_HEAD} bytes"),
                ));
            }
            if !self.fill(deadline).await? {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
            deadline.get_or_insert_with(|| Instant::now() + self.io_timeout);
        };
        if head_len > MAX_HEAD {
            return Err(bad(
                431,
                format!("request head larger than {MAX_HEAD} bytes"),
            ));
        }
        let mut request = parse_head(&self.buf[..head_len])?;
        self.buf.drain(..head_len);
        let length = body_length(&request)?;
        if length > 0
            && request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            self.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(ReadError::Io)?;
        }
        let deadline = deadline.unwrap_or_else(|| Instant::now() + self.io_timeout);
        while self.buf.len() < length {
            if !self.fill(Some(deadline)).await? {
                return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        request.body = self.buf.drain(..length).collect();
        Ok(request)
    }

    /// Writes a response; `keep_alive` false announces that the connection closes.
    pub(crate) async fn write_response(
        &mut self,
        response: &Response,
        keep_alive: bool,
    ) -> std::io::Result<()> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        )
        .into_bytes();
        for (name, value) in &response.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&response.body);
        self.write_raw(&out).await
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = &mut self.stream;
        let write = async move {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        timeout(self.io_timeout, write)
            .await
            .unwrap_or_else(|| Err(std::io::ErrorKind::TimedOut.into()))
    }

    /// Closes the stream (TLS close_notify), best effort and bounded.
    pub(crate) async fn close(&mut self) {
        let _ = timeout(self.io_timeout, self.stream.close()).await;
    }
}

/// Length of the head including its blank line, once it is all in `buf`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad(400, "incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(bad(431, format!("more than {MAX_HEADERS} headers")))
        }
        Err(e) => return Err(bad(400, format!("malformed request: {e}"))),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(bad(400, "malformed request line"));
    };
    if !target.starts_with('/') {
        return Err(bad(400, "the request target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut list = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| bad(400, format!("header {} is not UTF-8", h.name)))?;
        list.push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let connection = |token: &str| {
        list.iter()
            .filter(|(n, _)| n == "connection")
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let keep_alive = match version {
        0 => connection("keep-alive"),
        _ => !connection("close"),
    };
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: list,
        body: Vec::new(),
        keep_alive,
    })
}

fn body_length(request: &Request) -> Result<usize, ReadError> {
    if request.header("transfer-encoding").is_some() {
        return Err(bad(
            411,
            "chunked request bodies are not accepted: send Content-Length",
        ));
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>());
    let length = match lengths.next() {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(bad(400, "Content-Length is not a number")),
    };
    if lengths.any(|other| other != Ok(length)) {
        return Err(bad(400, "conflicting Content-Length headers"));
    }
    if length > MAX_BODY {
        return Err(bad(
            413,
            format!("request body larger than {MAX_BODY} bytes"),
        ));
    }
    Ok(length)
}

/// Reason phrase of the status codes the API uses.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server-side connection and the client's blocking socket, on loopback.
    fn pair(io: Duration, idle: Duration) -> (HttpConn<async_net::TcpStream>, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let server = async_net::TcpStream::try_from(server).unwrap();
        (HttpConn::new(server, io, idle), client)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn pipelined_requests_are_read_in_order_with_their_bodies() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        client
            .write_all(b"POST /agents?pretty=true HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        smol::block_on(async {
            let a = conn.read_request().await.unwrap();
            assert_eq!(
                (a.method.as_str(), a.path.as_str(), a.query.as_str()),
                ("POST", "/agents", "pretty=true")
            );
            assert_eq!((a.body.as_slice(), a.keep_alive), (&b"abcd"[..], true));
            assert_eq!(a.header("host"), Some("x"));
            let b = conn.read_request().await.unwrap();
            assert_eq!(
                (b.method.as_str(), b.body.len(), b.keep_alive),
                ("GET", 0, false)
            );
        });
    }

    #[test]
    fn http_1_0_closes_unless_asked_to_keep_alive() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        client
            .write_all(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        smol::block_on(async {
            assert!(!conn.read_request().await.unwrap().keep_alive);
            assert!(conn.read_request().await.unwrap().keep_alive);
        });
    }

    #[test]
    fn oversized_head_is_refused_with_431() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        std::thread::spawn(move || {
            let _ = client.write_all(big.as_bytes());
        });
        let err = smol::block_on(conn.read_request()).unwrap_err();
        assert!(matches!(err, ReadError::Bad { status: 431, .. }), "{err:?}");
    }

    #[test]
    fn oversized_body_is_refused_with_413_before_it_is_read() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        let head = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        client.write_all(head.as_bytes()).unwrap();
        let err = smol::block_on(conn.read_request()).unwrap_err();
        assert!(matches!(err, ReadError::Bad { status: 413, .. }), "{err:?}");
    }

    #[test]
    fn chunked_body_is_refused() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        client
            .write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .unwrap();
        let err = smol::block_on(conn.read_request()).unwrap_err();
        assert!(matches!(err, ReadError::Bad { status: 411, .. }), "{err:?}");
    }

    #[test]
    fn request_that_stalls_midway_times_out_with_408() {
        let (mut conn, mut client) = pair(Duration::from_millis(300), secs(5));
        client.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
        let started = Instant::now();
        let err = smol::block_on(conn.read_request()).unwrap_err();
        assert!(matches!(err, ReadError::Bad { status: 408, .. }), "{err:?}");
        assert!(started.elapsed() < secs(3));
    }

    #[test]
    fn idle_connection_is_closed_quietly() {
        let (mut conn, _client) = pair(secs(5), Duration::from_millis(200));
        let err = smol::block_on(conn.read_request()).unwrap_err();
        assert!(matches!(err, ReadError::Closed), "{err:?}");
    }

    #[test]
    fn response_carries_length_connection_and_extra_headers() {
        let (mut conn, mut client) = pair(secs(5), secs(5));
        let response = Response {
            status: 200,
            content_type: "text/plain",
            headers: vec![("Deprecated", "true".into())],
            body: b"tok".to_vec(),
        };
        smol::block_on(conn.write_response(&response, false)).unwrap();
        drop(conn);
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\nDeprecated: true\r\n\r\ntok"
        );
    }
}
