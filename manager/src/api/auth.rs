//! API users, logins and the bearer check.
//!
//! Users and their argon2 password hashes live in `manager.db`; there are no fixed default
//! credentials: on first start the `wazuh` user gets a random password, written to
//! `DIR/api-admin.txt` (mode 0600, `user:password`) and returned once to the caller to print.
//! The token signing key is random, made on first start and kept in the database, so tokens
//! survive a restart of the manager.
//!
//! Password checks are deliberately slow (argon2), so they run off the executor threads, at most
//! [`HASHING_SLOTS`] at a time; an unknown user costs the same check as a known one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64ct::{Base64, Encoding};
use rand_core::{OsRng, RngCore};
use smol::lock::Semaphore;

use super::jwt::{self, TokenError};
use super::limiter::LoginLimiter;
use super::reply::ApiError;
use crate::config::ApiOptions;
use crate::model::now_ms;
use crate::store::Store;
use crate::ManagerError;

/// The API user created at first start (Wazuh's API superuser name).
pub const ADMIN_USER: &str = "wazuh";
/// File in the data directory holding `user:password` of that user.
pub const ADMIN_FILE: &str = "api-admin.txt";
/// Password checks running at once.
const HASHING_SLOTS: usize = 2;
/// Length of generated passwords (alphanumeric, about 190 bits).
const PASSWORD_LEN: usize = 32;
/// Name of the signing key in `api_settings`.
const SIGNING_KEY: &str = "jwt_signing_key";

/// The account made at first start (or given a new password), for the operator.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiCredentials {
    /// User name (`wazuh`).
    pub user: String,
    /// Its generated password.
    pub password: String,
    /// The 0600 file that holds `user:password`.
    pub file: PathBuf,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("file", &self.file)
            .finish()
    }
}

/// Users, the signing key and the login guard.
pub(crate) struct Auth {
    secret: Vec<u8>,
    users: HashMap<String, String>,
    lifetime_secs: u64,
    limiter: LoginLimiter,
    hashing: Arc<Semaphore>,
}

impl Auth {
    /// Loads users and the signing key, creating the admin user and the key on first start.
    /// Blocks on the store: call it before serving.
    pub(crate) fn open(
        store: &Store,
        data_dir: &Path,
        opts: &ApiOptions,
    ) -> Result<(Auth, Option<ApiCredentials>), ManagerError> {
        let secret = match store.call_blocking(|db| db.api_setting(SIGNING_KEY))? {
            Some(key) if key.len() >= 32 => key,
            _ => {
                let mut key = vec![0u8; 32];
                OsRng.fill_bytes(&mut key);
                let stored = key.clone();
                store.call_blocking(move |db| db.put_api_setting(SIGNING_KEY, &stored))?;
                key
            }
        };
        let mut first = None;
        let mut users: HashMap<String, String> = store
            .call_blocking(|db| db.api_users())?
            .into_iter()
            .collect();
        if users.is_empty() || opts.reset_admin_password {
            let password = generate_password();
            let hash = hash_password(&password)?;
            let file = data_dir.join(ADMIN_FILE);
            // The file first: if it cannot be written, no user exists and the next start retries.
            crate::certs::write_file(
                &file,
                format!("{ADMIN_USER}:{password}\n").as_bytes(),
                0o600,
            )?;
            let stored = hash.clone();
            store.call_blocking(move |db| db.put_api_user(ADMIN_USER, &stored, now_ms()))?;
            log::info!(
                "api: new password for user {ADMIN_USER}; it is in {}",
                file.display()
            );
            users.insert(ADMIN_USER.to_string(), hash);
            first = Some(ApiCredentials {
                user: ADMIN_USER.to_string(),
                password,
                file,
            });
        }
        let auth = Auth {
            secret,
            users,
            lifetime_secs: opts.token_timeout.as_secs().max(1),
            limiter: LoginLimiter::new(opts.max_login_attempts, opts.block_time),
            hashing: Arc::new(Semaphore::new(HASHING_SLOTS)),
        };
        Ok((auth, first))
    }

    /// 403 when `ip` is blocked after too many failed logins.
    pub(crate) fn check_not_blocked(&self, ip: IpAddr) -> Result<(), ApiError> {
        if self.limiter.is_blocked(ip, Instant::now()) {
            return Err(ApiError::wazuh(6000, None));
        }
        Ok(())
    }

    /// Checks HTTP Basic credentials and returns a new token; a failure counts against `ip`.
    pub(crate) async fn login(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
    ) -> Result<String, ApiError> {
        let failed = || {
            self.limiter.failed(ip, Instant::now());
            log::warn!("api: {ip}: failed login");
            ApiError::unauthorized("Invalid credentials")
        };
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Err(failed());
        };
        // An unknown user is checked against a real hash too, so timing does not tell users apart.
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => match self.users.values().next() {
                Some(any) => (any.clone(), false),
                None => return Err(failed()),
            },
        };
        let permit = self.hashing.acquire_arc().await;
        let matches = smol::unblock(move || {
            let ok = verify_password(&password, &hash);
            drop(permit);
            ok
        })
        .await;
        if !(matches && known) {
            return Err(failed());
        }
        let now = now_ms() / 1000;
        log::info!("api: {ip}: user {user} logged in");
        Ok(jwt::issue(&self.secret, &user, now, self.lifetime_secs))
    }

    /// Checks an `Authorization: Bearer` header and returns the token's user.
    pub(crate) fn check_bearer(&self, authorization: Option<&str>) -> Result<String, ApiError> {
        let token = authorization
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let Some(token) = token else {
            return Err(ApiError::unauthorized("No authorization token provided"));
        };
        match jwt::verify(&self.secret, token, now_ms() / 1000, self.lifetime_secs) {
            Ok(user) if self.users.contains_key(&user) => Ok(user),
            Ok(_) | Err(TokenError::Invalid) => Err(ApiError::unauthorized("Invalid token")),
            Err(TokenError::Outdated) => Err(ApiError::unauthorized("Token expired")),
        }
    }
}

/// `user` and `password` of an `Authorization: Basic …` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Base64::decode_vec(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A random alphanumeric password.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(PASSWORD_LEN);
    while out.len() < PASSWORD_LEN {
        let mut byte = [0u8; 1];
        OsRng.fill_bytes(&mut byte);
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) < 256 - 256 % ALPHABET.len() {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    out
}

/// The argon2id PHC string of `password` with a random salt.
pub(crate) fn hash_password(password: &str) -> Result<String, ManagerError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ManagerError::Config(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ManagerError::Config(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_same_password() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret ", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn basic_header_is_decoded_with_colons_kept_in_the_password() {
        let header = format!("Basic {}", Base64::encode_string(b"wazuh:a:b"));
        assert_eq!(
            basic_credentials(&header),
            Some(("wazuh".into(), "a:b".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic %%%"), None);
    }
}
