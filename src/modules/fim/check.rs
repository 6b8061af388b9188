//! Checking one file against the state database: the heart of both scans and realtime.
//!
//! A file is re-hashed only when its type, size, mtime or inode changed (otherwise the stored
//! hashes stand); any difference in attributes is a `modified` change with the list of what
//! changed, a new path is `added` (within the file limit), a vanished one `deleted`.

use super::attrs::{self, Names};
use super::db::{Db, DbError};
use super::diff::{Content, DiffStore};
use super::hash::{ByteRate, Hasher};
use super::rules::{DirRule, Rules};
use super::seen::Seen;
use crate::runtime::budget::MemoryAccount;
use gatewatch_proto::fim::{ChangeType, FileAttributes, FileType, FimChange, FimMode, WhoData};
use std::fs::Metadata;
use std::path::Path;

/// What checking a path found.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to report.
    Quiet,
    /// A change to report.
    Change(Box<FimChange>),
    /// A new file was not stored: the database holds `file_limit` files.
    LimitReached,
    /// The path is a directory (the caller walks it).
    Directory,
}

/// Everything a check needs, owned by the module task.
pub struct Checker {
    /// The state database.
    pub db: Db,
    /// User and group names.
    pub names: Names,
    /// The hasher and its buffer.
    pub hasher: Hasher,
    /// The byte-rate limit of hashing.
    pub rate: ByteRate,
    /// Copies for `report_changes`.
    pub diffs: DiffStore,
    /// Files the database may hold.
    pub file_limit: u64,
    /// Files it holds now.
    pub files: u64,
    /// The scan id stamped on rows written now.
    pub scan: u64,
    /// The file limit was reported (once until a scan finds room again).
    pub limit_reported: bool,
    /// Rows the running scan has seen unchanged.
    pub seen: Seen,
    /// The module's memory account (the bitmap grows within it).
    pub memory: MemoryAccount,
}

fn path_str(path: &Path) -> std::borrow::Cow<'_, str> {
    path.to_string_lossy()
}

impl Checker {
    /// Checks `path` and updates the database. `found` is the directory rule and metadata when
    /// the caller (a walk) already has them; otherwise they are looked up here.
    pub async fn check<'r>(
        &mut self,
        rules: &'r Rules,
        path: &Path,
        found: Option<(&'r DirRule, Metadata)>,
        mode: FimMode,
        audit: Option<WhoData>,
    ) -> Result<Outcome, DbError> {
        let key = path_str(path);
        let (rule, meta) = match found {
            Some((rule, meta)) => (rule, Some(meta)),
            None => match rules.file_rule(path) {
                Some(rule) => (rule, None),
                None => {
                    // No longer monitored (ignored, out of the recursion level): forget it.
                    if self.db.get(&key)?.is_some() {
                        self.db.remove(&key)?;
                        self.files = self.files.saturating_sub(1);
                    }
                    return Ok(Outcome::Quiet);
                }
            },
        };
        let meta = match meta {
            Some(m) => m,
            None => {
                let got = if rule.follow_symlinks {
                    std::fs::metadata(path)
                } else {
                    std::fs::symlink_metadata(path)
                };
                match got {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return self.deleted(rules, path, mode, audit);
                    }
                    Err(e) => {
                        log::debug!("fim: cannot stat {}: {e}", path.display());
                        return Ok(Outcome::Quiet);
                    }
                }
            }
        };
        if meta.is_dir() {
            return Ok(Outcome::Directory);
        }
        if mode == FimMode::Scheduled && self.unchanged(&key, &meta)? {
            return Ok(Outcome::Quiet);
        }
        let mut new = attrs::from_metadata(&meta, &mut self.names);
        let old = self.db.get(&key)?;
        if old.is_none() && self.files >= self.file_limit {
            return Ok(Outcome::LimitReached);
        }
        // A realtime event says the file was touched: within one clock tick a rewrite of the
        // same size keeps size and mtime, so only a scan trusts them to skip hashing.
        let trust_stat = mode == FimMode::Scheduled;
        let same_content = trust_stat
            && old.as_ref().is_some_and(|o| {
                let o = &o.attrs;
                (o.file_type, o.size, o.mtime, o.inode)
                    == (new.file_type, new.size, new.mtime, new.inode)
            });
        if let (true, Some(o)) = (same_content, &old) {
            new.hash_md5.clone_from(&o.attrs.hash_md5);
            new.hash_sha1.clone_from(&o.attrs.hash_sha1);
            new.hash_sha256.clone_from(&o.attrs.hash_sha256);
        } else if !self.hash(rule, path, &mut new).await {
            return self.deleted(rules, path, mode, audit);
        }
        let Some(old) = old else {
            self.db.put(&key, &new, self.scan)?;
            self.files += 1;
            if rule.report_changes {
                let _ = self.diffs.update(path, rules.nodiff(path));
            }
            return Ok(self.change(rule, path, ChangeType::Added, mode, None, Some(new), audit));
        };
        let changed = attrs::changed(&old.attrs, &new);
        if changed.is_empty() {
            if old.scan != self.scan && !self.seen.mark(old.id, &self.memory) {
                self.db.touch(&key, self.scan)?;
            }
            return Ok(Outcome::Quiet);
        }
        self.db.put(&key, &new, self.scan)?;
        let content_changed = changed
            .iter()
            .any(|c| matches!(c.as_str(), "size" | "mtime" | "md5" | "sha1" | "sha256"));
        let content = if rule.report_changes && content_changed {
            match self.diffs.update(path, rules.nodiff(path)) {
                Content::Text(diff) => diff.filter(|d| !d.is_empty()),
                Content::NotDiffed(_) => None,
            }
        } else {
            None
        };
        let mut outcome = self.change(
            rule,
            path,
            ChangeType::Modified,
            mode,
            Some(old.attrs),
            Some(new),
            audit,
        );
        if let Outcome::Change(c) = &mut outcome {
            c.changed_attributes = changed;
            c.content_changes = content;
        }
        Ok(outcome)
    }

    /// The scan's fast path: whether the stored row matches `meta` in every attribute but the
    /// names (a renamed user or group shows with the file's next change); marks it seen if so.
    fn unchanged(&mut self, key: &str, meta: &Metadata) -> Result<bool, DbError> {
        use std::os::unix::fs::MetadataExt;
        let Some(q) = self.db.quick(key)? else {
            return Ok(false);
        };
        let same = q.file_type == attrs::file_type(meta)
            && (q.size, q.mtime, q.inode, q.device)
                == (meta.size(), meta.mtime(), meta.ino(), meta.dev())
            && (q.uid, q.gid, q.perm) == (meta.uid(), meta.gid(), meta.mode() & 0o7777);
        if same && q.scan != self.scan && !self.seen.mark(q.id, &self.memory) {
            self.db.touch(key, self.scan)?;
        }
        Ok(same)
    }

    /// Hashes a regular file within the size limit into `attrs`; `false` if it vanished.
    async fn hash(&mut self, rule: &DirRule, path: &Path, attrs: &mut FileAttributes) -> bool {
        if attrs.file_type != FileType::File
            || attrs.size > rule.max_file_size
            || !self.hasher.algorithms().any()
        {
            return true;
        }
        match self
            .hasher
            .hash_file(path, rule.follow_symlinks, &mut self.rate)
            .await
        {
            Ok(d) => {
                attrs.hash_md5 = d.md5;
                attrs.hash_sha1 = d.sha1;
                attrs.hash_sha256 = d.sha256;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                log::debug!("fim: cannot hash {}: {e}", path.display());
                true
            }
        }
    }

    /// `path` is gone: removes its row and reports it, if it was known.
    pub fn deleted(
        &mut self,
        rules: &Rules,
        path: &Path,
        mode: FimMode,
        audit: Option<WhoData>,
    ) -> Result<Outcome, DbError> {
        let key = path_str(path);
        let Some(old) = self.db.get(&key)? else {
            return Ok(Outcome::Quiet);
        };
        self.db.remove(&key)?;
        self.files = self.files.saturating_sub(1);
        self.diffs.forget(path);
        let Some(rule) = rules.file_rule(path) else {
            return Ok(Outcome::Quiet);
        };
        Ok(self.change(
            rule,
            path,
            ChangeType::Deleted,
            mode,
            Some(old.attrs),
            None,
            audit,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        rule: &DirRule,
        path: &Path,
        event: ChangeType,
        mode: FimMode,
        old: Option<FileAttributes>,
        new: Option<FileAttributes>,
        audit: Option<WhoData>,
    ) -> Outcome {
        Outcome::Change(Box::new(FimChange {
            path: path_str(path).into_owned(),
            event,
            mode,
            attributes: new,
            old_attributes: old,
            changed_attributes: Vec::new(),
            tags: rule.tags.clone(),
            audit,
            content_changes: None,
        }))
    }
}
