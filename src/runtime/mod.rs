//! The agent runtime: one thread, one `smol::LocalExecutor`, modules as cooperative tasks.
//!
//! - [`module`]: the [`Module`] trait and the [`ModuleContext`] a module receives.
//! - [`supervisor`]: restarts failed modules with back-off and watches budgets.
//! - [`budget`] and [`alloc`]: fixed memory budgets, measured by a counting allocator.
//! - [`child`]: child processes in their own group, with a timeout, reaped on the executor.
//! - [`hash`]: a file's SHA-256, hashed in chunks between yields.
//! - [`shutdown`]: the stop signal every task awaits.
//! - [`status`]: what `gatewatch status` reads from the running agent.

pub mod alloc;
pub mod budget;
pub mod child;
pub mod hash;
pub mod logger;
pub mod module;
pub mod shutdown;
pub mod status;
pub mod supervisor;

pub use budget::MemoryAccount;
pub use module::{Module, ModuleContext, ModuleError, ModuleFuture};
pub use shutdown::Shutdown;
