//! The manager's certificates: its own CA and server certificate (created on first start in the
//! data directory), or the operator's files.
//!
//! The CA that agents pin signs manager server certificates and nothing else: the agent's TLS
//! verifier checks no key usage or CA flag, so any certificate this CA signed could pose as the
//! manager. Agent credentials therefore never come from it.
//!
//! The agent's verifier (embedded-tls) matches the name it dialled against the CN and the first
//! three DNS-name SANs only, and never against IP SANs. So every IPv4 literal is written both as an
//! IP SAN (for curl, rustls and browsers) and as a DNS-name SAN, the CN is the first `--name`, and
//! the DNS-name SANs list the other names first.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::{ManagerError, ManagerOptions};

/// Days a generated server certificate is valid (the CA/Browser Forum's old maximum).
const SERVER_CERT_DAYS: i64 = 825;
/// A server certificate closer than this to its expiry is replaced at start.
const RENEW_BEFORE_DAYS: i64 = 30;
/// Days the generated CA is valid.
const CA_DAYS: i64 = 3650;
/// Subject of the generated CA. Fixed: the issuer of new server certificates is rebuilt from it.
const CA_COMMON_NAME: &str = "gatewatch manager CA";
/// How many DNS-name SANs the agent's verifier reads.
const AGENT_VERIFIER_DNS_SANS: usize = 3;

/// The certificates and key the TLS services use.
pub(crate) struct TlsMaterial {
    /// The server certificate alone: agents accept only a one-certificate chain.
    pub leaf: CertificateDer<'static>,
    /// The server certificate's private key.
    pub key: PrivateKeyDer<'static>,
    /// DER of the CA that signed `leaf`, handed to agents at enrollment.
    pub ca_der: CertificateDer<'static>,
    /// Where that CA is stored as PEM.
    pub ca_pem_path: PathBuf,
}

/// Loads the operator's certificates, or creates/renews the manager's own in the data directory.
pub(crate) fn prepare(opts: &ManagerOptions) -> Result<TlsMaterial, ManagerError> {
    match (&opts.server_cert, &opts.server_key, &opts.ca_cert) {
        (Some(cert), Some(key), Some(ca)) => load(cert, key, ca, None),
        _ => {
            let names = opts.effective_names();
            ensure_generated(&opts.data_dir, &names)?;
            let dir = &opts.data_dir;
            load(
                &dir.join("server.pem"),
                &dir.join("server.key"),
                &dir.join("ca.pem"),
                Some(&names),
            )
        }
    }
}

/// Creates the CA if it is missing, and the server certificate if it is missing, was issued for
/// other names, expires soon, or the CA is new.
fn ensure_generated(dir: &Path, names: &[String]) -> Result<(), ManagerError> {
    let (ca_pem, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let mut ca_created = false;
    let ca_key_pair = match (ca_pem.exists(), ca_key.exists()) {
        (true, true) => {
            let pem = fs::read_to_string(&ca_key)
                .map_err(|e| ManagerError::file(&ca_key, "cannot read", e))?;
            KeyPair::from_pem(&pem)
                .map_err(|e| ManagerError::cert(format!("CA key {}", ca_key.display()), e))?
        }
        (false, false) => {
            ca_created = true;
            create_ca(&ca_pem, &ca_key)?
        }
        // Never replace half of a CA that agents may have pinned: the operator must decide.
        _ => {
            return Err(ManagerError::Config(format!(
                "{} and {} must both exist (or both be absent to create a new CA)",
                ca_pem.display(),
                ca_key.display()
            )))
        }
    };
    let meta_path = dir.join("server.names");
    let now = time::OffsetDateTime::now_utc();
    let up_to_date = !ca_created
        && dir.join("server.pem").exists()
        && dir.join("server.key").exists()
        && fs::read_to_string(&meta_path)
            .ok()
            .and_then(|text| parse_meta(&text))
            .is_some_and(|(not_after, old)| {
                old == names && not_after > now.unix_timestamp() + RENEW_BEFORE_DAYS * 86_400
            });
    if up_to_date {
        return Ok(());
    }
    log::info!("issuing the server certificate for {names:?}");
    let issuer = Issuer::new(ca_params(now), ca_key_pair);
    let params = server_params(names, now)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ManagerError::cert("server key", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| ManagerError::cert("server certificate", e))?;
    write_file(
        &dir.join("server.key"),
        key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&dir.join("server.pem"), cert.pem().as_bytes(), 0o644)?;
    write_file(
        &meta_path,
        format_meta(params.not_after.unix_timestamp(), names).as_bytes(),
        0o644,
    )
}

fn create_ca(pem_path: &Path, key_path: &Path) -> Result<KeyPair, ManagerError> {
    log::info!("creating the manager CA in {}", pem_path.display());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ManagerError::cert("CA key", e))?;
    let cert = ca_params(time::OffsetDateTime::now_utc())
        .self_signed(&key)
        .map_err(|e| ManagerError::cert("CA certificate", e))?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(pem_path, cert.pem().as_bytes(), 0o644)?;
    Ok(key)
}

/// Parameters of the CA. Also the issuer description when signing: only the subject, the key
/// identifier method and the key usages are taken from it, and those never change.
fn ca_params(now: time::OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "gatewatch");
    p.distinguished_name = dn;
    // Path length 0: this CA signs leaf certificates only.
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(CA_DAYS);
    p
}

fn server_params(
    names: &[String],
    now: time::OffsetDateTime,
) -> Result<CertificateParams, ManagerError> {
    let first = names
        .first()
        .ok_or_else(|| ManagerError::Config("the server certificate needs a name".into()))?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    p.distinguished_name = dn;
    p.subject_alt_names = server_sans(names)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(SERVER_CERT_DAYS);
    Ok(p)
}

/// DNS-name SANs (other names first, the CN last, IPv6 literals never: the agent's verifier
/// refuses `:`), then IP SANs for every IP literal.
fn server_sans(names: &[String]) -> Result<Vec<SanType>, ManagerError> {
    let mut dns: Vec<&str> = names.iter().skip(1).map(String::as_str).collect();
    dns.extend(names.first().map(String::as_str));
    dns.retain(|n| !matches!(n.parse::<IpAddr>(), Ok(IpAddr::V6(_))));
    dns.dedup();
    if dns.len() > AGENT_VERIFIER_DNS_SANS + 1 {
        log::warn!(
            "agents match only the CN and the first {AGENT_VERIFIER_DNS_SANS} DNS names: {:?} work for them",
            &names[..names.len().min(AGENT_VERIFIER_DNS_SANS + 1)]
        );
    }
    let mut sans = Vec::new();
    for name in dns {
        let ia5 = name
            .try_into()
            .map_err(|e| ManagerError::cert(format!("server name {name:?}"), e))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(
        names
            .iter()
            .filter_map(|n| n.parse::<IpAddr>().ok())
            .map(SanType::IpAddress),
    );
    Ok(sans)
}

fn format_meta(not_after: i64, names: &[String]) -> String {
    let mut text = format!("not_after {not_after}\n");
    for n in names {
        text.push_str(n);
        text.push('\n');
    }
    text
}

fn parse_meta(text: &str) -> Option<(i64, Vec<String>)> {
    let mut lines = text.lines();
    let not_after = lines.next()?.strip_prefix("not_after ")?.parse().ok()?;
    Some((not_after, lines.map(str::to_string).collect()))
}

/// Reads the certificate, key and CA, and checks that the certificate chains to the CA (and, for
/// generated certificates, that it is valid for every name).
fn load(
    cert: &Path,
    key: &Path,
    ca: &Path,
    names: Option<&[String]>,
) -> Result<TlsMaterial, ManagerError> {
    let mut chain = read_certs(cert)?;
    if chain.len() > 1 {
        log::warn!(
            "{}: sending only the first certificate; agents accept no intermediates",
            cert.display()
        );
    }
    let leaf = chain.swap_remove(0);
    let ca_der = read_certs(ca)?.swap_remove(0);
    let key_pem = fs::read(key).map_err(|e| ManagerError::file(key, "cannot read", e))?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ManagerError::cert(format!("private key {}", key.display()), e))?
        .ok_or_else(|| {
            ManagerError::cert(
                format!("private key {}", key.display()),
                "no PEM private key found",
            )
        })?;
    check_chain(&leaf, &ca_der, names).map_err(|e| {
        ManagerError::cert(
            format!(
                "server certificate {} with CA {}",
                cert.display(),
                ca.display()
            ),
            e,
        )
    })?;
    Ok(TlsMaterial {
        leaf,
        key: key_der,
        ca_der,
        ca_pem_path: ca.to_path_buf(),
    })
}

/// Every certificate in a PEM file (at least one).
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ManagerError> {
    let pem = fs::read(path).map_err(|e| ManagerError::file(path, "cannot read", e))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ManagerError::cert(format!("certificate file {}", path.display()), e))?;
    if certs.is_empty() {
        return Err(ManagerError::cert(
            format!("certificate file {}", path.display()),
            "no PEM certificate found",
        ));
    }
    Ok(certs)
}

fn check_chain(
    leaf: &CertificateDer<'_>,
    ca: &CertificateDer<'static>,
    names: Option<&[String]>,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| format!("unusable CA: {e}"))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let placeholder = ["gatewatch.invalid".to_string()];
    let (names, check_names) = match names {
        Some(n) => (n, true),
        None => (&placeholder[..], false),
    };
    for name in names {
        let server_name =
            ServerName::try_from(name.as_str()).map_err(|e| format!("name {name:?}: {e}"))?;
        let result = verifier.verify_server_cert(leaf, &[], &server_name, &[], UnixTime::now());
        match result {
            Ok(_) => {}
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !check_names => {}
            Err(e) => return Err(format!("not valid for {name:?}: {e}")),
        }
    }
    Ok(())
}

/// Writes a file atomically (temporary file, fsync, rename) with the given permissions.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ManagerError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from a crash may have other permissions: start from a new file.
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| ManagerError::file(&tmp, "cannot create", e))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| ManagerError::file(&tmp, "cannot write", e))?;
    fs::rename(&tmp, path).map_err(|e| ManagerError::file(path, "cannot replace", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn opts(dir: &Path, names: &[&str]) -> ManagerOptions {
        let mut o = ManagerOptions::new(dir);
        o.names = names.iter().map(|s| s.to_string()).collect();
        o
    }

    #[test]
    fn first_start_creates_ca_and_server_files_with_private_keys_0600() {
        let dir = tempfile::tempdir().unwrap();
        prepare(&opts(dir.path(), &["gw.example", "127.0.0.1"])).unwrap();
        for (file, mode) in [
            ("ca.pem", 0o644),
            ("ca.key", 0o600),
            ("server.pem", 0o644),
            ("server.key", 0o600),
        ] {
            let meta = fs::metadata(dir.path().join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
        }
    }

    #[test]
    fn restart_with_same_names_keeps_ca_and_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = prepare(&opts(dir.path(), &["gw.example"])).unwrap();
        let b = prepare(&opts(dir.path(), &["gw.example"])).unwrap();
        assert_eq!(a.ca_der, b.ca_der);
        assert_eq!(a.leaf, b.leaf);
    }

    #[test]
    fn changed_names_reissue_the_server_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let a = prepare(&opts(dir.path(), &["gw.example"])).unwrap();
        let b = prepare(&opts(dir.path(), &["other.example", "10.1.2.3"])).unwrap();
        assert_eq!(a.ca_der, b.ca_der);
        assert_ne!(a.leaf, b.leaf);
    }

    #[test]
    fn ipv4_literal_is_both_an_ip_and_a_dns_name_san() {
        let sans = server_sans(&["gw".into(), "10.1.2.3".into(), "::1".into()]).unwrap();
        let dns: Vec<String> = sans
            .iter()
            .filter_map(|s| match s {
                SanType::DnsName(n) => Some(n.as_str().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(dns, vec!["10.1.2.3", "gw"]);
        assert!(sans.contains(&SanType::IpAddress("10.1.2.3".parse().unwrap())));
        assert!(sans.contains(&SanType::IpAddress("::1".parse().unwrap())));
    }

    #[test]
    fn lone_ca_certificate_without_its_key_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        prepare(&opts(dir.path(), &["gw.example"])).unwrap();
        fs::remove_file(dir.path().join("ca.key")).unwrap();
        let err = prepare(&opts(dir.path(), &["gw.example"]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ca.key"), "{err}");
    }

    #[test]
    fn operator_certificate_from_another_ca_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        prepare(&opts(a.path(), &["gw.example"])).unwrap();
        prepare(&opts(b.path(), &["gw.example"])).unwrap();
        let mut o = ManagerOptions::new(a.path());
        o.server_cert = Some(a.path().join("server.pem"));
        o.server_key = Some(a.path().join("server.key"));
        o.ca_cert = Some(b.path().join("ca.pem"));
        assert!(prepare(&o).is_err());
    }
}
