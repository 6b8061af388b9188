//! The FIM state database (`fim.db` in the module's state directory): one row per file with its
//! last known attributes, and the id of the last scan that saw it.
//!
//! A scan stamps every file it sees with its scan id; the rows left with an older id afterwards
//! are the files deleted since (including while the agent was down). Writes are grouped in short
//! transactions by the caller ([`Db::begin`] / [`Db::commit`]); SQLite's page cache is kept
//! small, since its memory is outside the module's counting allocator.

use gatewatch_proto::fim::{FileAttributes, FileType};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    type INTEGER NOT NULL,
    size INTEGER NOT NULL,
    perm TEXT NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    user_name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    md5 TEXT,
    sha1 TEXT,
    sha256 TEXT,
    scan INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// SQLite page cache, in KiB (negative `cache_size` means KiB).
const CACHE_KIB: i64 = 512;

/// A state database error, with what was being done.
#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(what: &'static str) -> impl Fn(rusqlite::Error) -> DbError {
    move |e| DbError(format!("fim state: {what}: {e}"))
}

fn sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The open state database.
pub struct Db {
    conn: Connection,
    in_tx: bool,
}

/// A stored row: the attributes and the scan that last saw it.
#[derive(Debug, Clone)]
pub struct Row {
    pub attrs: FileAttributes,
    pub scan: u64,
}

fn type_code(t: FileType) -> i64 {
    match t {
        FileType::File => 0,
        FileType::Directory => 1,
        FileType::Symlink => 2,
        FileType::Other => 3,
    }
}

fn type_from(code: i64) -> FileType {
    match code {
        0 => FileType::File,
        1 => FileType::Directory,
        2 => FileType::Symlink,
        _ => FileType::Other,
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Row)> {
    Ok((
        r.get(0)?,
        Row {
            attrs: FileAttributes {
                file_type: type_from(r.get(1)?),
                size: r.get::<_, i64>(2)?.max(0) as u64,
                perm: r.get(3)?,
                uid: r.get(4)?,
                gid: r.get(5)?,
                user_name: r.get(6)?,
                group_name: r.get(7)?,
                inode: r.get::<_, i64>(8)? as u64,
                device: r.get::<_, i64>(9)? as u64,
                mtime: r.get(10)?,
                hash_md5: r.get(11)?,
                hash_sha1: r.get(12)?,
                hash_sha256: r.get(13)?,
            },
            scan: r.get::<_, i64>(14)?.max(0) as u64,
        },
    ))
}

const COLUMNS: &str = "path, type, size, perm, uid, gid, user_name, group_name, inode, device, \
                       mtime, md5, sha1, sha256, scan";

impl Db {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path)
            .map_err(|e| DbError(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-{CACHE_KIB};
             PRAGMA mmap_size=0; PRAGMA temp_store=FILE; PRAGMA busy_timeout=5000;"
        ))
        .map_err(|e| DbError(format!("cannot set up {}: {e}", path.display())))?;
        conn.execute_batch(SCHEMA).map_err(|e| {
            DbError(format!(
                "cannot create the schema in {}: {e}",
                path.display()
            ))
        })?;
        Ok(Db { conn, in_tx: false })
    }

    /// Starts a transaction (no-op if one is open).
    pub fn begin(&mut self) -> Result<(), DbError> {
        if !self.in_tx {
            self.conn
                .execute_batch("BEGIN")
                .map_err(err("cannot begin a transaction"))?;
            self.in_tx = true;
        }
        Ok(())
    }

    /// Commits the open transaction (no-op if none).
    pub fn commit(&mut self) -> Result<(), DbError> {
        if self.in_tx {
            self.in_tx = false;
            self.conn
                .execute_batch("COMMIT")
                .map_err(err("cannot commit"))?;
        }
        Ok(())
    }

    /// The stored row of `path`.
    pub fn get(&self, path: &str) -> Result<Option<Row>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM files WHERE path = ?1"))
            .map_err(err("cannot prepare a lookup"))?;
        stmt.query_row([path], read_row)
            .optional()
            .map(|r| r.map(|(_, row)| row))
            .map_err(err("cannot look up a file"))
    }

    /// Inserts or replaces the row of `path`.
    pub fn put(&self, path: &str, a: &FileAttributes, scan: u64) -> Result<(), DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO files ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ))
            .map_err(err("cannot prepare an insert"))?;
        stmt.execute(params![
            path,
            type_code(a.file_type),
            sql(a.size),
            a.perm,
            a.uid,
            a.gid,
            a.user_name,
            a.group_name,
            sql(a.inode),
            sql(a.device),
            a.mtime,
            a.hash_md5,
            a.hash_sha1,
            a.hash_sha256,
            sql(scan)
        ])
        .map(|_| ())
        .map_err(err("cannot store a file"))
    }

    /// Stamps `path` as seen by `scan` (its attributes unchanged).
    pub fn touch(&self, path: &str, scan: u64) -> Result<(), DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE files SET scan = ?2 WHERE path = ?1")
            .map_err(err("cannot prepare an update"))?;
        stmt.execute(params![path, sql(scan)])
            .map(|_| ())
            .map_err(err("cannot stamp a file"))
    }

    /// Stamps every row under directory `dir` as seen by `scan` (used when a directory cannot be
    /// read: its files are not reported as deleted).
    pub fn touch_under(&self, dir: &str, scan: u64) -> Result<(), DbError> {
        let (lo, hi) = prefix_range(dir);
        self.conn
            .execute(
                "UPDATE files SET scan = ?3 WHERE path >= ?1 AND path < ?2",
                params![lo, hi, sql(scan)],
            )
            .map(|_| ())
            .map_err(err("cannot stamp a directory"))
    }

    /// Removes the row of `path`.
    pub fn remove(&self, path: &str) -> Result<(), DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM files WHERE path = ?1")
            .map_err(err("cannot prepare a delete"))?;
        stmt.execute([path])
            .map(|_| ())
            .map_err(err("cannot remove a file"))
    }

    /// Up to `limit` rows not seen by scan `scan`, in path order.
    pub fn unseen(&self, scan: u64, limit: usize) -> Result<Vec<(String, Row)>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE scan < ?1 ORDER BY path LIMIT ?2"
            ))
            .map_err(err("cannot prepare the sweep"))?;
        let rows = stmt
            .query_map(params![sql(scan), limit as i64], read_row)
            .map_err(err("cannot sweep"))?;
        rows.collect::<Result<_, _>>()
            .map_err(err("cannot read a row"))
    }

    /// Up to `limit` rows under directory `dir` (its descendants), in path order.
    pub fn under(&self, dir: &str, limit: usize) -> Result<Vec<(String, Row)>, DbError> {
        let (lo, hi) = prefix_range(dir);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM files WHERE path >= ?1 AND path < ?2 ORDER BY path LIMIT ?3"
            ))
            .map_err(err("cannot prepare a directory lookup"))?;
        let rows = stmt
            .query_map(params![lo, hi, limit as i64], read_row)
            .map_err(err("cannot list a directory"))?;
        rows.collect::<Result<_, _>>()
            .map_err(err("cannot read a row"))
    }

    /// Number of files stored.
    pub fn count(&self) -> Result<u64, DbError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM files", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(err("cannot count files"))
    }

    /// A stored number (`scan` counter, last scan time), 0 when absent.
    pub fn meta(&self, key: &str) -> Result<u64, DbError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.unwrap_or(0).max(0) as u64)
            .map_err(err("cannot read meta"))
    }

    /// Stores a number under `key`.
    pub fn set_meta(&self, key: &str, value: u64) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, sql(value)],
            )
            .map(|_| ())
            .map_err(err("cannot write meta"))
    }
}

/// The `[lo, hi)` range of paths strictly below directory `dir` (`dir/` … `dir0`, since `0`
/// follows `/`).
fn prefix_range(dir: &str) -> (String, String) {
    let base = dir.trim_end_matches('/');
    (format!("{base}/"), format!("{base}0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(size: u64) -> FileAttributes {
        FileAttributes {
            file_type: FileType::File,
            size,
            perm: "rw-r--r--".into(),
            uid: 0,
            gid: 0,
            user_name: "root".into(),
            group_name: "root".into(),
            inode: 1,
            device: 2,
            mtime: 3,
            hash_md5: None,
            hash_sha1: None,
            hash_sha256: Some("ab".into()),
        }
    }

    #[test]
    fn rows_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fim.db");
        {
            let mut db = Db::open(&path).unwrap();
            db.begin().unwrap();
            db.put("/a", &attrs(4), 1).unwrap();
            db.commit().unwrap();
        }
        let db = Db::open(&path).unwrap();
        let row = db.get("/a").unwrap().unwrap();
        assert_eq!((row.attrs, row.scan), (attrs(4), 1));
        assert_eq!(db.count().unwrap(), 1);
    }

    #[test]
    fn rows_not_seen_by_a_scan_are_listed_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("fim.db")).unwrap();
        for p in ["/d/b", "/d/a", "/d/c"] {
            db.put(p, &attrs(1), 1).unwrap();
        }
        db.touch("/d/b", 2).unwrap();
        let unseen: Vec<_> = db.unseen(2, 10).unwrap().into_iter().map(|r| r.0).collect();
        assert_eq!(unseen, ["/d/a", "/d/c"]);
    }

    #[test]
    fn under_lists_descendants_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("fim.db")).unwrap();
        for p in ["/d/x/1", "/d/x/y/2", "/d/x0", "/d/xa", "/d/x"] {
            db.put(p, &attrs(1), 1).unwrap();
        }
        let under: Vec<_> = db
            .under("/d/x", 10)
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(under, ["/d/x/1", "/d/x/y/2"]);
    }
}
