//! Just enough X.509 reading to explain a rejected certificate and to load PEM files.
//!
//! embedded-tls verifies certificates but answers every failure with the same
//! `InvalidCertificate`. To tell the operator *why* a manager was refused (wrong CA, expired, name
//! mismatch), we read the few fields that matter ourselves: issuer, subject, validity, common name
//! and DNS subject alternative names. This module never decides whether a certificate is trusted;
//! that is [`super::verify`]'s job. Every function here is total on untrusted bytes.

use der::asn1::{AnyRef, GeneralizedTime, UtcTime};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use std::path::Path;

/// The fields of a certificate that explain a verification result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// DER of the issuer `Name`.
    pub issuer: Vec<u8>,
    /// DER of the subject `Name`.
    pub subject: Vec<u8>,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: u64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: u64,
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// DNS names of the subjectAltName extension (IP entries are not listed: embedded-tls
    /// ignores them, so they cannot make a name match).
    pub dns_names: Vec<String>,
}

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Reads the summary of a DER certificate. Fails on anything that is not a well-formed
/// `Certificate` as far as these fields go.
pub fn summarize(cert_der: &[u8]) -> Result<CertSummary, der::Error> {
    let cert = AnyRef::from_der(cert_der)?;
    let tbs = cert.sequence(|r| {
        let tbs = AnyRef::decode(r)?;
        // signatureAlgorithm and signatureValue follow; they are not needed here.
        while !r.is_finished() {
            AnyRef::decode(r)?;
        }
        Ok(tbs)
    })?;
    tbs.sequence(read_tbs)
}

fn read_tbs(r: &mut SliceReader<'_>) -> Result<CertSummary, der::Error> {
    // An explicit `[0]` version may precede the serial number; neither is needed.
    if AnyRef::decode(r)?.tag() == context(0, true) {
        let _serial = AnyRef::decode(r)?;
    }
    let _signature_alg = AnyRef::decode(r)?;
    let issuer = tlv_of(r)?;
    let (not_before, not_after) =
        AnyRef::decode(r)?.sequence(|v| Ok((read_time(v)?, read_time(v)?)))?;
    let subject = tlv_of(r)?;
    let _spki = AnyRef::decode(r)?;
    let mut dns_names = Vec::new();
    while !r.is_finished() {
        let field = AnyRef::decode(r)?;
        if field.tag() == context(3, true) {
            dns_names = read_extensions(field.value())?;
        }
    }
    let common_name = name_common_name(&subject)?;
    Ok(CertSummary {
        issuer,
        subject,
        not_before,
        not_after,
        common_name,
        dns_names,
    })
}

fn context(number: u8, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: TagNumber::new(number),
    }
}

/// Reads one TLV and returns its complete encoding (tag, length and value).
fn tlv_of(r: &mut SliceReader<'_>) -> Result<Vec<u8>, der::Error> {
    Ok(r.tlv_bytes()?.to_vec())
}

fn read_time(r: &mut SliceReader<'_>) -> Result<u64, der::Error> {
    let any = AnyRef::decode(r)?;
    let duration = match any.tag() {
        Tag::UtcTime => any.decode_as::<UtcTime>()?.to_unix_duration(),
        _ => any.decode_as::<GeneralizedTime>()?.to_unix_duration(),
    };
    Ok(duration.as_secs())
}

/// The first common name of a DER `Name` (a SEQUENCE of SETs of {OID, value}).
pub fn name_common_name(name_der: &[u8]) -> Result<Option<String>, der::Error> {
    AnyRef::from_der(name_der)?.sequence(|rdns| {
        let mut found = None;
        while !rdns.is_finished() {
            let set = AnyRef::decode(rdns)?;
            let mut attrs = SliceReader::new(set.value())?;
            while !attrs.is_finished() {
                let (oid, value) = AnyRef::decode(&mut attrs)?
                    .sequence(|a| Ok((AnyRef::decode(a)?, AnyRef::decode(a)?)))?;
                if found.is_none()
                    && oid.tag() == Tag::ObjectIdentifier
                    && oid.value() == OID_COMMON_NAME
                {
                    found = Some(String::from_utf8_lossy(value.value()).into_owned());
                }
            }
        }
        Ok(found)
    })
}

/// DNS names of the subjectAltName extension, from the content of the `[3]` extensions field.
fn read_extensions(explicit: &[u8]) -> Result<Vec<String>, der::Error> {
    let mut names = Vec::new();
    AnyRef::from_der(explicit)?.sequence(|exts| {
        while !exts.is_finished() {
            AnyRef::decode(exts)?.sequence(|ext| {
                let oid = AnyRef::decode(ext)?;
                let mut value = AnyRef::decode(ext)?;
                if value.tag() == Tag::Boolean {
                    value = AnyRef::decode(ext)?; // the `critical` flag precedes the value
                }
                if oid.value() == OID_SUBJECT_ALT_NAME {
                    AnyRef::from_der(value.value())?.sequence(|general_names| {
                        while !general_names.is_finished() {
                            let name = AnyRef::decode(general_names)?;
                            if name.tag() == context(2, false) {
                                names.push(String::from_utf8_lossy(name.value()).into_owned());
                            }
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(names)
}

/// Why a PEM file could not be used.
#[derive(Debug)]
pub enum PemError {
    /// The file could not be read.
    Read { path: String, error: std::io::Error },
    /// The file holds no PEM block of the expected kind, or a broken one.
    Invalid { path: String, why: String },
}

impl std::fmt::Display for PemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemError::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            PemError::Invalid { path, why } => write!(f, "{path}: {why}"),
        }
    }
}

impl std::error::Error for PemError {}

/// Reads the first `CERTIFICATE` block of a PEM file and checks it parses as a certificate.
pub fn read_cert_pem(path: &Path) -> Result<Vec<u8>, PemError> {
    let text = read_text(path)?;
    cert_from_pem(&text).map_err(|why| PemError::Invalid {
        path: path.display().to_string(),
        why,
    })
}

/// The DER of the first `CERTIFICATE` block of PEM text, checked to parse as a certificate.
pub fn cert_from_pem(text: &str) -> Result<Vec<u8>, String> {
    let block = pem_blocks(text)
        .find(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| "no CERTIFICATE block".to_string())?;
    let (label, der) =
        der::pem::decode_vec(block.as_bytes()).map_err(|e| format!("bad PEM: {e}"))?;
    if label != "CERTIFICATE" {
        return Err(format!("expected a CERTIFICATE block, found {label}"));
    }
    summarize(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(der)
}

/// Encodes a DER certificate as PEM text.
pub fn cert_to_pem(der: &[u8]) -> String {
    // Encoding only fails for an invalid label or an impossible length; ours is constant.
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Reads a P-256 private key from a PEM file (`PRIVATE KEY` = PKCS#8, or `EC PRIVATE KEY` = SEC1).
pub fn read_key_pem(path: &Path) -> Result<p256::SecretKey, PemError> {
    use p256::pkcs8::DecodePrivateKey;
    let text = read_text(path)?;
    let invalid = |why: String| PemError::Invalid {
        path: path.display().to_string(),
        why,
    };
    for block in pem_blocks(&text) {
        if block.starts_with("-----BEGIN PRIVATE KEY-----") {
            return p256::SecretKey::from_pkcs8_pem(block)
                .map_err(|e| invalid(format!("not a P-256 PKCS#8 key: {e}")));
        }
        if block.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            return p256::SecretKey::from_sec1_pem(block)
                .map_err(|e| invalid(format!("not a P-256 SEC1 key: {e}")));
        }
    }
    Err(invalid("no PRIVATE KEY or EC PRIVATE KEY block".into()))
}

fn read_text(path: &Path) -> Result<String, PemError> {
    std::fs::read_to_string(path).map_err(|error| PemError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Splits PEM text into its `-----BEGIN …-----` … `-----END …-----` blocks (other text is ignored,
/// as OpenSSL does), so a file with a chain or with explanatory text still loads.
fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let after = &rest[start..];
        let end_marker = after.find("-----END ")?;
        let end = end_marker + after[end_marker + 9..].find("-----")? + 9 + 5;
        let block = &after[..end];
        rest = &after[end..];
        Some(block)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert(cn: &str, sans: &[&str]) -> Vec<u8> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2020, 1, 2);
        params.not_after = rcgen::date_time_ymd(2030, 3, 4);
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn summary_reads_names_and_validity() {
        let s = summarize(&cert(
            "manager.example",
            &["manager.example", "alt.example", "10.0.0.1"],
        ))
        .unwrap();
        assert_eq!(s.common_name.as_deref(), Some("manager.example"));
        assert_eq!(
            s.dns_names,
            vec!["manager.example".to_string(), "alt.example".to_string()]
        );
        assert_eq!(s.not_before, 1_577_923_200);
        assert_eq!(s.not_after, 1_898_812_800);
        assert_eq!(s.issuer, s.subject);
    }

    #[test]
    fn garbage_and_truncated_certificates_are_errors() {
        let der = cert("x", &[]);
        assert!(summarize(&der[..der.len() / 2]).is_err());
        assert!(summarize(b"not a certificate").is_err());
        assert!(summarize(&[]).is_err());
    }

    #[test]
    fn pem_round_trip_keeps_the_certificate() {
        let der = cert("x", &[]);
        let text = format!("comment line\n{}", cert_to_pem(&der));
        assert_eq!(cert_from_pem(&text).unwrap(), der);
    }

    #[test]
    fn pem_without_certificate_is_refused() {
        assert!(
            cert_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(cert_from_pem("nothing").is_err());
    }

    #[test]
    fn pkcs8_and_sec1_keys_load() {
        use p256::pkcs8::EncodePrivateKey;
        let dir = tempfile::tempdir().unwrap();
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let pkcs8 = key.to_pkcs8_pem(Default::default()).unwrap();
        let sec1 = key.to_sec1_pem(Default::default()).unwrap();
        std::fs::write(dir.path().join("a.pem"), pkcs8.as_bytes()).unwrap();
        std::fs::write(dir.path().join("b.pem"), sec1.as_bytes()).unwrap();
        assert_eq!(read_key_pem(&dir.path().join("a.pem")).unwrap(), key);
        assert_eq!(read_key_pem(&dir.path().join("b.pem")).unwrap(), key);
        let missing = read_key_pem(&dir.path().join("none.pem")).unwrap_err();
        assert!(missing.to_string().contains("none.pem"));
    }
}
