//! The generator module: numbered synthetic events, for demos, tests and benchmarks.
//!
//! Each event carries its number `n` in a named stream. The next number is stored as the stream's
//! cursor in the same spool record as the event, so after a crash the generator resumes exactly
//! after the last event the spool accepted: the stream reaches the manager without gap or repeat.
//! With `hoard_bytes` it also keeps a cache of recent bodies, which exercises its memory budget.

mod config;
#[cfg(feature = "generator")]
mod module;

pub use config::GeneratorConfig;
#[cfg(feature = "generator")]
pub use module::Generator;
