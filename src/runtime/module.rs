//! The module contract: what a module implements and what the runtime gives it.

use super::budget::MemoryAccount;
use super::Shutdown;
use crate::pipeline::{Cursor, EventSender};
use gatewatch_proto::Payload;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// The future a module's `run` returns.
pub type ModuleFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ModuleError>> + 'a>>;

/// A module: a cooperative task that watches something and reports events.
///
/// `run` is restarted with back-off when it returns an error; returning `Ok(())` means the module
/// has nothing more to do (or the agent is stopping). Long work must yield regularly (every few
/// hundred items or kilobytes) and all buffering must go through [`MemoryAccount::try_reserve`]
/// or fixed-capacity types.
pub trait Module {
    /// Stable module name, used in events, budgets and status.
    fn name(&self) -> &'static str;
    /// Memory budget in bytes (from the module's config).
    fn budget_bytes(&self) -> usize;
    /// Runs the module until it finishes, fails, or `ctx` signals shutdown.
    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a>;
}

/// Why a module stopped; the supervisor reports it and restarts the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError(pub String);

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleError {}

impl From<std::io::Error> for ModuleError {
    fn from(e: std::io::Error) -> Self {
        ModuleError(e.to_string())
    }
}

impl From<crate::pipeline::queue::QueueClosed> for ModuleError {
    fn from(e: crate::pipeline::queue::QueueClosed) -> Self {
        ModuleError(e.to_string())
    }
}

impl From<String> for ModuleError {
    fn from(s: String) -> Self {
        ModuleError(s)
    }
}

impl From<&str> for ModuleError {
    fn from(s: &str) -> Self {
        ModuleError(s.to_string())
    }
}

/// Looks up the cursor the spool holds for a key.
pub type CursorLookup = Rc<dyn Fn(&str) -> Option<Vec<u8>>>;

/// Everything the runtime gives a module.
#[derive(Clone)]
pub struct ModuleContext {
    events: EventSender,
    memory: MemoryAccount,
    state_dir: PathBuf,
    shutdown: Shutdown,
    cursors: CursorLookup,
}

impl ModuleContext {
    /// Builds a context (done by the runtime, or by a test).
    pub fn new(
        events: EventSender,
        memory: MemoryAccount,
        state_dir: PathBuf,
        shutdown: Shutdown,
        cursors: CursorLookup,
    ) -> Self {
        ModuleContext {
            events,
            memory,
            state_dir,
            shutdown,
            cursors,
        }
    }

    /// The module's name.
    pub fn name(&self) -> &'static str {
        self.events.module()
    }

    /// The module's memory account.
    pub fn memory(&self) -> &MemoryAccount {
        &self.memory
    }

    /// A directory of the module's own, on persistent storage.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The stop signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether the agent is stopping (the module should return soon).
    pub fn stopping(&self) -> bool {
        self.shutdown.is_requested()
    }

    /// Sends an event; waits while the queue is full.
    pub async fn send(&self, payload: Payload) -> Result<(), ModuleError> {
        Ok(self.events.send(payload).await?)
    }

    /// Sends an event with the position in `source` that it came from. The position is stored in
    /// the spool in the same record, so after a crash [`ModuleContext::cursor`] returns the position
    /// of the last event the spool accepted: nothing is lost, nothing is sent twice.
    pub async fn send_with_cursor(
        &self,
        payload: Payload,
        source: &str,
        position: Vec<u8>,
    ) -> Result<(), ModuleError> {
        let cursor = Cursor {
            key: self.cursor_key(source),
            value: position,
        };
        Ok(self.events.send_with_cursor(payload, Some(cursor)).await?)
    }

    /// The position stored with the last accepted event from `source`, if any.
    pub fn cursor(&self, source: &str) -> Option<Vec<u8>> {
        (self.cursors)(&self.cursor_key(source))
    }

    fn cursor_key(&self, source: &str) -> String {
        format!("{}/{}", self.name(), source)
    }

    /// Sleeps unless the agent stops first; returns `false` when cut short by a stop.
    pub async fn sleep(&self, duration: Duration) -> bool {
        self.shutdown.sleep(duration).await
    }
}
