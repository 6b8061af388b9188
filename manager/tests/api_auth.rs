//! The API's logins and tokens, over real HTTPS: the three kinds of 401, forged and expired
//! tokens, the brute-force block, the generated admin password.

mod api_support;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use api_support::{api_options, ApiManager};
use base64ct::{Base64UrlUnpadded, Encoding};
use gatewatch_manager::ApiOptions;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

fn unauthorized(reply: &api_support::Reply) -> String {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json; charset=utf-8")
    );
    let body = reply.json();
    assert_eq!(body["title"], "Unauthorized");
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only title and detail: {body}"
    );
    body["detail"].as_str().unwrap().to_string()
}

fn get_root(m: &ApiManager, authorization: Option<&str>) -> api_support::Reply {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    m.call("GET", "/", &headers, None)
}

/// A token with `claims`, signed HS256 with `key`.
fn signed(key: &[u8], header: &str, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes())
    )
}

#[test]
fn jwt_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(
        dir.path(),
        ApiOptions {
            token_timeout: Duration::from_secs(2),
            max_login_attempts: 3,
            block_time: Duration::from_secs(60),
            ..api_options()
        },
    );
    // Missing or malformed header.
    for header in [
        None,
        Some("Basic d2F6dWg6d2F6dWg="),
        Some("Bearer"),
        Some("Bearer   "),
    ] {
        assert_eq!(
            unauthorized(&get_root(&m, header)),
            "No authorization token provided",
            "{header:?}"
        );
    }
    // Malformed token.
    for token in ["abc", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."] {
        let header = format!("Bearer {token}");
        assert_eq!(unauthorized(&get_root(&m, Some(&header))), "Invalid token");
    }
    // A real token works.
    let token = m.token();
    assert_eq!(get_root(&m, Some(&format!("Bearer {token}"))).status, 200);
    // Forged: other key, altered claims, unsigned.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "wazuh", "aud": "Wazuh API REST", "nbf": now, "exp": now + 2,
                        "sub": "wazuh", "run_as": false, "rbac_roles": [1], "rbac_mode": "white"});
    let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
    let other_key = signed(b"not the manager's key", hs256, &claims);
    let parts: Vec<&str> = token.split('.').collect();
    let mut longer = claims.clone();
    longer["exp"] = json!(now + 100_000);
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        Base64UrlUnpadded::encode_string(longer.to_string().as_bytes()),
        parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"JWT"}"#),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
    );
    for forged in [other_key, altered, unsigned] {
        let header = format!("Bearer {forged}");
        assert_eq!(
            unauthorized(&get_root(&m, Some(&header))),
            "Invalid token",
            "{forged}"
        );
    }
    // Expired.
    std::thread::sleep(Duration::from_millis(2500));
    let header = format!("Bearer {token}");
    assert_eq!(unauthorized(&get_root(&m, Some(&header))), "Invalid token");

    // Brute force: three failures, then even the right password is refused with 403.
    for _ in 0..3 {
        assert_eq!(
            unauthorized(&m.login_as("wazuh", "wrong")),
            "Invalid credentials"
        );
    }
    let blocked = m.login_as("wazuh", &m.password);
    assert_eq!(blocked.status, 403, "{}", blocked.text());
    let body = blocked.json();
    assert_eq!(body["title"], "Permission Denied");
    assert_eq!(body["error"], 6000);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("Limit of login attempts reached"));
    assert_eq!(
        get_root(&m, None).status,
        403,
        "a blocked address is refused everywhere"
    );
}

#[test]
fn raw_login_returns_the_bare_token_and_plain_login_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(dir.path(), api_options());
    let basic = format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("wazuh:{}", m.password).as_bytes())
    );
    let raw = m.call(
        "POST",
        "/security/user/authenticate?raw=true",
        &[("Authorization", &basic)],
        None,
    );
    assert_eq!(
        (raw.status, raw.header("content-type")),
        (200, Some("text/plain"))
    );
    assert_eq!(raw.text().split('.').count(), 3);
    assert!(!raw.text().ends_with('\n'));
    let plain = m.call(
        "POST",
        "/security/user/authenticate",
        &[("Authorization", &basic)],
        None,
    );
    let body = plain.json();
    assert_eq!(body["error"], 0);
    assert_eq!(
        body["data"]["token"].as_str().unwrap().split('.').count(),
        3
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "no message: {body}");
}

#[test]
fn deprecated_get_login_still_works_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(dir.path(), api_options());
    let basic = format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("wazuh:{}", m.password).as_bytes())
    );
    let reply = m.call(
        "GET",
        "/security/user/authenticate",
        &[("Authorization", &basic)],
        None,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("deprecated"), Some("true"));
    assert!(reply
        .header("link")
        .is_some_and(|l| l.contains("rel=\"Deprecated\"")));
}

#[test]
fn wrong_password_and_unknown_user_are_invalid_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(dir.path(), api_options());
    assert_eq!(
        unauthorized(&m.login_as("wazuh", "wazuh")),
        "Invalid credentials"
    );
    assert_eq!(
        unauthorized(&m.login_as("admin", &m.password)),
        "Invalid credentials"
    );
    let none = m.call("POST", "/security/user/authenticate", &[], None);
    assert_eq!(unauthorized(&none), "Invalid credentials");
}

#[test]
fn first_start_makes_a_private_admin_password_and_later_starts_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(dir.path(), api_options());
    let file = dir.path().join(gatewatch_manager::ADMIN_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = m
        .handle
        .api_credentials()
        .cloned()
        .expect("shown at first start");
    assert_eq!(
        (first.user.as_str(), first.password.as_str()),
        ("wazuh", m.password.as_str())
    );
    assert!(first.password.len() >= 24);
    let token = m.token();
    drop(m);

    let again = ApiManager::start(dir.path(), api_options());
    assert!(again.handle.api_credentials().is_none(), "shown once only");
    assert_eq!(again.password, first.password);
    let reply = again.with_token(&token, "GET", "/", None);
    assert_eq!(
        reply.status,
        200,
        "a token survives a restart: {}",
        reply.text()
    );
}

#[test]
fn token_issued_under_another_lifetime_is_reported_expired() {
    let dir = tempfile::tempdir().unwrap();
    let m = ApiManager::start(dir.path(), api_options());
    let token = m.token();
    drop(m);
    let m = ApiManager::start(
        dir.path(),
        ApiOptions {
            token_timeout: Duration::from_secs(60),
            ..api_options()
        },
    );
    let header = format!("Bearer {token}");
    assert_eq!(unauthorized(&get_root(&m, Some(&header))), "Token expired");
}

#[test]
fn reset_gives_the_admin_a_new_password_and_the_old_one_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let old = ApiManager::start(dir.path(), api_options())
        .password
        .clone();
    let m = ApiManager::start(
        dir.path(),
        ApiOptions {
            reset_admin_password: true,
            ..api_options()
        },
    );
    assert_ne!(m.password, old);
    assert_eq!(
        m.handle.api_credentials().map(|c| c.password.clone()),
        Some(m.password.clone())
    );
    assert_eq!(
        unauthorized(&m.login_as("wazuh", &old)),
        "Invalid credentials"
    );
    assert_eq!(m.login_as("wazuh", &m.password).status, 200);
}
