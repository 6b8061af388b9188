//! The enrollment service on port 1515: one `EnrollRequest` frame in, one `EnrollResponse` frame
//! out, then close. Checks, in order: the agent certificate (with `--agent-ca`), the password, the
//! name and groups; then registers the agent under a new id with a fresh random key.
//!
//! A refusal stores nothing. A name that is already registered is taken over (the old record is
//! deleted, as Wazuh's `force` option does) unless that agent is connected right now.

use std::net::SocketAddr;
use std::sync::Arc;

use async_net::TcpStream;
use futures_rustls::TlsAcceptor;
use gatewatch_proto::frame;
use gatewatch_proto::{format_agent_id, EnrollRefusal, EnrollRequest, EnrollResponse};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::conn::{timeout, FramedConn};
use crate::model::now_ms;
use crate::server::Context;
use crate::store::RegisterOutcome;
use crate::{RegisterRefused, Registered};

/// Group of agents that ask for none.
pub(crate) const DEFAULT_GROUP: &str = "default";
/// Longest agent name (Wazuh's limit).
pub(crate) const MAX_NAME_LEN: usize = 128;
/// Groups one agent may ask for.
const MAX_GROUPS: usize = 64;

/// Serves one connection to the enrollment port.
pub(crate) async fn serve_connection(
    ctx: Arc<Context>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    let tls = match timeout(ctx.io_timeout, acceptor.accept(tcp)).await {
        Some(Ok(tls)) => tls,
        Some(Err(e)) => return log::info!("enroll: {peer}: TLS handshake failed: {e}"),
        None => return log::info!("enroll: {peer}: TLS handshake timed out"),
    };
    let has_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|certs| !certs.is_empty());
    let mut conn = FramedConn::new(tls, ctx.io_timeout);
    let body = match conn.read_frame_within(ctx.io_timeout).await {
        Ok(Some(body)) => body,
        Ok(None) => return log::info!("enroll: {peer}: closed without a request"),
        Err(e) => return log::warn!("enroll: {peer}: {e}; closing"),
    };
    let response = match frame::decode_body::<EnrollRequest>(&body) {
        Ok(request) => answer(&ctx, request, peer, has_cert).await,
        Err(e) => return log::warn!("enroll: {peer}: undecodable request: {e}; closing"),
    };
    if let Err(e) = conn.send(&response).await {
        log::warn!("enroll: {peer}: cannot send the answer: {e}");
    }
    conn.close().await;
}

async fn answer(
    ctx: &Context,
    request: EnrollRequest,
    peer: SocketAddr,
    has_cert: bool,
) -> EnrollResponse {
    let refuse = |reason: EnrollRefusal, detail: String| {
        log::warn!("enroll: {peer}: refused {:?}: {detail}", request.name);
        EnrollResponse::Refused { reason, detail }
    };
    if ctx.require_agent_cert && !has_cert {
        return refuse(
            EnrollRefusal::CertificateRequired,
            "this manager requires an agent certificate".into(),
        );
    }
    if let Some(expected) = &ctx.password {
        if !request
            .password
            .as_deref()
            .is_some_and(|given| same_secret(given, expected))
        {
            return refuse(
                EnrollRefusal::BadPassword,
                EnrollRefusal::BadPassword.to_string(),
            );
        }
    }
    match register(ctx, &request.name, request.groups, &peer.ip().to_string()).await {
        Ok(r) => {
            log::info!(
                "enroll: {peer}: registered {:?} as agent {}",
                r.name,
                format_agent_id(r.id)
            );
            EnrollResponse::Accepted {
                agent_id: r.id,
                name: r.name,
                key: r.key,
                manager_ca_der: ctx.ca_der.clone(),
            }
        }
        Err(RegisterRefused { reason, detail }) => refuse(reason, detail),
    }
}

/// Validates a name and groups and registers the agent (also used by the manager API).
pub(crate) async fn register(
    ctx: &Context,
    name: &str,
    groups: Vec<String>,
    ip: &str,
) -> Result<Registered, RegisterRefused> {
    let refused = |reason, detail: String| RegisterRefused { reason, detail };
    if !valid_name(name) {
        return Err(refused(
            EnrollRefusal::InvalidName,
            format!("agent names are 1 to {MAX_NAME_LEN} of [A-Za-z0-9._-]"),
        ));
    }
    let groups = if groups.is_empty() {
        vec![DEFAULT_GROUP.to_string()]
    } else {
        groups
    };
    if groups.len() > MAX_GROUPS || !groups.iter().all(|g| valid_name(g)) {
        return Err(refused(
            EnrollRefusal::InvalidName,
            format!("at most {MAX_GROUPS} groups, each 1 to {MAX_NAME_LEN} of [A-Za-z0-9._-]"),
        ));
    }
    let key = new_key();
    let sessions = ctx.sessions.clone();
    let (name, ip, stored_key) = (name.to_string(), ip.to_string(), key.clone());
    let job_name = name.clone();
    let outcome = ctx
        .store
        .call(move |db| {
            db.register(&job_name, &ip, &groups, &stored_key, now_ms(), &|id| {
                sessions.is_connected(id)
            })
        })
        .await;
    match outcome {
        Ok(RegisterOutcome::Registered { id }) => Ok(Registered { id, name, key }),
        Ok(RegisterOutcome::NameTaken { id }) => Err(refused(
            EnrollRefusal::NameTaken,
            format!(
                "agent {} named {name:?} is connected now",
                format_agent_id(id)
            ),
        )),
        Err(e) => {
            log::error!("enroll: cannot register {name:?}: {e}");
            Err(refused(
                EnrollRefusal::Internal,
                EnrollRefusal::Internal.to_string(),
            ))
        }
    }
}

/// `[A-Za-z0-9._-]{1,128}`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 32 random bytes as 64 lowercase hex characters.
pub(crate) fn new_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two secrets in time that depends on neither: both are hashed to a fixed length first,
/// then every byte of the digests is compared.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_allow_only_the_wazuh_characters_and_length() {
        assert!(valid_name("gw-1.site_A"));
        assert!(valid_name(&"a".repeat(128)));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(129)));
        assert!(!valid_name("gw 1"));
        assert!(!valid_name("gw/1"));
        assert!(!valid_name("gwé"));
    }

    #[test]
    fn keys_are_64_lowercase_hex_characters_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("pw", "pw"));
        assert!(!same_secret("pw", "pw2"));
        assert!(!same_secret("", "pw"));
    }
}
