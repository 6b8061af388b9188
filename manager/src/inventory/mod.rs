//! Each agent's system inventory, kept from its `inventory.*` events, and served in the Wazuh
//! API's shape.
//!
//! Deltas upsert or delete rows; a snapshot's `State` rows are upserted under its sync id and its
//! `SnapshotEnd` removes the rows it did not mention. After each `Checksum` or `SnapshotEnd` the
//! manager recomputes the table's checksum from what it holds (SHA-256 over the row checksums
//! in key order, as the agent does) and records whether both sides agree.

mod handle;
mod items;
pub mod query;

use gatewatch_proto::inventory::{Change, InventoryEvent, Table};
use gatewatch_proto::Payload;
use rusqlite::{params, Connection, Transaction};
use sha2::{Digest, Sha256};

pub(crate) use items::iso_time;
pub use query::{Items, Query, QueryError};

/// Tables of `manager.db` this module owns.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inventory_rows (
    agent_id INTEGER NOT NULL,
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    checksum TEXT NOT NULL,
    item TEXT NOT NULL,
    sync_id INTEGER NOT NULL,
    scan_id INTEGER NOT NULL,
    scan_time INTEGER NOT NULL,
    PRIMARY KEY (agent_id, tbl, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inventory_tables (
    agent_id INTEGER NOT NULL,
    tbl TEXT NOT NULL,
    agent_rows INTEGER NOT NULL,
    agent_checksum TEXT NOT NULL,
    in_sync INTEGER NOT NULL,
    PRIMARY KEY (agent_id, tbl)
) WITHOUT ROWID;
";

/// Whether the manager's copy of an agent's table matches the agent's last checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// Rows the agent reported.
    pub agent_rows: u64,
    /// Rows the manager holds.
    pub rows: u64,
    /// Checksums agree.
    pub in_sync: bool,
}

fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Applies a stored event to the inventory tables (inside the store's transaction). Other
/// kinds are ignored. Errors are the caller's to log: the event itself is already stored.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    agent_id: u32,
    kind: &str,
    payload_json: &str,
    time_ms: u64,
) -> Result<(), String> {
    if !kind.starts_with("inventory.") {
        return Ok(());
    }
    let event = match serde_json::from_str::<Payload>(payload_json) {
        Ok(Payload::Inventory(event)) => *event,
        Ok(_) => return Ok(()),
        Err(e) => return Err(format!("undecodable inventory payload: {e}")),
    };
    let scan_time = sql_int(time_ms / 1000);
    let upsert = |table: Table,
                  key: &str,
                  checksum: &str,
                  item: String,
                  sync: Option<u64>,
                  scan_id: u64| {
        tx.execute(
            "INSERT INTO inventory_rows (agent_id, tbl, key, checksum, item, sync_id, scan_id, scan_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (agent_id, tbl, key) DO UPDATE SET checksum = ?4, item = ?5,
                 sync_id = COALESCE(?9, sync_id), scan_id = ?7, scan_time = ?8",
            params![
                agent_id,
                table.name(),
                key,
                checksum,
                item,
                sql_int(sync.unwrap_or(0)),
                sql_int(scan_id),
                scan_time,
                sync.map(sql_int)
            ],
        )
        .map(|_| ())
        .map_err(|e| format!("storing an inventory row: {e}"))
    };
    match event {
        InventoryEvent::Delta {
            scan_id,
            table,
            change: Change::Added | Change::Modified,
            key,
            checksum,
            row: Some(row),
        } => upsert(
            table,
            &key,
            &checksum,
            items::item(&row).to_string(),
            None,
            scan_id,
        ),
        InventoryEvent::Delta { table, key, .. } => tx
            .execute(
                "DELETE FROM inventory_rows WHERE agent_id = ?1 AND tbl = ?2 AND key = ?3",
                params![agent_id, table.name(), key],
            )
            .map(|_| ())
            .map_err(|e| format!("removing an inventory row: {e}")),
        InventoryEvent::State {
            sync_id,
            table,
            key,
            checksum,
            row,
        } => upsert(
            table,
            &key,
            &checksum,
            items::item(&row).to_string(),
            Some(sync_id),
            sync_id,
        ),
        InventoryEvent::SnapshotEnd {
            sync_id,
            table,
            rows,
            checksum,
        } => {
            tx.execute(
                "DELETE FROM inventory_rows WHERE agent_id = ?1 AND tbl = ?2 AND sync_id <> ?3",
                params![agent_id, table.name(), sql_int(sync_id)],
            )
            .map_err(|e| format!("ending a snapshot: {e}"))?;
            record_checksum(tx, agent_id, table, rows, &checksum)
        }
        InventoryEvent::Checksum {
            table,
            rows,
            checksum,
            ..
        } => record_checksum(tx, agent_id, table, rows, &checksum),
    }
}

/// The manager's row count and checksum of an agent's table.
fn own_checksum(conn: &Connection, agent_id: u32, table: Table) -> Result<(u64, String), String> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT checksum FROM inventory_rows WHERE agent_id = ?1 AND tbl = ?2 ORDER BY key",
        )
        .map_err(|e| e.to_string())?;
    let mut rows = stmt
        .query(params![agent_id, table.name()])
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut count = 0;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let c: String = row.get(0).map_err(|e| e.to_string())?;
        hasher.update(c.as_bytes());
        count += 1;
    }
    Ok((count, hex::encode(hasher.finalize())))
}

fn record_checksum(
    tx: &Transaction<'_>,
    agent_id: u32,
    table: Table,
    agent_rows: u64,
    agent_checksum: &str,
) -> Result<(), String> {
    let (rows, checksum) = own_checksum(tx, agent_id, table)?;
    let in_sync = rows == agent_rows && checksum == agent_checksum;
    if !in_sync {
        log::warn!(
            "agent {}: inventory table {} differs from the agent's ({rows} rows held, {agent_rows} on the agent); it converges at the agent's next snapshot",
            gatewatch_proto::format_agent_id(agent_id),
            table.name()
        );
    }
    tx.execute(
        "INSERT OR REPLACE INTO inventory_tables (agent_id, tbl, agent_rows, agent_checksum, in_sync)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![agent_id, table.name(), sql_int(agent_rows), agent_checksum, in_sync],
    )
    .map(|_| ())
    .map_err(|e| format!("recording a checksum: {e}"))
}

/// Items of one table of an agent, with `agent_id` and `scan` added, in key order.
pub(crate) fn items(
    conn: &Connection,
    agent_id: u32,
    table: Table,
) -> Result<Vec<serde_json::Value>, String> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT item, scan_id, scan_time FROM inventory_rows WHERE agent_id = ?1 AND tbl = ?2 ORDER BY key",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(params![agent_id, table.name()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let agent = gatewatch_proto::format_agent_id(agent_id);
    rows.map(|row| {
        let (item, scan_id, scan_time) = row.map_err(|e| e.to_string())?;
        let mut value: serde_json::Value =
            serde_json::from_str(&item).map_err(|e| format!("stored item: {e}"))?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert(
                "scan".into(),
                serde_json::json!({"id": scan_id, "time": iso_time(scan_time.max(0) as u64)}),
            );
            map.insert("agent_id".into(), agent.clone().into());
        }
        Ok(value)
    })
    .collect()
}

/// The sync state of an agent's table, if the agent ever reported a checksum for it.
pub(crate) fn sync_state(
    conn: &Connection,
    agent_id: u32,
    table: Table,
) -> Result<Option<SyncState>, String> {
    let reported: Option<(i64, i64)> = conn
        .query_row(
            "SELECT agent_rows, in_sync FROM inventory_tables WHERE agent_id = ?1 AND tbl = ?2",
            params![agent_id, table.name()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let Some((agent_rows, in_sync)) = reported else {
        return Ok(None);
    };
    let (rows, _) = own_checksum(conn, agent_id, table)?;
    Ok(Some(SyncState {
        agent_rows: agent_rows.max(0) as u64,
        rows,
        in_sync: in_sync != 0,
    }))
}
