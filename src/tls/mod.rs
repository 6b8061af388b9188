//! The agent's TLS 1.3 client (embedded-tls over `async_net::TcpStream`), always verifying.
//!
//! A manager is trusted only through the CA pinned at enrollment: [`Verification::PinnedCa`]
//! accepts a single certificate signed directly by that CA, valid now, whose name is the exact
//! address dialled ([`verify::PinnedCaVerifier`]). The only other mode,
//! [`Verification::TrustOnFirstUse`], exists for enrollment without a configured CA and has to be
//! asked for by name; its caller warns the operator.
//!
//! ```no_run
//! # async fn demo(ca_der: Vec<u8>) -> Result<(), gatewatch::tls::TlsFailure> {
//! use gatewatch::tls::{connect, TlsBuffers, TlsClientConfig, Verification};
//! let cfg = TlsClientConfig::new(Verification::PinnedCa { ca_der });
//! let mut buffers = TlsBuffers::new();
//! let mut session = connect("manager.example", 1514, &cfg, &mut buffers).await?;
//! session.close().await;
//! # Ok(()) }
//! ```
//!
//! Name resolution: IP literals are parsed directly. Host names go through `async_net::resolve`,
//! which uses the `blocking` crate's short-lived thread pool (its threads exit when idle); this
//! is the only place the agent may start such a thread, and only when a manager is given by name.

pub mod cert;
mod framed;
mod provider;
mod suite;
pub mod verify;

pub use framed::{write_frame, FrameReader};
pub use verify::{CertRejection, PinnedCaVerifier};

use embedded_io_adapters::futures_03::FromFutures;
use embedded_tls::{TlsConfig, TlsConnection, TlsContext, TlsError, TlsReader, TlsWriter};
use futures_lite::FutureExt;
use gatewatch_proto::frame::FrameError;
use provider::AgentProvider;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
pub use suite::LinkSuite;

/// Size of the record read buffer: the largest TLS record (16 KiB plaintext + overhead).
pub const READ_BUFFER_BYTES: usize = 16_640;
/// Size of the record write buffer; larger writes are split into several records.
pub const WRITE_BUFFER_BYTES: usize = 8_192;

/// The transport under TLS: a TCP stream that can be cloned for [`TlsSession::split`].
pub type Socket = FromFutures<async_net::TcpStream>;
/// The read half of a split session.
pub type SessionReader<'s> = TlsReader<'s, Socket, LinkSuite>;
/// The write half of a split session.
pub type SessionWriter<'s> = TlsWriter<'s, Socket, LinkSuite>;

/// How the manager's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Accept only a single certificate signed by this CA (DER), valid now, for the address
    /// dialled.
    PinnedCa { ca_der: Vec<u8> },
    /// Accept any server certificate. Only for enrolling without a configured CA: the caller must
    /// warn loudly, and pin what the manager returns.
    TrustOnFirstUse,
}

/// A client certificate and its P-256 key, presented when the server asks for one.
#[derive(Clone)]
pub struct ClientIdentity {
    /// DER of the certificate.
    pub cert_der: Vec<u8>,
    /// The certificate's private key.
    pub key: p256::SecretKey,
}

impl ClientIdentity {
    /// Loads a certificate (PEM) and its key (PEM, PKCS#8 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, cert::PemError> {
        Ok(ClientIdentity {
            cert_der: cert::read_cert_pem(cert)?,
            key: cert::read_key_pem(key)?,
        })
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_der", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// What [`connect`] needs.
#[derive(Debug, Clone)]
pub struct TlsClientConfig {
    /// How the server certificate is checked.
    pub verification: Verification,
    /// Client certificate, if any.
    pub identity: Option<ClientIdentity>,
    /// Bound on name resolution + TCP connect + handshake. Default 10 s.
    pub timeout: Duration,
}

impl TlsClientConfig {
    /// A configuration without client certificate and with the default timeout.
    pub fn new(verification: Verification) -> Self {
        TlsClientConfig {
            verification,
            identity: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a TLS session could not be opened or used.
#[derive(Debug)]
pub enum TlsFailure {
    /// The host name did not resolve.
    Resolve { host: String, error: std::io::Error },
    /// No TCP connection could be made.
    Connect { peer: String, error: std::io::Error },
    /// The connection or handshake took longer than the configured timeout.
    Timeout { peer: String },
    /// The server's certificate was refused.
    Rejected { peer: String, reason: CertRejection },
    /// The TLS handshake failed for another reason.
    Handshake { peer: String, error: TlsError },
    /// The server closed the connection.
    Closed { peer: String },
    /// Reading or writing failed after the handshake.
    Transport { peer: String, error: TlsError },
    /// The server sent a frame that is not acceptable (or ours was too large to send).
    Frame { peer: String, error: FrameError },
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFailure::Resolve { host, error } => write!(f, "cannot resolve {host}: {error}"),
            TlsFailure::Connect { peer, error } => write!(f, "cannot connect to {peer}: {error}"),
            TlsFailure::Timeout { peer } => write!(f, "connecting to {peer} timed out"),
            TlsFailure::Rejected { peer, reason } => {
                write!(f, "refused the certificate of {peer}: {reason}")
            }
            TlsFailure::Handshake { peer, error } => {
                write!(f, "TLS handshake with {peer} failed: {error:?}")
            }
            TlsFailure::Closed { peer } => write!(f, "{peer} closed the connection"),
            TlsFailure::Transport { peer, error } => {
                write!(f, "connection to {peer} failed: {error:?}")
            }
            TlsFailure::Frame { peer, error } => write!(f, "bad frame from or to {peer}: {error}"),
        }
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    /// Classifies an I/O error on an open session.
    pub(crate) fn transport(peer: &str, error: TlsError) -> Self {
        match error {
            TlsError::ConnectionClosed | TlsError::IoError => TlsFailure::Closed {
                peer: peer.to_string(),
            },
            error => TlsFailure::Transport {
                peer: peer.to_string(),
                error,
            },
        }
    }
}

/// The record buffers of one session, allocated once and reused across reconnects.
pub struct TlsBuffers {
    read: Box<[u8]>,
    write: Box<[u8]>,
}

impl TlsBuffers {
    /// Allocates [`READ_BUFFER_BYTES`] + [`WRITE_BUFFER_BYTES`].
    pub fn new() -> Self {
        TlsBuffers {
            read: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            write: vec![0; WRITE_BUFFER_BYTES].into_boxed_slice(),
        }
    }
}

impl Default for TlsBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// An open TLS session with a manager.
pub struct TlsSession<'b> {
    conn: TlsConnection<'b, Socket, LinkSuite>,
    peer: String,
}

impl<'b> TlsSession<'b> {
    /// `address:port` of the server, as dialled.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends one frame holding `msg`.
    pub async fn send<T: serde::Serialize>(
        &mut self,
        msg: &T,
        max_frame: usize,
    ) -> Result<(), TlsFailure> {
        write_frame(&mut self.conn, msg, max_frame, &self.peer)
            .await
            .map(|_| ())
    }

    /// Receives the body of one frame.
    pub async fn recv(&mut self, reader: &mut FrameReader) -> Result<Vec<u8>, TlsFailure> {
        reader.next(&mut self.conn, &self.peer).await
    }

    /// Splits the session so that reading and writing can proceed concurrently.
    pub fn split(&mut self) -> (SessionReader<'_>, SessionWriter<'_>) {
        self.conn.split()
    }

    /// Sends close_notify and closes the connection. Errors are only logged: the peer may be gone.
    pub async fn close(self) {
        if let Err((_, e)) = self.conn.close().await {
            log::debug!("closing the TLS session with {}: {e:?}", self.peer);
        }
    }
}

/// Opens a TLS session with `address:port`. `address` is a host name or an IP literal, and is
/// also the name the certificate must carry.
pub async fn connect<'b>(
    address: &str,
    port: u16,
    cfg: &TlsClientConfig,
    buffers: &'b mut TlsBuffers,
) -> Result<TlsSession<'b>, TlsFailure> {
    let peer = format!("{address}:{port}");
    let timeout = {
        let peer = peer.clone();
        async move {
            async_io::Timer::after(cfg.timeout).await;
            Err(TlsFailure::Timeout { peer })
        }
    };
    open(address, port, cfg, buffers, peer).or(timeout).await
}

async fn open<'b>(
    address: &str,
    port: u16,
    cfg: &TlsClientConfig,
    buffers: &'b mut TlsBuffers,
    peer: String,
) -> Result<TlsSession<'b>, TlsFailure> {
    let literal = parse_ip(address);
    let stream = tcp_connect(address, port, literal, &peer).await?;
    let mut provider = AgentProvider::new(cfg, address).map_err(|reason| TlsFailure::Rejected {
        peer: peer.clone(),
        reason,
    })?;
    let mut config = TlsConfig::new();
    if literal.is_none() {
        // SNI carries host names only (RFC 6066); the certificate name is checked either way.
        config = config.with_server_name(address);
    }
    let mut conn = TlsConnection::new(
        FromFutures::new(stream),
        &mut buffers.read,
        &mut buffers.write,
    );
    match conn.open(TlsContext::new(&config, &mut provider)).await {
        Ok(()) => Ok(TlsSession { conn, peer }),
        Err(error) => Err(match provider.take_rejection() {
            Some(reason) => TlsFailure::Rejected { peer, reason },
            None => TlsFailure::Handshake { peer, error },
        }),
    }
}

/// An IP literal (`10.0.0.1`, `::1`, `[::1]`), or `None` for a host name.
fn parse_ip(address: &str) -> Option<IpAddr> {
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    bare.parse().ok()
}

async fn tcp_connect(
    address: &str,
    port: u16,
    literal: Option<IpAddr>,
    peer: &str,
) -> Result<async_net::TcpStream, TlsFailure> {
    let candidates: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => async_net::resolve((address, port))
            .await
            .map_err(|error| TlsFailure::Resolve {
                host: address.to_string(),
                error,
            })?,
    };
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the name resolved to no address",
    );
    for candidate in candidates {
        match async_net::TcpStream::connect(candidate).await {
            Ok(stream) => {
                // Frames are flushed explicitly; Nagle would only delay acks and keep-alives.
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY on {peer}: {e}");
                }
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(TlsFailure::Connect {
        peer: peer.to_string(),
        error: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_are_recognised_with_or_without_brackets() {
        assert_eq!(parse_ip("127.0.0.1"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(parse_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("manager.local"), None);
    }

    #[test]
    fn refused_tcp_connection_is_a_connect_failure_naming_the_peer() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = TlsClientConfig::new(Verification::TrustOnFirstUse);
        let mut bufs = TlsBuffers::new();
        let err = smol::block_on(connect("127.0.0.1", port, &cfg, &mut bufs))
            .err()
            .unwrap();
        assert!(matches!(err, TlsFailure::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    }
}
