//! `[modules.fim]`: file integrity monitoring settings, named after Wazuh's `<syscheck>` options.
//!
//! ```toml
//! [modules.fim]
//! enabled = true
//! frequency_secs = 43200
//! [[modules.fim.directories]]
//! path = "/etc"
//! realtime = true
//! report_changes = true
//! ignore = ["/etc/mtab"]
//! ```

use serde::Deserialize;
use std::path::PathBuf;

/// Settings of the FIM module.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FimConfig {
    /// Run the module. Default false.
    pub enabled: bool,
    /// Memory budget in bytes. Default 1 MiB.
    pub budget_bytes: usize,
    /// Seconds between scheduled scans (Wazuh `frequency`). Default 43200 (12 h).
    pub frequency_secs: u64,
    /// Scan when the module starts (Wazuh `scan_on_start`). Default true. The first start of an
    /// empty state database always scans, to build the baseline.
    pub scan_on_start: bool,
    /// Files the state database may hold (Wazuh `file_limit`); past it new files are not
    /// monitored and a `fim.file_limit` event says so. Default 100000.
    pub file_limit: u64,
    /// Most inotify watches (one per directory) the module holds; past it the remaining
    /// directories are scanned on schedule only (`fim.realtime_limit`). Default 8192.
    pub max_watches: usize,
    /// Bytes per second that scans may read to hash files; 0 = no limit. Default 16 MiB/s.
    pub scan_bytes_per_sec: u64,
    /// Compute MD5 (Wazuh `check_md5sum`). Default true.
    pub hash_md5: bool,
    /// Compute SHA-1 (Wazuh `check_sha1sum`). Default true.
    pub hash_sha1: bool,
    /// Compute SHA-256 (Wazuh `check_sha256sum`). Default true.
    pub hash_sha256: bool,
    /// Largest file whose content `report_changes` keeps and diffs. Default 64 KiB.
    pub diff_size_limit: u64,
    /// Total bytes of compressed copies kept for `report_changes` (Wazuh `disk_quota`);
    /// the oldest copies go first. Default 4 MiB.
    pub diff_disk_quota: u64,
    /// Paths never diffed (Wazuh `nodiff`), e.g. files holding secrets.
    pub nodiff: Vec<PathBuf>,
    /// Regexes of paths never diffed.
    pub nodiff_regex: Vec<String>,
    /// Milliseconds realtime events wait for more events on the same file before it is checked.
    /// Default 100.
    pub realtime_delay_ms: u64,
    /// The monitored directories (Wazuh `<directories>`).
    pub directories: Vec<DirectoryConfig>,
}

impl Default for FimConfig {
    fn default() -> Self {
        FimConfig {
            enabled: false,
            budget_bytes: 1024 * 1024,
            frequency_secs: 43_200,
            scan_on_start: true,
            file_limit: 100_000,
            max_watches: 8192,
            scan_bytes_per_sec: 16 * 1024 * 1024,
            hash_md5: true,
            hash_sha1: true,
            hash_sha256: true,
            diff_size_limit: 64 * 1024,
            diff_disk_quota: 4 * 1024 * 1024,
            nodiff: Vec::new(),
            nodiff_regex: Vec::new(),
            realtime_delay_ms: 100,
            directories: Vec::new(),
        }
    }
}

/// One monitored directory (`[[modules.fim.directories]]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// The directory (or a single file). Required.
    pub path: PathBuf,
    /// Levels of subdirectories to descend (Wazuh `recursion_level`); 0 = only the directory's
    /// own files. Default 256.
    pub recursion_level: u32,
    /// Watch with inotify (Wazuh `realtime`). Default false.
    pub realtime: bool,
    /// Name the user and process behind each modification (Wazuh `whodata`); implies realtime.
    /// Default false.
    pub whodata: bool,
    /// Paths (and everything below them) left out (Wazuh `<ignore>`).
    pub ignore: Vec<PathBuf>,
    /// Regexes of paths left out (Wazuh `<ignore type="sregex">`).
    pub ignore_regex: Vec<String>,
    /// Only files whose path matches this regex are monitored (Wazuh `restrict`).
    pub restrict: Option<String>,
    /// Follow symbolic links to directories and files (Wazuh `follow_symbolic_link`). Default
    /// false: a link is reported as a link.
    pub follow_symlinks: bool,
    /// Report a text diff of content changes (Wazuh `report_changes`). Default false.
    pub report_changes: bool,
    /// Tags added to every event of this directory (Wazuh `tags`).
    pub tags: Vec<String>,
    /// Files larger than this are not hashed (their other attributes still are). Default 1 GiB.
    pub max_file_size: u64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            path: PathBuf::new(),
            recursion_level: 256,
            realtime: false,
            whodata: false,
            ignore: Vec::new(),
            ignore_regex: Vec::new(),
            restrict: None,
            follow_symlinks: false,
            report_changes: false,
            tags: Vec::new(),
            max_file_size: 1024 * 1024 * 1024,
        }
    }
}
