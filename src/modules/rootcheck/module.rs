//! The rootcheck task: a scan on start (by default) and every interval; new findings become
//! events between a scan's start and end events.

use super::scan::{run_scan, ScanReport};
use super::state::Seen;
use super::RootcheckConfig;
use crate::runtime::{MemoryAccount, Module, ModuleContext, ModuleError, ModuleFuture};
use gatewatch_proto::rootcheck::RootcheckEvent;
use gatewatch_proto::Payload;
use std::time::Duration;

/// The rootkit and anomaly detection module.
pub struct Rootcheck {
    config: RootcheckConfig,
}

impl Rootcheck {
    /// A rootcheck module with the given settings.
    pub fn new(config: RootcheckConfig) -> Self {
        Rootcheck { config }
    }

    async fn run_inner(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let mut seen = Seen::load(&ctx.state_dir().join("rootcheck.seen"))?;
        let interval = Duration::from_secs(self.config.interval_secs.max(1));
        if !self.config.scan_on_start && !ctx.sleep(interval).await {
            return Ok(());
        }
        loop {
            let events = scan_events(&self.config, ctx.memory(), &mut seen).await?;
            for event in events {
                ctx.send(Payload::Rootcheck(Box::new(event))).await?;
            }
            if !ctx.sleep(interval).await {
                return Ok(());
            }
        }
    }
}

/// Runs one scan and returns its events: the start, each finding `seen` does not hold, the end.
/// `seen` is then replaced by this scan's findings.
pub async fn scan_events(
    config: &RootcheckConfig,
    memory: &MemoryAccount,
    seen: &mut Seen,
) -> Result<Vec<RootcheckEvent>, ModuleError> {
    let scan_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report: ScanReport = run_scan(config, memory).await;
    let mut events = vec![RootcheckEvent::ScanStarted { scan_id }];
    let mut keys = Vec::with_capacity(report.findings.len());
    for finding in &report.findings {
        let key = finding.key();
        if seen.is_new(&key) && !keys.contains(&key) {
            events.push(RootcheckEvent::Finding(finding.to_event(scan_id)));
        }
        keys.push(key);
    }
    let new_findings = (events.len() - 1) as u32;
    log::info!(
        "rootcheck: scan done in {} ms ({} ms paused): {} findings, {} new",
        report.duration.as_millis(),
        report.paused.as_millis(),
        report.findings.len(),
        new_findings
    );
    events.push(RootcheckEvent::ScanEnded {
        scan_id,
        findings: report.findings.len() as u32,
        new_findings,
        duration_ms: report.duration.as_millis() as u64,
        checked: report.checked,
        skipped: report.skipped,
    });
    seen.replace(keys)?;
    Ok(events)
}

impl Module for Rootcheck {
    fn name(&self) -> &'static str {
        "rootcheck"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(self.run_inner(ctx))
    }
}
