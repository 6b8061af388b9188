//! TLS for the cloud endpoints: rustls with webpki's full chain verification (names in
//! subjectAltName, validity, key usage) against a PEM bundle of trusted CAs.

use super::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// A client configuration trusting every CA in the PEM bundle at `ca_file`.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("CA bundle {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = certs.filter_map(Result::ok).collect();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "CA bundle {}: no usable CA certificate (set modules.cloud.ca_file)",
            ca_file.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the handshake with `url`'s host over `tcp`.
pub async fn handshake(
    config: Arc<rustls::ClientConfig>,
    url: &Url,
    tcp: async_net::TcpStream,
) -> std::io::Result<futures_rustls::client::TlsStream<async_net::TcpStream>> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

#[cfg(test)]
mod tests {
    use super::super::{HttpClient, Request};
    use super::*;
    use crate::runtime::budget::{account_for, MemoryAccount};
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    /// A CA and a server certificate it signed for `localhost`.
    fn pki(dir: &Path) -> (std::path::PathBuf, rustls::ServerConfig) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        (ca_file, server)
    }

    /// Serves one request over TLS with a fixed answer.
    async fn serve_once(listener: async_net::TcpListener, config: rustls::ServerConfig) {
        let (tcp, _) = listener.accept().await.unwrap();
        let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(config));
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = tls.read(&mut buf).await;
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
        let _ = tls.close().await;
    }

    fn fetch(ca_file: std::path::PathBuf, port: u16) -> Result<Vec<u8>, String> {
        let memory = MemoryAccount::new(account_for("test-cloud-tls").unwrap(), 1 << 24);
        let mut client = HttpClient::new(ca_file, memory, Duration::from_secs(10));
        let url = Url::parse(&format!("https://localhost:{port}")).unwrap();
        let request = Request {
            method: "GET",
            target: "/".into(),
            headers: Vec::new(),
            body: &[],
        };
        smol::block_on(async {
            match client.send(&url, &request, 1024).await {
                Ok(response) => Ok(response.body),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    #[test]
    fn https_endpoint_signed_by_the_trusted_ca_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_file, server) = pki(dir.path());
        let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || smol::block_on(serve_once(listener, server)));
        assert_eq!(fetch(ca_file, port).unwrap(), b"ok");
        server.join().unwrap();
    }

    #[test]
    fn https_endpoint_signed_by_another_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, server) = pki(dir.path());
        let other = tempfile::tempdir().unwrap();
        let (other_ca, _) = pki(other.path());
        let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || smol::block_on(serve_once(listener, server)));
        let error = fetch(other_ca, port).unwrap_err();
        assert!(error.contains("localhost"), "{error}");
        server.join().unwrap();
    }
}
