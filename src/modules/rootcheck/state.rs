//! What the previous scan found (one finding key a line in a small file in the module's state
//! directory), so a finding is reported once while it lasts, and again if it goes and comes back.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The keys of the previous scan's findings.
pub struct Seen {
    path: PathBuf,
    keys: Vec<String>,
}

impl Seen {
    /// Loads the keys from `path` (none when the file does not exist yet).
    pub fn load(path: &Path) -> Result<Self, String> {
        let keys = match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("rootcheck state {}: {e}", path.display())),
        };
        Ok(Seen {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// Whether the previous scan did not find `key`.
    pub fn is_new(&self, key: &str) -> bool {
        !self.keys.iter().any(|k| k == key)
    }

    /// Replaces the keys with this scan's, on disk first (written aside, then renamed).
    pub fn replace(&mut self, keys: Vec<String>) -> Result<(), String> {
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            for key in &keys {
                writeln!(file, "{key}")?;
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| format!("rootcheck state {}: {e}", self.path.display()))?;
        self.keys = keys;
        Ok(())
    }
}
