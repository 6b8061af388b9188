//! The SCA module's state (`sca.db` in its state directory): each policy's file hash and scan
//! count, and the last result of every check, so that only changed results are sent.
//!
//! Writes go in short transactions (a few dozen checks); the page cache is kept small because
//! SQLite's memory counts against the module's budget.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS policies (
    policy_id TEXT PRIMARY KEY,
    hash_file TEXT NOT NULL,
    scans INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
    policy_id TEXT NOT NULL,
    check_id INTEGER NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (policy_id, check_id)
) WITHOUT ROWID;
";

/// What is known about a policy before its scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyState {
    /// Every result must be sent (new state, changed file, or periodic resend).
    pub full: bool,
}

/// The open state database.
pub struct StateDb {
    conn: Connection,
    path: String,
}

impl StateDb {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<StateDb, String> {
        let shown = path.display().to_string();
        let fail = |e: rusqlite::Error| format!("{shown}: {e}");
        let conn = Connection::open(path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA cache_size = -64; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(StateDb { conn, path: shown })
    }

    fn err(&self, what: &str, e: rusqlite::Error) -> String {
        format!("{}: {what}: {e}", self.path)
    }

    /// Starts a policy scan: counts it, forgets old results when the file changed, and says
    /// whether every result must be sent (`sync_every` scans at most between full sends).
    pub fn begin_policy(
        &mut self,
        policy_id: &str,
        hash_file: &str,
        sync_every: u32,
    ) -> Result<PolicyState, String> {
        let known: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT hash_file, scans FROM policies WHERE policy_id = ?1",
                [policy_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err("reading a policy", e))?;
        let (full, scans) = match known {
            Some((hash, _)) if hash != hash_file => (true, 0),
            Some((_, scans)) => (sync_every > 0 && scans % i64::from(sync_every) == 0, scans),
            None => (true, 0),
        };
        let tx = self
            .conn
            .transaction()
            .map_err(|e| format!("{}: {e}", self.path))?;
        if full {
            tx.execute("DELETE FROM results WHERE policy_id = ?1", [policy_id])
                .map_err(|e| format!("clearing results: {e}"))?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO policies (policy_id, hash_file, scans) VALUES (?1, ?2, ?3)",
            params![policy_id, hash_file, scans + 1],
        )
        .map_err(|e| format!("recording a policy: {e}"))?;
        tx.commit().map_err(|e| format!("{}: {e}", self.path))?;
        Ok(PolicyState { full })
    }

    /// The stored result of a check (`passed`, `failed`, `not applicable`).
    pub fn result(&self, policy_id: &str, check_id: u32) -> Result<Option<String>, String> {
        self.conn
            .prepare_cached("SELECT result FROM results WHERE policy_id = ?1 AND check_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![policy_id, check_id], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err("reading a result", e))
    }

    /// Stores results in one transaction.
    pub fn store_results(
        &mut self,
        policy_id: &str,
        results: &[(u32, &'static str)],
    ) -> Result<(), String> {
        if results.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| format!("{path}: {e}"))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO results (policy_id, check_id, result) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| format!("{path}: {e}"))?;
            for (id, result) in results {
                insert
                    .execute(params![policy_id, id, result])
                    .map_err(|e| format!("{path}: storing a result: {e}"))?;
            }
        }
        tx.commit().map_err(|e| format!("{path}: {e}"))
    }

    /// Removes results of checks that are no longer in the policy.
    pub fn keep_only_checks(&mut self, policy_id: &str, ids: &[u32]) -> Result<(), String> {
        let stored: Vec<u32> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT check_id FROM results WHERE policy_id = ?1")
                .map_err(|e| self.err("listing results", e))?;
            let rows = stmt
                .query_map([policy_id], |r| r.get(0))
                .map_err(|e| format!("listing results: {e}"))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| format!("listing results: {e}"))?
        };
        for id in stored.into_iter().filter(|id| !ids.contains(id)) {
            self.conn
                .execute(
                    "DELETE FROM results WHERE policy_id = ?1 AND check_id = ?2",
                    params![policy_id, id],
                )
                .map_err(|e| self.err("removing a result", e))?;
        }
        Ok(())
    }

    /// Forgets every policy not in `ids` (it was removed or no longer applies).
    pub fn keep_only_policies(&mut self, ids: &[String]) -> Result<(), String> {
        let stored: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT policy_id FROM policies")
                .map_err(|e| self.err("listing policies", e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| format!("listing policies: {e}"))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| format!("listing policies: {e}"))?
        };
        for id in stored.into_iter().filter(|id| !ids.contains(id)) {
            for sql in [
                "DELETE FROM results WHERE policy_id = ?1",
                "DELETE FROM policies WHERE policy_id = ?1",
            ] {
                self.conn
                    .execute(sql, [&id])
                    .map_err(|e| self.err("forgetting a policy", e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_scan_changed_file_and_every_nth_scan_are_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(&dir.path().join("sca.db")).unwrap();
        let full = |db: &mut StateDb, hash: &str| db.begin_policy("p", hash, 3).unwrap().full;
        assert!(full(&mut db, "h1"), "first scan");
        assert!(!full(&mut db, "h1"));
        assert!(!full(&mut db, "h1"));
        assert!(full(&mut db, "h1"), "every third scan");
        assert!(full(&mut db, "h2"), "the file changed");
        assert!(!full(&mut db, "h2"));
    }

    #[test]
    fn results_survive_reopening_and_removed_checks_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sca.db");
        let mut db = StateDb::open(&path).unwrap();
        db.begin_policy("p", "h", 10).unwrap();
        db.store_results("p", &[(1, "passed"), (2, "failed")])
            .unwrap();
        drop(db);
        let mut db = StateDb::open(&path).unwrap();
        assert_eq!(db.result("p", 2).unwrap().as_deref(), Some("failed"));
        db.keep_only_checks("p", &[1]).unwrap();
        assert_eq!(db.result("p", 2).unwrap(), None);
        db.keep_only_policies(&[]).unwrap();
        assert_eq!(db.result("p", 1).unwrap(), None);
    }
}
