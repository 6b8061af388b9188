//! The response module's persistent state: the reversals still to run and the offenders seen.
//!
//! One small file (`ledger.bin`, postcard) in the module's state directory, rewritten whole —
//! written to a temporary file, synced, renamed over the old one — *before* an action is taken,
//! so a crash or a reboot right after the action still finds its reversal. On start, reversals
//! whose time has passed run at once. Both lists are bounded.

use super::action::Action;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Reversals kept at most; an action beyond this is refused (nothing is acted on that could not
/// be undone).
pub const MAX_PENDING: usize = 1024;
/// Offenders remembered at most; the one seen longest ago is forgotten first.
pub const MAX_OFFENDERS: usize = 1024;

/// A reversal waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The action's id.
    pub id: String,
    /// The action to undo.
    pub action: Action,
    /// When to undo it (ms since the epoch).
    pub due_ms: u64,
    /// The timeout it was given, in seconds.
    pub timeout_secs: u64,
    /// The action was only pretended (dry run): so is its reversal.
    pub dry_run: bool,
    /// A custom response's `check_keys` keys (empty for the others).
    pub keys: Vec<String>,
}

/// How often a target was acted on recently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offender {
    /// [`Action::key`].
    pub key: String,
    /// Actions so far.
    pub count: u32,
    /// The last one (ms since the epoch).
    pub last_ms: u64,
}

/// The state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    next_id: u64,
    /// Reversals to run.
    pub pending: Vec<Pending>,
    /// Recent offenders.
    pub offenders: Vec<Offender>,
}

/// Where the ledger of a module state directory lives.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.bin")
}

impl Ledger {
    /// Reads the ledger; a missing file is an empty ledger. An unreadable one is an error (the
    /// module must not forget reversals silently).
    pub fn load(path: &Path) -> Result<Ledger, String> {
        match std::fs::read(path) {
            Ok(bytes) => postcard::from_bytes(&bytes)
                .map_err(|e| format!("{}: corrupt response ledger: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Writes the ledger durably (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        use std::io::Write;
        let bytes = postcard::to_allocvec(self).map_err(|e| format!("encoding the ledger: {e}"))?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A new action id, unique across restarts (time and a counter; letters, digits and `-`).
    pub fn new_id(&mut self, now_ms: u64) -> String {
        self.next_id += 1;
        format!("{now_ms:x}-{}", self.next_id)
    }

    /// Records an action on `key`; returns how many earlier ones are remembered (0: first).
    pub fn offence(&mut self, key: &str, now_ms: u64, memory_ms: u64) -> u32 {
        self.offenders
            .retain(|o| now_ms.saturating_sub(o.last_ms) <= memory_ms);
        if let Some(o) = self.offenders.iter_mut().find(|o| o.key == key) {
            let earlier = o.count;
            o.count = o.count.saturating_add(1);
            o.last_ms = now_ms;
            return earlier;
        }
        if self.offenders.len() >= MAX_OFFENDERS {
            if let Some(oldest) =
                (0..self.offenders.len()).min_by_key(|&i| self.offenders[i].last_ms)
            {
                self.offenders.swap_remove(oldest);
            }
        }
        self.offenders.push(Offender {
            key: key.into(),
            count: 1,
            last_ms: now_ms,
        });
        0
    }

    /// The earliest reversal time.
    pub fn next_due(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.due_ms).min()
    }

    /// Removes and returns the reversals due at `now_ms`, earliest first.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Pending> {
        let mut due: Vec<Pending> = Vec::new();
        self.pending.retain(|p| {
            if p.due_ms <= now_ms {
                due.push(p.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|p| p.due_ms);
        due
    }

    /// The pending reversal of the same action, if any.
    pub fn pending_mut(&mut self, key: &str) -> Option<&mut Pending> {
        self.pending.iter_mut().find(|p| p.action.key() == key)
    }

    /// Removes the reversal of action `id`.
    pub fn forget(&mut self, id: &str) {
        self.pending.retain(|p| p.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str, due_ms: u64) -> Pending {
        Pending {
            id: id.into(),
            action: Action::HostDeny {
                ip: "203.0.113.1".parse().unwrap(),
            },
            due_ms,
            timeout_secs: 1,
            dry_run: false,
            keys: Vec::new(),
        }
    }

    #[test]
    fn a_saved_ledger_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        assert_eq!(Ledger::load(&path).unwrap(), Ledger::default());
        let mut ledger = Ledger::default();
        ledger.pending.push(pending("a", 5));
        ledger.offence("k", 1, 10);
        ledger.save(&path).unwrap();
        assert_eq!(Ledger::load(&path).unwrap(), ledger);
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        std::fs::write(&path, [0xff; 3]).unwrap();
        assert!(Ledger::load(&path).unwrap_err().contains("ledger.bin"));
    }

    #[test]
    fn offences_are_counted_and_forgotten_after_the_memory() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.offence("k", 0, 100), 0);
        assert_eq!(ledger.offence("k", 50, 100), 1);
        assert_eq!(ledger.offence("k", 60, 100), 2);
        assert_eq!(ledger.offence("k", 500, 100), 0, "forgotten");
    }

    #[test]
    fn due_reversals_are_taken_in_order() {
        let mut ledger = Ledger {
            pending: vec![pending("late", 30), pending("b", 20), pending("a", 10)],
            ..Ledger::default()
        };
        let due: Vec<String> = ledger.take_due(25).into_iter().map(|p| p.id).collect();
        assert_eq!(due, ["a", "b"]);
        assert_eq!(ledger.next_due(), Some(30));
    }
}
