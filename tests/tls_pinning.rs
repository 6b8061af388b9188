//! The agent trusts a manager only through the CA it pinned: one certificate, signed directly by
//! that CA, valid now, for the address dialled. Each refusal says why, and happens before any
//! application data is sent.

mod tls_support;

use gatewatch::tls::{
    connect, CertRejection, TlsBuffers, TlsClientConfig, TlsFailure, Verification,
};
use tls_support::{ca, leaf, read_all, self_signed, serve, server_params, Leaf};

const ADDRESS: &str = "127.0.0.1";
const SECRET: &[u8] = b"application data that must never reach an impostor";

/// Connects to a server presenting `chain`, sends [`SECRET`] if the handshake succeeds, and
/// returns the agent's result with what the server saw.
fn dial(
    ca_der: &[u8],
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
) -> (Result<(), TlsFailure>, tls_support::Outcome) {
    let server = serve(chain, key_pkcs8, 1, |_, stream| read_all(stream));
    let cfg = TlsClientConfig::new(Verification::PinnedCa {
        ca_der: ca_der.to_vec(),
    });
    let result = smol::block_on(async {
        let mut buffers = TlsBuffers::new();
        let mut session = connect(ADDRESS, server.port, &cfg, &mut buffers).await?;
        session.send(&SECRET.to_vec(), 1024).await?;
        session.close().await;
        Ok(())
    });
    (result, server.outcome())
}

fn refused(ca_der: &[u8], presented: &Leaf, chain: Vec<Vec<u8>>) -> CertRejection {
    let (result, outcome) = dial(ca_der, chain, presented.key_pkcs8.clone());
    assert!(
        !outcome.handshake_completed,
        "the impostor completed a handshake: {outcome:?}"
    );
    assert!(
        outcome.data.is_empty(),
        "the impostor read {} plaintext bytes",
        outcome.data.len()
    );
    match result {
        Err(TlsFailure::Rejected { peer, reason }) => {
            assert!(peer.starts_with("127.0.0.1:"), "{peer}");
            reason
        }
        other => panic!("expected a certificate rejection, got {other:?}"),
    }
}

#[test]
fn impostor_manager_is_refused() {
    let pinned = ca("gatewatch manager CA A");
    let other = ca("some other CA B");

    let from_other_ca = leaf(server_params(ADDRESS), &other.issuer);
    let reason = refused(
        &pinned.cert_der,
        &from_other_ca,
        vec![from_other_ca.cert_der.clone()],
    );
    assert!(
        matches!(&reason, CertRejection::WrongCa { issuer, .. } if issuer == "some other CA B"),
        "{reason}"
    );
    assert!(
        reason.to_string().contains("not by the pinned CA"),
        "{reason}"
    );

    let self_made = self_signed(server_params(ADDRESS));
    let reason = refused(
        &pinned.cert_der,
        &self_made,
        vec![self_made.cert_der.clone()],
    );
    assert!(matches!(reason, CertRejection::WrongCa { .. }), "{reason}");

    let mut params = server_params(ADDRESS);
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let expired = leaf(params, &pinned.issuer);
    let reason = refused(&pinned.cert_der, &expired, vec![expired.cert_der.clone()]);
    assert!(matches!(reason, CertRejection::Expired { .. }), "{reason}");
    assert!(reason.to_string().contains("expired"), "{reason}");

    let mut params = server_params(ADDRESS);
    params.not_before = rcgen::date_time_ymd(2999, 1, 1);
    params.not_after = rcgen::date_time_ymd(3000, 1, 1);
    let future = leaf(params, &pinned.issuer);
    let reason = refused(&pinned.cert_der, &future, vec![future.cert_der.clone()]);
    assert!(
        matches!(reason, CertRejection::NotYetValid { .. }),
        "{reason}"
    );

    let other_name = leaf(server_params("other-manager.example"), &pinned.issuer);
    let reason = refused(
        &pinned.cert_der,
        &other_name,
        vec![other_name.cert_der.clone()],
    );
    assert!(
        matches!(&reason, CertRejection::NameMismatch { expected, .. } if expected == ADDRESS),
        "{reason}"
    );
    assert!(
        reason.to_string().contains("other-manager.example"),
        "{reason}"
    );

    let other_ip = leaf(server_params("127.0.0.2"), &pinned.issuer);
    let reason = refused(&pinned.cert_der, &other_ip, vec![other_ip.cert_der.clone()]);
    assert!(
        matches!(reason, CertRejection::NameMismatch { .. }),
        "{reason}"
    );
}

#[test]
fn forged_chain_is_refused() {
    let pinned = ca("gatewatch manager CA A");
    // Something else the CA signed, e.g. an agent credential: its key must not mint managers.
    let agent_cred = leaf(server_params("agent-007"), &pinned.issuer);

    let forged = leaf(server_params(ADDRESS), &agent_cred.issuer);
    let reason = refused(
        &pinned.cert_der,
        &forged,
        vec![forged.cert_der.clone(), agent_cred.cert_der.clone()],
    );
    assert_eq!(reason, CertRejection::ChainLength { presented: 2 });
    assert!(reason.to_string().contains("chain of 2"), "{reason}");

    // The forged certificate alone names the credential, not the CA, as issuer.
    let reason = refused(&pinned.cert_der, &forged, vec![forged.cert_der.clone()]);
    assert!(matches!(reason, CertRejection::WrongCa { .. }), "{reason}");

    // Forged with the CA's name as issuer but the credential's key: the signature gives it away.
    let mut ca_named_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_named_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_named_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gatewatch manager CA A");
    let credential_key = rcgen::KeyPair::from_der_and_sign_algo(
        &rustls::pki_types::PrivateKeyDer::Pkcs8(agent_cred.key_pkcs8.clone().into()),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    )
    .unwrap();
    let impostor_issuer = rcgen::Issuer::new(ca_named_params, credential_key);
    let disguised = leaf(server_params(ADDRESS), &impostor_issuer);
    let reason = refused(
        &pinned.cert_der,
        &disguised,
        vec![disguised.cert_der.clone()],
    );
    assert_eq!(reason, CertRejection::BadSignature);

    // A valid leaf with its CA appended is refused too: exactly one certificate is accepted.
    let valid = leaf(server_params(ADDRESS), &pinned.issuer);
    let reason = refused(
        &pinned.cert_der,
        &valid,
        vec![valid.cert_der.clone(), pinned.cert_der.clone()],
    );
    assert_eq!(reason, CertRejection::ChainLength { presented: 2 });

    // Positive control: the valid leaf alone is accepted and the data goes through.
    let (result, outcome) = dial(
        &pinned.cert_der,
        vec![valid.cert_der.clone()],
        valid.key_pkcs8.clone(),
    );
    assert!(result.is_ok(), "{result:?}");
    assert!(outcome.handshake_completed);
    let expected = gatewatch_proto::frame::encode(&SECRET.to_vec(), 1024).unwrap();
    assert_eq!(outcome.data, expected);
}
