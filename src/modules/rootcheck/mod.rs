//! Rootkit and anomaly detection: what a rootkit hides, found by comparing what different system
//! calls report, plus Wazuh's rootcheck signature databases.
//!
//! - [`pids`]: processes that answer signals and process queries but are missing from `/proc`.
//! - [`ports`]: ports that cannot be bound though no socket in `/proc/net` holds them (one
//!   `bind` per port with the [`bindguard`] where the kernel allows it).
//! - [`walk`]: one walk of the system directories for hidden files (link counts against
//!   `readdir`), SUID/SGID files where none belong, world-writable system files and the
//!   whole-system names of the rootkit files database.
//! - [`host`]: `/dev` anomalies, promiscuous interfaces, kernel modules hidden from one list.
//! - [`signatures`]: Wazuh's `rootkit_files.txt` / `rootkit_trojans.txt`, loaded unchanged.
//! - [`scan`]: one scan (checks in turn, paced by [`pace`]); [`state`]: what the last scan found,
//!   so a finding is reported once, and again only after it went away; `module` runs scans on the
//!   module's interval.
//!
//! Every check reads under configurable roots, so a test presents a fixture of a compromised
//! host; every inconsistency is checked twice before it is reported, since a process or a socket
//! may come or go between two probes.

#[cfg(feature = "rootcheck")]
pub mod bindguard;
mod config;
#[cfg(feature = "rootcheck")]
pub mod host;
#[cfg(feature = "rootcheck")]
mod module;
#[cfg(feature = "rootcheck")]
pub mod pace;
#[cfg(feature = "rootcheck")]
pub mod pids;
#[cfg(feature = "rootcheck")]
pub mod ports;
#[cfg(feature = "rootcheck")]
pub mod scan;
#[cfg(feature = "rootcheck")]
pub mod signatures;
#[cfg(feature = "rootcheck")]
pub mod state;
#[cfg(all(test, feature = "rootcheck"))]
mod tests;
#[cfg(feature = "rootcheck")]
pub mod walk;

pub use config::RootcheckConfig;
#[cfg(feature = "rootcheck")]
pub use module::{scan_events, Rootcheck};
#[cfg(feature = "rootcheck")]
pub use scan::{run_scan, Finding, ScanReport};
