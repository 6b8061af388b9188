//! System inventory (Wazuh's syscollector): OS, hardware, network interfaces and addresses,
//! open ports with their processes, processes, packages (dpkg, opkg, rpm, apk), users, groups.
//!
//! Every collector reads under a configurable root ([`root::Root`]), so the same code inventories
//! the live system or a fixture tree. A scan compares each row's checksum with the last scan
//! ([`state`]) and sends only rows added, modified or removed, then each table's checksum; a
//! periodic full snapshot (and the first scan with a new state) lets the manager converge after
//! any loss ([`gatewatch_proto::inventory`] explains the protocol). Rows are streamed from their
//! sources and the scan yields to the executor every few dozen rows.

mod config;
#[cfg(feature = "inventory")]
pub mod hardware;
#[cfg(feature = "inventory")]
mod module;
#[cfg(feature = "inventory")]
pub mod network;
#[cfg(feature = "inventory")]
pub mod os;
#[cfg(feature = "inventory")]
pub mod packages;
#[cfg(feature = "inventory")]
pub mod ports;
#[cfg(feature = "inventory")]
pub mod processes;
#[cfg(feature = "inventory")]
pub mod root;
#[cfg(feature = "inventory")]
pub mod rows;
#[cfg(feature = "inventory")]
pub mod scan;
#[cfg(feature = "inventory")]
pub mod state;
#[cfg(feature = "inventory")]
pub mod users;

pub use config::InventoryConfig;
#[cfg(feature = "inventory")]
pub use module::Inventory;
