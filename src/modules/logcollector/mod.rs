//! The log collector: tails log files (globs, date patterns, every kind of rotation) and systemd
//! journals, and sends each line — or each group of lines, per the source's format — as an event.
//!
//! Read positions travel with the events into the spool (its cursor API), so after a crash the
//! collector resumes exactly after the last line the spool accepted: nothing lost, nothing twice.
//! Idle files cost nothing: the module sleeps on inotify. Buffers are bounded (one chunk buffer,
//! the maximum line size, groups within the module's memory budget). Windows event channels do
//! not exist on Linux gateways and are refused by the configuration.

mod config;
#[cfg(feature = "logcollector")]
mod file;
#[cfg(feature = "logcollector")]
mod framer;
#[cfg(feature = "logcollector")]
mod journal;
#[cfg(feature = "logcollector")]
mod json;
#[cfg(feature = "logcollector")]
mod lines;
#[cfg(feature = "logcollector")]
mod location;
#[cfg(feature = "logcollector")]
mod module;
#[cfg(feature = "logcollector")]
mod position;
#[cfg(feature = "logcollector")]
mod tail;
#[cfg(all(test, feature = "logcollector"))]
mod tests;
#[cfg(feature = "logcollector")]
mod watch;

pub use config::{Format, LogCollectorConfig, MatchOn, MultilineConfig, SourceConfig};
#[cfg(feature = "logcollector")]
pub use module::{LogCollector, TailStats};
