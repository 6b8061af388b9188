//! The inventory module's state (`inventory.db`): the key and checksum of every row seen in the
//! last scan, per table, so that the next scan sends only differences.
//!
//! A scan marks each row it sees with the scan's generation; rows left with an older generation
//! are gone. Writes are grouped in short transactions; the page cache is small because
//! SQLite's memory counts against the module's budget.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rows (
    tbl INTEGER NOT NULL,
    key TEXT NOT NULL,
    checksum TEXT NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// What a row was, compared with the last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    New,
    Changed,
    Same,
    /// Already seen in this scan (a duplicate key): ignored.
    Repeated,
}

/// The open state database.
pub struct State {
    conn: Connection,
    path: String,
    in_tx: bool,
}

impl State {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<State, String> {
        let shown = path.display().to_string();
        let fail = |e: rusqlite::Error| format!("{shown}: {e}");
        let conn = Connection::open(path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA cache_size = -64; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(State {
            conn,
            path: shown,
            in_tx: false,
        })
    }

    fn fail(&self, what: &str, e: rusqlite::Error) -> String {
        format!("{}: {what}: {e}", self.path)
    }

    /// Scans completed so far (0 for a new database).
    pub fn scans(&self) -> Result<u64, String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE name = 'scans'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.unwrap_or(0).max(0) as u64)
            .map_err(|e| self.fail("reading the scan count", e))
    }

    /// Records a completed scan.
    pub fn set_scans(&mut self, scans: u64) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('scans', ?1)",
                [scans as i64],
            )
            .map(|_| ())
            .map_err(|e| self.fail("recording a scan", e))
    }

    /// Starts a transaction (if none is open).
    pub fn begin(&mut self) -> Result<(), String> {
        if !self.in_tx {
            self.conn
                .execute_batch("BEGIN")
                .map_err(|e| self.fail("begin", e))?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Commits the open transaction, if any.
    pub fn commit(&mut self) -> Result<(), String> {
        if self.in_tx {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| self.fail("commit", e))?;
            self.in_tx = false;
        }
        Ok(())
    }

    /// Compares a row with the last scan and records it under generation `gen`.
    pub fn see(&mut self, tbl: u8, key: &str, checksum: &str, gen: u64) -> Result<Seen, String> {
        let known: Option<(String, i64)> = self
            .conn
            .prepare_cached("SELECT checksum, gen FROM rows WHERE tbl = ?1 AND key = ?2")
            .and_then(|mut s| {
                s.query_row(params![tbl, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.fail("reading a row", e))?;
        let seen = match known {
            Some((_, g)) if g as u64 == gen => return Ok(Seen::Repeated),
            Some((c, _)) if c == checksum => Seen::Same,
            Some(_) => Seen::Changed,
            None => Seen::New,
        };
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO rows (tbl, key, checksum, gen) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![tbl, key, checksum, gen as i64]))
            .map_err(|e| self.fail("recording a row", e))?;
        Ok(seen)
    }

    /// Keys of rows not seen in generation `gen` (at most `limit`).
    pub fn stale(&self, tbl: u8, gen: u64, limit: usize) -> Result<Vec<String>, String> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key FROM rows WHERE tbl = ?1 AND gen <> ?2 ORDER BY key LIMIT ?3",
            )
            .map_err(|e| self.fail("listing stale rows", e))?;
        let rows = stmt
            .query_map(params![tbl, gen as i64, limit as i64], |r| r.get(0))
            .map_err(|e| format!("listing stale rows: {e}"))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| format!("listing stale rows: {e}"))
    }

    /// Removes a row.
    pub fn remove(&mut self, tbl: u8, key: &str) -> Result<(), String> {
        self.conn
            .prepare_cached("DELETE FROM rows WHERE tbl = ?1 AND key = ?2")
            .and_then(|mut s| s.execute(params![tbl, key]))
            .map(|_| ())
            .map_err(|e| self.fail("removing a row", e))
    }

    /// Row count and checksum of a table (rows' checksums in key order, hashed).
    pub fn table_checksum(&self, tbl: u8) -> Result<(u64, String), String> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT checksum FROM rows WHERE tbl = ?1 ORDER BY key")
            .map_err(|e| self.fail("checksumming", e))?;
        let mut rows = stmt
            .query([tbl])
            .map_err(|e| format!("checksumming: {e}"))?;
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        let mut count = 0u64;
        while let Some(row) = rows.next().map_err(|e| format!("checksumming: {e}"))? {
            let c: String = row.get(0).map_err(|e| format!("checksumming: {e}"))?;
            sha2::Digest::update(&mut hasher, c.as_bytes());
            count += 1;
        }
        Ok((count, hex::encode(sha2::Digest::finalize(hasher))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_new_then_same_then_changed_and_unseen_ones_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(&dir.path().join("inventory.db")).unwrap();
        assert_eq!(s.see(1, "a", "c1", 1).unwrap(), Seen::New);
        assert_eq!(s.see(1, "b", "c1", 1).unwrap(), Seen::New);
        assert_eq!(s.see(1, "a", "c1", 1).unwrap(), Seen::Repeated);
        assert_eq!(s.see(1, "a", "c1", 2).unwrap(), Seen::Same);
        assert_eq!(s.see(1, "a", "c2", 3).unwrap(), Seen::Changed);
        assert_eq!(s.stale(1, 3, 10).unwrap(), ["b"]);
        s.remove(1, "b").unwrap();
        let (n, c) = s.table_checksum(1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(c, super::super::rows::table_checksum(["c2"].into_iter()));
    }
}
