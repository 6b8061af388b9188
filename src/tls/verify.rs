//! The manager certificate check: a one-certificate chain signed directly by the pinned CA.
//!
//! embedded-tls's `CertVerifier` checks signatures along the chain, the validity period and the
//! name, but neither basicConstraints nor keyUsage, and it accepts a chain of any length. So any
//! certificate the pinned CA ever signed could sign a forged manager certificate that passes.
//! [`PinnedCaVerifier`] closes that hole by refusing every chain that is not exactly one
//! certificate before delegating (`docs/adr/001-tls-pinning.md`). It must never accept a
//! certificate the inner verifier refused.

use super::cert::{summarize, CertSummary};
use super::LinkSuite;
use embedded_tls::pki::CertVerifier;
use embedded_tls::{Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef};
use embedded_tls::{TlsClock, TlsError, TlsVerifier};

/// Largest server certificate kept between the Certificate and CertificateVerify messages.
pub const MAX_CERT_BYTES: usize = 4096;

/// Why a manager's certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRejection {
    /// The server sent `presented` certificates; only one, signed by the pinned CA, is accepted.
    ChainLength { presented: usize },
    /// The server sent a raw public key instead of an X.509 certificate.
    NotX509,
    /// The certificate (or the pinned CA) could not be parsed.
    Malformed { why: String },
    /// The certificate names another issuer than the pinned CA.
    WrongCa { issuer: String, pinned: String },
    /// The certificate names the pinned CA as issuer but its signature does not verify with the
    /// pinned CA's key (forged, or another CA with the same name).
    BadSignature,
    /// The certificate's validity ended at `not_after` (Unix seconds).
    Expired { not_after: u64, now: u64 },
    /// The certificate is not valid before `not_before` (Unix seconds).
    NotYetValid { not_before: u64, now: u64 },
    /// The pinned CA itself has expired.
    CaExpired { not_after: u64, now: u64 },
    /// The certificate is for other names than the address dialled.
    NameMismatch {
        expected: String,
        found: Vec<String>,
    },
    /// The address is longer than the 64 bytes embedded-tls can compare.
    HostnameTooLong { host: String },
    /// The server did not prove it holds the certificate's private key.
    ServerKeyMismatch,
}

impl std::fmt::Display for CertRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertRejection::ChainLength { presented } => write!(
                f,
                "the server presented a chain of {presented} certificates; only a single certificate \
                 signed directly by the pinned CA is accepted"
            ),
            CertRejection::NotX509 => f.write_str("the server presented a raw public key, not a certificate"),
            CertRejection::Malformed { why } => write!(f, "unreadable certificate: {why}"),
            CertRejection::WrongCa { issuer, pinned } => write!(
                f,
                "the certificate was issued by {issuer:?}, not by the pinned CA {pinned:?} (wrong CA or impostor)"
            ),
            CertRejection::BadSignature => f.write_str(
                "the certificate's signature does not verify with the pinned CA's key (forged certificate \
                 or a different CA with the same name)",
            ),
            CertRejection::Expired { not_after, now } => {
                write!(f, "the certificate expired (not after {not_after}, now {now}, Unix seconds)")
            }
            CertRejection::NotYetValid { not_before, now } => {
                write!(f, "the certificate is not yet valid (not before {not_before}, now {now}, Unix seconds)")
            }
            CertRejection::CaExpired { not_after, now } => {
                write!(f, "the pinned CA expired (not after {not_after}, now {now}, Unix seconds)")
            }
            CertRejection::NameMismatch { expected, found } => {
                write!(f, "the certificate is for {found:?}, not for {expected:?} (the address dialled)")
            }
            CertRejection::HostnameTooLong { host } => {
                write!(f, "the address {host:?} is longer than the 64 bytes a certificate name check supports")
            }
            CertRejection::ServerKeyMismatch => {
                f.write_str("the server did not prove it holds the private key of its certificate")
            }
        }
    }
}

/// The system clock for certificate validity. Unlike `SystemTime`'s own implementation it never
/// panics: a clock before 1970 reads as 0, which makes every certificate "not yet valid" (fails
/// closed) instead of skipping the check.
pub struct SystemClock;

impl TlsClock for SystemClock {
    fn now() -> Option<u64> {
        Some(unix_now())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `TlsVerifier` that accepts only a one-certificate chain signed by the pinned CA, valid now,
/// and naming the address dialled; it records why it refused anything.
pub struct PinnedCaVerifier<'a> {
    inner: CertVerifier<'a, LinkSuite, SystemClock, MAX_CERT_BYTES>,
    ca: CertSummary,
    host: String,
    rejection: Option<CertRejection>,
}

impl<'a> PinnedCaVerifier<'a> {
    /// A verifier for a manager reached as `host` (the exact string dialled: a name or an IP
    /// literal), pinned to the CA certificate `ca_der`.
    pub fn new(ca_der: &'a [u8], host: &str) -> Result<Self, CertRejection> {
        let ca = summarize(ca_der).map_err(|e| CertRejection::Malformed {
            why: format!("pinned CA: {e}"),
        })?;
        let mut inner = CertVerifier::new(Certificate::X509(ca_der));
        inner
            .set_hostname_verification(host)
            .map_err(|_| CertRejection::HostnameTooLong {
                host: host.to_string(),
            })?;
        Ok(PinnedCaVerifier {
            inner,
            ca,
            host: host.to_string(),
            rejection: None,
        })
    }

    /// Why the last handshake's certificate was refused, if it was.
    pub fn take_rejection(&mut self) -> Option<CertRejection> {
        self.rejection.take()
    }

    fn reject(&mut self, reason: CertRejection) -> TlsError {
        log::error!(
            "refusing the certificate of manager {}: {reason}",
            self.host
        );
        self.rejection = Some(reason);
        TlsError::InvalidCertificate
    }

    /// Finds the most useful explanation for a certificate the inner verifier refused.
    fn diagnose(&self, leaf_der: &[u8]) -> CertRejection {
        let leaf = match summarize(leaf_der) {
            Ok(leaf) => leaf,
            Err(e) => return CertRejection::Malformed { why: e.to_string() },
        };
        let now = unix_now();
        if leaf.issuer != self.ca.subject {
            return CertRejection::WrongCa {
                issuer: name_label(&leaf.issuer),
                pinned: name_label(&self.ca.subject),
            };
        }
        if leaf.not_after < now {
            return CertRejection::Expired {
                not_after: leaf.not_after,
                now,
            };
        }
        if leaf.not_before > now {
            return CertRejection::NotYetValid {
                not_before: leaf.not_before,
                now,
            };
        }
        if !names_match(&leaf, &self.host) {
            let mut found = leaf.dns_names.clone();
            found.extend(leaf.common_name.clone());
            return CertRejection::NameMismatch {
                expected: self.host.clone(),
                found,
            };
        }
        CertRejection::BadSignature
    }
}

impl TlsVerifier<LinkSuite> for PinnedCaVerifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        // The name was fixed at construction; embedded-tls passes the same one again.
        if hostname != self.host {
            return Err(self.reject(CertRejection::NameMismatch {
                expected: self.host.clone(),
                found: vec![],
            }));
        }
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &<LinkSuite as embedded_tls::TlsCipherSuite>::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        if cert.entries.len() != 1 {
            return Err(self.reject(CertRejection::ChainLength {
                presented: cert.entries.len(),
            }));
        }
        let leaf = match cert.entries[0] {
            CertificateEntryRef::X509(der) => der,
            CertificateEntryRef::RawPublicKey(_) => return Err(self.reject(CertRejection::NotX509)),
        };
        let now = unix_now();
        if self.ca.not_after < now {
            return Err(self.reject(CertRejection::CaExpired {
                not_after: self.ca.not_after,
                now,
            }));
        }
        match self.inner.verify_certificate(transcript, cert) {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = self.diagnose(leaf);
                log::debug!("embedded-tls refused the certificate: {e:?}");
                Err(self.reject(reason))
            }
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        self.inner
            .verify_signature(verify)
            .map_err(|_| self.reject(CertRejection::ServerKeyMismatch))
    }
}

/// A readable label for a DER `Name`: its common name, or a note that it has none.
fn name_label(name_der: &[u8]) -> String {
    super::cert::name_common_name(name_der)
        .ok()
        .flatten()
        .unwrap_or_else(|| "(a name without CN)".to_string())
}

/// The same matching rule as embedded-tls (DNS SANs, then the CN; case-insensitive; one leading
/// `*` label), used only to explain a refusal.
fn names_match(leaf: &CertSummary, host: &str) -> bool {
    leaf.dns_names
        .iter()
        .chain(leaf.common_name.iter())
        .any(|name| name_matches(name, host))
}

fn name_matches(pattern: &str, host: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        match host.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && rest.eq_ignore_ascii_case(suffix) && suffix.contains('.')
            }
            None => false,
        }
    } else {
        pattern.eq_ignore_ascii_case(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matches_one_label_only() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.com", "example.com"));
        assert!(name_matches("Manager.Local", "manager.local"));
        assert!(name_matches("127.0.0.1", "127.0.0.1"));
        assert!(!name_matches("127.0.0.1", "127.0.0.2"));
    }

    #[test]
    fn overlong_hostname_is_refused_at_construction() {
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let host = "a".repeat(65);
        let err = PinnedCaVerifier::new(ca.der(), &host).err();
        assert_eq!(err, Some(CertRejection::HostnameTooLong { host }));
    }

    #[test]
    fn garbage_pinned_ca_is_refused_at_construction() {
        assert!(matches!(
            PinnedCaVerifier::new(b"junk", "h"),
            Err(CertRejection::Malformed { .. })
        ));
    }
}
