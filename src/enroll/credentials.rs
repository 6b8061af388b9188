//! The agent's identity on disk: `client.keys` (Wazuh format) and `manager-ca.pem`.
//!
//! Both files live in the state directory and are created with mode 0600 (never wider, not even
//! for a moment: the temporary file is created with that mode, then renamed over the old one).
//! The CA is written before `client.keys`, so a crash in between leaves no key without its CA.
//! Nothing here logs the key.

use crate::tls::cert;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name of the key file in the state directory.
pub const KEYS_FILE: &str = "client.keys";
/// Name of the pinned manager CA in the state directory.
pub const CA_FILE: &str = "manager-ca.pem";

/// What the agent needs to open a session with its manager.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The id the manager assigned (shown as `001`).
    pub agent_id: u32,
    /// The agent's registered name.
    pub name: String,
    /// The address the agent is registered from (`any` when enrolled by gatewatch).
    pub ip: String,
    /// The shared secret; the session proves it holds it without sending it.
    pub key: String,
    /// DER of the CA that signs the manager's certificates (pinned).
    pub manager_ca_der: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("agent_id", &self.agent_id)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("key", &"<redacted>")
            .field(
                "manager_ca_der",
                &format_args!("{} bytes", self.manager_ca_der.len()),
            )
            .finish()
    }
}

/// Why credentials could not be read, written or imported.
#[derive(Debug)]
pub enum CredentialsError {
    /// A file or directory could not be read or written.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file exists but its content is not valid.
    Malformed { path: PathBuf, why: String },
    /// A key given on the command line is not a valid Wazuh agent key.
    InvalidKey { why: String },
    /// The CA file given for an import is unusable.
    Ca(cert::PemError),
}

impl std::fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialsError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CredentialsError::Malformed { path, why } => write!(f, "{}: {why}", path.display()),
            CredentialsError::InvalidKey { why } => write!(f, "invalid agent key: {why}"),
            CredentialsError::Ca(e) => write!(f, "manager CA: {e}"),
        }
    }
}

impl std::error::Error for CredentialsError {}

impl Credentials {
    /// The `client.keys` line: `ID NAME IP KEY`, the id zero-padded to three digits.
    pub fn keys_line(&self) -> String {
        format!(
            "{} {} {} {}",
            gatewatch_proto::format_agent_id(self.agent_id),
            self.name,
            self.ip,
            self.key
        )
    }

    /// Reads the credentials of `state_dir`: `None` when the agent has never been enrolled (no
    /// `client.keys`), an error naming the file when a file is unreadable or malformed.
    pub fn load(state_dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
        let keys_path = state_dir.join(KEYS_FILE);
        let text = match std::fs::read_to_string(&keys_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(CredentialsError::Io {
                    path: keys_path,
                    error,
                })
            }
        };
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let malformed = |why: String| CredentialsError::Malformed {
            path: keys_path.clone(),
            why,
        };
        let line = lines
            .next()
            .ok_or_else(|| malformed("the file is empty".into()))?;
        if lines.next().is_some() {
            return Err(malformed("expected a single `ID NAME IP KEY` line".into()));
        }
        let (agent_id, name, ip, key) = parse_keys_line(line).map_err(malformed)?;
        let ca_path = state_dir.join(CA_FILE);
        let ca_text = match std::fs::read_to_string(&ca_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CredentialsError::Malformed {
                    path: ca_path,
                    why: format!("missing while {KEYS_FILE} exists: enroll again, or import the key with the manager's CA"),
                })
            }
            Err(error) => return Err(CredentialsError::Io { path: ca_path, error }),
        };
        let manager_ca_der = cert::cert_from_pem(&ca_text)
            .map_err(|why| CredentialsError::Malformed { path: ca_path, why })?;
        Ok(Some(Credentials {
            agent_id,
            name,
            ip,
            key,
            manager_ca_der,
        }))
    }

    /// Writes `manager-ca.pem`, then `client.keys`, each with mode 0600 (the state directory is
    /// created with mode 0700 if missing).
    pub fn save(&self, state_dir: &Path) -> Result<(), CredentialsError> {
        if let Err(error) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
        {
            return Err(CredentialsError::Io {
                path: state_dir.to_path_buf(),
                error,
            });
        }
        write_private(
            &state_dir.join(CA_FILE),
            cert::cert_to_pem(&self.manager_ca_der).as_bytes(),
        )?;
        write_private(
            &state_dir.join(KEYS_FILE),
            format!("{}\n", self.keys_line()).as_bytes(),
        )?;
        sync_dir(state_dir);
        Ok(())
    }
}

/// Imports a key made by the manager's API (`POST /agents`; Wazuh format: base64 of
/// `ID NAME IP KEY`) with the manager's CA from `ca_pem`, and stores both in `state_dir`.
pub fn import_key(
    state_dir: &Path,
    wazuh_key_b64: &str,
    ca_pem: &Path,
) -> Result<Credentials, CredentialsError> {
    use base64ct::{Base64, Encoding};
    let decoded =
        Base64::decode_vec(wazuh_key_b64.trim()).map_err(|_| CredentialsError::InvalidKey {
            why: "not base64".into(),
        })?;
    let text = String::from_utf8(decoded).map_err(|_| CredentialsError::InvalidKey {
        why: "not text".into(),
    })?;
    let (agent_id, name, ip, key) =
        parse_keys_line(text.trim()).map_err(|why| CredentialsError::InvalidKey { why })?;
    let manager_ca_der = cert::read_cert_pem(ca_pem).map_err(CredentialsError::Ca)?;
    let credentials = Credentials {
        agent_id,
        name,
        ip,
        key,
        manager_ca_der,
    };
    credentials.save(state_dir)?;
    Ok(credentials)
}

/// Parses `ID NAME IP KEY`.
pub fn parse_keys_line(line: &str) -> Result<(u32, String, String, String), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [id, name, ip, key] = fields[..] else {
        return Err(format!(
            "expected 4 fields `ID NAME IP KEY`, found {}",
            fields.len()
        ));
    };
    let agent_id = match id.parse::<u32>() {
        Ok(0) => return Err("agent id 000 is the manager's own".into()),
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(format!("agent id {id:?} is not a number")),
    };
    validate_name(name)?;
    validate_key(key)?;
    Ok((agent_id, name.to_string(), ip.to_string(), key.to_string()))
}

/// Agent names as Wazuh accepts them: 1 to 128 characters of `[A-Za-z0-9._-]`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "agent name {name:?} must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
        ))
    }
}

/// Keys are printable ASCII without spaces, 16 to 256 characters (Wazuh issues 64 hex digits).
pub fn validate_key(key: &str) -> Result<(), String> {
    if (16..=256).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err("the key must be 16 to 256 printable characters without spaces".into())
    }
}

/// Writes `bytes` to `path` through a temporary file created with mode 0600, then renamed.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CredentialsError> {
    let io = |error| CredentialsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    // A leftover from a crash may have another mode; start afresh so `mode` applies.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Makes the renames durable; failure only costs durability, so it is logged.
fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("cannot sync {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn ca_der() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec()
    }

    fn sample() -> Credentials {
        Credentials {
            agent_id: 7,
            name: "gw-01".into(),
            ip: "any".into(),
            key: "a".repeat(64),
            manager_ca_der: ca_der(),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn saved_credentials_load_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let creds = sample();
        creds.save(dir.path()).unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), Some(creds));
    }

    #[test]
    fn credential_files_are_created_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        sample().save(&state).unwrap();
        assert_eq!(mode(&state.join(KEYS_FILE)), 0o600);
        assert_eq!(mode(&state.join(CA_FILE)), 0o600);
        assert_eq!(mode(&state), 0o700);
    }

    #[test]
    fn saving_over_a_world_readable_file_leaves_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join(KEYS_FILE);
        std::fs::write(&keys, "old").unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        sample().save(dir.path()).unwrap();
        assert_eq!(mode(&keys), 0o600);
    }

    #[test]
    fn keys_file_uses_the_wazuh_line_format() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert_eq!(text, format!("007 gw-01 any {}\n", "a".repeat(64)));
    }

    #[test]
    fn missing_keys_file_means_not_enrolled() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), None);
    }

    #[test]
    fn malformed_keys_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), "001 gw-01 any\n").unwrap();
        let err = Credentials::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("client.keys") && err.contains("4 fields"),
            "{err}"
        );
    }

    #[test]
    fn keys_without_ca_is_an_error_naming_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(CA_FILE)).unwrap();
        let err = Credentials::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("manager-ca.pem") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn wazuh_key_import_stores_the_identity_and_the_ca() {
        use base64ct::{Base64, Encoding};
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        let ca = ca_der();
        std::fs::write(&ca_path, cert::cert_to_pem(&ca)).unwrap();
        let key = "0123456789abcdef".repeat(4);
        let b64 = Base64::encode_string(format!("042 edge-gw 10.0.0.9 {key}").as_bytes());
        let state = dir.path().join("state");
        let creds = import_key(&state, &b64, &ca_path).unwrap();
        assert_eq!(
            (creds.agent_id, creds.name.as_str(), creds.ip.as_str()),
            (42, "edge-gw", "10.0.0.9")
        );
        assert_eq!(creds.key, key);
        assert_eq!(creds.manager_ca_der, ca);
        assert_eq!(Credentials::load(&state).unwrap(), Some(creds));
    }

    #[test]
    fn invalid_wazuh_keys_are_refused_and_nothing_is_written() {
        use base64ct::{Base64, Encoding};
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, cert::cert_to_pem(&ca_der())).unwrap();
        let state = dir.path().join("state");
        for bad in [
            "%%%".to_string(),
            Base64::encode_string(b"001 gw any"),
            Base64::encode_string(b"000 m any 0123456789abcdef0"),
        ] {
            assert!(
                matches!(
                    import_key(&state, &bad, &ca_path),
                    Err(CredentialsError::InvalidKey { .. })
                ),
                "{bad}"
            );
        }
        assert!(!state.exists());
    }

    #[test]
    fn import_with_an_unreadable_ca_names_the_ca_file() {
        use base64ct::{Base64, Encoding};
        let dir = tempfile::tempdir().unwrap();
        let b64 = Base64::encode_string(format!("001 gw any {}", "k".repeat(32)).as_bytes());
        let err = import_key(dir.path(), &b64, &dir.path().join("nope.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.pem"), "{err}");
    }
}
