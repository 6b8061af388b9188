//! rustls server configurations for the event and enrollment ports.
//!
//! TLS 1.3 only. The agent (embedded-tls) offers TLS_AES_128_GCM_SHA256 with a secp256r1 key
//! share and ECDSA P-256/SHA-256 signatures; rustls's ring provider supports all three, and the
//! generated server key is P-256, so no setting here needs to single them out.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::certs::{read_certs, TlsMaterial};
use crate::ManagerError;

/// The ring provider with TLS 1.3 suites only.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| s.version() == &rustls::version::TLS13);
    Arc::new(provider)
}

/// Configuration of the event port: server authentication only (agents prove their key inside
/// the session).
pub(crate) fn events_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, ManagerError> {
    let config = builder()?
        .with_no_client_auth()
        .with_single_cert(vec![material.leaf.clone()], material.key.clone_key())
        .map_err(|e| ManagerError::cert("server certificate and key", e))?;
    Ok(finish(config))
}

/// Configuration of the enrollment port. With `agent_ca`, a client certificate is requested and
/// verified against it; one that is missing is refused by the enrollment service (so the agent
/// learns why), one that is invalid fails the handshake.
pub(crate) fn enroll_config(
    material: &TlsMaterial,
    agent_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, ManagerError> {
    let builder = builder()?;
    let builder = match agent_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| ManagerError::cert(format!("--agent-ca {}", path.display()), e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| ManagerError::cert(format!("--agent-ca {}", path.display()), e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(vec![material.leaf.clone()], material.key.clone_key())
        .map_err(|e| ManagerError::cert("server certificate and key", e))?;
    Ok(finish(config))
}

/// Configuration of the REST API: TLS 1.2 or 1.3 (curl, scripts and browsers, not agents),
/// HTTP/1.1 by ALPN, no client certificates.
pub(crate) fn api_config(material: &TlsMaterial) -> Result<Arc<ServerConfig>, ManagerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ManagerError::cert("API TLS configuration", e))?
        .with_no_client_auth()
        .with_single_cert(vec![material.leaf.clone()], material.key.clone_key())
        .map_err(|e| ManagerError::cert("server certificate and key", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Agents never resume sessions: sending them tickets would only cost their memory.
fn finish(mut config: ServerConfig) -> Arc<ServerConfig> {
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, ManagerError> {
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ManagerError::cert("TLS configuration", e))
}
