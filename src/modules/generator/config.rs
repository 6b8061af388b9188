//! `[modules.generator]`: a source of numbered synthetic events for demos, tests and benchmarks.

use serde::Deserialize;

/// Settings of the generator module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 256 KiB.
    pub budget_bytes: usize,
    /// Stream name (events are numbered per stream). Default `gen`.
    pub stream: String,
    /// Events to produce in total; 0 = without end. Default 0.
    pub count: u64,
    /// Events per second; 0 = as fast as the queue takes them. Default 1.
    pub rate: u32,
    /// Bytes of filler text in each event body. Default 64.
    pub body_bytes: usize,
    /// Bytes the module tries to hold in memory before sending (to exercise its budget); 0 = off.
    pub hoard_bytes: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            enabled: false,
            budget_bytes: 256 * 1024,
            stream: "gen".into(),
            count: 0,
            rate: 1,
            body_bytes: 64,
            hoard_bytes: 0,
        }
    }
}
