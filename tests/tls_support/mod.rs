//! Test support shared by the `tls_*` and `link_*` integration tests: a throw-away PKI made with
//! rcgen, and a real rustls TLS 1.3 server on loopback that runs a handler per connection.
#![allow(dead_code)] // each test file uses a different part of this module

use gatewatch_proto::frame::{self, FrameDecoder};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// A certificate authority whose key can sign more certificates.
pub struct Ca {
    pub cert_der: Vec<u8>,
    pub issuer: Issuer<'static, KeyPair>,
}

/// A certificate, its key, and an issuer built on both (to sign with the leaf's key).
pub struct Leaf {
    pub cert_der: Vec<u8>,
    pub key_pkcs8: Vec<u8>,
    pub issuer: Issuer<'static, KeyPair>,
}

/// A CA named `name` (the name goes into its CN).
pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert_der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

/// Parameters for a server certificate: `name` as CN and, for host names, as DNS SAN (embedded-tls
/// matches IP literals only through the CN).
pub fn server_params(name: &str) -> CertificateParams {
    let sans = if name.parse::<std::net::IpAddr>().is_ok() {
        vec![]
    } else {
        vec![name.to_string()]
    };
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

/// Signs `params` with `issuer` for a new key.
pub fn leaf(params: CertificateParams, issuer: &Issuer<'_, KeyPair>) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let key_pkcs8 = key.serialize_der();
    Leaf {
        cert_der: cert.der().to_vec(),
        key_pkcs8,
        issuer: Issuer::new(params, key),
    }
}

/// A self-signed certificate for `params`.
pub fn self_signed(params: CertificateParams) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let key_pkcs8 = key.serialize_der();
    Leaf {
        cert_der: cert.der().to_vec(),
        key_pkcs8,
        issuer: Issuer::new(params, key),
    }
}

/// The TLS server stream handed to a connection handler.
pub type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// What happened on one accepted connection.
#[derive(Debug)]
pub struct Outcome {
    /// Whether the TLS handshake completed (the client sent its Finished).
    pub handshake_completed: bool,
    /// The handshake error, if it failed.
    pub error: Option<String>,
    /// What the handler returned (for the pinning tests: the plaintext it read).
    pub data: Vec<u8>,
    /// The client certificate presented, if any.
    pub client_cert: Option<Vec<u8>>,
}

/// A rustls server on 127.0.0.1 that presents `chain` (signed with `key_pkcs8`).
pub struct TestServer {
    pub port: u16,
    pub outcomes: mpsc::Receiver<Outcome>,
}

impl TestServer {
    /// The outcome of the next connection (fails the test after 10 s).
    pub fn outcome(&self) -> Outcome {
        self.outcomes
            .recv_timeout(Duration::from_secs(10))
            .expect("the test server reported no connection")
    }
}

/// Starts a server that accepts `connections` connections, one after the other, and runs
/// `handler` on each whose handshake completes.
pub fn serve<H>(
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
    connections: usize,
    handler: H,
) -> TestServer
where
    H: FnMut(usize, &mut Stream) -> Vec<u8> + Send + 'static,
{
    serve_with_client_ca(chain, key_pkcs8, None, connections, handler)
}

/// Like [`serve`], and when `client_ca` is given, requires a client certificate signed by it.
pub fn serve_with_client_ca<H>(
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    connections: usize,
    handler: H,
) -> TestServer
where
    H: FnMut(usize, &mut Stream) -> Vec<u8> + Send + 'static,
{
    serve_at(
        "127.0.0.1:0",
        chain,
        key_pkcs8,
        client_ca,
        connections,
        handler,
    )
}

/// Like [`serve_with_client_ca`], listening on `bind` (e.g. `127.0.0.2:0`).
pub fn serve_at<H>(
    bind: &str,
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    connections: usize,
    mut handler: H,
) -> TestServer
where
    H: FnMut(usize, &mut Stream) -> Vec<u8> + Send + 'static,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca)).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(
            chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8)),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, outcomes) = mpsc::channel();
    std::thread::spawn(move || {
        for index in 0..connections {
            let Ok((sock, _)) = listener.accept() else {
                return;
            };
            let outcome = run_connection(&config, sock, |s| handler(index, s));
            if tx.send(outcome).is_err() {
                return;
            }
        }
    });
    TestServer { port, outcomes }
}

fn run_connection(
    config: &Arc<rustls::ServerConfig>,
    mut sock: TcpStream,
    handler: impl FnOnce(&mut Stream) -> Vec<u8>,
) -> Outcome {
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) => return failed("eof".into()),
            Ok(_) => {}
            Err(e) => return failed(e.to_string()),
        }
    }
    let client_cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let mut stream = rustls::StreamOwned::new(conn, sock);
    let data = handler(&mut stream);
    Outcome {
        handshake_completed: true,
        error: None,
        data,
        client_cert,
    }
}

fn failed(error: String) -> Outcome {
    Outcome {
        handshake_completed: false,
        error: Some(error),
        data: vec![],
        client_cert: None,
    }
}

/// Reads plaintext until the client closes (or 10 s pass), returning what arrived.
pub fn read_all(stream: &mut Stream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one frame body; `None` when the client closed or sent garbage.
pub fn recv_body(stream: &mut Stream, decoder: &mut FrameDecoder) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(body) = decoder.next_frame().ok()? {
            return Some(body);
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.push(&buf[..n]).ok()?,
        }
    }
}

/// Sends one message as a frame. Write errors are ignored: the agent may close at any moment
/// (that is what some tests provoke), and tests judge by what was received, not by this.
pub fn send_msg<T: serde::Serialize>(stream: &mut Stream, msg: &T) {
    let bytes = frame::encode(msg, frame::DEFAULT_MAX_FRAME).unwrap();
    let _ = stream.write_all(&bytes).and_then(|_| stream.flush());
}
