//! The FIM state database (`fim.db` in the module's state directory): one row per file with its
//! last known attributes, and the id of the last scan that wrote it.
//!
//! A scan marks the rows of the files it sees in a bitmap of row ids (`seen.rs`) instead of
//! writing to them, so a rescan that finds nothing changed writes nothing (flash wears out);
//! rows it wrote carry its scan id. After the walk, a row neither marked nor written is a file
//! deleted since (also while the agent was down). Writes are grouped in short transactions by the
//! caller ([`Db::begin`] / [`Db::commit`]); SQLite's page cache is kept small, since its memory
//! is outside the module's counting allocator.

use gatewatch_proto::fim::{FileAttributes, FileType};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
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
    md5 BLOB,
    sha1 BLOB,
    sha256 BLOB,
    scan INTEGER NOT NULL
);
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
    /// The id the next new row gets (ids are never reused while rows exist).
    next_id: std::cell::Cell<u64>,
}

/// What the sweep reads of a row.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub id: u64,
    pub scan: u64,
    pub path: String,
}

/// A stored row: its id, the attributes and the scan that last wrote it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: u64,
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

/// Hashes are stored as bytes (half the size of their hex).
fn bytes_of(hex_digest: &Option<String>) -> Option<Vec<u8>> {
    hex_digest.as_deref().and_then(|h| hex::decode(h).ok())
}

fn hex_of(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(hex::encode)
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
                hash_md5: hex_of(r.get(11)?),
                hash_sha1: hex_of(r.get(12)?),
                hash_sha256: hex_of(r.get(13)?),
            },
            scan: r.get::<_, i64>(14)?.max(0) as u64,
            id: r.get::<_, i64>(15)?.max(0) as u64,
        },
    ))
}

const COLUMNS: &str = "path, type, size, perm, uid, gid, user_name, group_name, inode, device, \
                       mtime, md5, sha1, sha256, scan, id";
const SELECT: &str = "SELECT path, type, size, perm, uid, gid, user_name, group_name, inode, \
                      device, mtime, md5, sha1, sha256, scan, id FROM files";

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
        let max: i64 = conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM files", [], |r| r.get(0))
            .map_err(|e| DbError(format!("cannot read {}: {e}", path.display())))?;
        Ok(Db {
            conn,
            in_tx: false,
            next_id: std::cell::Cell::new(max.max(0) as u64 + 1),
        })
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
            .prepare_cached(&format!("{SELECT} WHERE path = ?1"))
            .map_err(err("cannot prepare a lookup"))?;
        stmt.query_row([path], read_row)
            .optional()
            .map(|r| r.map(|(_, row)| row))
            .map_err(err("cannot look up a file"))
    }

    /// The id, scan and the cheap-to-compare attributes of `path`'s row (what an unchanged file
    /// is recognised by, without reading the hashes and names).
    pub fn quick(&self, path: &str) -> Result<Option<Quick>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, scan, type, size, mtime, inode, device, uid, gid, perm
                 FROM files WHERE path = ?1",
            )
            .map_err(err("cannot prepare a lookup"))?;
        stmt.query_row([path], |r| {
            let perm: rusqlite::types::ValueRef<'_> = r.get_ref(9)?;
            Ok(Quick {
                id: r.get::<_, i64>(0)?.max(0) as u64,
                scan: r.get::<_, i64>(1)?.max(0) as u64,
                file_type: type_from(r.get(2)?),
                size: r.get::<_, i64>(3)?.max(0) as u64,
                mtime: r.get(4)?,
                inode: r.get::<_, i64>(5)? as u64,
                device: r.get::<_, i64>(6)? as u64,
                uid: r.get(7)?,
                gid: r.get(8)?,
                perm: perm_bits(perm.as_str().unwrap_or("")),
            })
        })
        .optional()
        .map_err(err("cannot look up a file"))
    }

    /// Inserts or updates the row of `path`; returns its id.
    pub fn put(&self, path: &str, a: &FileAttributes, scan: u64) -> Result<u64, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO files ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (path) DO UPDATE SET type = ?2, size = ?3, perm = ?4, uid = ?5,
                     gid = ?6, user_name = ?7, group_name = ?8, inode = ?9, device = ?10,
                     mtime = ?11, md5 = ?12, sha1 = ?13, sha256 = ?14, scan = ?15
                 RETURNING id"
            ))
            .map_err(err("cannot prepare an insert"))?;
        stmt.query_row(
            params![
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
                bytes_of(&a.hash_md5),
                bytes_of(&a.hash_sha1),
                bytes_of(&a.hash_sha256),
                sql(scan),
                sql(self.next_id.get())
            ],
            |r| r.get::<_, i64>(0),
        )
        .map(|id| {
            let id = id.max(0) as u64;
            if id == self.next_id.get() {
                self.next_id.set(id + 1);
            }
            id
        })
        .map_err(err("cannot store a file"))
    }

    /// Stamps `path` as seen by `scan` (its attributes unchanged; when the bitmap cannot say so).
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

    /// Up to `limit` rows with an id above `after`, in id order, as (id, scan, path): what the
    /// end-of-scan sweep needs to find rows not seen (reading whole rows, hashes turned to hex,
    /// was a fifth of an unchanged rescan).
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<SweepRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, scan, path FROM files WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(err("cannot prepare the sweep"))?;
        let rows = stmt
            .query_map(params![sql(after), limit as i64], |r| {
                Ok(SweepRow {
                    id: r.get::<_, i64>(0)?.max(0) as u64,
                    scan: r.get::<_, i64>(1)?.max(0) as u64,
                    path: r.get(2)?,
                })
            })
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
                "{SELECT} WHERE path >= ?1 AND path < ?2 ORDER BY path LIMIT ?3"
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

/// The cheap-to-compare part of a row (see [`Db::quick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quick {
    pub id: u64,
    pub scan: u64,
    pub file_type: FileType,
    pub size: u64,
    pub mtime: i64,
    pub inode: u64,
    pub device: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits as `perm_bits` reads them back from the `rwx` text.
    pub perm: u32,
}

/// The mode bits (with set-id and sticky) a `rwxr-xr-x` string stands for.
pub fn perm_bits(perm: &str) -> u32 {
    const BITS: [u32; 9] = [
        0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001,
    ];
    const SPECIAL: [u32; 3] = [0o4000, 0o2000, 0o1000];
    let mut mode = 0;
    for (i, c) in perm.bytes().take(9).enumerate() {
        match c {
            b'-' => {}
            b's' | b't' => mode |= BITS[i] | SPECIAL[i / 3],
            b'S' | b'T' => mode |= SPECIAL[i / 3],
            _ => mode |= BITS[i],
        }
    }
    mode
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
        assert_eq!((row.attrs, row.scan, row.id), (attrs(4), 1, 1));
        assert_eq!(db.count().unwrap(), 1);
    }

    #[test]
    fn updating_a_row_keeps_its_id_and_rows_are_listed_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("fim.db")).unwrap();
        let ids: Vec<u64> = ["/d/b", "/d/a", "/d/c"]
            .iter()
            .map(|p| db.put(p, &attrs(1), 1).unwrap())
            .collect();
        assert_eq!(db.put("/d/a", &attrs(2), 2).unwrap(), ids[1]);
        let listed: Vec<_> = db
            .after(ids[0], 10)
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(listed, ["/d/a", "/d/c"]);
        assert_eq!(db.get("/d/a").unwrap().unwrap().attrs.size, 2);
    }

    #[test]
    fn perm_bits_read_back_perm_strings() {
        use crate::modules::fim::attrs::perm_string;
        for mode in [0o644, 0o4755, 0o1777, 0o2640, 0o7000, 0o0] {
            assert_eq!(perm_bits(&perm_string(mode)), mode, "{mode:o}");
        }
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
