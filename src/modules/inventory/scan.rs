//! One inventory scan: every table collected, compared with the last scan, and only the
//! differences sent; or, on a sync scan, every row sent as a snapshot.

use super::root::Root;
use super::rows;
use super::state::{Seen, State};
use super::{hardware, network, os, packages, ports, processes, users, InventoryConfig};
use crate::runtime::{ModuleContext, ModuleError};
use gatewatch_proto::inventory::{Change, InventoryEvent, Row, Table};
use gatewatch_proto::Payload;

/// Rows between two commits of the state database.
const COMMIT_EVERY: u32 = 64;
/// Rows between two yields to the executor.
const YIELD_EVERY: u32 = 32;

/// Where the events go: the module's queue, or a test's collector.
pub trait Sink {
    /// Sends one event.
    fn send(
        &mut self,
        event: InventoryEvent,
    ) -> impl std::future::Future<Output = Result<(), ModuleError>>;
}

impl Sink for &ModuleContext {
    async fn send(&mut self, event: InventoryEvent) -> Result<(), ModuleError> {
        ModuleContext::send(self, Payload::Inventory(Box::new(event))).await
    }
}

/// What one table's scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TableReport {
    pub rows: u64,
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
}

/// What a scan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Every row was sent as a snapshot.
    pub full: bool,
    pub tables: Vec<(Table, TableReport)>,
}

/// The rows of one table, as the configuration asks (a disabled table is empty).
pub fn rows(table: Table, config: &InventoryConfig) -> Box<dyn Iterator<Item = Row>> {
    let root = Root::new(&config.root);
    match table {
        Table::Os if config.os => Box::new(std::iter::once(Row::Os(os::collect(&root)))),
        Table::Hardware if config.hardware => {
            Box::new(std::iter::once(Row::Hardware(hardware::collect(&root))))
        }
        Table::NetIface if config.network => {
            Box::new(network::interfaces(&root).into_iter().map(Row::NetIface))
        }
        Table::NetAddr if config.network => {
            Box::new(network::addresses(&root).into_iter().map(Row::NetAddr))
        }
        Table::Ports if config.ports => Box::new(
            ports::collect(&root, config.ports_all)
                .into_iter()
                .map(Row::Port),
        ),
        Table::Processes if config.processes => {
            Box::new(processes::Processes::new(&root).map(Row::Process))
        }
        Table::Packages if config.packages => Box::new(packages::collect(&root).map(Row::Package)),
        Table::Users if config.users => Box::new(users::users(&root).into_iter().map(Row::User)),
        Table::Groups if config.users => Box::new(users::groups(&root).into_iter().map(Row::Group)),
        _ => Box::new(std::iter::empty()),
    }
}

/// Runs one scan of every table.
pub async fn scan(
    config: &InventoryConfig,
    state: &mut State,
    sink: &mut impl Sink,
) -> Result<ScanReport, ModuleError> {
    let scans = state.scans()?;
    let every = u64::from(config.sync_every_scans);
    let full = scans == 0 || (every > 0 && scans % every == 0);
    let gen = scans + 1;
    let scan_id = unix_now();
    let mut tables = Vec::new();
    for table in Table::ALL {
        let report = scan_table(table, config, state, sink, gen, scan_id, full).await?;
        tables.push((table, report));
        futures_lite::future::yield_now().await;
    }
    state.set_scans(gen)?;
    Ok(ScanReport { full, tables })
}

async fn scan_table(
    table: Table,
    config: &InventoryConfig,
    state: &mut State,
    sink: &mut impl Sink,
    gen: u64,
    scan_id: u64,
    full: bool,
) -> Result<TableReport, ModuleError> {
    let tbl = table.id();
    let mut report = TableReport::default();
    let mut work = 0u32;
    state.begin()?;
    for row in rows(table, config) {
        let key = rows::key(&row);
        let checksum = rows::checksum(&row);
        let seen = state.see(tbl, &key, &checksum, gen)?;
        let event = match (full, seen) {
            (_, Seen::Repeated) => None,
            (true, _) => Some(InventoryEvent::State {
                sync_id: scan_id,
                table,
                key,
                checksum,
                row,
            }),
            (false, Seen::Same) => None,
            (false, Seen::New | Seen::Changed) => {
                let change = if seen == Seen::New {
                    report.added += 1;
                    Change::Added
                } else {
                    report.modified += 1;
                    Change::Modified
                };
                Some(InventoryEvent::Delta {
                    scan_id,
                    table,
                    change,
                    key,
                    checksum,
                    row: Some(row),
                })
            }
        };
        if let Some(event) = event {
            sink.send(event).await?;
        }
        work += 1;
        if work % COMMIT_EVERY == 0 {
            state.commit()?;
            state.begin()?;
        }
        if work % YIELD_EVERY == 0 {
            futures_lite::future::yield_now().await;
        }
    }
    loop {
        let stale = state.stale(tbl, gen, COMMIT_EVERY as usize)?;
        if stale.is_empty() {
            break;
        }
        for key in stale {
            if !full {
                sink.send(InventoryEvent::Delta {
                    scan_id,
                    table,
                    change: Change::Removed,
                    key: key.clone(),
                    checksum: String::new(),
                    row: None,
                })
                .await?;
            }
            report.removed += 1;
            state.remove(tbl, &key)?;
        }
        state.commit()?;
        state.begin()?;
        futures_lite::future::yield_now().await;
    }
    state.commit()?;
    let (count, checksum) = state.table_checksum(tbl)?;
    report.rows = count;
    let summary = if full {
        InventoryEvent::SnapshotEnd {
            sync_id: scan_id,
            table,
            rows: count,
            checksum,
        }
    } else {
        InventoryEvent::Checksum {
            scan_id,
            table,
            rows: count,
            checksum,
        }
    };
    sink.send(summary).await?;
    Ok(report)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
