//! Reading an agent's FIM state with Wazuh's `GET /syscheck/{agent_id}` filters, paging and sort.

use rusqlite::types::Value;
use rusqlite::Connection;
use serde::Serialize;

use crate::ManagerError;

/// Wazuh's default page size.
pub const DEFAULT_LIMIT: usize = 500;

/// Filters, paging and order of a syscheck query (the endpoint's query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscheckQuery {
    /// Exact path (Wazuh `file`).
    pub file: Option<String>,
    /// Substring of the path (Wazuh `search`).
    pub search: Option<String>,
    /// `file`, `directory`, `symlink` or `other` (Wazuh `type`).
    pub file_type: Option<String>,
    /// Matches any of the three hashes (Wazuh `hash`).
    pub hash: Option<String>,
    /// Exact MD5 (Wazuh `md5`).
    pub md5: Option<String>,
    /// Exact SHA-1 (Wazuh `sha1`).
    pub sha1: Option<String>,
    /// Exact SHA-256 (Wazuh `sha256`).
    pub sha256: Option<String>,
    /// Items skipped (Wazuh `offset`).
    pub offset: usize,
    /// Items returned; `None` = 500 (Wazuh `limit`).
    pub limit: Option<usize>,
    /// Wazuh `sort`: comma-separated fields, each `+` (default) or `-` prefixed, e.g. `-mtime,+file`.
    pub sort: Option<String>,
}

/// One file of an agent, in the item shape of Wazuh's `GET /syscheck/{agent_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FimEntry {
    pub file: String,
    #[serde(rename = "type")]
    pub file_type: String,
    pub size: u64,
    pub perm: String,
    /// As a string, as Wazuh gives it.
    pub uid: String,
    pub gid: String,
    pub uname: String,
    pub gname: String,
    pub inode: u64,
    /// ISO 8601, UTC.
    pub mtime: String,
    /// When the manager last heard of the file (the event's time), ISO 8601.
    pub date: String,
    /// Events received about the file.
    pub changes: u64,
    /// Empty when the agent does not compute it.
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
}

/// The columns a query may sort by, as (Wazuh field, column).
const SORTABLE: &[(&str, &str)] = &[
    ("file", "file"),
    ("type", "type"),
    ("size", "size"),
    ("perm", "perm"),
    ("uid", "uid"),
    ("gid", "gid"),
    ("uname", "uname"),
    ("gname", "gname"),
    ("inode", "inode"),
    ("mtime", "mtime"),
    ("date", "date_ms"),
    ("changes", "changes"),
    ("md5", "md5"),
    ("sha1", "sha1"),
    ("sha256", "sha256"),
];

/// `WHERE …` and its values.
fn filters(agent_id: u32, q: &SyscheckQuery) -> (String, Vec<Value>) {
    let mut sql = String::from(" WHERE agent_id = ?");
    let mut values = vec![Value::Integer(i64::from(agent_id))];
    let mut eq = |column: &str, v: &Option<String>| {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Text(v.clone()));
        }
    };
    eq("file", &q.file);
    eq("type", &q.file_type);
    eq("md5", &q.md5);
    eq("sha1", &q.sha1);
    eq("sha256", &q.sha256);
    if let Some(h) = &q.hash {
        sql.push_str(" AND (md5 = ? OR sha1 = ? OR sha256 = ?)");
        values.extend((0..3).map(|_| Value::Text(h.clone())));
    }
    if let Some(s) = &q.search {
        sql.push_str(" AND instr(file, ?) > 0");
        values.push(Value::Text(s.clone()));
    }
    (sql, values)
}

/// `ORDER BY …` from Wazuh's `sort`; an unknown field is an error naming it.
fn order(sort: Option<&str>) -> Result<String, ManagerError> {
    let mut terms = Vec::new();
    for field in sort
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let (name, dir) = match field.as_bytes()[0] {
            b'-' => (&field[1..], "DESC"),
            b'+' | b' ' => (&field[1..], "ASC"),
            _ => (field, "ASC"),
        };
        let Some((_, column)) = SORTABLE.iter().find(|(f, _)| *f == name) else {
            return Err(ManagerError::Config(format!(
                "sort: unknown field {name:?} (fields: file, type, size, perm, uid, gid, uname, \
                 gname, inode, mtime, date, changes, md5, sha1, sha256)"
            )));
        };
        terms.push(format!("{column} {dir}"));
    }
    terms.push("file ASC".into());
    Ok(format!(" ORDER BY {}", terms.join(", ")))
}

/// The page of `agent_id`'s files that `q` selects.
pub(crate) fn query(
    conn: &Connection,
    agent_id: u32,
    q: &SyscheckQuery,
) -> Result<Vec<FimEntry>, ManagerError> {
    let (filter, mut values) = filters(agent_id, q);
    let sql = format!(
        "SELECT file, type, size, perm, uid, gid, uname, gname, inode, mtime, date_ms, changes,
                COALESCE(md5, ''), COALESCE(sha1, ''), COALESCE(sha256, '')
         FROM fim_files{filter}{} LIMIT ? OFFSET ?",
        order(q.sort.as_deref())?
    );
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    values.push(Value::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| ManagerError::store("cannot prepare a syscheck query", e))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), |r| {
            let u = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(FimEntry {
                file: r.get(0)?,
                file_type: r.get(1)?,
                size: u(2)?,
                perm: r.get(3)?,
                uid: r.get::<_, i64>(4)?.to_string(),
                gid: r.get::<_, i64>(5)?.to_string(),
                uname: r.get(6)?,
                gname: r.get(7)?,
                inode: u(8)?,
                mtime: super::iso8601(r.get(9)?),
                date: super::iso8601(r.get::<_, i64>(10)? / 1000),
                changes: u(11)?,
                md5: r.get(12)?,
                sha1: r.get(13)?,
                sha256: r.get(14)?,
            })
        })
        .map_err(|e| ManagerError::store("cannot run a syscheck query", e))?;
    rows.collect::<Result<_, _>>()
        .map_err(|e| ManagerError::store("cannot read a syscheck row", e))
}

/// How many of `agent_id`'s files `q` selects before paging (`total_affected_items`).
pub(crate) fn count(
    conn: &Connection,
    agent_id: u32,
    q: &SyscheckQuery,
) -> Result<u64, ManagerError> {
    let (filter, values) = filters(agent_id, q);
    conn.query_row(
        &format!("SELECT COUNT(*) FROM fim_files{filter}"),
        rusqlite::params_from_iter(values),
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(|e| ManagerError::store("cannot count syscheck rows", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fim::{apply, create_schema};
    use gatewatch_proto::fim::{
        ChangeType, FileAttributes, FileType, FimChange, FimEvent, FimMode,
    };
    use gatewatch_proto::Payload;

    fn event(path: &str, kind: ChangeType, size: u64, sha256: &str) -> (String, String) {
        let attrs = FileAttributes {
            file_type: FileType::File,
            size,
            perm: "rw-r--r--".into(),
            uid: 0,
            gid: 0,
            user_name: "root".into(),
            group_name: "root".into(),
            inode: 10,
            device: 1,
            mtime: 1_700_000_000,
            hash_md5: Some("m".repeat(32)),
            hash_sha1: Some("s".repeat(40)),
            hash_sha256: Some(sha256.into()),
        };
        let change = FimChange {
            path: path.into(),
            event: kind,
            mode: FimMode::Scheduled,
            attributes: (kind != ChangeType::Deleted).then(|| attrs.clone()),
            old_attributes: None,
            changed_attributes: vec![],
            tags: vec![],
            audit: None,
            content_changes: None,
        };
        let payload = Payload::Fim(FimEvent::Change(Box::new(change)));
        (
            payload.kind().to_string(),
            serde_json::to_string(&payload).unwrap(),
        )
    }

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        let feed = [
            ("/etc/a", ChangeType::Added, 1, "a1"),
            ("/etc/b", ChangeType::Added, 3, "b1"),
            ("/etc/a", ChangeType::Modified, 2, "a2"),
            ("/etc/c", ChangeType::Added, 5, "c1"),
            ("/etc/c", ChangeType::Deleted, 5, "c1"),
            ("/var/d", ChangeType::Added, 4, "d1"),
        ];
        for (i, (p, k, s, h)) in feed.into_iter().enumerate() {
            let (kind, json) = event(p, k, s, h);
            apply(&conn, 1, &kind, &json, 1_700_000_000_000 + i as u64).unwrap();
        }
        conn
    }

    fn files(entries: &[FimEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.file.as_str()).collect()
    }

    #[test]
    fn events_leave_the_last_state_of_each_file() {
        let conn = db();
        let all = query(&conn, 1, &SyscheckQuery::default()).unwrap();
        assert_eq!(files(&all), ["/etc/a", "/etc/b", "/var/d"]);
        let a = &all[0];
        assert_eq!((a.size, a.changes, a.sha256.as_str()), (2, 2, "a2"));
        assert_eq!(
            (a.uid.as_str(), a.uname.as_str(), a.file_type.as_str()),
            ("0", "root", "file")
        );
        assert_eq!(a.mtime, "2023-11-14T22:13:20Z");
        assert!(query(&conn, 2, &SyscheckQuery::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn filters_select_by_path_hash_and_type() {
        let conn = db();
        let q = |q: SyscheckQuery| {
            files(&query(&conn, 1, &q).unwrap())
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(SyscheckQuery {
                search: Some("etc".into()),
                ..Default::default()
            }),
            ["/etc/a", "/etc/b"]
        );
        assert_eq!(
            q(SyscheckQuery {
                file: Some("/var/d".into()),
                ..Default::default()
            }),
            ["/var/d"]
        );
        assert_eq!(
            q(SyscheckQuery {
                hash: Some("b1".into()),
                ..Default::default()
            }),
            ["/etc/b"]
        );
        assert_eq!(
            q(SyscheckQuery {
                sha256: Some("a2".into()),
                ..Default::default()
            }),
            ["/etc/a"]
        );
        assert!(q(SyscheckQuery {
            file_type: Some("directory".into()),
            ..Default::default()
        })
        .is_empty());
    }

    #[test]
    fn paging_and_sort_follow_wazuh() {
        let conn = db();
        let q = SyscheckQuery {
            sort: Some("-size".into()),
            limit: Some(2),
            offset: 1,
            ..Default::default()
        };
        assert_eq!(files(&query(&conn, 1, &q).unwrap()), ["/etc/b", "/etc/a"]);
        assert_eq!(count(&conn, 1, &q).unwrap(), 3);
        let bad = SyscheckQuery {
            sort: Some("colour".into()),
            ..Default::default()
        };
        assert!(query(&conn, 1, &bad)
            .unwrap_err()
            .to_string()
            .contains("colour"));
    }
}
