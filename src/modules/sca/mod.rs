//! Security configuration assessment: Wazuh SCA policies, evaluated on the gateway.
//!
//! A policy (Wazuh's YAML format, loaded unchanged) lists checks; each check combines rules with
//! `all`, `any` or `none`; each rule inspects a file (`f:`), a directory (`d:`), the running
//! processes (`p:`) or a command's output (`c:`), optionally testing lines with content patterns
//! in Wazuh's OS_Regex dialect. A check passes, fails, or is not applicable with the reason.
//!
//! - [`yaml`] streams a policy one check at a time; [`policy`] validates it and hands out checks.
//! - [`rule`] parses rule strings; [`pattern`] and [`osregex`] are the content tests.
//! - [`eval`] evaluates rules against the system; [`command`] runs `c:` commands.
//! - [`scan`] evaluates a policy and reports results; [`db`] remembers them, so only changes
//!   are sent; `module` runs rounds on the module's interval.
//!
//! The module never holds a whole policy in memory: a CIS policy of 400 KiB is scanned with one
//! check, the per-scan command-output cache and SQLite's small page cache resident.

#[cfg(feature = "sca")]
pub mod command;
mod config;
#[cfg(feature = "sca")]
pub mod db;
#[cfg(feature = "sca")]
pub mod eval;
#[cfg(feature = "sca")]
mod module;
#[cfg(feature = "sca")]
pub mod osregex;
#[cfg(feature = "sca")]
pub mod pattern;
#[cfg(feature = "sca")]
pub mod policy;
#[cfg(feature = "sca")]
pub mod rule;
#[cfg(feature = "sca")]
pub mod scan;
#[cfg(feature = "sca")]
pub mod yaml;

pub use config::ScaConfig;
#[cfg(feature = "sca")]
pub use module::{policy_files, scan_round, Sca};

/// The outcome of a rule (or of a check's rules combined), as Wazuh's evaluator has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tri {
    /// The rule found what it looks for.
    Found,
    /// It did not.
    NotFound,
    /// It could not tell; the reason.
    Invalid(String),
}

impl From<bool> for Tri {
    fn from(found: bool) -> Tri {
        if found {
            Tri::Found
        } else {
            Tri::NotFound
        }
    }
}
