//! dpkg and opkg status files: paragraphs of `Field: value` lines (continuations start with a
//! space), one package each, separated by blank lines.

use super::super::root::Root;
use gatewatch_proto::inventory::Package;
use std::fs::File;
use std::io::{BufRead, BufReader};

/// Longest line kept (longer ones are cut; descriptions are summarised to their first line).
const MAX_LINE: usize = 4096;

/// Which tool wrote the status file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Dpkg,
    Opkg,
}

/// Packages of a status file, one paragraph per step.
pub struct Reader {
    tool: Tool,
    root: Root,
    location: String,
    lines: Option<BufReader<File>>,
}

impl Reader {
    /// dpkg's `status`; install times come from the mtime of `info/<package>.list`.
    pub fn dpkg(root: &Root, abs: &str) -> Reader {
        Reader::open(Tool::Dpkg, root, abs)
    }

    /// opkg's `status` (it records `Installed-Time` itself).
    pub fn opkg(root: &Root, abs: &str) -> Reader {
        Reader::open(Tool::Opkg, root, abs)
    }

    fn open(tool: Tool, root: &Root, abs: &str) -> Reader {
        let lines = match File::open(root.path(abs)) {
            Ok(f) => Some(BufReader::with_capacity(8192, f)),
            Err(e) => {
                log::warn!("inventory: cannot open {abs}: {e}");
                None
            }
        };
        Reader {
            tool,
            root: root.clone(),
            location: abs.to_string(),
            lines,
        }
    }

    /// The next paragraph's fields we use, or `None` at the end.
    fn paragraph(&mut self) -> Option<Vec<(String, String)>> {
        let lines = self.lines.as_mut()?;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = read_line(lines, &mut line);
            if n == 0 {
                self.lines = None;
                return (!fields.is_empty()).then_some(fields);
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                if fields.is_empty() {
                    continue;
                }
                return Some(fields);
            }
            if text.starts_with([' ', '\t']) {
                // A continuation: only the description has them, and we keep its first line.
                continue;
            }
            if let Some((key, value)) = text.split_once(':') {
                if WANTED.contains(&key) {
                    fields.push((key.to_string(), value.trim().to_string()));
                }
            }
        }
    }

    fn package(&self, fields: &[(String, String)]) -> Option<Package> {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let status = get("Status");
        // `install ok installed`, `hold ok installed`; not `deinstall ok config-files`.
        if !status.is_empty() && !status.ends_with(" installed") {
            return None;
        }
        let name = get("Package");
        if name.is_empty() {
            return None;
        }
        let arch = get("Architecture");
        let (format, install_time) = match self.tool {
            Tool::Dpkg => ("deb", self.dpkg_install_time(name, arch)),
            Tool::Opkg => ("ipk", get("Installed-Time").parse().ok()),
        };
        let size = get("Installed-Size").parse::<u64>().unwrap_or(0);
        Some(Package {
            name: name.to_string(),
            version: get("Version").to_string(),
            architecture: arch.to_string(),
            vendor: get("Maintainer").to_string(),
            format: format.into(),
            description: get("Description").to_string(),
            section: get("Section").to_string(),
            priority: get("Priority").to_string(),
            // dpkg counts KiB; opkg counts bytes.
            size: if self.tool == Tool::Dpkg {
                size * 1024
            } else {
                size
            },
            source: get("Source").to_string(),
            multiarch: get("Multi-Arch").to_string(),
            install_time,
            location: self.location.clone(),
        })
    }

    fn dpkg_install_time(&self, name: &str, arch: &str) -> Option<u64> {
        let dir = "/var/lib/dpkg/info";
        [
            format!("{dir}/{name}:{arch}.list"),
            format!("{dir}/{name}.list"),
        ]
        .iter()
        .find_map(|p| std::fs::metadata(self.root.path(p)).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
    }
}

const WANTED: &[&str] = &[
    "Package",
    "Status",
    "Version",
    "Architecture",
    "Maintainer",
    "Description",
    "Section",
    "Priority",
    "Installed-Size",
    "Source",
    "Multi-Arch",
    "Installed-Time",
];

impl Iterator for Reader {
    type Item = Package;

    fn next(&mut self) -> Option<Package> {
        loop {
            let fields = self.paragraph()?;
            if let Some(p) = self.package(&fields) {
                return Some(p);
            }
        }
    }
}

/// Reads one line, keeping at most [`MAX_LINE`] bytes of it; returns bytes consumed.
pub fn read_line(reader: &mut impl BufRead, out: &mut Vec<u8>) -> usize {
    let mut consumed = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) if !buf.is_empty() => buf,
            _ => return consumed,
        };
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
        reader.consume(n);
        consumed += n;
        if done {
            return consumed;
        }
    }
}
