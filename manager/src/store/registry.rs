//! Registry statements of the REST API, beside the enrollment ones in `db.rs`: adding an agent
//! under the Wazuh duplicate and `force` rules, deleting (revoking) agents, and the API's users
//! and settings. Only the store thread runs them, each in one transaction.
//!
//! A deleted agent is remembered in `revoked_agents` (unless purged), so that its next session is
//! refused as *revoked* rather than *unknown*, and its id stays reserved as Wazuh keeps it.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::db::{err, sql_int, Db};
use crate::ManagerError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS revoked_agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    revoked_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_users (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// Columns added to `agents` after its first version, with their types.
const AGENT_COLUMNS: [(&str, &str); 2] = [("last_ip", "TEXT"), ("disconnected_ms", "INTEGER")];

/// Creates the API's tables and adds the newer `agents` columns to a database made before them.
pub(crate) fn migrate(conn: &Connection) -> Result<(), ManagerError> {
    conn.execute_batch(SCHEMA)
        .map_err(err("cannot create the API schema"))?;
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info('agents')")
        .map_err(err("cannot read the agents columns"))?;
    let columns = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(err("cannot read the agents columns"))?;
    for (name, kind) in AGENT_COLUMNS {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE agents ADD COLUMN {name} {kind}"))
                .map_err(err("cannot add a column to agents"))?;
        }
    }
    Ok(())
}

/// An agent the API adds.
#[derive(Debug, Clone)]
pub(crate) struct NewAgent {
    /// The id to use, or `None` for the next free one.
    pub id: Option<u32>,
    pub name: String,
    /// Registration address: an IP, a network, or `any`.
    pub ip: String,
    /// 64 characters.
    pub key: String,
    pub groups: Vec<String>,
}

/// When an existing agent in the way of a new one may be replaced (Wazuh's `force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replace {
    /// It must have been without a session for this long; `None` replaces even a connected one.
    pub min_disconnected_ms: Option<u64>,
    /// It must have been registered at least this long ago.
    pub min_registered_ms: u64,
}

/// What stands in the way of a new agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// The id is taken (or reserved by a deleted agent, or 000).
    Id,
    /// An agent has that name.
    Name,
    /// An agent is registered with that address.
    Ip,
}

/// What adding an agent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AddOutcome {
    /// Stored under `id`; the agents listed in `replaced` were removed to make room.
    Added { id: u32, replaced: Vec<u32> },
    /// Nothing changed.
    Refused(Conflict),
}

/// The parts of an agent row that decide whether it may be replaced.
struct Occupant {
    id: u32,
    registered_ms: u64,
    last_seen_ms: u64,
}

fn occupant(
    tx: &Transaction<'_>,
    sql: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<Occupant>, ManagerError> {
    tx.query_row(sql, [value], |r| {
        let registered = r.get::<_, i64>(1)?.max(0) as u64;
        let seen = r
            .get::<_, Option<i64>>(2)?
            .or(r.get::<_, Option<i64>>(3)?)
            .map_or(registered, |v| v.max(0) as u64);
        Ok(Occupant {
            id: r.get(0)?,
            registered_ms: registered,
            last_seen_ms: seen,
        })
    })
    .optional()
    .map_err(err("cannot look up an agent"))
}

const OCCUPANT_COLUMNS: &str =
    "SELECT id, registered_ms, disconnected_ms, last_keepalive_ms FROM agents";

impl Db {
    /// Adds an agent, refusing a taken id, name or address unless `replace` allows removing the
    /// agent that holds it. `is_connected` tells which agents have a live session.
    pub(crate) fn add_agent(
        &mut self,
        new: &NewAgent,
        replace: Option<Replace>,
        now_ms: u64,
        is_connected: &dyn Fn(u32) -> bool,
    ) -> Result<AddOutcome, ManagerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot begin a transaction"))?;
        let mut occupants = Vec::new();
        if let Some(id) = new.id {
            let reserved: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM revoked_agents WHERE id = ?1)",
                    [id],
                    |r| r.get(0),
                )
                .map_err(err("cannot look up a deleted agent"))?;
            if id == 0 || reserved {
                return Ok(AddOutcome::Refused(Conflict::Id));
            }
            let sql = format!("{OCCUPANT_COLUMNS} WHERE id = ?1");
            occupants.extend(occupant(&tx, &sql, &id)?.map(|o| (Conflict::Id, o)));
        }
        let sql = format!("{OCCUPANT_COLUMNS} WHERE name = ?1");
        occupants.extend(occupant(&tx, &sql, &new.name)?.map(|o| (Conflict::Name, o)));
        if new.ip != "any" {
            let sql = format!("{OCCUPANT_COLUMNS} WHERE ip = ?1 ORDER BY id LIMIT 1");
            occupants.extend(occupant(&tx, &sql, &new.ip)?.map(|o| (Conflict::Ip, o)));
        }
        let mut replaced: Vec<u32> = Vec::new();
        for (conflict, o) in occupants {
            let eligible = replace.is_some_and(|rule| {
                let registered_long_enough =
                    now_ms.saturating_sub(o.registered_ms) >= rule.min_registered_ms;
                let away_long_enough = rule.min_disconnected_ms.is_none_or(|min| {
                    !is_connected(o.id) && now_ms.saturating_sub(o.last_seen_ms) >= min
                });
                registered_long_enough && away_long_enough
            });
            if !eligible {
                return Ok(AddOutcome::Refused(conflict));
            }
            if !replaced.contains(&o.id) {
                replaced.push(o.id);
            }
        }
        for old in &replaced {
            tx.execute("DELETE FROM agents WHERE id = ?1", [old])
                .map_err(err("cannot replace an agent"))?;
        }
        let groups = serde_json::to_string(&new.groups)
            .map_err(|e| ManagerError::store("cannot encode groups", e))?;
        tx.execute(
            "INSERT INTO agents (id, name, ip, key, groups, registered_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![new.id, new.name, new.ip, new.key, groups, sql_int(now_ms)],
        )
        .map_err(err("cannot insert an agent"))?;
        let id = u32::try_from(tx.last_insert_rowid())
            .map_err(|_| ManagerError::store("agent ids exhausted", &new.name))?;
        tx.commit().map_err(err("cannot commit an agent"))?;
        Ok(AddOutcome::Added { id, replaced })
    }

    /// Deletes these agents and returns the ids that existed. Unless `purge`, each is remembered
    /// as revoked (its id stays reserved and its sessions are refused as revoked).
    pub(crate) fn delete_agents(
        &mut self,
        ids: &[u32],
        purge: bool,
        now_ms: u64,
    ) -> Result<Vec<u32>, ManagerError> {
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot begin a transaction"))?;
        let mut deleted = Vec::new();
        for &id in ids {
            let name: Option<String> = tx
                .query_row("SELECT name FROM agents WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(err("cannot look up an agent"))?;
            let Some(name) = name else { continue };
            tx.execute("DELETE FROM agents WHERE id = ?1", [id])
                .map_err(err("cannot delete an agent"))?;
            if purge {
                tx.execute("DELETE FROM revoked_agents WHERE id = ?1", [id])
                    .map_err(err("cannot purge an agent"))?;
            } else {
                tx.execute(
                    "INSERT OR REPLACE INTO revoked_agents (id, name, revoked_ms) VALUES (?1, ?2, ?3)",
                    params![id, name, sql_int(now_ms)],
                )
                .map_err(err("cannot revoke an agent"))?;
            }
            deleted.push(id);
        }
        tx.commit().map_err(err("cannot commit a deletion"))?;
        Ok(deleted)
    }

    /// Name and time of deletion of a revoked agent.
    pub(crate) fn revocation(&mut self, id: u32) -> Result<Option<(String, u64)>, ManagerError> {
        self.conn
            .query_row(
                "SELECT name, revoked_ms FROM revoked_agents WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)),
            )
            .optional()
            .map_err(err("cannot look up a revoked agent"))
    }

    /// Every API user with its password hash (PHC string).
    pub(crate) fn api_users(&mut self) -> Result<Vec<(String, String)>, ManagerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, hash FROM api_users ORDER BY name")
            .map_err(err("cannot list API users"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(err("cannot list API users"))?;
        Ok(rows)
    }

    /// Creates an API user or replaces its password hash.
    pub(crate) fn put_api_user(
        &mut self,
        name: &str,
        hash: &str,
        now_ms: u64,
    ) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "INSERT INTO api_users (name, hash, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET hash = excluded.hash",
                params![name, hash, sql_int(now_ms)],
            )
            .map(|_| ())
            .map_err(err("cannot store an API user"))
    }

    /// A stored API setting (the token signing key, the install time).
    pub(crate) fn api_setting(&mut self, name: &str) -> Result<Option<Vec<u8>>, ManagerError> {
        self.conn
            .query_row(
                "SELECT value FROM api_settings WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("cannot read an API setting"))
    }

    /// Stores an API setting.
    pub(crate) fn put_api_setting(&mut self, name: &str, value: &[u8]) -> Result<(), ManagerError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO api_settings (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map(|_| ())
            .map_err(err("cannot store an API setting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::feed::{Feed, Subscribers};

    fn open(dir: &std::path::Path) -> Db {
        let feed = Feed::open(&dir.join("events.jsonl"), Subscribers::default()).unwrap();
        Db::open(&dir.join("manager.db"), feed).unwrap()
    }

    fn agent(id: Option<u32>, name: &str, ip: &str) -> NewAgent {
        NewAgent {
            id,
            name: name.into(),
            ip: ip.into(),
            key: "k".repeat(64),
            groups: vec!["default".into()],
        }
    }

    const HOUR: u64 = 3_600_000;
    const FORCE_1H: Replace = Replace {
        min_disconnected_ms: Some(HOUR),
        min_registered_ms: HOUR,
    };

    fn added(outcome: AddOutcome) -> u32 {
        match outcome {
            AddOutcome::Added { id, .. } => id,
            other => panic!("not added: {other:?}"),
        }
    }

    #[test]
    fn duplicate_name_address_and_id_are_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let no = &|_| false;
        added(
            db.add_agent(&agent(Some(5), "a", "10.0.0.1"), None, 0, no)
                .unwrap(),
        );
        for (new, conflict) in [
            (agent(None, "a", "any"), Conflict::Name),
            (agent(None, "b", "10.0.0.1"), Conflict::Ip),
            (agent(Some(5), "c", "any"), Conflict::Id),
            (agent(Some(0), "d", "any"), Conflict::Id),
        ] {
            assert_eq!(
                db.add_agent(&new, None, 0, no).unwrap(),
                AddOutcome::Refused(conflict)
            );
        }
        assert_eq!(
            added(db.add_agent(&agent(None, "b", "any"), None, 0, no).unwrap()),
            6
        );
    }

    #[test]
    fn force_replaces_only_an_agent_away_and_registered_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let no = &|_| false;
        let old = added(db.add_agent(&agent(None, "a", "any"), None, 0, no).unwrap());
        let too_soon = db.add_agent(&agent(None, "a", "any"), Some(FORCE_1H), HOUR / 2, no);
        assert_eq!(too_soon.unwrap(), AddOutcome::Refused(Conflict::Name));
        let connected = db.add_agent(&agent(None, "a", "any"), Some(FORCE_1H), 2 * HOUR, &|_| {
            true
        });
        assert_eq!(connected.unwrap(), AddOutcome::Refused(Conflict::Name));
        let later = db.add_agent(&agent(None, "a", "any"), Some(FORCE_1H), 2 * HOUR, no);
        assert_eq!(
            later.unwrap(),
            AddOutcome::Added {
                id: old + 1,
                replaced: vec![old]
            }
        );
    }

    #[test]
    fn deleted_agent_is_revoked_and_keeps_its_id_reserved_unless_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let no = &|_| false;
        let a = added(db.add_agent(&agent(None, "a", "any"), None, 0, no).unwrap());
        let b = added(db.add_agent(&agent(None, "b", "any"), None, 0, no).unwrap());
        assert_eq!(db.delete_agents(&[a, 99], false, 7).unwrap(), vec![a]);
        assert_eq!(db.delete_agents(&[b], true, 7).unwrap(), vec![b]);
        assert_eq!(db.agent_credentials(a).unwrap(), None);
        assert_eq!(db.revocation(a).unwrap(), Some(("a".into(), 7)));
        assert_eq!(db.revocation(b).unwrap(), None);
        let reuse_a = db
            .add_agent(&agent(Some(a), "a2", "any"), None, 0, no)
            .unwrap();
        assert_eq!(reuse_a, AddOutcome::Refused(Conflict::Id));
        assert_eq!(
            added(
                db.add_agent(&agent(Some(b), "b2", "any"), None, 0, no)
                    .unwrap()
            ),
            b
        );
    }

    #[test]
    fn session_of_a_deleted_agent_cannot_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        let a = added(
            db.add_agent(&agent(None, "a", "any"), None, 0, &|_| false)
                .unwrap(),
        );
        assert_eq!(db.session_opened(a, "127.0.0.1", 1).unwrap(), Some(0));
        db.delete_agents(&[a], false, 2).unwrap();
        assert_eq!(db.session_opened(a, "127.0.0.1", 3).unwrap(), None);
    }

    #[test]
    fn api_users_and_settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path());
        db.put_api_user("wazuh", "h1", 0).unwrap();
        db.put_api_user("wazuh", "h2", 1).unwrap();
        assert_eq!(db.api_users().unwrap(), vec![("wazuh".into(), "h2".into())]);
        assert_eq!(db.api_setting("k").unwrap(), None);
        db.put_api_setting("k", b"v").unwrap();
        assert_eq!(db.api_setting("k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn database_without_the_newer_columns_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manager.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE agents (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
             ip TEXT NOT NULL, key TEXT NOT NULL, groups TEXT NOT NULL, registered_ms INTEGER NOT NULL,
             last_keepalive_ms INTEGER, connected INTEGER NOT NULL DEFAULT 0, version TEXT);
             INSERT INTO agents (name, ip, key, groups, registered_ms) VALUES ('old', 'any', 'k', '[]', 0);",
        )
        .unwrap();
        drop(conn);
        let mut db = open(dir.path());
        let rows = db.agents().unwrap();
        assert_eq!(
            (rows[0].name.as_str(), rows[0].last_ip.as_deref()),
            ("old", None)
        );
    }
}
