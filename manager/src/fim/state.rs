//! Keeping the `fim_files` table in step with the stored `fim.*` events.

use gatewatch_proto::fim::{ChangeType, FileAttributes, FimEvent};
use gatewatch_proto::Payload;
use rusqlite::{params, Connection};

use crate::ManagerError;

/// The table: one row per (agent, file), as the last event left it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fim_files (
    agent_id INTEGER NOT NULL,
    file TEXT NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    perm TEXT NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    uname TEXT NOT NULL,
    gname TEXT NOT NULL,
    inode INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    date_ms INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    md5 TEXT,
    sha1 TEXT,
    sha256 TEXT,
    PRIMARY KEY (agent_id, file)
) WITHOUT ROWID;
";

/// Creates the table if it is missing.
pub(crate) fn create_schema(conn: &Connection) -> Result<(), ManagerError> {
    conn.execute_batch(SCHEMA)
        .map_err(|e| ManagerError::store("cannot create the FIM schema", e))
}

/// Applies one newly stored event of `agent_id` (anything but a FIM change is ignored).
pub(crate) fn apply(
    conn: &Connection,
    agent_id: u32,
    kind: &str,
    payload_json: &str,
    time_ms: u64,
) -> Result<(), ManagerError> {
    if !matches!(kind, "fim.added" | "fim.modified" | "fim.deleted") {
        return Ok(());
    }
    let Ok(Payload::Fim(FimEvent::Change(change))) = serde_json::from_str::<Payload>(payload_json)
    else {
        log::warn!("agent {agent_id}: a {kind} event without a FIM change payload");
        return Ok(());
    };
    match (change.event, &change.attributes) {
        (ChangeType::Deleted, _) | (_, None) => conn
            .execute(
                "DELETE FROM fim_files WHERE agent_id = ?1 AND file = ?2",
                params![agent_id, change.path],
            )
            .map(|_| ())
            .map_err(|e| ManagerError::store("cannot forget a FIM file", e)),
        (_, Some(a)) => upsert(conn, agent_id, &change.path, a, time_ms),
    }
}

fn upsert(
    conn: &Connection,
    agent_id: u32,
    file: &str,
    a: &FileAttributes,
    time_ms: u64,
) -> Result<(), ManagerError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO fim_files (agent_id, file, type, size, perm, uid, gid, uname, gname,
                 inode, mtime, date_ms, changes, md5, sha1, sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1, ?13, ?14, ?15)
             ON CONFLICT (agent_id, file) DO UPDATE SET
                 type = excluded.type, size = excluded.size, perm = excluded.perm,
                 uid = excluded.uid, gid = excluded.gid, uname = excluded.uname,
                 gname = excluded.gname, inode = excluded.inode, mtime = excluded.mtime,
                 date_ms = excluded.date_ms, changes = changes + 1, md5 = excluded.md5,
                 sha1 = excluded.sha1, sha256 = excluded.sha256",
        )
        .map_err(|e| ManagerError::store("cannot prepare the FIM update", e))?;
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    stmt.execute(params![
        agent_id,
        file,
        a.file_type.as_str(),
        int(a.size),
        a.perm,
        a.uid,
        a.gid,
        a.user_name,
        a.group_name,
        int(a.inode),
        a.mtime,
        int(time_ms),
        a.hash_md5,
        a.hash_sha1,
        a.hash_sha256
    ])
    .map(|_| ())
    .map_err(|e| ManagerError::store("cannot store a FIM file", e))
}
