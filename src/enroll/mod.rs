//! Enrollment: registering the agent with a manager on port 1515, and the credentials it yields.
//!
//! One TLS connection, one [`EnrollRequest`], one [`EnrollResponse`]. The manager's certificate is
//! checked against the CA the operator configured (`WAZUH_REGISTRATION_CA`); without one, the
//! first manager reached is trusted (warned loudly) and the CA it returns is pinned for every
//! later session. [`enroll`] writes nothing: the caller saves the returned [`Credentials`] only
//! when enrollment succeeded, so a refusal leaves the state directory untouched.

mod credentials;

pub use credentials::{
    import_key, parse_keys_line, validate_key, validate_name, Credentials, CredentialsError,
    CA_FILE, KEYS_FILE,
};

use crate::config::EnrollmentConfig;
use crate::tls::{
    self, cert, ClientIdentity, FrameReader, TlsBuffers, TlsClientConfig, Verification,
};
use futures_lite::FutureExt;
use gatewatch_proto::frame::DEFAULT_MAX_FRAME;
use gatewatch_proto::{frame, EnrollRefusal, EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use std::time::Duration;

/// Bound on one request/response exchange after the handshake.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why enrollment failed.
#[derive(Debug)]
pub enum EnrollError {
    /// Neither a registration server nor a manager address is configured.
    NoServer,
    /// A configured file (CA, certificate, key) is unusable.
    Config { why: String },
    /// A manager answered and refused; nothing was stored on either side.
    Refused {
        server: String,
        reason: EnrollRefusal,
        detail: String,
    },
    /// No server could be reached or none answered sensibly; one line per attempt.
    Unreachable { attempts: Vec<String> },
}

impl std::fmt::Display for EnrollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollError::NoServer => f.write_str(
                "no registration server: set enrollment.server (WAZUH_REGISTRATION_SERVER) or manager.addresses (WAZUH_MANAGER)",
            ),
            EnrollError::Config { why } => write!(f, "enrollment configuration: {why}"),
            EnrollError::Refused { server, reason, detail } => {
                write!(f, "enrollment refused by {server}: {reason}")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            EnrollError::Unreachable { attempts } => write!(f, "enrollment failed: {}", attempts.join("; ")),
        }
    }
}

impl std::error::Error for EnrollError {}

/// Registers the agent as `name` in `groups`: with `cfg.server`, or else each of `managers` in
/// order, on `cfg.port`. Returns the credentials to save; writes nothing.
pub async fn enroll(
    cfg: &EnrollmentConfig,
    managers: &[String],
    name: &str,
    groups: &[String],
    password: Option<&str>,
) -> Result<Credentials, EnrollError> {
    let servers: Vec<String> = match &cfg.server {
        Some(server) => vec![server.clone()],
        None => managers.to_vec(),
    };
    if servers.is_empty() {
        return Err(EnrollError::NoServer);
    }
    let tls_cfg = client_config(cfg)?;
    if tls_cfg.verification == Verification::TrustOnFirstUse {
        log::warn!(
            "ENROLLING WITHOUT VERIFYING THE MANAGER: no registration CA is configured \
             (enrollment.ca / WAZUH_REGISTRATION_CA), so the first manager that answers is trusted \
             and its CA is pinned. An attacker on the network path could impersonate it now."
        );
    }
    let request = EnrollRequest {
        version: PROTOCOL_VERSION,
        name: name.to_string(),
        groups: groups.to_vec(),
        password: password.map(str::to_string),
    };
    let mut buffers = TlsBuffers::new();
    let mut attempts = Vec::new();
    for server in &servers {
        match exchange(server, cfg.port, &tls_cfg, &mut buffers, &request).await {
            Ok((peer, EnrollResponse::Refused { reason, detail })) => {
                return Err(EnrollError::Refused {
                    server: peer,
                    reason,
                    detail,
                });
            }
            Ok((
                peer,
                EnrollResponse::Accepted {
                    agent_id,
                    name,
                    key,
                    manager_ca_der,
                },
            )) => match accept(&tls_cfg, agent_id, name, key, manager_ca_der) {
                Ok(credentials) => {
                    log::info!(
                        "enrolled with {peer} as agent {}",
                        gatewatch_proto::format_agent_id(agent_id)
                    );
                    return Ok(credentials);
                }
                Err(why) => attempts.push(format!("{peer}: {why}")),
            },
            Err(why) => {
                log::warn!("enrollment with {server}:{} failed: {why}", cfg.port);
                attempts.push(why);
            }
        }
    }
    Err(EnrollError::Unreachable { attempts })
}

/// The TLS settings for 1515: the configured CA (or trust on first use) and client certificate.
fn client_config(cfg: &EnrollmentConfig) -> Result<TlsClientConfig, EnrollError> {
    let config_err = |e: cert::PemError| EnrollError::Config { why: e.to_string() };
    let verification = match &cfg.ca {
        Some(path) => Verification::PinnedCa {
            ca_der: cert::read_cert_pem(path).map_err(config_err)?,
        },
        None => Verification::TrustOnFirstUse,
    };
    let mut tls_cfg = TlsClientConfig::new(verification);
    tls_cfg.identity = match (&cfg.certificate, &cfg.key) {
        (Some(cert), Some(key)) => {
            Some(ClientIdentity::from_pem_files(cert, key).map_err(config_err)?)
        }
        (None, None) => None,
        _ => {
            return Err(EnrollError::Config {
                why: "an agent certificate needs its key and a key needs its certificate \
                      (enrollment.certificate and enrollment.key)"
                    .into(),
            })
        }
    };
    Ok(tls_cfg)
}

/// One connection: send the request, read the response. Errors are one line for the operator.
async fn exchange(
    server: &str,
    port: u16,
    tls_cfg: &TlsClientConfig,
    buffers: &mut TlsBuffers,
    request: &EnrollRequest,
) -> Result<(String, EnrollResponse), String> {
    let mut session = tls::connect(server, port, tls_cfg, buffers)
        .await
        .map_err(|e| e.to_string())?;
    let peer = session.peer().to_string();
    let talk = async {
        session.send(request, DEFAULT_MAX_FRAME).await?;
        session.recv(&mut FrameReader::new(DEFAULT_MAX_FRAME)).await
    };
    let timeout = async {
        async_io::Timer::after(EXCHANGE_TIMEOUT).await;
        Err(tls::TlsFailure::Timeout { peer: peer.clone() })
    };
    let body = talk.or(timeout).await.map_err(|e| e.to_string());
    session.close().await;
    let response =
        frame::decode_body::<EnrollResponse>(&body?).map_err(|e| format!("{peer}: {e}"))?;
    Ok((peer, response))
}

/// Checks an acceptance and decides which CA to pin.
fn accept(
    tls_cfg: &TlsClientConfig,
    agent_id: u32,
    name: String,
    key: String,
    returned_ca: Vec<u8>,
) -> Result<Credentials, String> {
    if agent_id == 0 {
        return Err("the manager assigned agent id 000".into());
    }
    validate_name(&name).map_err(|why| format!("the manager returned an invalid name: {why}"))?;
    validate_key(&key).map_err(|why| format!("the manager returned an invalid key: {why}"))?;
    let manager_ca_der = match &tls_cfg.verification {
        Verification::PinnedCa { ca_der } => {
            // The operator's CA is what the operator trusts; keep it even if told otherwise.
            if *ca_der != returned_ca {
                log::warn!("the manager returned another CA than the configured registration CA; pinning the configured one");
            }
            ca_der.clone()
        }
        Verification::TrustOnFirstUse => {
            cert::summarize(&returned_ca)
                .map_err(|e| format!("the manager returned an unreadable CA: {e}"))?;
            returned_ca
        }
    };
    Ok(Credentials {
        agent_id,
        name,
        ip: "any".into(),
        key,
        manager_ca_der,
    })
}

/// Enrolls with the settings of `config` (name, groups, password or password file) and saves the
/// credentials in the state directory. Used at start when there are none, and by
/// `gatewatch enroll`. On any failure nothing is written.
pub async fn enroll_and_save(config: &crate::config::Config) -> Result<Credentials, String> {
    let name = match &config.agent.name {
        Some(name) => name.clone(),
        None => crate::config::host_name()
            .ok_or("agent.name is not set and the host name is unavailable")?,
    };
    let password =
        crate::config::effective_password(&config.enrollment).map_err(|e| e.to_string())?;
    let credentials = enroll(
        &config.enrollment,
        &config.manager.addresses,
        &name,
        &config.agent.groups,
        password.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&config.agent.state_dir).map_err(|e| {
        format!(
            "cannot create state directory {}: {e}",
            config.agent.state_dir.display()
        )
    })?;
    credentials
        .save(&config.agent.state_dir)
        .map_err(|e| e.to_string())?;
    log::info!(
        "enrolled as agent {:03} ({})",
        credentials.agent_id,
        credentials.name
    );
    Ok(credentials)
}
