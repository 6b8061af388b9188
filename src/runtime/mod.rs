//! The agent runtime: one thread, one `smol::LocalExecutor`, modules as cooperative tasks with
//! memory budgets (being written; `shutdown` is final).

pub mod shutdown;

pub use shutdown::Shutdown;
