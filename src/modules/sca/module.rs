//! The SCA task: every interval, validate and scan each policy, then report which ran.

use super::db::StateDb;
use super::eval::Evaluator;
use super::policy::{self, PolicyInfo};
use super::scan::{self, Outcome, Sink};
use super::ScaConfig;
use crate::runtime::{MemoryAccount, Module, ModuleContext, ModuleError, ModuleFuture};
use gatewatch_proto::sca::ScaEvent;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The SCA module.
pub struct Sca {
    config: ScaConfig,
}

impl Sca {
    /// An SCA module with the given settings.
    pub fn new(config: ScaConfig) -> Self {
        Sca { config }
    }

    async fn run_inner(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let mut db = StateDb::open(&ctx.state_dir().join("sca.db"))?;
        let interval = Duration::from_secs(self.config.interval_secs.max(1));
        if !self.config.scan_on_start && !ctx.sleep(interval).await {
            return Ok(());
        }
        loop {
            let mut sink = ctx;
            scan_round(&self.config, ctx.memory(), &mut db, &mut sink).await?;
            if !ctx.sleep(interval).await {
                return Ok(());
            }
        }
    }
}

/// The policy files of a round: the folder's `*.yml`/`*.yaml` (sorted), then the listed files,
/// without the disabled ones (by policy file name; ids are checked after reading).
pub fn policy_files(config: &ScaConfig) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&config.policies_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for extra in &config.policies {
        if !files.contains(extra) {
            files.push(extra.clone());
        }
    }
    files.retain(|p| !is_disabled(config, p.file_name().and_then(|n| n.to_str())));
    files
}

fn is_disabled(config: &ScaConfig, name: Option<&str>) -> bool {
    name.is_some_and(|n| config.disabled.iter().any(|d| d == n))
}

/// One scan round over every policy; returns each policy's outcome (or why it was refused).
pub async fn scan_round(
    config: &ScaConfig,
    memory: &MemoryAccount,
    db: &mut StateDb,
    sink: &mut impl Sink,
) -> Result<Vec<(PathBuf, Result<Outcome, String>)>, ModuleError> {
    let scan_id = scan::unix_now();
    let mut taken_ids: Vec<u32> = Vec::new();
    let mut policy_ids: Vec<String> = Vec::new();
    let mut scanned = Vec::new();
    let mut outcomes = Vec::new();
    for path in policy_files(config) {
        let info = match load(&path, &taken_ids, &policy_ids).await {
            Ok(info) if is_disabled(config, Some(&info.header.id)) => continue,
            Ok(info) => info,
            Err(why) => {
                log::warn!("sca: policy {} skipped: {why}", path.display());
                outcomes.push((path, Err(why)));
                continue;
            }
        };
        taken_ids.extend_from_slice(&info.check_ids);
        policy_ids.push(info.header.id.clone());
        let mut eval = Evaluator::new(
            memory.clone(),
            Duration::from_secs(config.commands_timeout_secs.max(1)),
            config.skip_nfs,
        );
        let started = std::time::Instant::now();
        let outcome =
            scan::scan_policy(&info, &mut eval, db, sink, scan_id, config.sync_every_scans).await?;
        match &outcome {
            Outcome::Scanned(summary) => {
                log::info!(
                    "sca: {} scanned in {} ms: {} checks, {} passed, {} failed, {} not applicable",
                    summary.policy_id,
                    started.elapsed().as_millis(),
                    summary.total_checks,
                    summary.passed,
                    summary.failed,
                    summary.invalid
                );
                scanned.push(info.header.id.clone());
            }
            Outcome::NotApplicable(title) => {
                log::info!("sca: {} does not apply: {title}", info.header.id);
            }
        }
        outcomes.push((path, Ok(outcome)));
    }
    db.keep_only_policies(&scanned)?;
    sink.send(ScaEvent::Policies { ids: scanned }).await?;
    Ok(outcomes)
}

/// Validates a policy, refusing a policy id that another policy of the round already has.
async fn load(path: &Path, taken_ids: &[u32], policy_ids: &[String]) -> Result<PolicyInfo, String> {
    let info = policy::validate(path, taken_ids, futures_lite::future::yield_now).await?;
    if policy_ids.contains(&info.header.id) {
        return Err(format!("Found duplicated policy ID: {}", info.header.id));
    }
    Ok(info)
}

impl Module for Sca {
    fn name(&self) -> &'static str {
        "sca"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(self.run_inner(ctx))
    }
}
