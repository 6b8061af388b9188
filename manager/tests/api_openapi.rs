//! The OpenAPI document against the live API: schemathesis (from PyPI) generates requests from
//! `manager/openapi.yaml` (valid and invalid ones, and sequences following the links it infers)
//! and checks every answer: no 5xx, documented status codes, content types, headers and bodies.
//!
//! schemathesis is taken from `$GATEWATCH_SCHEMATHESIS` (the `st` program), else from the venv
//! `.ci/run` prepares under /var/cache/gatewatch; when neither exists the venv is made here.

mod api_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use api_support::{api_options, ApiManager};
use gatewatch_manager::ApiOptions;

/// The venv `.ci/run` installs schemathesis into.
const VENV: &str = "/var/cache/gatewatch/schemathesis";
/// The version the project is tested with.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn run(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

/// The `st` program, installing schemathesis into [`VENV`] when it is missing.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("GATEWATCH_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let st = Path::new(VENV).join("bin/st");
    if !st.exists() {
        let venv_ok = run(Command::new("python3").args(["-m", "venv", VENV]));
        let pip = Path::new(VENV).join("bin/pip");
        let installed = venv_ok && run(Command::new(pip).args(["install", "-q", SCHEMATHESIS]));
        assert!(
            installed && st.exists(),
            "cannot install {SCHEMATHESIS} into {VENV} (needs python3 with venv and PyPI); \
             or set GATEWATCH_SCHEMATHESIS to an `st` program"
        );
    }
    st
}

#[test]
fn api_conforms_to_openapi() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    // Generated logins fail by the thousand: the block would stop the run half-way.
    let m = ApiManager::start(
        &dir.path().join("manager"),
        ApiOptions {
            max_login_attempts: 1_000_000,
            ..api_options()
        },
    );
    let token = m.token();
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let work = dir.path().join("st");
    std::fs::create_dir_all(&work).unwrap();
    let output = Command::new(st)
        .current_dir(&work)
        .arg("run")
        .arg(&spec)
        .args(["--url", &format!("https://127.0.0.1:{}", m.addr().port())])
        .arg("--tls-verify")
        .arg(m.handle.ca_pem_path())
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Every check except "valid-looking data is accepted": a schema cannot say that a
        // name is already taken or that an id must exist.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "50",
            "--no-shrink",
            "--request-timeout",
            "20",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let tail: String = text
        .lines()
        .rev()
        .take(200)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{tail}"
    );
    assert!(
        text.contains("Tested: 23"),
        "every operation was tested:\n{tail}"
    );
}
