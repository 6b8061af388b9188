//! The SQLite database `manager.db`: schema and every statement the manager runs.
//!
//! Only the store thread touches it. Events are inserted in one transaction per batch and
//! de-duplicated by their primary key (agent, seq); the caller acks only after [`Db::store_events`]
//! returned, i.e. after the commit, so a crash never loses an acked event.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::feed::Feed;
use crate::{ManagerError, StoredEvent};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS agents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    ip TEXT NOT NULL,
    key TEXT NOT NULL,
    groups TEXT NOT NULL,
    registered_ms INTEGER NOT NULL,
    last_keepalive_ms INTEGER,
    connected INTEGER NOT NULL DEFAULT 0,
    version TEXT
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    command TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS command_results (
    command_id INTEGER NOT NULL,
    agent_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
";

/// Page size of a new database (the largest SQLite allows).
const PAGE_SIZE: u32 = 65536;

/// An event decoded by a session, ready to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub seq: u64,
    pub time_ms: u64,
    pub module: String,
    pub kind: String,
    pub payload_json: String,
}

/// What registering a name did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterOutcome {
    /// Stored under this new id (an older, offline agent of that name was replaced).
    Registered { id: u32 },
    /// An agent of that name is connected now; nothing changed.
    NameTaken { id: u32 },
}

/// A row of `agents`, before the live status is added.
#[derive(Debug, Clone)]
pub(crate) struct AgentRow {
    pub id: u32,
    pub name: String,
    pub ip: String,
    pub key: String,
    pub groups: Vec<String>,
    pub registered_ms: u64,
    pub last_keepalive_ms: Option<u64>,
    pub version: Option<String>,
    /// Address of the agent's last session.
    pub last_ip: Option<String>,
    /// When its last session closed.
    pub disconnected_ms: Option<u64>,
}

/// The open database and the feed that follows its commits.
pub(crate) struct Db {
    pub(super) conn: Connection,
    feed: Feed,
    /// Set by the shutdown job: the store thread stops after it.
    pub stopping: bool,
}

/// SQLite integers are signed; sequence numbers and times never get near 2^63 in practice, and
/// the rare absurd value from a broken clock is clamped rather than refused.
pub(super) fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> ManagerError {
    move |e| ManagerError::store(what, e)
}

/// Creates the database file readable by its owner only (it holds agent keys); SQLite gives its
/// WAL and shared-memory files the same permissions.
fn create_private(path: &Path) -> Result<(), ManagerError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ManagerError::file(path, "cannot create", e)),
    }
}

impl Db {
    /// Opens (creating) the database in WAL mode and marks every agent disconnected: a previous
    /// process may have died with sessions open.
    pub(crate) fn open(path: &Path, feed: Feed) -> Result<Self, ManagerError> {
        create_private(path)?;
        let mut conn = Connection::open(path).map_err(|e| {
            ManagerError::store(
                "cannot open the database",
                format!("{}: {e}", path.display()),
            )
        })?;
        // Only a new, empty database takes a page size (an existing one keeps its own). Log
        // batches are rows of tens of KiB: with 64 KiB pages a row is one or two pages rather than
        // a chain of overflow pages, and SQLite writes the WAL and checkpoints a page per system
        // call, so the same bytes take a sixteenth of the calls.
        conn.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE};"))
            .map_err(err("cannot set the page size"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err("cannot enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("{}: journal mode is {mode}, not WAL", path.display());
        }
        // FULL: a commit survives a power cut, not only a crash of this process.
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;")
            .map_err(err("cannot set pragmas"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("cannot create the schema"))?;
        super::events::create_or_migrate(&mut conn)?;
        super::registry::migrate(&conn)?;
        conn.execute_batch(crate::inventory::SCHEMA)
            .and_then(|()| conn.execute_batch(crate::sca::SCHEMA))
            .map_err(err("cannot create the inventory and SCA schema"))?;
        crate::fim::create_schema(&conn)?;
        conn.execute("UPDATE agents SET connected = 0 WHERE connected <> 0", [])
            .map_err(err("cannot reset sessions"))?;
        Ok(Db {
            conn,
            feed,
            stopping: false,
        })
    }

    /// The connection, for the inventory and SCA queries (store thread only).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Name and key of an agent, if it is registered.
    pub(crate) fn agent_credentials(
        &mut self,
        id: u32,
    ) -> Result<Option<(String, String)>, ManagerError> {
        self.conn
            .query_row("SELECT name, key FROM agents WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(err("cannot look up an agent"))
    }

    /// Marks a session open from `ip` and returns the highest stored sequence number (0 if
    /// none), or `None` when the agent is no longer registered (deleted meanwhile).
    pub(crate) fn session_opened(
        &mut self,
        id: u32,
        ip: &str,
        now_ms: u64,
    ) -> Result<Option<u64>, ManagerError> {
        let updated = self
            .conn
            .execute(
                "UPDATE agents SET connected = 1, last_keepalive_ms = ?2, last_ip = ?3 WHERE id = ?1",
                params![id, sql_int(now_ms), ip],
            )
            .map_err(err("cannot mark an agent connected"))?;
        if updated == 0 {
            return Ok(None);
        }
        self.watermark(id).map(Some)
    }

    /// Highest sequence number stored for an agent (0 if none).
    pub(crate) fn watermark(&mut self, id: u32) -> Result<u64, ManagerError> {
        let max: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE agent_id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(err("cannot read the event watermark"))?;
        Ok(max.max(0) as u64)
    }

    /// Marks a session closed.
    pub(crate) fn session_closed(&mut self, id: u32, now_ms: u64) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "UPDATE agents SET connected = 0, disconnected_ms = ?2 WHERE id = ?1",
                params![id, sql_int(now_ms)],
            )
            .map(|_| ())
            .map_err(err("cannot mark an agent disconnected"))
    }

    /// Records a keep-alive.
    pub(crate) fn keepalive(
        &mut self,
        id: u32,
        version: &str,
        now_ms: u64,
    ) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "UPDATE agents SET last_keepalive_ms = ?2, version = ?3 WHERE id = ?1",
                params![id, sql_int(now_ms), version],
            )
            .map(|_| ())
            .map_err(err("cannot record a keep-alive"))
    }

    /// Inserts a batch in one transaction, skipping (agent, seq) pairs already stored, commits,
    /// then feeds the new events to `events.jsonl` and subscribers. Returns how many were new.
    pub(crate) fn store_events(
        &mut self,
        agent_id: u32,
        agent_name: &str,
        events: Vec<NewEvent>,
        received_ms: u64,
    ) -> Result<usize, ManagerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot begin a transaction"))?;
        let mut fresh = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (agent_id, seq, time_ms, received_ms, module, kind, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err("cannot prepare the event insert"))?;
            for e in events {
                let added = insert
                    .execute(params![
                        agent_id,
                        sql_int(e.seq),
                        sql_int(e.time_ms),
                        sql_int(received_ms),
                        e.module,
                        e.kind,
                        e.payload_json
                    ])
                    .map_err(err("cannot insert an event"))?;
                if added == 1 {
                    // Inventory, SCA and FIM state follow their events, in the same transaction.
                    for apply in [crate::inventory::apply, crate::sca::apply] {
                        if let Err(why) = apply(&tx, agent_id, &e.kind, &e.payload_json, e.time_ms)
                        {
                            log::warn!("agent {agent_id}: event {}: {why}", e.seq);
                        }
                    }
                    if let Err(why) =
                        crate::fim::apply(&tx, agent_id, &e.kind, &e.payload_json, e.time_ms)
                    {
                        log::warn!("agent {agent_id}: event {}: {why}", e.seq);
                    }
                    fresh.push(StoredEvent {
                        agent_id,
                        agent_name: agent_name.to_string(),
                        seq: e.seq,
                        time_ms: e.time_ms,
                        module: e.module,
                        kind: e.kind,
                        payload_json: e.payload_json,
                    });
                }
            }
        }
        tx.commit().map_err(err("cannot commit events"))?;
        self.feed.publish(&fresh);
        Ok(fresh.len())
    }

    /// Records a command sent to an agent.
    pub(crate) fn command_sent(
        &mut self,
        id: u64,
        agent_id: u32,
        command_json: &str,
        now_ms: u64,
    ) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO commands (id, agent_id, time_ms, command) VALUES (?1, ?2, ?3, ?4)",
                params![sql_int(id), agent_id, sql_int(now_ms), command_json],
            )
            .map(|_| ())
            .map_err(err("cannot record a command"))
    }

    /// Records what an agent reported about a command.
    pub(crate) fn command_result(
        &mut self,
        id: u64,
        agent_id: u32,
        outcome_json: &str,
        now_ms: u64,
    ) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "INSERT INTO command_results (command_id, agent_id, time_ms, outcome) VALUES (?1, ?2, ?3, ?4)",
                params![sql_int(id), agent_id, sql_int(now_ms), outcome_json],
            )
            .map(|_| ())
            .map_err(err("cannot record a command result"))
    }

    /// The highest command id used so far (0 if none), so ids keep growing across restarts.
    pub(crate) fn last_command_id(&mut self) -> Result<u64, ManagerError> {
        let max: i64 = self
            .conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM commands), 0), COALESCE((SELECT MAX(command_id) FROM command_results), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(err("cannot read command ids"))?;
        Ok(max.max(0) as u64)
    }

    /// Registers `name`, replacing an existing agent of that name unless `is_connected` says it
    /// has a live session (Wazuh's "force" behaviour). All in one transaction.
    pub(crate) fn register(
        &mut self,
        name: &str,
        ip: &str,
        groups: &[String],
        key: &str,
        now_ms: u64,
        is_connected: &dyn Fn(u32) -> bool,
    ) -> Result<RegisterOutcome, ManagerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot begin a transaction"))?;
        let existing: Option<u32> = tx
            .query_row("SELECT id FROM agents WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err("cannot look up an agent name"))?;
        if let Some(old) = existing {
            if is_connected(old) {
                return Ok(RegisterOutcome::NameTaken { id: old });
            }
            tx.execute("DELETE FROM agents WHERE id = ?1", [old])
                .map_err(err("cannot replace an agent"))?;
            log::info!(
                "agent {name:?} re-enrolled: old id {} removed",
                gatewatch_proto::format_agent_id(old)
            );
        }
        let groups_json = serde_json::to_string(groups)
            .map_err(|e| ManagerError::store("cannot encode groups", e))?;
        tx.execute(
            "INSERT INTO agents (name, ip, key, groups, registered_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, ip, key, groups_json, sql_int(now_ms)],
        )
        .map_err(err("cannot insert an agent"))?;
        let id = u32::try_from(tx.last_insert_rowid())
            .map_err(|_| ManagerError::store("agent ids exhausted", name))?;
        tx.commit().map_err(err("cannot commit an agent"))?;
        Ok(RegisterOutcome::Registered { id })
    }

    /// The page of an agent's FIM files that `q` selects, and how many it selects in all.
    pub(crate) fn syscheck(
        &mut self,
        agent_id: u32,
        q: &crate::fim::SyscheckQuery,
    ) -> Result<(Vec<crate::fim::FimEntry>, u64), ManagerError> {
        let page = crate::fim::query(&self.conn, agent_id, q)?;
        let total = crate::fim::count(&self.conn, agent_id, q)?;
        Ok((page, total))
    }

    /// Every registered agent, by id.
    pub(crate) fn agents(&mut self) -> Result<Vec<AgentRow>, ManagerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, name, ip, key, groups, registered_ms, last_keepalive_ms, version, last_ip, disconnected_ms
                 FROM agents ORDER BY id",
            )
            .map_err(err("cannot list agents"))?;
        let rows = stmt
            .query_map([], |r| {
                let groups: String = r.get(4)?;
                Ok(AgentRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    ip: r.get(2)?,
                    key: r.get(3)?,
                    groups: serde_json::from_str(&groups).unwrap_or_default(),
                    registered_ms: r.get::<_, i64>(5)?.max(0) as u64,
                    last_keepalive_ms: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u64),
                    version: r.get(7)?,
                    last_ip: r.get(8)?,
                    disconnected_ms: r.get::<_, Option<i64>>(9)?.map(|v| v.max(0) as u64),
                })
            })
            .map_err(err("cannot list agents"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(err("cannot read an agent row"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feed::Subscribers;

    fn open(dir: &Path) -> Db {
        let feed = Feed::open(&dir.join("events.jsonl"), Subscribers::default()).unwrap();
        Db::open(&dir.join("manager.db"), feed).unwrap()
    }

    fn event(seq: u64) -> NewEvent {
        NewEvent {
            seq,
            time_ms: 1,
            module: "m".into(),
            kind: "k".into(),
            payload_json: "{}".into(),
        }
    }

    #[test]
    fn database_holding_keys_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        db.register("a", "ip", &[], "k", 0, &|_| false).unwrap();
        for file in ["manager.db", "manager.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn duplicate_sequence_numbers_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        assert_eq!(
            db.store_events(1, "a", vec![event(1), event(2)], 0)
                .unwrap(),
            2
        );
        assert_eq!(
            db.store_events(1, "a", vec![event(2), event(3)], 0)
                .unwrap(),
            1
        );
        assert_eq!(db.watermark(1).unwrap(), 3);
        assert_eq!(db.watermark(2).unwrap(), 0);
    }

    #[test]
    fn ids_count_from_one_and_are_not_reused_after_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let r1 = db
            .register("a", "1.2.3.4", &["default".into()], "k1", 0, &|_| false)
            .unwrap();
        let r2 = db
            .register("b", "1.2.3.4", &["default".into()], "k2", 0, &|_| false)
            .unwrap();
        let r3 = db
            .register("b", "1.2.3.4", &["default".into()], "k3", 0, &|_| false)
            .unwrap();
        assert_eq!(
            [r1, r2, r3],
            [
                RegisterOutcome::Registered { id: 1 },
                RegisterOutcome::Registered { id: 2 },
                RegisterOutcome::Registered { id: 3 }
            ]
        );
        assert_eq!(db.agent_credentials(2).unwrap(), None);
        assert_eq!(
            db.agent_credentials(3).unwrap(),
            Some(("b".into(), "k3".into()))
        );
    }

    #[test]
    fn connected_name_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        db.register("a", "ip", &[], "k1", 0, &|_| false).unwrap();
        assert_eq!(
            db.register("a", "ip", &[], "k2", 0, &|_| true).unwrap(),
            RegisterOutcome::NameTaken { id: 1 }
        );
        assert_eq!(
            db.agent_credentials(1).unwrap(),
            Some(("a".into(), "k1".into()))
        );
    }
}
