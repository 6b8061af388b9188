//! File integrity monitoring (FIM): what changed in the monitored files, when, and who did it.
//!
//! Scans walk the configured directories (a bounded depth-first walk) and compare each file's
//! attributes with the state database (SQLite, one row per file, under the module's state
//! directory); a file is re-hashed only when its size, mtime or inode changed, and a file found
//! unchanged is only marked in a bitmap, so an unchanged rescan writes no file rows. Realtime
//! directories are watched with inotify (one watch per directory, capped); who-data directories
//! are also marked with fanotify, whose events name the writing process. Every change is a
//! `fim.added` / `fim.modified` / `fim.deleted` event with old and new attributes; the first scan
//! reports every file as added, which is how the manager learns the agent's files.
//!
//! Files: `config.rs` (settings), `rules.rs` (which paths belong to which directory), `attrs.rs`
//! (stat, names), `hash.rs` (chunked hashing), `db.rs` (state), `seen.rs` (the scan's bitmap),
//! `walk.rs` (bounded walk), `check.rs` (one file against the state), `scan.rs`, `realtime.rs`,
//! `whodata.rs`, `diff.rs` (report changes), `module.rs` (the task). See
//! `docs/adr/006-fim-whodata.md` and the FIM section of `docs/PERFORMANCE.md`.

#[cfg(feature = "fim")]
mod attrs;
#[cfg(feature = "fim")]
mod check;
mod config;
#[cfg(feature = "fim")]
mod db;
#[cfg(feature = "fim")]
mod diff;
#[cfg(feature = "fim")]
mod hash;
#[cfg(feature = "fim")]
mod module;
#[cfg(feature = "fim")]
mod realtime;
#[cfg(feature = "fim")]
mod rules;
#[cfg(feature = "fim")]
mod scan;
#[cfg(feature = "fim")]
mod seen;
#[cfg(all(test, feature = "fim"))]
mod tests;
#[cfg(feature = "fim")]
mod walk;
#[cfg(feature = "fim")]
mod whodata;

pub use config::{DirectoryConfig, FimConfig};
#[cfg(feature = "fim")]
pub use module::Fim;
