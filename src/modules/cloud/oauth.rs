//! Bearer tokens: Microsoft Entra ID client credentials (Log Analytics, Graph) and Google
//! service-account JWTs signed RS256 (Pub/Sub), kept until shortly before they expire. Also the
//! JSON request helper the token-authorized APIs share.

use super::config::AadApp;
use super::http::{url::encode, HttpClient, Request, Url};
use super::timefmt::now_secs;
use base64ct::{Base64UrlUnpadded, Encoding};
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// Largest token or API response read.
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;
/// A token is renewed this many seconds before it expires.
const RENEW_BEFORE: u64 = 120;

/// Tokens by source, kept between rounds.
#[derive(Default)]
pub struct Tokens {
    held: HashMap<String, (String, u64)>,
}

impl Tokens {
    /// A valid token for `key`, if one is held.
    pub fn get(&self, key: &str) -> Option<String> {
        let (token, expires) = self.held.get(key)?;
        (now_secs() + RENEW_BEFORE < *expires).then(|| token.clone())
    }

    /// Keeps `token` for `key` for `expires_in` seconds.
    pub fn put(&mut self, key: &str, token: &str, expires_in: u64) {
        self.held.insert(
            key.to_string(),
            (token.to_string(), now_secs() + expires_in),
        );
    }

    /// Forgets the token of `key` (refused by the API).
    pub fn forget(&mut self, key: &str) {
        self.held.remove(key);
    }
}

/// Sends a request with an optional bearer token and body (`application/json`, or a form when
/// `form` is set) and parses the JSON answer. Returns the status and the value (`Null` for an
/// empty body).
pub async fn call_json(
    http: &mut HttpClient,
    method: &str,
    url: &Url,
    target: String,
    bearer: Option<&str>,
    body: &[u8],
    form: bool,
) -> Result<(u16, Value), String> {
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    if let Some(token) = bearer {
        headers.push(("Authorization".into(), format!("Bearer {token}")));
    }
    if method == "POST" {
        let kind = if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        headers.push(("Content-Type".into(), kind.into()));
    }
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    let response = http
        .send(url, &request, MAX_RESPONSE)
        .await
        .map_err(|e| e.to_string())?;
    let value = if response.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&response.body).map_err(|e| {
            format!(
                "{}: HTTP {} with a body that is not JSON ({e}): {}",
                url.origin(),
                response.head.status,
                response.snippet(200)
            )
        })?
    };
    Ok((response.head.status, value))
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, false), encode(v, false)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Reads `access_token` and `expires_in` from a token endpoint's answer.
fn token_of(status: u16, value: &Value, endpoint: &str) -> Result<(String, u64), String> {
    let token = value["access_token"].as_str();
    match (status, token) {
        (200, Some(token)) => {
            // Entra ID v1 endpoints send `expires_in` as a string.
            let expires = value["expires_in"]
                .as_u64()
                .or_else(|| value["expires_in"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(3600);
            Ok((token.to_string(), expires))
        }
        _ => Err(format!(
            "token endpoint {endpoint}: HTTP {status}: {}",
            value["error_description"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no access_token in the answer")
        )),
    }
}

/// A token for `scope` by the client-credentials grant of `app`.
pub async fn client_credentials(
    http: &mut HttpClient,
    app: &AadApp,
    scope: &str,
) -> Result<(String, u64), String> {
    let url = Url::parse(&app.login_endpoint).map_err(|e| format!("login_endpoint {e}"))?;
    let target = format!(
        "{}/{}/oauth2/v2.0/token",
        url.path,
        encode(&app.tenant, false)
    );
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &app.client_id),
        ("client_secret", &app.client_secret.0),
        ("scope", scope),
    ]);
    let (status, value) = call_json(http, "POST", &url, target, None, &body, true).await?;
    token_of(status, &value, &url.origin())
}

/// The token held under `key`, or a new one for `endpoint`'s `.default` scope by the
/// client-credentials grant of `app` (then held until it expires).
pub async fn app_token(
    http: &mut HttpClient,
    tokens: &mut Tokens,
    key: &str,
    app: &AadApp,
    endpoint: &str,
) -> Result<String, String> {
    if let Some(token) = tokens.get(key) {
        return Ok(token);
    }
    let scope = format!("{}/.default", endpoint.trim_end_matches('/'));
    let (token, expires) = client_credentials(http, app, &scope).await?;
    tokens.put(key, &token, expires);
    Ok(token)
}

/// A Google service-account key file (the fields used).
#[derive(Deserialize)]
pub struct ServiceAccount {
    /// The account's e-mail, the JWT issuer.
    pub client_email: String,
    /// PKCS#8 PEM private key (RSA).
    pub private_key: String,
    /// Key id, put in the JWT header.
    #[serde(default)]
    pub private_key_id: String,
    /// Token endpoint.
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccount {
    /// Reads a key file.
    pub fn load(path: &Path) -> Result<ServiceAccount, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a service-account key file: {e}", path.display()))
    }

    /// A signed JWT asserting this account for `scope` at `audience`, valid one hour from `now`.
    pub fn assertion(&self, scope: &str, audience: &str, now: u64) -> Result<String, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(self.private_key.as_bytes())
            .map_err(|e| format!("service account {}: private_key: {e}", self.client_email))?;
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("service account {}: not an RSA key: {e}", self.client_email))?;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id});
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
        });
        let signed = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let mut signature = vec![0u8; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .map_err(|_| format!("service account {}: signing failed", self.client_email))?;
        Ok(format!(
            "{signed}.{}",
            Base64UrlUnpadded::encode_string(&signature)
        ))
    }
}

/// A token for `scope` by the JWT-bearer grant of a service account.
pub async fn service_account_token(
    http: &mut HttpClient,
    account: &ServiceAccount,
    token_uri: &str,
    scope: &str,
) -> Result<(String, u64), String> {
    let url = Url::parse(token_uri).map_err(|e| format!("token_uri {e}"))?;
    let assertion = account.assertion(scope, token_uri, now_secs())?;
    let body = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &assertion),
    ]);
    let target = if url.path.is_empty() {
        "/".to_string()
    } else {
        url.path.clone()
    };
    let (status, value) = call_json(http, "POST", &url, target, None, &body, true).await?;
    token_of(status, &value, &url.origin())
}
