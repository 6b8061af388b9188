//! System inventory (Wazuh's syscollector).

mod config;

pub use config::InventoryConfig;
