//! The `events` table: its layout, and the move of a database made with the older layout.
//!
//! Events are keyed by (agent, seq), but the table is an ordinary rowid table with that key as a
//! unique index, not a `WITHOUT ROWID` table. A `log.batch` row holds tens of KiB of JSON; in a
//! `WITHOUT ROWID` table the whole row lives in the key's b-tree, and every comparison of a key
//! against such a row while seeking (each insert does one) reads the row's overflow pages. With
//! a rowid table the key index holds only (agent, seq, rowid), rows are appended in rowid order,
//! and an insert reads no payload. Readers see the same columns.

use rusqlite::{Connection, OptionalExtension};

use super::db::err;
use crate::ManagerError;

/// The table as it is created now.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    agent_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    module TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
";

/// Creates the table, or moves an older `WITHOUT ROWID` table into the current layout (in one
/// transaction: a crash leaves the old table as it was).
pub(super) fn create_or_migrate(conn: &mut Connection) -> Result<(), ManagerError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(err("cannot read the events table's definition"))?;
    let old_layout = existing.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
    if !old_layout {
        return conn
            .execute_batch(SCHEMA)
            .map_err(err("cannot create the events table"));
    }
    let tx = conn
        .transaction()
        .map_err(err("cannot begin the events table migration"))?;
    tx.execute_batch("ALTER TABLE events RENAME TO events_without_rowid;")
        .and_then(|()| tx.execute_batch(SCHEMA))
        .and_then(|()| {
            tx.execute_batch(
                "INSERT INTO events (agent_id, seq, time_ms, received_ms, module, kind, payload)
                 SELECT agent_id, seq, time_ms, received_ms, module, kind, payload
                 FROM events_without_rowid ORDER BY agent_id, seq;
                 DROP TABLE events_without_rowid;",
            )
        })
        .map_err(err("cannot move the events table to its rowid layout"))?;
    tx.commit()
        .map_err(err("cannot commit the events table migration"))?;
    log::info!("events table moved to its rowid layout");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_SCHEMA: &str = "
    CREATE TABLE events (
        agent_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        module TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (agent_id, seq)
    ) WITHOUT ROWID;";

    fn definition(conn: &Connection) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn old_without_rowid_table_is_moved_with_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        conn.execute_batch(OLD_SCHEMA).unwrap();
        for seq in [2, 1, 3] {
            conn.execute(
                "INSERT INTO events VALUES (7, ?1, 10, 11, 'm', 'k', '{}')",
                [seq],
            )
            .unwrap();
        }
        create_or_migrate(&mut conn).unwrap();
        assert!(!definition(&conn).to_ascii_uppercase().contains("WITHOUT"));
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM events WHERE agent_id = 7 ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(seqs, vec![1, 2, 3]);
        let leftovers: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_without_rowid'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn key_stays_unique_in_the_rowid_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
        create_or_migrate(&mut conn).unwrap();
        let insert = "INSERT OR IGNORE INTO events VALUES (1, 5, 0, 0, 'm', 'k', '{}')";
        assert_eq!(conn.execute(insert, []).unwrap(), 1);
        assert_eq!(conn.execute(insert, []).unwrap(), 0);
    }
}
