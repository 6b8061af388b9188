//! Enrollment on the TLS enrollment port, with a real rustls client.

mod common;

use common::*;
use gatewatch_manager::start;
use gatewatch_proto::{
    EnrollRefusal, EnrollRequest, EnrollResponse, ManagerMessage, Refusal, PROTOCOL_VERSION,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn refusal(r: EnrollResponse) -> EnrollRefusal {
    match r {
        EnrollResponse::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn open_enrollment_gives_sequential_ids_keys_and_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let ca_der = rustls_pemfile::certs(&mut std::fs::read(m.ca_pem_path()).unwrap().as_slice())
        .next()
        .unwrap()
        .unwrap();
    match enroll(&m, "gw1", None) {
        EnrollResponse::Accepted {
            agent_id,
            name,
            key,
            manager_ca_der,
        } => {
            assert_eq!((agent_id, name.as_str()), (1, "gw1"));
            assert_eq!(key.len(), 64);
            assert_eq!(manager_ca_der, ca_der.to_vec());
        }
        other => panic!("refused: {other:?}"),
    }
    assert_eq!(enroll_ok(&m, "gw2").0, 2);
    let agents = m.agents().unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0].groups, vec!["default"]);
    assert_eq!(agents[0].ip, "127.0.0.1");
    assert_eq!(agents[0].status.as_str(), "never_connected");
}

#[test]
fn wrong_password_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.password = Some("s3cret".into());
    let m = start(o).unwrap();
    assert_eq!(
        refusal(enroll(&m, "gw1", Some("wrong"))),
        EnrollRefusal::BadPassword
    );
    assert!(m.agents().unwrap().is_empty());
}

#[test]
fn missing_password_is_refused_when_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.password = Some("s3cret".into());
    let m = start(o).unwrap();
    assert_eq!(refusal(enroll(&m, "gw1", None)), EnrollRefusal::BadPassword);
    assert!(m.agents().unwrap().is_empty());
}

#[test]
fn right_password_enrolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.password = Some("s3cret".into());
    let m = start(o).unwrap();
    assert!(matches!(
        enroll(&m, "gw1", Some("s3cret")),
        EnrollResponse::Accepted { agent_id: 1, .. }
    ));
}

#[test]
fn name_outside_the_allowed_characters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    assert_eq!(
        refusal(enroll(&m, "gw 1", None)),
        EnrollRefusal::InvalidName
    );
    assert_eq!(refusal(enroll(&m, "", None)), EnrollRefusal::InvalidName);
    assert!(m.agents().unwrap().is_empty());
}

#[test]
fn re_enrolling_an_offline_name_replaces_it_under_a_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (old_id, old_key) = enroll_ok(&m, "gw1");
    let (new_id, _) = enroll_ok(&m, "gw1");
    assert_eq!((old_id, new_id), (1, 2));
    let agents = m.agents().unwrap();
    assert_eq!(agents.iter().map(|a| a.id).collect::<Vec<_>>(), vec![2]);
    let answer = hello(&m, old_id, gatewatch_proto::PROTOCOL_VERSION);
    assert!(
        matches!(
            answer,
            Some(ManagerMessage::Refused {
                reason: Refusal::UnknownAgent,
                ..
            })
        ),
        "the replaced id must be unknown, got {answer:?} (old key {old_key})"
    );
}

#[test]
fn re_enrolling_a_connected_name_is_refused_as_taken() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let (id, key) = enroll_ok(&m, "gw1");
    let (_session, _) = session(&m, id, &key);
    assert_eq!(refusal(enroll(&m, "gw1", None)), EnrollRefusal::NameTaken);
    assert_eq!(m.agents().unwrap()[0].id, id);
}

fn agent_ca() -> (KeyPair, CertificateParams) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (key, params)
}

fn client_cert(
    ca_key: &KeyPair,
    ca_params: &CertificateParams,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = CertificateParams::new(vec!["gw1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn manager_with_agent_ca(
    dir: &std::path::Path,
) -> (gatewatch_manager::ManagerHandle, KeyPair, CertificateParams) {
    let (ca_key, ca_params) = agent_ca();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_path = dir.join("agent-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    let mut o = options(&dir.join("data"));
    o.agent_ca = Some(ca_path);
    (start(o).unwrap(), ca_key, ca_params)
}

#[test]
fn agent_ca_option_refuses_an_agent_without_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _, _) = manager_with_agent_ca(dir.path());
    assert_eq!(
        refusal(enroll(&m, "gw1", None)),
        EnrollRefusal::CertificateRequired
    );
    assert!(m.agents().unwrap().is_empty());
}

#[test]
fn agent_ca_option_accepts_an_agent_with_a_certificate_it_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (m, ca_key, ca_params) = manager_with_agent_ca(dir.path());
    let mut c = connect_as(
        m.enroll_addr(),
        &m.ca_pem_path(),
        "localhost",
        Some(client_cert(&ca_key, &ca_params)),
    )
    .unwrap();
    c.send(&EnrollRequest {
        version: PROTOCOL_VERSION,
        name: "gw1".into(),
        groups: vec!["edge".into()],
        password: None,
    });
    assert!(matches!(
        c.recv(),
        Some(EnrollResponse::Accepted { agent_id: 1, .. })
    ));
    assert_eq!(m.agents().unwrap()[0].groups, vec!["edge"]);
}

#[test]
fn agent_ca_option_rejects_a_certificate_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _, _) = manager_with_agent_ca(dir.path());
    let (other_key, other_params) = agent_ca();
    let result = connect_as(
        m.enroll_addr(),
        &m.ca_pem_path(),
        "localhost",
        Some(client_cert(&other_key, &other_params)),
    );
    // TLS 1.3: the client may finish its side before the server's alert arrives.
    if let Ok(mut c) = result {
        c.try_send(&EnrollRequest {
            version: PROTOCOL_VERSION,
            name: "gw1".into(),
            groups: vec![],
            password: None,
        });
        assert!(c.recv::<EnrollResponse>().is_none());
    }
    assert!(m.agents().unwrap().is_empty());
}
