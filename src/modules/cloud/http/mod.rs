//! A small HTTP/1.1 client for the cloud APIs, on the agent's one-thread executor.
//!
//! One request per connection (`Connection: close`): polls are minutes apart, so keeping
//! connections buys nothing and costs memory. TLS is rustls with a full webpki verifier over the
//! configured CA bundle (the system's by default); plain http only reaches loopback ([`Url`]).
//! Every response is bounded: the head by [`wire::MAX_HEAD`], the body by the caller's limit and
//! by the module's memory budget ([`MemoryAccount::try_reserve`]), the exchange by a timeout.
//!
//! Host names resolve through `async-net`, whose resolver runs `getaddrinfo` on a short-lived
//! `blocking` thread (as the agent's own link does); IP literals connect directly.

mod tls;
pub mod url;
pub mod wire;

use crate::runtime::MemoryAccount;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
pub use url::Url;
use wire::{ChunkScan, Framing, Head};

/// A request; `target` is the path and query (already encoded), the base path of the endpoint
/// is not added.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// Path and query, e.g. `/bucket?list-type=2`.
    pub target: String,
    /// Headers besides `Host`, `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// Body (may be empty).
    pub body: &'a [u8],
}

/// A response with its whole body.
#[derive(Debug)]
pub struct Response {
    /// Status code and headers.
    pub head: Head,
    /// The body (un-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy), cut to `max` characters, for error messages.
    pub fn snippet(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(max)
            .collect()
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum HttpError {
    /// Connecting, TLS or I/O failed.
    Io { peer: String, error: std::io::Error },
    /// The peer's answer was not acceptable HTTP.
    Protocol { peer: String, reason: String },
    /// The body is larger than the caller's limit.
    TooLarge { peer: String, limit: usize },
    /// The body would not fit in the module's memory budget.
    OverBudget { peer: String, wanted: usize },
    /// The exchange took longer than the timeout.
    Timeout { peer: String, after: Duration },
    /// The CA bundle could not be loaded.
    Tls(String),
    /// The request could not be made (e.g. a credential that does not decode).
    Request(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Io { peer, error } => write!(f, "{peer}: {error}"),
            HttpError::Protocol { peer, reason } => write!(f, "{peer}: {reason}"),
            HttpError::TooLarge { peer, limit } => {
                write!(f, "{peer}: response body over the {limit}-byte limit")
            }
            HttpError::OverBudget { peer, wanted } => write!(
                f,
                "{peer}: a {wanted}-byte response body does not fit in the memory budget"
            ),
            HttpError::Timeout { peer, after } => {
                write!(f, "{peer}: no complete answer in {after:?}")
            }
            HttpError::Tls(reason) | HttpError::Request(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for HttpError {}

/// The client: TLS settings, limits and the memory account bodies are charged to.
pub struct HttpClient {
    ca_file: PathBuf,
    tls: Option<Arc<rustls::ClientConfig>>,
    memory: MemoryAccount,
    timeout: Duration,
}

impl HttpClient {
    /// A client trusting the CAs in `ca_file` (read at the first https request).
    pub fn new(ca_file: PathBuf, memory: MemoryAccount, timeout: Duration) -> Self {
        HttpClient {
            ca_file,
            tls: None,
            memory,
            timeout,
        }
    }

    /// Sends `request` to `url`'s host and reads the whole response, refusing a body over
    /// `max_body` bytes.
    pub async fn send(
        &mut self,
        url: &Url,
        request: &Request<'_>,
        max_body: usize,
    ) -> Result<Response, HttpError> {
        let peer = url.origin();
        let tls = if url.https {
            if self.tls.is_none() {
                self.tls = Some(tls::client_config(&self.ca_file).map_err(HttpError::Tls)?);
            }
            self.tls.clone()
        } else {
            None
        };
        let exchange = exchange(url, request, max_body, tls, &self.memory, &peer);
        let after = self.timeout;
        let timer = async {
            async_io::Timer::after(after).await;
            Err(HttpError::Timeout {
                peer: peer.clone(),
                after,
            })
        };
        futures_lite::future::or(exchange, timer).await
    }
}

async fn exchange(
    url: &Url,
    request: &Request<'_>,
    max_body: usize,
    tls: Option<Arc<rustls::ClientConfig>>,
    memory: &MemoryAccount,
    peer: &str,
) -> Result<Response, HttpError> {
    let io = |error| HttpError::Io {
        peer: peer.to_string(),
        error,
    };
    let tcp = connect(url).await.map_err(io)?;
    let mut stream = match tls {
        Some(config) => Stream::Tls(Box::new(
            tls::handshake(config, url, tcp).await.map_err(io)?,
        )),
        None => Stream::Plain(tcp),
    };
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method,
        request.target,
        url.host_header(),
        request.body.len()
    );
    for (name, value) in &request.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(request.body).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    read_response(&mut stream, request.method, max_body, memory, peer).await
}

async fn connect(url: &Url) -> std::io::Result<async_net::TcpStream> {
    let candidates: Vec<SocketAddr> = match url.ip() {
        Some(ip) => vec![SocketAddr::new(ip, url.port)],
        None => async_net::resolve((url.host.as_str(), url.port)).await?,
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host");
    for candidate in candidates {
        match async_net::TcpStream::connect(candidate).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Reads a response: the head, then the body as its framing says, within `max_body`.
async fn read_response(
    stream: &mut Stream,
    method: &str,
    max_body: usize,
    memory: &MemoryAccount,
    peer: &str,
) -> Result<Response, HttpError> {
    let protocol = |reason: String| HttpError::Protocol {
        peer: peer.to_string(),
        reason,
    };
    let mut chunk = [0u8; 8192];
    let mut buf: Vec<u8> = Vec::new();
    let (head, body_at) = loop {
        if let Some(found) = wire::parse_head(&buf).map_err(protocol)? {
            break found;
        }
        let n = read_some(stream, &mut chunk, peer).await?;
        if n == 0 {
            return Err(protocol(
                "connection closed before the response head".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    // Interim 1xx answers are not expected: requests never send `Expect`.
    let framing = wire::framing(&head, method).map_err(protocol)?;
    buf.drain(..body_at);
    let mut body = buf;
    // Chunk framing costs a few bytes per chunk on top of the payload.
    let raw_limit = max_body.saturating_add(max_body / 8).saturating_add(4096);
    if let Framing::Length(len) = framing {
        if len > max_body {
            return Err(HttpError::TooLarge {
                peer: peer.to_string(),
                limit: max_body,
            });
        }
        let missing = len.saturating_sub(body.len());
        reserve(memory, &mut body, missing, missing, peer)?;
    }
    let mut scan = ChunkScan::default();
    loop {
        let complete = match framing {
            Framing::Empty => true,
            Framing::Length(len) => body.len() >= len,
            Framing::Chunked => {
                scan.advance(&body).map_err(protocol)?;
                scan.done
            }
            Framing::Close => false,
        };
        if complete {
            break;
        }
        let n = read_some(stream, &mut chunk, peer).await?;
        if n == 0 {
            if framing == Framing::Close {
                break;
            }
            return Err(protocol(
                "connection closed inside the response body".into(),
            ));
        }
        if body.len() + n > raw_limit || scan.payload > max_body {
            return Err(HttpError::TooLarge {
                peer: peer.to_string(),
                limit: max_body,
            });
        }
        let room = raw_limit - body.len();
        reserve(memory, &mut body, n, room, peer)?;
        body.extend_from_slice(&chunk[..n]);
    }
    match framing {
        Framing::Empty => body.clear(),
        Framing::Length(len) => body.truncate(len),
        Framing::Chunked => wire::dechunk(&mut body).map_err(protocol)?,
        Framing::Close => {}
    }
    if body.len() > max_body {
        return Err(HttpError::TooLarge {
            peer: peer.to_string(),
            limit: max_body,
        });
    }
    Ok(Response { head, body })
}

/// Grows `body` by at least `additional` bytes within the budget, doubling (up to `room` more
/// bytes) so that reading stays linear.
fn reserve(
    memory: &MemoryAccount,
    body: &mut Vec<u8>,
    additional: usize,
    room: usize,
    peer: &str,
) -> Result<(), HttpError> {
    if body.capacity() - body.len() >= additional {
        return Ok(());
    }
    let grow = body.capacity().max(8192).min(room).max(additional);
    memory
        .try_reserve(body, grow)
        .or_else(|_| memory.try_reserve(body, additional))
        .map_err(|refused| HttpError::OverBudget {
            peer: peer.to_string(),
            wanted: refused.wanted,
        })
}

/// A read that treats a TLS peer closing without `close_notify` as the end of the stream:
/// the framing checks above decide whether the body was complete.
async fn read_some(stream: &mut Stream, chunk: &mut [u8], peer: &str) -> Result<usize, HttpError> {
    match stream.read(chunk).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(error) => Err(HttpError::Io {
            peer: peer.to_string(),
            error,
        }),
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(async_net::TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<async_net::TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;
    use std::io::{Read, Write};

    /// A loopback server answering one connection with `answer` (after reading the request).
    fn serve(answer: &'static [u8]) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer);
                // Keep the connection open a moment, as a slow server would.
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        port
    }

    fn get(port: u16, max_body: usize, timeout: Duration) -> Result<Response, HttpError> {
        let memory = MemoryAccount::new(account_for("test-cloud-http").unwrap(), 1 << 24);
        let mut client = HttpClient::new(PathBuf::from("/nonexistent"), memory, timeout);
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let request = Request {
            method: "GET",
            target: "/".into(),
            headers: Vec::new(),
            body: &[],
        };
        smol::block_on(client.send(&url, &request, max_body))
    }

    #[test]
    fn chunked_body_is_read_whole_without_waiting_for_the_close() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let response = get(serve(answer), 100, Duration::from_secs(5)).unwrap();
        assert_eq!(response.body, b"abcde");
    }

    #[test]
    fn body_over_the_limit_is_refused() {
        let stated = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        let error = get(serve(stated), 100, Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(error, HttpError::TooLarge { limit: 100, .. }),
            "{error}"
        );
        let unstated: &[u8] = b"HTTP/1.1 200 OK\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        let error = get(serve(unstated), 10, Duration::from_secs(5)).unwrap_err();
        assert!(matches!(error, HttpError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn a_server_that_never_finishes_times_out() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        let error = get(serve(answer), 100, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(error, HttpError::Timeout { .. }), "{error}");
    }
}
