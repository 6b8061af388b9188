//! A depth-first walk of one monitored directory that holds at most one open directory per
//! level (never a list of pending directories), so its memory is bounded by the depth, not by
//! the size of the tree. The caller yields between items.

use super::rules::Rules;
use std::fs::{Metadata, ReadDir};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most directories open at once (one per level); deeper directories are reported as errors.
pub const MAX_OPEN_DIRS: usize = 128;

/// What the walk found.
#[derive(Debug)]
pub enum Entry {
    /// A directory that is walked (its files follow).
    Dir(PathBuf),
    /// A monitored file (any non-directory) with its metadata (link target's when followed).
    File(PathBuf, Metadata),
    /// A directory or file that could not be read; its stored files must not count as deleted.
    Error(PathBuf, std::io::Error),
}

struct Frame {
    iter: ReadDir,
    /// (device, inode) of the directory, to stop symbolic-link loops.
    id: (u64, u64),
    /// Depth of the directory below the root (its files are one deeper).
    depth: u32,
}

/// The walk of `rules.dirs[rule]`.
pub struct Walker {
    rule: usize,
    start: Option<PathBuf>,
    stack: Vec<Frame>,
    /// Another monitored root lies inside (or is) this walk's root: which rule a path belongs
    /// to must then be asked per path. Without one, every path of the walk is its own.
    nested_roots: bool,
}

impl Walker {
    /// A walk of directory number `rule` of `rules`, from its root.
    pub fn new(rules: &Rules, rule: usize) -> Walker {
        Walker {
            rule,
            start: rules.dirs.get(rule).map(|d| d.root.clone()),
            stack: Vec::new(),
            nested_roots: nested_roots(rules, rule),
        }
    }

    /// A walk of the part of directory number `rule` below `start` (a new directory).
    pub fn below(rules: &Rules, rule: usize, start: PathBuf) -> Walker {
        Walker {
            rule,
            start: Some(start),
            stack: Vec::new(),
            nested_roots: nested_roots(rules, rule),
        }
    }

    /// Index of the directory (in `Rules::dirs`) this walk belongs to.
    pub fn rule(&self) -> usize {
        self.rule
    }

    /// The next entry, or `None` at the end.
    pub fn next_entry(&mut self, rules: &Rules) -> Option<Entry> {
        let rule = rules.dirs.get(self.rule)?;
        if let Some(root) = self.start.take() {
            return self.enter_root(rules, root);
        }
        loop {
            let frame = self.stack.last_mut()?;
            let file_depth = frame.depth.saturating_add(1);
            let item = match frame.iter.next() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => return Some(Entry::Error(PathBuf::new(), e)),
                Some(Ok(item)) => item,
            };
            let path = item.path();
            let Ok(file_type) = item.file_type() else {
                continue;
            };
            let followed = file_type.is_symlink() && rule.follow_symlinks;
            if file_type.is_dir() || followed {
                let meta = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    // A dangling link is still a (link) file.
                    Err(_) if followed => match std::fs::symlink_metadata(&path) {
                        Ok(m) => m,
                        Err(e) => return Some(Entry::Error(path, e)),
                    },
                    Err(e) => return Some(Entry::Error(path, e)),
                };
                if meta.is_dir() {
                    if let Some(entry) = self.enter_dir(rules, path, &meta) {
                        return Some(entry);
                    }
                    continue;
                }
                if rule.keeps_file_at(&path, file_depth) && self.owns(rules, &path) {
                    return Some(Entry::File(path, meta));
                }
                continue;
            }
            if !rule.keeps_file_at(&path, file_depth) || !self.owns(rules, &path) {
                continue;
            }
            // `DirEntry::metadata` is an `fstatat` relative to the open directory: no path walk.
            return Some(match item.metadata() {
                Ok(meta) => Entry::File(path, meta),
                Err(e) => Entry::Error(path, e),
            });
        }
    }

    /// Whether `path` belongs to this walk's directory (not to a nested, separately walked one).
    fn owns(&self, rules: &Rules, path: &Path) -> bool {
        if !self.nested_roots {
            return true;
        }
        let mine = &rules.dirs[self.rule];
        rules.rule_for(path).is_some_and(|r| std::ptr::eq(r, mine))
    }

    fn enter_root(&mut self, rules: &Rules, root: PathBuf) -> Option<Entry> {
        let rule = &rules.dirs[self.rule];
        let meta = if rule.follow_symlinks {
            std::fs::metadata(&root)
        } else {
            std::fs::symlink_metadata(&root)
        };
        match meta {
            Ok(m) if m.is_dir() => {
                let depth = rule.depth(&root).unwrap_or(0);
                self.open(root, &m, depth)
            }
            Ok(m) => Some(Entry::File(root, m)),
            // A missing root: its stored files are deleted, which the sweep reports.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Entry::Error(root, e)),
        }
    }

    fn enter_dir(&mut self, rules: &Rules, dir: PathBuf, meta: &Metadata) -> Option<Entry> {
        let rule = &rules.dirs[self.rule];
        if !rule.descends_into(&dir) || !self.owns(rules, &dir) {
            return None;
        }
        let id = (meta.dev(), meta.ino());
        if self.stack.iter().any(|f| f.id == id) {
            return None;
        }
        let depth = rule.depth(&dir).unwrap_or(0);
        self.open(dir, meta, depth)
    }

    fn open(&mut self, dir: PathBuf, meta: &Metadata, depth: u32) -> Option<Entry> {
        if self.stack.len() >= MAX_OPEN_DIRS {
            let e = std::io::Error::other(format!("deeper than {MAX_OPEN_DIRS} levels"));
            return Some(Entry::Error(dir, e));
        }
        match std::fs::read_dir(&dir) {
            Ok(iter) => {
                self.stack.push(Frame {
                    iter,
                    id: (meta.dev(), meta.ino()),
                    depth,
                });
                Some(Entry::Dir(dir))
            }
            Err(e) => Some(Entry::Error(dir, e)),
        }
    }
}

/// Whether a root of another directory rule is `rules.dirs[rule]`'s root or lies below it.
fn nested_roots(rules: &Rules, rule: usize) -> bool {
    let Some(mine) = rules.dirs.get(rule) else {
        return false;
    };
    rules
        .dirs
        .iter()
        .enumerate()
        .any(|(i, d)| i != rule && d.root.starts_with(&mine.root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::fim::config::{DirectoryConfig, FimConfig};

    fn walk(dirs: Vec<DirectoryConfig>) -> Vec<String> {
        let rules = Rules::compile(&FimConfig {
            directories: dirs,
            ..FimConfig::default()
        })
        .unwrap();
        let mut out = Vec::new();
        for i in 0..rules.dirs.len() {
            let mut w = Walker::new(&rules, i);
            while let Some(e) = w.next_entry(&rules) {
                match e {
                    Entry::Dir(p) => out.push(format!("d {}", p.display())),
                    Entry::File(p, _) => out.push(format!("f {}", p.display())),
                    Entry::Error(p, e) => out.push(format!("e {} {e}", p.display())),
                }
            }
        }
        out.sort();
        out
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        for f in ["1", "a/2", "a/b/3", "a/b/c/4"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        dir
    }

    #[test]
    fn walk_respects_the_recursion_level() {
        let t = tree();
        let r = t.path().display().to_string();
        let walked = walk(vec![DirectoryConfig {
            path: t.path().into(),
            recursion_level: 1,
            ..DirectoryConfig::default()
        }]);
        assert_eq!(
            walked,
            [
                format!("d {r}"),
                format!("d {r}/a"),
                format!("f {r}/1"),
                format!("f {r}/a/2")
            ]
        );
    }

    #[test]
    fn nested_root_is_walked_once_by_its_own_rule() {
        let t = tree();
        let walked = walk(vec![
            DirectoryConfig {
                path: t.path().into(),
                ..DirectoryConfig::default()
            },
            DirectoryConfig {
                path: t.path().join("a/b"),
                ..DirectoryConfig::default()
            },
        ]);
        let files = walked.iter().filter(|l| l.starts_with("f ")).count();
        assert_eq!(files, 4, "{walked:?}");
    }

    #[test]
    fn symlink_loop_is_not_followed_forever() {
        let t = tree();
        std::os::unix::fs::symlink(t.path(), t.path().join("a/loop")).unwrap();
        let walked = walk(vec![DirectoryConfig {
            path: t.path().into(),
            follow_symlinks: true,
            ..DirectoryConfig::default()
        }]);
        assert_eq!(walked.iter().filter(|l| l.starts_with("f ")).count(), 4);
    }

    #[test]
    fn unfollowed_symlink_is_a_file_entry() {
        let t = tree();
        std::os::unix::fs::symlink(t.path().join("a"), t.path().join("link")).unwrap();
        let walked = walk(vec![DirectoryConfig {
            path: t.path().into(),
            ..DirectoryConfig::default()
        }]);
        assert!(walked.contains(&format!("f {}/link", t.path().display())));
    }
}
