//! Generator module (being written).
mod config;
pub use config::GeneratorConfig;
