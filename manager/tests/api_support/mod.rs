//! Helpers of the API tests: a loopback manager serving the API on an ephemeral port, and a
//! blocking HTTPS client (rustls, verifying the manager with its own CA) that sends one request
//! per connection.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64ct::{Base64, Encoding};
use gatewatch_manager::{start, ApiOptions, ManagerHandle};
use rustls::pki_types::ServerName;
use serde_json::Value;

use crate::common::options;

/// A manager with its API, and the admin password generated at its first start.
pub struct ApiManager {
    pub handle: ManagerHandle,
    pub dir: PathBuf,
    pub password: String,
}

/// API options for tests: an ephemeral port, the rest as given.
pub fn api_options() -> ApiOptions {
    ApiOptions {
        port: 0,
        ..ApiOptions::default()
    }
}

impl ApiManager {
    /// Starts a manager in `dir` serving the API with `api` (its port is forced to 0).
    pub fn start(dir: &Path, api: ApiOptions) -> ApiManager {
        let mut o = options(dir);
        o.api = Some(ApiOptions { port: 0, ..api });
        let handle = start(o).expect("manager starts");
        let password = admin_password(dir);
        ApiManager {
            handle,
            dir: dir.to_path_buf(),
            password,
        }
    }

    /// Address of the API.
    pub fn addr(&self) -> SocketAddr {
        self.handle.api_addr().expect("the API is served")
    }

    /// Sends one request; `body` is (content type, bytes).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Reply {
        request(
            self.addr(),
            &self.handle.ca_pem_path(),
            method,
            path,
            headers,
            body,
        )
    }

    /// Logs in as `user` with `password` (`raw=true`) and returns the reply.
    pub fn login_as(&self, user: &str, password: &str) -> Reply {
        let basic = format!(
            "Basic {}",
            Base64::encode_string(format!("{user}:{password}").as_bytes())
        );
        self.call(
            "POST",
            "/security/user/authenticate?raw=true",
            &[("Authorization", &basic)],
            None,
        )
    }

    /// A token of the admin user.
    pub fn token(&self) -> String {
        let reply = self.login_as("wazuh", &self.password);
        assert_eq!(reply.status, 200, "login: {}", reply.text());
        reply.text()
    }

    /// A request with `token` as bearer.
    pub fn with_token(&self, token: &str, method: &str, path: &str, json: Option<&Value>) -> Reply {
        let bearer = format!("Bearer {token}");
        let body = json.map(|v| v.to_string().into_bytes());
        self.call(
            method,
            path,
            &[("Authorization", &bearer)],
            body.as_deref().map(|b| ("application/json", b)),
        )
    }
}

/// The generated admin password, from `api-admin.txt` (`wazuh:<password>`).
pub fn admin_password(dir: &Path) -> String {
    let text =
        std::fs::read_to_string(dir.join(gatewatch_manager::ADMIN_FILE)).expect("admin file");
    let (user, password) = text.trim_end().split_once(':').expect("user:password");
    assert_eq!(user, "wazuh");
    password.to_string()
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTPS request (`Connection: close`) and reads the whole response.
pub fn request(
    addr: SocketAddr,
    ca_pem: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    let mut tls = tls_stream(addr, ca_pem);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((content_type, bytes)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.map_or(&[][..], |(_, b)| b));
    tls.write_all(&out).expect("send the request");
    tls.flush().expect("flush the request");
    let mut raw = Vec::new();
    // The server closes after answering `Connection: close`; a missing close_notify is fine.
    let _ = tls.read_to_end(&mut raw);
    parse_reply(&raw)
}

/// A TLS connection to the API, trusting only the manager's CA.
pub fn tls_stream(
    addr: SocketAddr,
    ca_pem: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_pem).expect("CA file");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("localhost").expect("server name"),
    )
    .expect("TLS client");
    let tcp = TcpStream::connect(addr).expect("connect to the API");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// Parses one HTTP/1.1 response with a `Content-Length`.
pub fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .expect("Content-Length");
    let body = raw[end + 4..end + 4 + length].to_vec();
    Reply {
        status,
        headers,
        body,
    }
}
