//! The embedded-tls `CryptoProvider` of the agent: OS randomness, the pinned-CA verifier (or none,
//! in trust-on-first-use mode) and the optional client certificate.

use super::verify::{CertRejection, PinnedCaVerifier};
use super::LinkSuite;
use super::{ClientIdentity, TlsClientConfig, Verification};
use embedded_tls::{
    Certificate, CryptoProvider, CryptoRngCore, SignatureScheme, TlsError, TlsVerifier,
};
use p256::ecdsa::{signature::SignerMut, DerSignature, SigningKey};

/// Lives for one handshake; borrows the CA and the identity from the client configuration.
pub(super) struct AgentProvider<'a> {
    rng: rand_core::OsRng,
    verifier: Option<PinnedCaVerifier<'a>>,
    identity: Option<&'a ClientIdentity>,
}

impl<'a> AgentProvider<'a> {
    /// A provider for a server reached as `host`.
    pub(super) fn new(cfg: &'a TlsClientConfig, host: &str) -> Result<Self, CertRejection> {
        let verifier = match &cfg.verification {
            Verification::PinnedCa { ca_der } => Some(PinnedCaVerifier::new(ca_der, host)?),
            Verification::TrustOnFirstUse => None,
        };
        Ok(AgentProvider {
            rng: rand_core::OsRng,
            verifier,
            identity: cfg.identity.as_ref(),
        })
    }

    /// Why the verifier refused the server's certificate, if it did.
    pub(super) fn take_rejection(&mut self) -> Option<CertRejection> {
        self.verifier
            .as_mut()
            .and_then(PinnedCaVerifier::take_rejection)
    }
}

impl CryptoProvider for AgentProvider<'_> {
    type CipherSuite = LinkSuite;
    type Signature = DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<LinkSuite>, TlsError> {
        // `Unimplemented` is how embedded-tls learns there is no verifier (trust on first use).
        self.verifier.as_mut().ok_or(TlsError::Unimplemented)
    }

    fn signer(&mut self) -> Result<(impl SignerMut<DerSignature>, SignatureScheme), TlsError> {
        let identity = self.identity.ok_or(TlsError::InvalidPrivateKey)?;
        Ok((
            SigningKey::from(&identity.key),
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.identity
            .map(|identity| Certificate::X509(identity.cert_der.as_slice()))
    }
}
