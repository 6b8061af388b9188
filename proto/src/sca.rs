//! Security configuration assessment (SCA) events, shaped after Wazuh's `sca` messages.
//!
//! A check result is sent only when it differs from the previous scan (or when the agent resends
//! every result: after a policy changed, when its own state is new, and periodically). After each
//! policy scan a [`ScaSummary`] carries the counts and `hash`: SHA-256 (hex) of the results of all
//! checks, sorted by check id, joined with `:` (`passed`, `failed`, or empty for not applicable),
//! so the manager can tell whether the results it holds are the agent's.

use serde::{Deserialize, Serialize};

/// What the SCA module reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScaEvent {
    /// The result of one check (new or changed).
    Check(ScaCheck),
    /// The end of a policy's scan.
    Summary(ScaSummary),
    /// The ids of the policies evaluated in the last scan round; the manager forgets the others.
    Policies { ids: Vec<String> },
}

impl ScaEvent {
    /// Kind name, see [`crate::Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            ScaEvent::Check(_) => "sca.check",
            ScaEvent::Summary(_) => "sca.summary",
            ScaEvent::Policies { .. } => "sca.policies",
        }
    }
}

/// Result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckResult {
    Passed,
    Failed,
    /// The rules could not be evaluated; `reason` says why (a file that cannot be read, a command
    /// that timed out, a regex that does not compile, …).
    NotApplicable {
        reason: String,
    },
}

impl CheckResult {
    /// The string hashed into [`ScaSummary::hash`]: `passed`, `failed`, or empty.
    pub fn hash_str(&self) -> &'static str {
        match self {
            CheckResult::Passed => "passed",
            CheckResult::Failed => "failed",
            CheckResult::NotApplicable { .. } => "",
        }
    }
}

/// One check's result, with what the manager shows about the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaCheck {
    pub scan_id: u64,
    pub policy_id: String,
    /// The policy's name.
    pub policy: String,
    pub id: u32,
    pub title: String,
    pub description: String,
    pub rationale: String,
    pub remediation: String,
    /// `(standard, comma-joined values)`, e.g. `("cis", "5.2.10")`.
    pub compliance: Vec<(String, String)>,
    pub references: Vec<String>,
    /// The rules as written in the policy.
    pub rules: Vec<String>,
    /// `all`, `any` or `none`.
    pub condition: String,
    /// What the rules looked at, comma-joined per kind (files, directories, processes, commands).
    pub file: String,
    pub directory: String,
    pub process: String,
    pub command: String,
    pub result: CheckResult,
}

/// The summary of one policy scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaSummary {
    pub scan_id: u64,
    pub policy_id: String,
    pub name: String,
    pub file: String,
    pub description: String,
    pub references: Vec<String>,
    pub passed: u32,
    pub failed: u32,
    pub invalid: u32,
    pub total_checks: u32,
    /// `passed * 100 / (passed + failed)`, rounded down; 0 when nothing passed or failed.
    pub score: u32,
    /// Seconds since the Unix epoch.
    pub start_time: u64,
    pub end_time: u64,
    /// See the module documentation.
    pub hash: String,
    /// SHA-256 (hex) of the policy file.
    pub hash_file: String,
    /// Whether every check result was sent in this scan (not only the changed ones).
    pub full: bool,
}
