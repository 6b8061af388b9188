//! Rootkit and anomaly detection events (`rootcheck` module), after Wazuh's rootcheck messages.
//!
//! A scan is framed by [`RootcheckEvent::ScanStarted`] and [`RootcheckEvent::ScanEnded`]; in
//! between, one [`RootcheckEvent::Finding`] per problem found that the previous scan did not
//! already report (a finding that disappears and comes back is reported again).

use serde::{Deserialize, Serialize};

/// What the rootcheck module reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootcheckEvent {
    /// A scan began.
    ScanStarted {
        /// Seconds since the Unix epoch when the scan began; repeated in its findings.
        scan_id: u64,
    },
    /// One problem.
    Finding(RootcheckFinding),
    /// A scan ended.
    ScanEnded {
        scan_id: u64,
        /// Problems found by this scan (reported now or already by an earlier scan).
        findings: u32,
        /// Of those, the ones reported by this scan (new since the previous scan).
        new_findings: u32,
        /// Wall-clock duration of the scan, pauses included.
        duration_ms: u64,
        /// `(check, items examined)`, e.g. `("pids", 32768)`, `("files", 81234)`.
        checked: Vec<(String, u64)>,
        /// Checks that could not run, with the reason (e.g. `modules: no /proc/modules`).
        skipped: Vec<String>,
    },
}

impl RootcheckEvent {
    /// Kind name, see [`crate::Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            RootcheckEvent::ScanStarted { .. } => "rootcheck.scan_started",
            RootcheckEvent::Finding(_) => "rootcheck.finding",
            RootcheckEvent::ScanEnded { .. } => "rootcheck.scan_ended",
        }
    }
}

/// One problem found by a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootcheckFinding {
    pub scan_id: u64,
    /// What kind of problem: `hidden_process`, `hidden_port`, `hidden_file`, `dev_anomaly`,
    /// `promiscuous_interface`, `hidden_module`, `suid_file`, `world_writable`, `rootkit_file`,
    /// `trojaned_binary`.
    pub kind: String,
    /// One line, in the words of Wazuh's messages where there is one (e.g. `Process '4242'
    /// hidden from /proc.`).
    pub title: String,
    /// The file, directory or interface concerned, if any.
    pub path: Option<String>,
    /// The process concerned, if any.
    pub pid: Option<u32>,
    /// The port concerned, if any, with its protocol (`tcp` or `udp`).
    pub port: Option<(String, u16)>,
    /// How it was found (which calls disagreed, the signature that matched, …).
    pub details: String,
}
