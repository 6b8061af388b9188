//! The rpm database in its SQLite form (`rpmdb.sqlite`, rpm ≥ 4.16): table `Packages` holds one
//! header blob per package. A header is `il` and `dl` (big-endian u32), `il` index entries of
//! (tag, type, offset, count), then `dl` bytes of data; we read the few tags we report.
//!
//! Rows are read a page at a time (by `hnum`), so the database is never held in memory.

use super::super::root::Root;
use gatewatch_proto::inventory::Package;
use rusqlite::{Connection, OpenFlags};

/// Headers read per query.
const PAGE: usize = 16;
/// Largest header accepted (rpm's own limit is 256 MiB; real headers are a few hundred KiB).
const MAX_HEADER: usize = 16 * 1024 * 1024;

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_SUMMARY: u32 = 1004;
const TAG_INSTALLTIME: u32 = 1008;
const TAG_SIZE: u32 = 1009;
const TAG_VENDOR: u32 = 1011;
const TAG_GROUP: u32 = 1016;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_LONGSIZE: u32 = 5009;

const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Packages of an rpmdb, one per step.
pub struct Reader {
    conn: Option<Connection>,
    location: String,
    last: i64,
    page: std::vec::IntoIter<(i64, Vec<u8>)>,
}

impl Reader {
    /// Opens the database read-only (an unreadable one yields nothing, with a warning).
    pub fn new(root: &Root, abs: &str) -> Reader {
        let path = root.path(abs);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(&path, flags) {
            Ok(conn) => {
                let _ = conn.execute_batch("PRAGMA cache_size = -64;");
                Some(conn)
            }
            Err(e) => {
                log::warn!("inventory: cannot open {abs}: {e}");
                None
            }
        };
        Reader {
            conn,
            location: abs.to_string(),
            last: -1,
            page: Vec::new().into_iter(),
        }
    }

    fn next_page(&mut self) -> Option<()> {
        let conn = self.conn.as_ref()?;
        let rows: Result<Vec<(i64, Vec<u8>)>, rusqlite::Error> = conn
            .prepare_cached(
                "SELECT hnum, blob FROM Packages WHERE hnum > ?1 ORDER BY hnum LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(rusqlite::params![self.last, PAGE as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            });
        match rows {
            Ok(rows) if !rows.is_empty() => {
                self.page = rows.into_iter();
                Some(())
            }
            Ok(_) => {
                self.conn = None;
                None
            }
            Err(e) => {
                log::warn!("inventory: {}: {e}", self.location);
                self.conn = None;
                None
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Package;

    fn next(&mut self) -> Option<Package> {
        loop {
            let (hnum, blob) = match self.page.next() {
                Some(row) => row,
                None => {
                    self.next_page()?;
                    continue;
                }
            };
            self.last = hnum;
            match parse_header(&blob) {
                Some(h) if h.name != "gpg-pubkey" => return Some(h.into_package(&self.location)),
                Some(_) => {}
                None => log::warn!("inventory: {}: header {hnum} is malformed", self.location),
            }
        }
    }
}

/// The tags we read from one header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<u32>,
    pub summary: String,
    pub install_time: Option<u64>,
    pub size: u64,
    pub vendor: String,
    pub group: String,
    pub arch: String,
    pub source_rpm: String,
}

impl Header {
    fn into_package(self, location: &str) -> Package {
        let version = match self.epoch {
            Some(e) if e > 0 => format!("{e}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        };
        Package {
            name: self.name,
            version,
            architecture: self.arch,
            vendor: self.vendor,
            format: "rpm".into(),
            description: self.summary,
            section: self.group,
            size: self.size,
            source: self.source_rpm,
            install_time: self.install_time,
            location: location.to_string(),
            ..Package::default()
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a header blob (with or without the 8-byte header magic); `None` if malformed.
pub fn parse_header(blob: &[u8]) -> Option<Header> {
    let blob = match blob.get(..4) {
        Some([0x8e, 0xad, 0xe8, 0x01]) => blob.get(8..)?,
        _ => blob,
    };
    if blob.len() > MAX_HEADER {
        return None;
    }
    let il = be32(blob, 0)? as usize;
    let dl = be32(blob, 4)? as usize;
    let index = blob.get(8..8usize.checked_add(il.checked_mul(16)?)?)?;
    let data = blob.get(8 + il * 16..(8 + il * 16).checked_add(dl)?)?;
    let mut h = Header::default();
    for entry in index.chunks_exact(16) {
        let tag = be32(entry, 0)?;
        let kind = be32(entry, 4)?;
        let offset = be32(entry, 8)? as usize;
        let string = || -> Option<String> {
            if !matches!(kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
                return None;
            }
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let int = || -> Option<u64> {
            match kind {
                TYPE_INT32 => be32(data, offset).map(u64::from),
                TYPE_INT64 => Some(u64::from_be_bytes(
                    data.get(offset..offset + 8)?.try_into().ok()?,
                )),
                _ => None,
            }
        };
        match tag {
            TAG_NAME => h.name = string()?,
            TAG_VERSION => h.version = string()?,
            TAG_RELEASE => h.release = string()?,
            TAG_EPOCH => h.epoch = int().map(|e| e as u32),
            TAG_SUMMARY => h.summary = string().unwrap_or_default(),
            TAG_INSTALLTIME => h.install_time = int(),
            TAG_SIZE if h.size == 0 => h.size = int().unwrap_or(0),
            TAG_LONGSIZE => h.size = int().unwrap_or(h.size),
            TAG_VENDOR => h.vendor = string().unwrap_or_default(),
            TAG_GROUP => h.group = string().unwrap_or_default(),
            TAG_ARCH => h.arch = string().unwrap_or_default(),
            TAG_SOURCERPM => h.source_rpm = string().unwrap_or_default(),
            _ => {}
        }
    }
    (!h.name.is_empty()).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, data) entries.
    fn blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, bytes) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&kind.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(bytes);
        }
        let mut out = (entries.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn header_tags_become_a_package_with_epoch() {
        let b = blob(&[
            (TAG_NAME, TYPE_STRING, b"bash\0".to_vec()),
            (TAG_VERSION, TYPE_STRING, b"5.2\0".to_vec()),
            (TAG_RELEASE, TYPE_STRING, b"1\0".to_vec()),
            (TAG_EPOCH, TYPE_INT32, 2u32.to_be_bytes().to_vec()),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0".to_vec()),
            (TAG_SIZE, TYPE_INT32, 1234u32.to_be_bytes().to_vec()),
        ]);
        let p = parse_header(&b).unwrap().into_package("db");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("bash", "2:5.2-1"));
        assert_eq!((p.architecture.as_str(), p.size), ("x86_64", 1234));
    }

    #[test]
    fn truncated_or_absurd_headers_are_refused() {
        let b = blob(&[(TAG_NAME, TYPE_STRING, b"bash\0".to_vec())]);
        for cut in 0..b.len() {
            let _ = parse_header(&b[..cut]);
        }
        assert!(parse_header(&[0xff; 8]).is_none());
    }
}
