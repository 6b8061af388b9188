//! API tokens: JSON Web Tokens signed with HMAC-SHA256 under a key only the manager holds, with
//! Wazuh's claim names (`iss`, `aud`, `nbf`, `exp`, `sub`, `run_as`, `rbac_roles`, `rbac_mode`).
//!
//! Clients treat the token as opaque; the manager checks the signature (HS256 only: a token
//! naming another algorithm, `none` included, is invalid), the audience, the issuer and the
//! expiry. A token whose lifetime differs from the configured one was issued under another
//! security configuration and is reported as expired, as Wazuh does.

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// `iss` of every token.
const ISSUER: &str = "wazuh";
/// `aud` of every token, checked on use.
const AUDIENCE: &str = "Wazuh API REST";
/// The only header this manager issues and accepts.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// Malformed, forged, of another audience, or past its expiry.
    Invalid,
    /// Issued with another lifetime than the current one (the configuration changed).
    Outdated,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// A token for `user`, valid from `now` (seconds since the epoch) for `lifetime` seconds.
pub(crate) fn issue(secret: &[u8], user: &str, now: u64, lifetime: u64) -> String {
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "nbf": now,
        "exp": now + lifetime,
        "sub": user,
        "run_as": false,
        "rbac_roles": [1],
        "rbac_mode": "white",
    });
    let signing_input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(HEADER.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    );
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = Base64UrlUnpadded::encode_string(&m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks `token` at `now` and returns its user.
pub(crate) fn verify(
    secret: &[u8],
    token: &str,
    now: u64,
    lifetime: u64,
) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let signature = Base64UrlUnpadded::decode_vec(signature).map_err(|_| TokenError::Invalid)?;
    let mut m = mac(secret);
    m.update(header.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| TokenError::Invalid)?;
    let header = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(TokenError::Invalid);
    }
    let claims = decode_json(payload)?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let number = |k: &str| claims.get(k).and_then(Value::as_u64);
    let (Some(nbf), Some(exp), Some(user)) = (number("nbf"), number("exp"), text("sub")) else {
        return Err(TokenError::Invalid);
    };
    if text("aud") != Some(AUDIENCE) || text("iss") != Some(ISSUER) || now >= exp || nbf > now + 60
    {
        return Err(TokenError::Invalid);
    }
    if exp.checked_sub(nbf) != Some(lifetime) {
        return Err(TokenError::Outdated);
    }
    Ok(user.to_string())
}

fn decode_json(part: &str) -> Result<Value, TokenError> {
    let bytes = Base64UrlUnpadded::decode_vec(part).map_err(|_| TokenError::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_token_is_accepted_until_it_expires() {
        let t = issue(KEY, "wazuh", 1000, 900);
        assert_eq!(verify(KEY, &t, 1000, 900), Ok("wazuh".into()));
        assert_eq!(verify(KEY, &t, 1899, 900), Ok("wazuh".into()));
        assert_eq!(verify(KEY, &t, 1900, 900), Err(TokenError::Invalid));
    }

    #[test]
    fn token_signed_with_another_key_is_invalid() {
        let t = issue(b"another key", "wazuh", 1000, 900);
        assert_eq!(verify(KEY, &t, 1000, 900), Err(TokenError::Invalid));
    }

    #[test]
    fn altered_claims_break_the_signature() {
        let t = issue(KEY, "wazuh", 1000, 900);
        let parts: Vec<&str> = t.split('.').collect();
        let forged = Base64UrlUnpadded::encode_string(
            br#"{"iss":"wazuh","aud":"Wazuh API REST","nbf":1000,"exp":99999999999,"sub":"wazuh"}"#,
        );
        let t2 = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(verify(KEY, &t2, 1000, 900), Err(TokenError::Invalid));
    }

    #[test]
    fn unsigned_token_is_invalid() {
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = Base64UrlUnpadded::encode_string(
            br#"{"iss":"wazuh","aud":"Wazuh API REST","nbf":1000,"exp":1900,"sub":"wazuh"}"#,
        );
        for t in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert_eq!(verify(KEY, &t, 1000, 900), Err(TokenError::Invalid), "{t}");
        }
    }

    #[test]
    fn garbage_is_invalid() {
        for t in ["", "abc", "a.b.c", "a.b.c.d", "....", "é.é.é"] {
            assert_eq!(verify(KEY, t, 1000, 900), Err(TokenError::Invalid), "{t}");
        }
    }

    #[test]
    fn token_of_another_lifetime_is_outdated() {
        let t = issue(KEY, "wazuh", 1000, 900);
        assert_eq!(verify(KEY, &t, 1000, 300), Err(TokenError::Outdated));
    }
}
