//! gatewatch: an endpoint detection and response agent for small ARM gateways.
//!
//! One thread runs one [`smol::LocalExecutor`]. Each module is a cooperative task with a fixed
//! memory budget; its events go through a bounded queue into an on-disk spool, and the link sends
//! them to the manager over TLS 1.3, removing them from the spool only once acknowledged.
//!
//! ```text
//! modules ──► queue ──► spool (disk) ──► rate limiter ──► link ──► manager (1514)
//! ```
//! The folders follow that path: [`runtime`] (executor, modules, budgets), [`pipeline`] (queue,
//! spool, rate limiter), [`link`] (TLS session), [`enroll`] (registration on 1515), [`modules`].

pub mod agent;
pub mod cli;
pub mod config;
pub mod enroll;
pub mod link;
pub mod modules;
pub mod pipeline;
pub mod runtime;
pub mod tls;

/// The agent's version, as reported to the manager.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// The library's own tests measure budgets, so they run with the counting allocator too.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: runtime::alloc::CountingAllocator = runtime::alloc::CountingAllocator;
