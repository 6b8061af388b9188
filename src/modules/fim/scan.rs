//! Scans: walk every monitored directory, check each file, then sweep the rows no walk saw
//! (files deleted since the last scan, even while the agent was down).
//!
//! Work is committed and the task yields every [`BATCH`] files; a stop request ends the scan
//! early without the sweep (an interrupted walk proves nothing about deletions).

use super::check::{Checker, Outcome};
use super::realtime::Live;
use super::rules::Rules;
use super::walk::{Entry, Walker};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::fim::{FimEvent, FimMode};
use gatewatch_proto::Payload;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Files checked per transaction (and between yields).
pub const BATCH: u64 = 256;
/// Rows read per step of the sweep.
const SWEEP_CHUNK: usize = 128;

/// Numbers of one scan.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanStats {
    pub files: u64,
    pub bytes_hashed: u64,
    pub duration_ms: u64,
    /// The scan ran to its end (and swept).
    pub complete: bool,
}

fn db_err(e: super::db::DbError) -> ModuleError {
    ModuleError(e.0)
}

/// Sends what a check found (a change, or the file limit once).
pub async fn report(
    ctx: &ModuleContext,
    checker: &mut Checker,
    path: &Path,
    outcome: Outcome,
) -> Result<(), ModuleError> {
    match outcome {
        Outcome::Change(change) => ctx.send(Payload::Fim(FimEvent::Change(change))).await,
        Outcome::LimitReached if !checker.limit_reported => {
            checker.limit_reported = true;
            log::warn!(
                "fim: {} files monitored: {} and further new files are not",
                checker.file_limit,
                path.display()
            );
            let event = FimEvent::FileLimit {
                limit: checker.file_limit,
                path: path.to_string_lossy().into_owned(),
            };
            ctx.send(Payload::Fim(event)).await
        }
        _ => Ok(()),
    }
}

/// A full scan of every directory.
pub async fn scan(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
    live: &mut Live,
) -> Result<ScanStats, ModuleError> {
    let started = Instant::now();
    let hashed_before = checker.hasher.bytes;
    checker.scan = checker.db.meta("scan").map_err(db_err)? + 1;
    checker.db.set_meta("scan", checker.scan).map_err(db_err)?;
    checker.files = checker.db.count().map_err(db_err)?;
    checker.seen.clear();
    if checker.files < checker.file_limit {
        checker.limit_reported = false;
    }
    let mut stats = ScanStats::default();
    for rule in 0..rules.dirs.len() {
        let walker = Walker::new(rules, rule);
        stats.files += walk(ctx, rules, checker, live, walker, FimMode::Scheduled).await?;
        if ctx.stopping() {
            return Ok(stats);
        }
    }
    sweep(ctx, rules, checker).await?;
    stats.complete = true;
    stats.bytes_hashed = checker.hasher.bytes - hashed_before;
    stats.duration_ms = started.elapsed().as_millis() as u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    checker.db.set_meta("last_scan_end", now).map_err(db_err)?;
    Ok(stats)
}

/// Walks one directory (a whole monitored root, or a new directory found in realtime), watching
/// the directories it enters and checking every file. Returns the files seen.
pub async fn walk(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
    live: &mut Live,
    mut walker: Walker,
    mode: FimMode,
) -> Result<u64, ModuleError> {
    let mut files = 0u64;
    checker.db.begin().map_err(db_err)?;
    while let Some(entry) = walker.next_entry(rules) {
        match entry {
            Entry::Dir(dir) => {
                if let Some(rule) = rules.rule_for(&dir) {
                    if let Some(event) = live.watch(rule, &dir) {
                        ctx.send(Payload::Fim(event)).await?;
                    }
                }
            }
            Entry::File(path, meta) => {
                files += 1;
                // The walk checked the rules already.
                let found = rules.dirs.get(walker.rule()).map(|r| (r, meta));
                let outcome = checker
                    .check(rules, &path, found, mode, None)
                    .await
                    .map_err(db_err)?;
                report(ctx, checker, &path, outcome).await?;
                if files % BATCH == 0 {
                    checker.db.commit().map_err(db_err)?;
                    futures_lite::future::yield_now().await;
                    if ctx.stopping() {
                        return Ok(files);
                    }
                    if mode == FimMode::Scheduled {
                        super::module::interlude(ctx, rules, checker, live).await?;
                    }
                    checker.db.begin().map_err(db_err)?;
                }
            }
            Entry::Error(path, e) => keep_unreadable(checker, &path, &e)?,
        }
    }
    checker.db.commit().map_err(db_err)?;
    Ok(files)
}

/// Files below a path that could not be read are kept as they were (not reported deleted).
fn keep_unreadable(
    checker: &mut Checker,
    path: &Path,
    e: &std::io::Error,
) -> Result<(), ModuleError> {
    log::debug!("fim: cannot read {}: {e}", path.display());
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let key = path.to_string_lossy();
    checker.db.touch(&key, checker.scan).map_err(db_err)?;
    checker.db.touch_under(&key, checker.scan).map_err(db_err)
}

/// Reports and removes the rows the scan neither marked seen nor wrote.
async fn sweep(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
) -> Result<(), ModuleError> {
    let mut last = 0;
    loop {
        let rows = checker.db.after(last, SWEEP_CHUNK).map_err(db_err)?;
        let Some(row) = rows.last() else {
            return Ok(());
        };
        last = row.id;
        let gone: Vec<String> = rows
            .into_iter()
            .filter(|r| r.scan < checker.scan && !checker.seen.contains(r.id))
            .map(|r| r.path)
            .collect();
        if gone.is_empty() {
            futures_lite::future::yield_now().await;
            continue;
        }
        checker.db.begin().map_err(db_err)?;
        for path in gone {
            let path = PathBuf::from(path);
            let outcome = checker
                .deleted(rules, &path, FimMode::Scheduled, None)
                .map_err(db_err)?;
            report(ctx, checker, &path, outcome).await?;
        }
        checker.db.commit().map_err(db_err)?;
        futures_lite::future::yield_now().await;
    }
}

/// Everything stored below `dir` is gone (a directory deleted or moved away): reports each.
pub async fn deleted_under(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
    dir: &Path,
    mode: FimMode,
) -> Result<(), ModuleError> {
    let key = dir.to_string_lossy().into_owned();
    loop {
        let rows = checker.db.under(&key, SWEEP_CHUNK).map_err(db_err)?;
        if rows.is_empty() {
            return Ok(());
        }
        checker.db.begin().map_err(db_err)?;
        for (path, _) in rows {
            let path = PathBuf::from(path);
            let outcome = checker.deleted(rules, &path, mode, None).map_err(db_err)?;
            report(ctx, checker, &path, outcome).await?;
        }
        checker.db.commit().map_err(db_err)?;
    }
}
