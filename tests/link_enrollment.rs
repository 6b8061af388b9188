//! Enrollment on 1515 against a real TLS server speaking the enrollment protocol.

mod tls_support;

use gatewatch::config::EnrollmentConfig;
use gatewatch::enroll::{enroll, Credentials, EnrollError};
use gatewatch::tls::cert::cert_to_pem;
use gatewatch_proto::frame::{decode_body, FrameDecoder, DEFAULT_MAX_FRAME};
use gatewatch_proto::{EnrollRefusal, EnrollRequest, EnrollResponse};
use tls_support::{
    ca, leaf, recv_body, send_msg, serve, serve_at, server_params, Ca, Leaf, Stream, TestServer,
};

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Answers one enrollment request with `response`, returning the request's postcard body.
fn answer(stream: &mut Stream, response: &EnrollResponse) -> Vec<u8> {
    let Some(body) = recv_body(stream, &mut FrameDecoder::new(DEFAULT_MAX_FRAME)) else {
        return vec![];
    };
    send_msg(stream, response);
    body
}

fn accepted(ca: &Ca) -> EnrollResponse {
    EnrollResponse::Accepted {
        agent_id: 3,
        name: "gw-01".into(),
        key: KEY.into(),
        manager_ca_der: ca.cert_der.clone(),
    }
}

fn manager(ca: &Ca, response: EnrollResponse) -> (Leaf, TestServer) {
    let cert = leaf(server_params("127.0.0.1"), &ca.issuer);
    let server = serve(
        vec![cert.cert_der.clone()],
        cert.key_pkcs8.clone(),
        1,
        move |_, s| answer(s, &response),
    );
    (cert, server)
}

fn config(port: u16) -> EnrollmentConfig {
    EnrollmentConfig {
        server: Some("127.0.0.1".into()),
        port,
        ..EnrollmentConfig::default()
    }
}

fn run(
    cfg: &EnrollmentConfig,
    managers: &[String],
    password: Option<&str>,
) -> Result<Credentials, EnrollError> {
    smol::block_on(enroll(
        cfg,
        managers,
        "gw-01",
        &["edge".to_string()],
        password,
    ))
}

#[test]
fn trust_on_first_use_pins_the_ca_the_manager_returns() {
    let manager_ca = ca("manager CA");
    let (_, server) = manager(&manager_ca, accepted(&manager_ca));
    let creds = run(&config(server.port), &[], Some("s3cret")).unwrap();
    assert_eq!(
        (
            creds.agent_id,
            creds.name.as_str(),
            creds.ip.as_str(),
            creds.key.as_str()
        ),
        (3, "gw-01", "any", KEY)
    );
    assert_eq!(creds.manager_ca_der, manager_ca.cert_der);
    let request: EnrollRequest = decode_body(&server.outcome().data).unwrap();
    assert_eq!(request.name, "gw-01");
    assert_eq!(request.groups, vec!["edge".to_string()]);
    assert_eq!(request.password.as_deref(), Some("s3cret"));
}

#[test]
fn configured_ca_is_verified_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let manager_ca = ca("manager CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, cert_to_pem(&manager_ca.cert_der)).unwrap();
    let (_, server) = manager(
        &manager_ca,
        accepted(&ca("a CA the manager should not have sent")),
    );
    let cfg = EnrollmentConfig {
        ca: Some(ca_path),
        ..config(server.port)
    };
    let creds = run(&cfg, &[], None).unwrap();
    assert_eq!(
        creds.manager_ca_der, manager_ca.cert_der,
        "the operator's CA is the one pinned"
    );
}

#[test]
fn impostor_registration_server_gets_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, cert_to_pem(&ca("the real manager CA").cert_der)).unwrap();
    let impostor_ca = ca("impostor CA");
    let (_, server) = manager(&impostor_ca, accepted(&impostor_ca));
    let cfg = EnrollmentConfig {
        ca: Some(ca_path),
        ..config(server.port)
    };
    let err = run(&cfg, &[], Some("s3cret")).unwrap_err().to_string();
    assert!(err.contains("not by the pinned CA"), "{err}");
    let outcome = server.outcome();
    assert!(!outcome.handshake_completed && outcome.data.is_empty());
}

#[test]
fn refusal_reports_the_managers_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manager_ca = ca("manager CA");
    let refusal = EnrollResponse::Refused {
        reason: EnrollRefusal::BadPassword,
        detail: String::new(),
    };
    let (_, server) = manager(&manager_ca, refusal);
    let err = run(&config(server.port), &[], Some("wrong")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "enrollment refused by 127.0.0.1:{}: invalid enrollment password",
            server.port
        )
    );
    assert_eq!(Credentials::load(dir.path()).unwrap(), None);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unreachable_first_manager_falls_back_to_the_next() {
    let manager_ca = ca("manager CA");
    let cert = leaf(server_params("127.0.0.2"), &manager_ca.issuer);
    let response = accepted(&manager_ca);
    let server = serve_at(
        "127.0.0.2:0",
        vec![cert.cert_der.clone()],
        cert.key_pkcs8.clone(),
        None,
        1,
        move |_, s| answer(s, &response),
    );
    // Nothing listens on 127.0.0.1 at the port the second manager uses.
    let cfg = EnrollmentConfig {
        server: None,
        port: server.port,
        ..EnrollmentConfig::default()
    };
    let managers = ["127.0.0.1".to_string(), "127.0.0.2".to_string()];
    let creds = run(&cfg, &managers, None).unwrap();
    assert_eq!(creds.agent_id, 3);
}

#[test]
fn nothing_reachable_lists_every_attempt() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = EnrollmentConfig {
        server: None,
        port,
        ..EnrollmentConfig::default()
    };
    let err = run(
        &cfg,
        &["127.0.0.1".to_string(), "127.0.0.3".to_string()],
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains(&format!("127.0.0.3:{port}")),
        "{err}"
    );
}

#[test]
fn client_certificate_is_presented_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let manager_ca = ca("manager CA");
    let agent_ca = ca("agent CA (separate from the manager CA)");
    let mut agent_params = server_params("gw-01");
    agent_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let agent_cert = leaf(agent_params, &agent_ca.issuer);
    let cert_path = dir.path().join("agent.pem");
    let key_path = dir.path().join("agent.key");
    std::fs::write(&cert_path, cert_to_pem(&agent_cert.cert_der)).unwrap();
    let key_pem = der::pem::encode_string(
        "PRIVATE KEY",
        der::pem::LineEnding::LF,
        &agent_cert.key_pkcs8,
    )
    .unwrap();
    std::fs::write(&key_path, key_pem).unwrap();

    let server_cert = leaf(server_params("127.0.0.1"), &manager_ca.issuer);
    let response = accepted(&manager_ca);
    let server = tls_support::serve_with_client_ca(
        vec![server_cert.cert_der.clone()],
        server_cert.key_pkcs8.clone(),
        Some(agent_ca.cert_der.clone()),
        1,
        move |_, s| answer(s, &response),
    );
    let cfg = EnrollmentConfig {
        certificate: Some(cert_path),
        key: Some(key_path),
        ..config(server.port)
    };
    run(&cfg, &[], None).unwrap();
    assert_eq!(
        server.outcome().client_cert,
        Some(agent_cert.cert_der.clone())
    );
}

#[test]
fn certificate_without_key_is_a_configuration_error() {
    let cfg = EnrollmentConfig {
        certificate: Some("/nonexistent/agent.pem".into()),
        ..config(1)
    };
    let err = run(&cfg, &[], None).unwrap_err();
    assert!(matches!(err, EnrollError::Config { .. }), "{err}");
}
