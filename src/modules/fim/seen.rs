//! The files a scan has seen, as a bitmap of state-database row ids: one bit per file, so a
//! 100,000-file baseline takes 12.5 KiB, and marking a file seen writes nothing to disk.
//!
//! The bitmap grows within the module's memory budget and up to [`Seen::new`]'s bound; a row id
//! past it (or a refused growth) is reported by [`Seen::mark`] so that the caller stamps that row
//! in the database instead.

use crate::runtime::budget::MemoryAccount;

/// A set of row ids.
pub struct Seen {
    words: Vec<u64>,
    max_id: u64,
}

impl Seen {
    /// A set for ids up to `max_id`.
    pub fn new(max_id: u64) -> Seen {
        Seen {
            words: Vec::new(),
            max_id,
        }
    }

    /// Forgets every id (a scan starts), keeping the memory.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// Marks `id`; `false` when the set cannot hold it (too large, or over the budget).
    pub fn mark(&mut self, id: u64, memory: &MemoryAccount) -> bool {
        if id > self.max_id {
            return false;
        }
        let word = (id / 64) as usize;
        if word >= self.words.len() {
            // Grow with head room, so a baseline does not grow it once per 64 files.
            let wanted = (word + 1)
                .max(self.words.len() * 2)
                .min((self.max_id / 64 + 1) as usize);
            let more = wanted - self.words.len();
            if memory.try_reserve(&mut self.words, more).is_err() {
                return false;
            }
            self.words.resize(wanted, 0);
        }
        self.words[word] |= 1 << (id % 64);
        true
    }

    /// Whether `id` is marked.
    pub fn contains(&self, id: u64) -> bool {
        self.words
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::account_for;

    #[test]
    fn marked_ids_are_contained_until_cleared() {
        let memory = MemoryAccount::new(account_for("fim-seen").unwrap(), 1 << 20);
        let mut seen = Seen::new(10_000);
        assert!(seen.mark(3, &memory) && seen.mark(9_999, &memory));
        assert!(seen.contains(3) && seen.contains(9_999) && !seen.contains(4));
        assert!(!seen.mark(10_001, &memory), "past the bound");
        seen.clear();
        assert!(!seen.contains(3));
    }
}
