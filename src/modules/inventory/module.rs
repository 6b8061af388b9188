//! The inventory task: a scan on start (by default), then one every interval.

use super::scan;
use super::state::State;
use super::InventoryConfig;
use crate::runtime::{Module, ModuleContext, ModuleError, ModuleFuture};
use std::time::Duration;

/// The inventory module.
pub struct Inventory {
    config: InventoryConfig,
}

impl Inventory {
    /// An inventory module with the given settings.
    pub fn new(config: InventoryConfig) -> Self {
        Inventory { config }
    }

    async fn run_inner(&mut self, ctx: &ModuleContext) -> Result<(), ModuleError> {
        let mut state = State::open(&ctx.state_dir().join("inventory.db"))?;
        let interval = Duration::from_secs(self.config.interval_secs.max(1));
        if !self.config.scan_on_start && !ctx.sleep(interval).await {
            return Ok(());
        }
        loop {
            let started = std::time::Instant::now();
            let mut sink = ctx;
            let report = scan::scan(&self.config, &mut state, &mut sink).await?;
            let changed: u64 = report
                .tables
                .iter()
                .map(|(_, r)| r.added + r.modified + r.removed)
                .sum();
            let rows: u64 = report.tables.iter().map(|(_, r)| r.rows).sum();
            log::info!(
                "inventory: scan done in {} ms: {rows} rows, {changed} changes{}",
                started.elapsed().as_millis(),
                if report.full {
                    " (full snapshot sent)"
                } else {
                    ""
                }
            );
            if !ctx.sleep(interval).await {
                return Ok(());
            }
        }
    }
}

impl Module for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn budget_bytes(&self) -> usize {
        self.config.budget_bytes
    }

    fn run<'a>(&'a mut self, ctx: &'a ModuleContext) -> ModuleFuture<'a> {
        Box::pin(self.run_inner(ctx))
    }
}
