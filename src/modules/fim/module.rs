//! The FIM task: opens the state, scans on start and on schedule, and in between turns inotify
//! and fanotify events into checks of the paths they name.
//!
//! During a scan, realtime events are read and handled between its batches of files (new
//! directories wait for the scan's end); an overflowing queue is answered by another scan.

use super::attrs::Names;
use super::check::{Checker, Outcome};
use super::config::FimConfig;
use super::db::Db;
use super::diff::DiffStore;
use super::hash::{Algorithms, ByteRate, Hasher};
use super::realtime::{Live, Realtime};
use super::rules::Rules;
use super::scan::{self, report};
use super::walk::Walker;
use super::whodata::Whodata;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use futures_lite::FutureExt;
use gatewatch_proto::fim::{FimEvent, FimMode};
use gatewatch_proto::Payload;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The FIM module.
pub struct Fim {
    config: FimConfig,
}

impl Fim {
    /// A FIM module with the given settings.
    pub fn new(config: FimConfig) -> Self {
        Fim { config }
    }
}

impl Module for Fim {
    fn name(&self) -> &'static str {
        "fim"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(run(&self.config, ctx))
    }
}

/// What woke the loop.
enum Wake {
    Inotify,
    Fanotify,
    Timer,
    Stop,
}

fn db_err(e: super::db::DbError) -> ModuleError {
    ModuleError(e.0)
}

fn open_checker(config: &FimConfig, ctx: &ModuleContext) -> Result<Checker, ModuleError> {
    let dir = ctx.state_dir();
    let db = Db::open(&dir.join("fim.db")).map_err(db_err)?;
    let diffs = DiffStore::open(
        &dir.join("diff"),
        config.diff_size_limit,
        config.diff_disk_quota,
    )
    .map_err(|e| {
        ModuleError(format!(
            "fim: cannot open {}: {e}",
            dir.join("diff").display()
        ))
    })?;
    let files = db.count().map_err(db_err)?;
    let scan = db.meta("scan").map_err(db_err)?;
    Ok(Checker {
        db,
        names: Names::default(),
        hasher: Hasher::new(Algorithms {
            md5: config.hash_md5,
            sha1: config.hash_sha1,
            sha256: config.hash_sha256,
        }),
        rate: ByteRate::new(config.scan_bytes_per_sec),
        diffs,
        file_limit: config.file_limit,
        files,
        scan,
        limit_reported: false,
        // Row ids stay near the file count; churn can push them higher, then rows are stamped.
        seen: super::seen::Seen::new(config.file_limit.saturating_mul(4)),
        memory: ctx.memory().clone(),
    })
}

async fn open_live(
    rules: &Rules,
    config: &FimConfig,
    ctx: &ModuleContext,
) -> Result<Live, ModuleError> {
    let mut live = Live::new(Duration::from_millis(config.realtime_delay_ms));
    if rules.any_realtime() {
        live.realtime = Some(
            Realtime::new(config.max_watches, ctx.memory().clone())
                .map_err(|e| ModuleError(format!("fim: cannot start inotify: {e}")))?,
        );
    }
    if rules.any_whodata() {
        match Whodata::open(ctx.memory().clone()) {
            Ok(w) => {
                if !w.names_every_change() {
                    log::info!("fim: who-data names content writes only (kernel before 5.9)");
                }
                live.whodata = Some(w);
            }
            Err(reason) => {
                log::warn!("fim: who-data unavailable, plain realtime instead: {reason}");
                ctx.send(Payload::Fim(FimEvent::WhodataUnavailable { reason }))
                    .await?;
            }
        }
    }
    Ok(live)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn run(config: &FimConfig, ctx: &ModuleContext) -> Result<(), ModuleError> {
    let mut rules = Rules::compile(config)?;
    // The module's own files are never monitored (they change with every check).
    for dir in &mut rules.dirs {
        dir.ignore_also(ctx.state_dir());
    }
    let mut checker = open_checker(config, ctx)?;
    let mut live = open_live(&rules, config, ctx).await?;
    let frequency = Duration::from_secs(config.frequency_secs.max(1));
    let never_scanned = checker.scan == 0;
    let mut next_scan = if never_scanned || config.scan_on_start {
        Instant::now()
    } else {
        let last = checker.db.meta("last_scan_end").map_err(db_err)?;
        let since = Duration::from_secs(unix_now().saturating_sub(last));
        Instant::now() + frequency.saturating_sub(since)
    };
    if next_scan > Instant::now() {
        watch_all(ctx, &rules, &mut live).await?;
    }
    loop {
        if ctx.stopping() {
            return Ok(());
        }
        let overflow =
            live.pending.overflowed || live.realtime.as_ref().is_some_and(|r| r.overflowed);
        if overflow {
            ctx.send(Payload::Fim(FimEvent::RealtimeOverflow)).await?;
            live.pending.clear();
            if let Some(r) = live.realtime.as_mut() {
                r.overflowed = false;
            }
            next_scan = Instant::now();
        }
        if Instant::now() >= next_scan {
            let stats = scan::scan(ctx, &rules, &mut checker, &mut live).await?;
            if stats.complete {
                let event = FimEvent::ScanEnded {
                    files: stats.files,
                    bytes_hashed: stats.bytes_hashed,
                    duration_ms: stats.duration_ms,
                };
                ctx.send(Payload::Fim(event)).await?;
            }
            next_scan = Instant::now() + frequency;
            continue;
        }
        let due = live
            .pending
            .due_at(live.delay)
            .unwrap_or(next_scan)
            .min(next_scan);
        match wait(ctx, &live, due).await {
            Wake::Stop => return Ok(()),
            Wake::Inotify | Wake::Fanotify => live.read_queued(&mut checker.names),
            Wake::Timer => {
                if live.due() {
                    handle_pending(ctx, &rules, &mut checker, &mut live, false).await?;
                }
            }
        }
    }
}

async fn wait(ctx: &ModuleContext, live: &Live, until: Instant) -> Wake {
    let inotify = async {
        match &live.realtime {
            Some(r) => r.readable().await,
            None => std::future::pending().await,
        }
        Wake::Inotify
    };
    let fanotify = async {
        match &live.whodata {
            Some(w) => w.readable().await,
            None => std::future::pending().await,
        }
        Wake::Fanotify
    };
    let timer = async {
        async_io::Timer::at(until).await;
        Wake::Timer
    };
    let stop = async {
        ctx.shutdown().wait().await;
        Wake::Stop
    };
    stop.or(fanotify).or(inotify).or(timer).await
}

/// Watches every realtime directory without scanning (start-up without a scan).
async fn watch_all(ctx: &ModuleContext, rules: &Rules, live: &mut Live) -> Result<(), ModuleError> {
    for (i, rule) in rules.dirs.iter().enumerate() {
        if !rule.realtime {
            continue;
        }
        let mut walker = Walker::new(rules, i);
        let mut n = 0u32;
        while let Some(entry) = walker.next_entry(rules) {
            if let super::walk::Entry::Dir(dir) = entry {
                if let Some(event) = rules.rule_for(&dir).and_then(|r| live.watch(r, &dir)) {
                    ctx.send(Payload::Fim(event)).await?;
                }
            }
            n += 1;
            if n % 256 == 0 {
                futures_lite::future::yield_now().await;
            }
        }
    }
    Ok(())
}

/// Realtime work between two batches of a scan: reads what inotify and fanotify queued and
/// checks the paths that are due, so a long scan does not hold realtime events back. New
/// directories wait for the end of the scan (which may reach them anyway).
pub(super) async fn interlude(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
    live: &mut Live,
) -> Result<(), ModuleError> {
    live.read_queued(&mut checker.names);
    if live.due() {
        handle_pending(ctx, rules, checker, live, true).await?;
    }
    Ok(())
}

/// Checks the paths realtime events named. During a scan (`in_scan`) directories are put back
/// for later instead of walked.
async fn handle_pending(
    ctx: &ModuleContext,
    rules: &Rules,
    checker: &mut Checker,
    live: &mut Live,
    in_scan: bool,
) -> Result<(), ModuleError> {
    for item in live.pending.take() {
        if in_scan && item.path.is_dir() {
            live.pending.add(item.path, item.audit);
            continue;
        }
        let mode = if item.audit.is_some() {
            FimMode::Whodata
        } else {
            FimMode::Realtime
        };
        let outcome = checker
            .check(rules, &item.path, None, mode, item.audit)
            .await
            .map_err(db_err)?;
        match outcome {
            Outcome::Directory => {
                // A new (or moved-in) directory: watch it and report its files.
                if let Some(i) = rules.index_of(&item.path) {
                    if rules.dirs[i].descends_into(&item.path) {
                        let walker = Walker::below(rules, i, item.path.clone());
                        // Boxed: a walk may come back here (between its batches).
                        Box::pin(scan::walk(ctx, rules, checker, live, walker, mode)).await?;
                    }
                }
            }
            Outcome::Quiet if !item.path.exists() => {
                // Maybe a directory that went away: everything below it went too.
                if let Some(r) = live.realtime.as_mut() {
                    r.forget_under(&item.path);
                }
                scan::deleted_under(ctx, rules, checker, &item.path, mode).await?;
            }
            other => report(ctx, checker, &item.path, other).await?,
        }
        futures_lite::future::yield_now().await;
    }
    Ok(())
}
