//! The agent's TLS stack (embedded-tls with its certificate verifier) against this manager: the
//! handshake negotiates, the generated certificate verifies by DNS name and by IP literal, and a
//! whole enrollment and session work over it.

mod common;

use std::net::SocketAddr;
use std::time::SystemTime;

use common::{manager, record};
use embedded_io_adapters::futures_03::FromFutures;
use embedded_io_async::{Read, Write};
use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CryptoProvider, TlsConfig, TlsConnection, TlsContext, TlsError,
    TlsVerifier,
};
use gatewatch_proto::frame::{self, DEFAULT_MAX_FRAME};
use gatewatch_proto::session::auth_proof;
use gatewatch_proto::{
    AgentMessage, EnrollRequest, EnrollResponse, ManagerMessage, PROTOCOL_VERSION,
};
use rand_core::OsRng;
use serde::de::DeserializeOwned;
use serde::Serialize;

struct Provider<'a> {
    rng: OsRng,
    verifier: CertVerifier<'a, Aes128GcmSha256, SystemTime, 4096>,
}

impl CryptoProvider for Provider<'_> {
    type CipherSuite = Aes128GcmSha256;
    type Signature = Vec<u8>;

    fn rng(&mut self) -> impl embedded_tls::CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut self.verifier)
    }
}

type Conn<'b> = TlsConnection<'b, FromFutures<async_net::TcpStream>, Aes128GcmSha256>;

/// Opens an embedded-tls connection to `addr`, dialling `name`, pinning `ca_der`.
async fn open<'b>(
    addr: SocketAddr,
    name: &str,
    ca_der: &[u8],
    read_buf: &'b mut [u8],
    write_buf: &'b mut [u8],
) -> Result<Conn<'b>, TlsError> {
    let tcp = async_net::TcpStream::connect(addr).await.unwrap();
    let mut tls = TlsConnection::new(FromFutures::new(tcp), read_buf, write_buf);
    let config = TlsConfig::new().with_server_name(name);
    let provider = Provider {
        rng: OsRng,
        verifier: CertVerifier::new(Certificate::X509(ca_der)),
    };
    tls.open(TlsContext::new(&config, provider)).await?;
    Ok(tls)
}

async fn send<T: Serialize>(tls: &mut Conn<'_>, msg: &T) {
    let bytes = frame::encode(msg, DEFAULT_MAX_FRAME).unwrap();
    tls.write_all(&bytes).await.unwrap();
    tls.flush().await.unwrap();
}

async fn recv<T: DeserializeOwned>(tls: &mut Conn<'_>) -> T {
    let mut header = [0u8; 4];
    tls.read_exact(&mut header).await.unwrap();
    let mut body = vec![0u8; frame::body_len(header, DEFAULT_MAX_FRAME).unwrap()];
    tls.read_exact(&mut body).await.unwrap();
    frame::decode_body(&body).unwrap()
}

fn ca_der(m: &gatewatch_manager::ManagerHandle) -> Vec<u8> {
    let pem = std::fs::read(m.ca_pem_path()).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .unwrap()
        .unwrap();
    der.to_vec()
}

#[test]
fn agent_tls_enrolls_and_opens_a_session_dialling_an_ip_literal() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let ca = ca_der(&m);
    smol::block_on(async {
        let (mut rb, mut wb) = (vec![0u8; 16640], vec![0u8; 16640]);
        let mut tls = open(m.enroll_addr(), "127.0.0.1", &ca, &mut rb, &mut wb)
            .await
            .unwrap();
        send(
            &mut tls,
            &EnrollRequest {
                version: PROTOCOL_VERSION,
                name: "gw1".into(),
                groups: vec![],
                password: None,
            },
        )
        .await;
        let EnrollResponse::Accepted {
            agent_id,
            key,
            manager_ca_der,
            ..
        } = recv(&mut tls).await
        else {
            panic!("enrollment refused")
        };
        assert_eq!(manager_ca_der, ca);

        let (mut rb, mut wb) = (vec![0u8; 16640], vec![0u8; 16640]);
        let mut tls = open(
            m.events_addr(),
            "127.0.0.1",
            &manager_ca_der,
            &mut rb,
            &mut wb,
        )
        .await
        .unwrap();
        send(
            &mut tls,
            &AgentMessage::Hello {
                version: PROTOCOL_VERSION,
                agent_id,
            },
        )
        .await;
        let ManagerMessage::Challenge { nonce, .. } = recv(&mut tls).await else {
            panic!("no challenge")
        };
        send(
            &mut tls,
            &AgentMessage::Auth {
                proof: auth_proof(key.as_bytes(), &nonce, agent_id),
            },
        )
        .await;
        assert!(matches!(
            recv(&mut tls).await,
            ManagerMessage::Welcome { ack_up_to: 0, .. }
        ));
        let rec = record(1);
        send(
            &mut tls,
            &AgentMessage::Events {
                first_seq: 1,
                records: vec![&rec],
            },
        )
        .await;
        assert_eq!(
            recv::<ManagerMessage>(&mut tls).await,
            ManagerMessage::Ack { up_to: 1 }
        );
    });
}

#[test]
fn agent_tls_accepts_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let ca = ca_der(&m);
    let (mut rb, mut wb) = (vec![0u8; 16640], vec![0u8; 16640]);
    smol::block_on(open(m.events_addr(), "localhost", &ca, &mut rb, &mut wb)).unwrap();
}

#[test]
fn agent_tls_rejects_a_name_the_certificate_does_not_carry() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let ca = ca_der(&m);
    let (mut rb, mut wb) = (vec![0u8; 16640], vec![0u8; 16640]);
    assert!(smol::block_on(open(m.events_addr(), "evil.example", &ca, &mut rb, &mut wb)).is_err());
}

#[test]
fn agent_tls_rejects_a_manager_signed_by_another_ca() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let m = manager(a.path());
    let other = manager(b.path());
    let (mut rb, mut wb) = (vec![0u8; 16640], vec![0u8; 16640]);
    assert!(smol::block_on(open(
        m.events_addr(),
        "localhost",
        &ca_der(&other),
        &mut rb,
        &mut wb
    ))
    .is_err());
}
