//! The manager's REST API through the real `curl`, as operators call it (shared by the
//! end-to-end tests of the modules whose state the API serves).

use serde_json::{json, Value};
use std::path::PathBuf;

/// The manager's REST API through the real `curl`, as operators call it.
pub struct Api {
    url: String,
    ca: PathBuf,
    token: String,
}

impl Api {
    /// Logs in as the admin the manager created at its first start.
    pub fn login(manager: &gatewatch_manager::ManagerHandle) -> Api {
        let url = format!("https://{}", manager.api_addr().expect("the API is served"));
        let ca = manager.ca_pem_path();
        let admin = manager
            .api_credentials()
            .expect("first start creates the admin");
        let user = format!("{}:{}", admin.user, admin.password);
        let login = format!("{url}/security/user/authenticate?raw=true");
        let (status, token) = curl(&ca, &["-u", &user, "-X", "POST", &login]);
        assert_eq!(status, 200, "login: {token}");
        Api { url, ca, token }
    }

    /// `GET path` with the token, or without when `token` is false: (status, JSON body).
    pub fn get(&self, path: &str, token: bool) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let bearer = format!("Authorization: Bearer {}", self.token);
        let mut args = vec![url.as_str()];
        if token {
            args.extend(["-H", &bearer]);
        }
        let (status, body) = curl(&self.ca, &args);
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        (status, json)
    }

    /// `GET path` that must answer 200 with `error` 0: its `data`.
    pub fn data(&self, path: &str) -> Value {
        let (status, body) = self.get(path, true);
        assert_eq!(
            (status, &body["error"]),
            (200, &json!(0)),
            "GET {path}: {body}"
        );
        body["data"].clone()
    }
}

/// Runs curl against the manager (verified with its CA) and returns (HTTP status, body).
pub fn curl(ca: &std::path::Path, args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_string())
}
