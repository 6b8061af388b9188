//! One scan: the enabled checks in turn, sharing a pacer, the findings and the counts.

use super::pace::Pacer;
use super::RootcheckConfig;
use crate::runtime::MemoryAccount;
use gatewatch_proto::rootcheck::RootcheckFinding;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem (see [`RootcheckFinding::kind`]).
    pub kind: &'static str,
    /// One line saying what was found.
    pub title: String,
    /// The file, directory or interface concerned.
    pub path: Option<String>,
    /// The process concerned.
    pub pid: Option<u32>,
    /// The port concerned, with its protocol.
    pub port: Option<(&'static str, u16)>,
    /// How it was found.
    pub details: String,
}

impl Finding {
    /// A finding about a path.
    pub fn at_path(kind: &'static str, path: &Path, title: String, details: String) -> Self {
        Finding {
            kind,
            title,
            path: Some(path.display().to_string()),
            pid: None,
            port: None,
            details,
        }
    }

    /// What identifies the finding across scans: its kind and what it is about (not the wording,
    /// which may carry counts that change).
    pub fn key(&self) -> String {
        let mut key = self.kind.to_string();
        if let Some(path) = &self.path {
            key.push(' ');
            key.push_str(path);
        }
        if let Some(pid) = self.pid {
            key.push_str(&format!(" pid {pid}"));
        }
        if let Some((proto, port)) = self.port {
            key.push_str(&format!(" {proto}/{port}"));
        }
        if self.path.is_none() && self.pid.is_none() && self.port.is_none() {
            key.push(' ');
            key.push_str(&self.title);
        }
        // One line per key in the state file.
        key.replace('\n', " ")
    }

    /// The finding as an event of scan `scan_id`.
    pub fn to_event(&self, scan_id: u64) -> RootcheckFinding {
        RootcheckFinding {
            scan_id,
            kind: self.kind.to_string(),
            title: self.title.clone(),
            path: self.path.clone(),
            pid: self.pid,
            port: self.port.map(|(proto, port)| (proto.to_string(), port)),
            details: self.details.clone(),
        }
    }
}

/// What a scan found and did.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Every problem found, in the order found.
    pub findings: Vec<Finding>,
    /// `(check, items examined)`.
    pub checked: Vec<(String, u64)>,
    /// Checks (or parts) that could not run, with the reason.
    pub skipped: Vec<String>,
    /// Wall time of the scan, pauses included.
    pub duration: Duration,
    /// Time spent in pacing pauses.
    pub paused: Duration,
}

/// A scan in progress: the checks' shared state.
pub struct Scan<'a> {
    /// The module's settings.
    pub config: &'a RootcheckConfig,
    /// Pauses between batches of probes.
    pub pacer: Pacer,
    memory: &'a MemoryAccount,
    report: ScanReport,
    /// Tests only: names that directory listings leave out, as a rootkit hooking `getdents`
    /// does; the real link counts still count them.
    #[cfg(test)]
    pub hide_from_readdir: Option<fn(&std::ffi::OsStr) -> bool>,
}

impl<'a> Scan<'a> {
    /// A scan with `config`, allocating within `memory`.
    pub fn new(config: &'a RootcheckConfig, memory: &'a MemoryAccount) -> Self {
        Scan {
            config,
            pacer: Pacer::new(config.cpu_share_percent, config.probe_batch),
            memory,
            report: ScanReport::default(),
            #[cfg(test)]
            hide_from_readdir: None,
        }
    }

    /// The module's memory account.
    pub fn memory(&self) -> &MemoryAccount {
        self.memory
    }

    /// Records a finding, unless its path is ignored by the configuration or the budget is full
    /// (then the refusal is recorded among the skipped checks, once).
    pub fn report(&mut self, finding: Finding) {
        if let Some(path) = &finding.path {
            if self.is_ignored(Path::new(path)) {
                return;
            }
        }
        if !room_for_one(self.memory, &mut self.report.findings) {
            let note = "findings: memory budget full, further findings dropped".to_string();
            if !self.report.skipped.contains(&note) {
                self.report.skipped.push(note);
            }
            return;
        }
        log::debug!("rootcheck: {}", finding.title);
        self.report.findings.push(finding);
    }

    /// Records how many items a check examined.
    pub fn checked(&mut self, check: &str, items: u64) {
        self.report.checked.push((check.to_string(), items));
    }

    /// Records that a check could not run, and why.
    pub fn skip(&mut self, why: String) {
        log::info!("rootcheck: {why}");
        self.report.skipped.push(why);
    }

    /// Whether `path` is under one of the configured `ignore` paths (as given, or under `root`).
    pub fn is_ignored(&self, path: &Path) -> bool {
        self.config
            .ignore
            .iter()
            .any(|i| path.starts_with(i) || path.starts_with(self.under_root(i)))
    }

    /// An absolute path of the host taken under the configured file system root.
    pub fn under_root(&self, path: &Path) -> PathBuf {
        under(&self.config.root, path)
    }

    /// Runs every enabled check and returns what was found.
    pub async fn run(mut self) -> ScanReport {
        let started = Instant::now();
        let config = self.config;
        if config.check_pids {
            super::pids::check(&mut self).await;
        }
        if config.check_ports {
            super::ports::check(&mut self).await;
        }
        if config.check_dev {
            super::host::check_dev(&mut self).await;
        }
        if config.check_if {
            super::host::check_interfaces(&mut self).await;
        }
        if config.check_modules {
            super::host::check_modules(&mut self).await;
        }
        let files = if config.check_files || config.check_sys {
            super::signatures::load_files_db(&mut self)
        } else {
            Vec::new()
        };
        if config.check_files {
            super::signatures::check_files(&mut self, &files).await;
        }
        if config.check_sys {
            super::walk::check(&mut self, &files).await;
        }
        drop(files);
        if config.check_trojans {
            super::signatures::check_trojans(&mut self).await;
        }
        self.report.duration = started.elapsed();
        self.report.paused = self.pacer.paused();
        self.report
    }
}

/// Makes room for one more element in `buf` within the budget. Grows by half the length (at
/// least 8), not by one, so that a run of pushes does not reallocate at every push.
pub fn room_for_one<T>(memory: &MemoryAccount, buf: &mut Vec<T>) -> bool {
    if buf.len() < buf.capacity() {
        return true;
    }
    let grow = (buf.len() / 2).max(8);
    memory.try_reserve(buf, grow).is_ok() || memory.try_reserve(buf, 1).is_ok()
}

/// Runs one scan with `config` within `memory`.
pub async fn run_scan(config: &RootcheckConfig, memory: &MemoryAccount) -> ScanReport {
    Scan::new(config, memory).run().await
}

/// `path` (absolute on the host) taken under `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(relative) if relative.as_os_str().is_empty() => root.to_path_buf(),
        Ok(relative) => root.join(relative),
        Err(_) => root.join(path),
    }
}
