//! The command module: runs configured commands on an interval (Wazuh's `command` wodle) and
//! reports their output and exit, and runs the commands a manager pushes when the agent allows it
//! (`manager.remote_commands = true`).
//!
//! A command is an argument vector (a shell only when `shell = true`), runs in its own process
//! group on the executor (see [`crate::runtime::child`]), is killed with its whole group at its
//! timeout, and its kept output is capped. With `sha256` set, an executable whose hash differs is
//! not run, and a `command.refused` event says why.

mod config;
#[cfg(feature = "command")]
mod module;
mod remote;
#[cfg(all(test, feature = "command"))]
mod tests;

pub use config::{CommandConfig, CommandEntry, OutputMode};
#[cfg(feature = "command")]
pub use module::CommandModule;
pub use remote::{remote_channel, RemoteReceiver, RemoteRun, RemoteSender};
