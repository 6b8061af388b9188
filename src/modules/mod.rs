//! The agent's modules, one folder each. A module owns its config, state and tests, and runs as a
//! cooperative task under the [`crate::runtime`] supervisor.

#[cfg(feature = "generator")]
pub mod generator;
