//! `gatewatch check --health`: the gate an update bundle calls before committing an update.
//! Healthy means: the configuration is valid, the agent is enrolled, and the running agent
//! reports a live session with its manager within the deadline. Prints one line either way.

use crate::config;
use crate::enroll::Credentials;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs the health gate; `Err` (exit 1) carries the reason.
pub fn check(config_path: &Path, within_secs: u64) -> Result<ExitCode, String> {
    let config = config::load(config_path)
        .map_err(|e| format!("unhealthy: configuration is invalid: {e}"))?;
    let state_dir = &config.agent.state_dir;
    let credentials = Credentials::load(state_dir)
        .map_err(|e| format!("unhealthy: credentials are unreadable: {e}"))?
        .ok_or_else(|| {
            format!(
                "unhealthy: not enrolled (no credentials in {})",
                state_dir.display()
            )
        })?;
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    loop {
        let last = match crate::runtime::status::fetch(state_dir) {
            Ok(report) if report.link_state == "connected" => {
                println!(
                    "healthy: agent {:03} ({}) connected to {}",
                    credentials.agent_id,
                    credentials.name,
                    report.manager.as_deref().unwrap_or("its manager")
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(report) => format!(
                "the agent is {} (last error: {})",
                report.link_state,
                report.last_error.as_deref().unwrap_or("none")
            ),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "unhealthy: not connected to the manager within {within_secs} s: {last}"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
