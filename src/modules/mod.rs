//! The agent's modules, one folder each. A module owns its config, state and tests, and runs as a
//! cooperative task under the [`crate::runtime`] supervisor.

// A module's config is always compiled (so every configuration file parses in every build);
// its implementation only with its cargo feature.
pub mod cloud;
pub mod command;
pub mod containers;
pub mod fim;
pub mod generator;
pub mod inventory;
pub mod logcollector;
pub mod response;
pub mod rootcheck;
pub mod sca;
