//! Test helpers: a manager on loopback with ephemeral ports, and a blocking rustls client that
//! speaks the proto frames (an agent stand-in that verifies the manager with its generated CA).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatewatch_manager::{start, ManagerHandle, ManagerOptions};
use gatewatch_proto::frame::{self, DEFAULT_MAX_FRAME};
use gatewatch_proto::session::auth_proof;
use gatewatch_proto::{
    AgentMessage, EnrollRequest, EnrollResponse, EventBody, GeneratorEvent, ManagerMessage,
    Payload, PROTOCOL_VERSION,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Options for a loopback manager in `dir` with ephemeral ports and short timeouts.
pub fn options(dir: &Path) -> ManagerOptions {
    let mut o = ManagerOptions::new(dir);
    o.listen_addr = "127.0.0.1".parse().unwrap();
    o.events_port = 0;
    o.enroll_port = 0;
    o.io_timeout = Duration::from_secs(3);
    o
}

/// Starts a loopback manager in `dir`.
pub fn manager(dir: &Path) -> ManagerHandle {
    start(options(dir)).expect("manager starts")
}

/// A TLS connection (blocking) carrying proto frames.
pub struct Client {
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

/// Connects with TLS to `addr`, trusting only the CA in `ca_pem`, and naming the server `name`.
pub fn connect_as(
    addr: SocketAddr,
    ca_pem: &Path,
    name: &str,
    client_cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<Client, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Drive the handshake now so that failures show here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(Client { tls })
}

/// Connects as an agent would (server name `localhost`).
pub fn connect(addr: SocketAddr, ca_pem: &Path) -> Client {
    connect_as(addr, ca_pem, "localhost", None).expect("TLS connection")
}

impl Client {
    /// Writes one frame.
    pub fn send<T: Serialize>(&mut self, msg: &T) {
        let bytes = frame::encode(msg, DEFAULT_MAX_FRAME).unwrap();
        self.send_raw(&bytes);
    }

    /// Writes one frame, ignoring failures (the manager may already have closed the connection).
    pub fn try_send<T: Serialize>(&mut self, msg: &T) {
        let bytes = frame::encode(msg, DEFAULT_MAX_FRAME).unwrap();
        let _ = self.tls.write_all(&bytes).and_then(|_| self.tls.flush());
    }

    /// Writes raw bytes (possibly not a frame at all).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// Reads one frame; `None` if the manager closed the connection (or it failed) instead.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Option<T> {
        let mut header = [0u8; 4];
        self.tls.read_exact(&mut header).ok()?;
        let len = frame::body_len(header, DEFAULT_MAX_FRAME).unwrap();
        let mut body = vec![0u8; len];
        self.tls.read_exact(&mut body).ok()?;
        Some(frame::decode_body(&body).unwrap())
    }

    /// True if the manager has closed the connection (EOF or error, not a timeout with data).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.tls.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// Enrolls `name` with an optional password and returns the manager's answer.
pub fn enroll(m: &ManagerHandle, name: &str, password: Option<&str>) -> EnrollResponse {
    let mut c = connect(m.enroll_addr(), &m.ca_pem_path());
    c.send(&EnrollRequest {
        version: PROTOCOL_VERSION,
        name: name.into(),
        groups: vec![],
        password: password.map(str::to_string),
    });
    c.recv().expect("an enrollment answer")
}

/// Enrolls `name` (no password) and returns (id, key).
pub fn enroll_ok(m: &ManagerHandle, name: &str) -> (u32, String) {
    match enroll(m, name, None) {
        EnrollResponse::Accepted { agent_id, key, .. } => (agent_id, key),
        other => panic!("enrollment refused: {other:?}"),
    }
}

/// Runs Hello/Challenge/Auth with `key` and returns the manager's answer to Auth.
pub fn handshake(m: &ManagerHandle, agent_id: u32, key: &str) -> (Client, ManagerMessage) {
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    c.send(&AgentMessage::Hello {
        version: PROTOCOL_VERSION,
        agent_id,
    });
    let nonce = match c.recv() {
        Some(ManagerMessage::Challenge { nonce, .. }) => nonce,
        other => panic!("expected a challenge, got {other:?}"),
    };
    c.send(&AgentMessage::Auth {
        proof: auth_proof(key.as_bytes(), &nonce, agent_id),
    });
    let answer = c.recv().expect("an answer to Auth");
    (c, answer)
}

/// Sends Hello for `agent_id` and returns the manager's answer.
pub fn hello(m: &ManagerHandle, agent_id: u32, version: u16) -> Option<ManagerMessage> {
    let mut c = connect(m.events_addr(), &m.ca_pem_path());
    c.send(&AgentMessage::Hello { version, agent_id });
    c.recv()
}

/// Opens a session and returns it with the Welcome's `ack_up_to`.
pub fn session(m: &ManagerHandle, agent_id: u32, key: &str) -> (Client, u64) {
    match handshake(m, agent_id, key) {
        (c, ManagerMessage::Welcome { ack_up_to, .. }) => (c, ack_up_to),
        (_, other) => panic!("expected Welcome, got {other:?}"),
    }
}

/// The encoded body of generator event `n`.
pub fn record(n: u64) -> Vec<u8> {
    let body = EventBody {
        time_ms: 1_700_000_000_000 + n,
        module: "generator".into(),
        payload: Payload::Generator(GeneratorEvent {
            stream: "test".into(),
            n,
            body: format!("event {n}"),
        }),
    };
    let mut out = Vec::new();
    gatewatch_proto::event::encode_body(&body, &mut out).unwrap();
    out
}

/// Sends generator events `seqs` (consecutive) and returns the ack.
pub fn send_events(c: &mut Client, seqs: std::ops::RangeInclusive<u64>) -> u64 {
    let records: Vec<Vec<u8>> = seqs.clone().map(record).collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    c.send(&AgentMessage::Events {
        first_seq: *seqs.start(),
        records: refs,
    });
    match c.recv() {
        Some(ManagerMessage::Ack { up_to }) => up_to,
        other => panic!("expected Ack, got {other:?}"),
    }
}

/// Polls `f` until it returns true or 5 s pass.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Rows of a query on `manager.db` (read-only), as strings.
pub fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let db = rusqlite::Connection::open_with_flags(
        dir.join("manager.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
