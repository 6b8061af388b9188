//! File integrity monitoring events (`fim.*`): what the agent's FIM module reports.
//!
//! Field names follow Wazuh's FIM event JSON (`attributes`, `old_attributes`,
//! `changed_attributes`, `hash_md5`, `audit`…), so the manager's JSON lines read like Wazuh's.
//! Options are plain `Option`s (postcard is not self-describing: no skipped fields).

use serde::{Deserialize, Serialize};

/// One FIM event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FimEvent {
    /// A file was added, modified or deleted (boxed: much larger than the other variants).
    Change(Box<FimChange>),
    /// A scheduled scan finished.
    ScanEnded {
        /// Files seen by the scan.
        files: u64,
        /// Bytes read to hash files.
        bytes_hashed: u64,
        /// Wall time of the scan.
        duration_ms: u64,
    },
    /// The state database holds `limit` files: `path` (and further new files) are not monitored.
    FileLimit { limit: u64, path: String },
    /// No more inotify watches (the configured cap or the kernel's): `directory` and what is
    /// below it are checked by scheduled scans only.
    RealtimeLimit { watches: u64, directory: String },
    /// Who-data cannot run (kernel or permissions): the directories fall back to realtime.
    WhodataUnavailable { reason: String },
    /// The kernel's inotify queue overflowed: changes may have been missed, a scan follows.
    RealtimeOverflow,
}

impl FimEvent {
    /// Kind name (see `Payload::kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            FimEvent::Change(c) => match c.event {
                ChangeType::Added => "fim.added",
                ChangeType::Modified => "fim.modified",
                ChangeType::Deleted => "fim.deleted",
            },
            FimEvent::ScanEnded { .. } => "fim.scan_ended",
            FimEvent::FileLimit { .. } => "fim.file_limit",
            FimEvent::RealtimeLimit { .. } => "fim.realtime_limit",
            FimEvent::WhodataUnavailable { .. } => "fim.whodata_unavailable",
            FimEvent::RealtimeOverflow => "fim.realtime_overflow",
        }
    }
}

/// A change to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FimChange {
    /// Full path.
    pub path: String,
    /// Added, modified or deleted.
    pub event: ChangeType,
    /// How it was found.
    pub mode: FimMode,
    /// Attributes now (`None` for a deleted file).
    pub attributes: Option<FileAttributes>,
    /// Attributes before (`None` for an added file).
    pub old_attributes: Option<FileAttributes>,
    /// Wazuh's names of what changed: `size`, `permission`, `uid`, `user_name`, `gid`,
    /// `group_name`, `mtime`, `inode`, `device`, `type`, `md5`, `sha1`, `sha256`.
    pub changed_attributes: Vec<String>,
    /// Tags of the monitored directory.
    pub tags: Vec<String>,
    /// Who made the change (who-data mode only).
    pub audit: Option<WhoData>,
    /// A text diff of the content (`report_changes`), possibly truncated.
    pub content_changes: Option<String>,
}

/// Kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// How a change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FimMode {
    /// By a scan.
    Scheduled,
    /// By an inotify event.
    Realtime,
    /// By a fanotify event naming the writer.
    Whodata,
}

impl FimMode {
    /// Wazuh's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FimMode::Scheduled => "scheduled",
            FimMode::Realtime => "realtime",
            FimMode::Whodata => "whodata",
        }
    }
}

/// Kind of file system object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Directory,
    Symlink,
    Other,
}

impl FileType {
    /// Wazuh's spelling (`file`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Other => "other",
        }
    }
}

/// The attributes of a file, as Wazuh names them. Hashes are lowercase hex, `None` when that
/// hash is switched off or the file was not hashed (too large, unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAttributes {
    #[serde(rename = "type")]
    pub file_type: FileType,
    pub size: u64,
    /// `rw-r--r--` style.
    pub perm: String,
    pub uid: u32,
    pub gid: u32,
    pub user_name: String,
    pub group_name: String,
    pub inode: u64,
    pub device: u64,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
    pub hash_md5: Option<String>,
    pub hash_sha1: Option<String>,
    pub hash_sha256: Option<String>,
}

/// The user and process behind a change (Wazuh's `audit` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoData {
    pub user_id: u32,
    pub user_name: String,
    pub process_id: u32,
    pub process_name: String,
    /// Executable path.
    pub path: String,
    pub ppid: u32,
    pub parent_name: String,
    pub parent_path: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventBody, Payload};

    #[test]
    fn change_round_trips_through_postcard() {
        let attrs = FileAttributes {
            file_type: FileType::File,
            size: 3,
            perm: "rw-r--r--".into(),
            uid: 0,
            gid: 0,
            user_name: "root".into(),
            group_name: "root".into(),
            inode: 7,
            device: 2049,
            mtime: 1_700_000_000,
            hash_md5: Some("0".repeat(32)),
            hash_sha1: None,
            hash_sha256: Some("1".repeat(64)),
        };
        let body = EventBody {
            time_ms: 1,
            module: "fim".into(),
            payload: Payload::Fim(FimEvent::Change(Box::new(FimChange {
                path: "/etc/x".into(),
                event: ChangeType::Modified,
                mode: FimMode::Whodata,
                attributes: Some(attrs.clone()),
                old_attributes: Some(attrs),
                changed_attributes: vec!["size".into()],
                tags: vec![],
                audit: Some(WhoData {
                    user_id: 0,
                    user_name: "root".into(),
                    process_id: 9,
                    process_name: "sh".into(),
                    path: "/bin/sh".into(),
                    ppid: 1,
                    parent_name: "init".into(),
                    parent_path: "/sbin/init".into(),
                }),
                content_changes: Some("1c1".into()),
            }))),
        };
        let mut buf = Vec::new();
        crate::event::encode_body(&body, &mut buf).unwrap();
        assert_eq!(crate::event::decode_body(&buf).unwrap(), body);
        assert_eq!(body.payload.kind(), "fim.modified");
    }
}
