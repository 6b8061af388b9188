//! Alpine's apk database (`lib/apk/db/installed`): one-letter fields (`P:` name, `V:` version,
//! `A:` arch, `I:` installed size, `T:` description, `o:` origin, `m:` maintainer, `t:` build
//! time), a blank line between packages.

use super::super::root::Root;
use super::control::read_line;
use gatewatch_proto::inventory::Package;
use std::fs::File;
use std::io::BufReader;

/// Packages of an apk database, one per step.
pub struct Reader {
    location: String,
    lines: Option<BufReader<File>>,
}

impl Reader {
    /// Opens the database (an unreadable one yields nothing, with a warning).
    pub fn new(root: &Root, abs: &str) -> Reader {
        let lines = match File::open(root.path(abs)) {
            Ok(f) => Some(BufReader::with_capacity(8192, f)),
            Err(e) => {
                log::warn!("inventory: cannot open {abs}: {e}");
                None
            }
        };
        Reader {
            location: abs.to_string(),
            lines,
        }
    }
}

impl Iterator for Reader {
    type Item = Package;

    fn next(&mut self) -> Option<Package> {
        let lines = self.lines.as_mut()?;
        let mut pkg = Package {
            format: "apk".into(),
            location: self.location.clone(),
            ..Package::default()
        };
        let mut line = Vec::new();
        loop {
            line.clear();
            if read_line(lines, &mut line) == 0 {
                self.lines = None;
                return (!pkg.name.is_empty()).then_some(pkg);
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                if pkg.name.is_empty() {
                    continue;
                }
                return Some(pkg);
            }
            let Some((key, value)) = text.split_once(':') else {
                continue;
            };
            let value = value.to_string();
            match key {
                "P" => pkg.name = value,
                "V" => pkg.version = value,
                "A" => pkg.architecture = value,
                "I" => pkg.size = value.parse().unwrap_or(0),
                "T" => pkg.description = value,
                "o" => pkg.source = value,
                "m" => pkg.vendor = value,
                _ => {}
            }
        }
    }
}
