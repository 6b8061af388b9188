//! Which monitored directory a path belongs to, and whether that directory's rules keep it.
//!
//! The configuration is compiled once (regexes checked) into [`Rules`]; a path belongs to the
//! directory with the longest matching root, as in Wazuh, so a nested entry overrides its parent.

use super::config::{DirectoryConfig, FimConfig};
use regex_lite::Regex;
use std::path::{Path, PathBuf};

/// One monitored directory, compiled.
#[derive(Debug)]
pub struct DirRule {
    /// The configured path.
    pub root: PathBuf,
    /// Levels of subdirectories below the root that are walked.
    pub recursion_level: u32,
    /// Watched with inotify (also true for who-data).
    pub realtime: bool,
    /// Watched with fanotify too, to name the writer.
    pub whodata: bool,
    ignore: Vec<PathBuf>,
    ignore_regex: Vec<Regex>,
    restrict: Option<Regex>,
    /// Follow symbolic links.
    pub follow_symlinks: bool,
    /// Keep copies and report diffs.
    pub report_changes: bool,
    /// Tags of every event.
    pub tags: Vec<String>,
    /// Files larger than this are not hashed.
    pub max_file_size: u64,
}

/// All directories plus the global no-diff lists.
#[derive(Debug)]
pub struct Rules {
    /// The directories, in configuration order.
    pub dirs: Vec<DirRule>,
    nodiff: Vec<PathBuf>,
    nodiff_regex: Vec<Regex>,
}

fn compile(key: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("modules.fim.{key}: bad regex {pattern:?}: {e}"))
}

fn compile_all(key: &str, patterns: &[String]) -> Result<Vec<Regex>, String> {
    patterns.iter().map(|p| compile(key, p)).collect()
}

impl DirRule {
    fn new(i: usize, d: &DirectoryConfig) -> Result<DirRule, String> {
        if !d.path.is_absolute() {
            return Err(format!(
                "modules.fim.directories[{i}].path: {:?} is not an absolute path",
                d.path
            ));
        }
        let key = format!("directories[{i}]");
        Ok(DirRule {
            root: d.path.clone(),
            recursion_level: d.recursion_level,
            realtime: d.realtime || d.whodata,
            whodata: d.whodata,
            ignore: d.ignore.clone(),
            ignore_regex: compile_all(&format!("{key}.ignore_regex"), &d.ignore_regex)?,
            restrict: d
                .restrict
                .as_deref()
                .map(|r| compile(&format!("{key}.restrict"), r))
                .transpose()?,
            follow_symlinks: d.follow_symlinks,
            report_changes: d.report_changes,
            tags: d.tags.clone(),
            max_file_size: d.max_file_size,
        })
    }

    /// Levels of directories between the root and `path` (a child of the root is at depth 1).
    pub fn depth(&self, path: &Path) -> Option<u32> {
        let rest = path.strip_prefix(&self.root).ok()?;
        Some(rest.components().count() as u32)
    }

    /// Whether the walk descends into directory `dir` (below or at the root).
    pub fn descends_into(&self, dir: &Path) -> bool {
        self.depth(dir).is_some_and(|d| d <= self.recursion_level) && !self.ignored(dir)
    }

    /// Whether file `path` is monitored by this directory: within the recursion level, not
    /// ignored, and matching `restrict`.
    pub fn keeps_file(&self, path: &Path) -> bool {
        self.depth(path)
            .is_some_and(|depth| self.keeps_file_at(path, depth))
    }

    /// [`DirRule::keeps_file`] for a `path` whose depth the caller knows (a walk knows it from
    /// the directory it reads: no prefix stripping per file).
    pub fn keeps_file_at(&self, path: &Path, depth: u32) -> bool {
        // A file directly in the root is at depth 1; the root itself may be a single file.
        if depth > self.recursion_level.saturating_add(1) || self.ignored(path) {
            return false;
        }
        match &self.restrict {
            Some(r) => r.is_match(&path.to_string_lossy()),
            None => true,
        }
    }

    /// Adds `path` to the ignore list (the module's own state directory).
    pub fn ignore_also(&mut self, path: &Path) {
        self.ignore.push(path.to_path_buf());
    }

    /// Whether `path` is on the ignore lists.
    pub fn ignored(&self, path: &Path) -> bool {
        if self.ignore.iter().any(|i| path.starts_with(i)) {
            return true;
        }
        if self.ignore_regex.is_empty() {
            return false;
        }
        let text = path.to_string_lossy();
        self.ignore_regex.iter().any(|r| r.is_match(&text))
    }
}

impl Rules {
    /// Compiles the configuration; the error names the key and the bad value.
    pub fn compile(config: &FimConfig) -> Result<Rules, String> {
        let dirs = config
            .directories
            .iter()
            .enumerate()
            .map(|(i, d)| DirRule::new(i, d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules {
            dirs,
            nodiff: config.nodiff.clone(),
            nodiff_regex: compile_all("nodiff_regex", &config.nodiff_regex)?,
        })
    }

    /// The directory `path` belongs to: the longest configured root that contains it.
    pub fn rule_for(&self, path: &Path) -> Option<&DirRule> {
        self.dirs
            .iter()
            .filter(|d| path.starts_with(&d.root))
            .max_by_key(|d| d.root.as_os_str().len())
    }

    /// Whether file `path` is monitored at all (and by which directory).
    pub fn file_rule(&self, path: &Path) -> Option<&DirRule> {
        self.rule_for(path).filter(|r| r.keeps_file(path))
    }

    /// Index (in [`Rules::dirs`]) of the directory `path` belongs to.
    pub fn index_of(&self, path: &Path) -> Option<usize> {
        let rule = self.rule_for(path)?;
        self.dirs.iter().position(|d| std::ptr::eq(d, rule))
    }

    /// Whether `path` must never be diffed.
    pub fn nodiff(&self, path: &Path) -> bool {
        if self.nodiff.iter().any(|n| path == n) {
            return true;
        }
        let text = path.to_string_lossy();
        self.nodiff_regex.iter().any(|r| r.is_match(&text))
    }

    /// Whether any directory is watched in realtime.
    pub fn any_realtime(&self) -> bool {
        self.dirs.iter().any(|d| d.realtime)
    }

    /// Whether any directory wants who-data.
    pub fn any_whodata(&self) -> bool {
        self.dirs.iter().any(|d| d.whodata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(dirs: Vec<DirectoryConfig>) -> Rules {
        Rules::compile(&FimConfig {
            directories: dirs,
            nodiff_regex: vec![r"\.key$".into()],
            ..FimConfig::default()
        })
        .unwrap()
    }

    fn dir(path: &str) -> DirectoryConfig {
        DirectoryConfig {
            path: path.into(),
            ..DirectoryConfig::default()
        }
    }

    #[test]
    fn nested_root_overrides_its_parent() {
        let mut inner = dir("/etc/ssh");
        inner.realtime = true;
        let r = rules(vec![dir("/etc"), inner]);
        assert!(
            r.file_rule(Path::new("/etc/ssh/sshd_config"))
                .unwrap()
                .realtime
        );
        assert!(!r.file_rule(Path::new("/etc/passwd")).unwrap().realtime);
        assert!(r.file_rule(Path::new("/var/x")).is_none());
    }

    #[test]
    fn recursion_level_zero_keeps_only_the_roots_own_files() {
        let mut d = dir("/data");
        d.recursion_level = 0;
        let r = rules(vec![d]);
        assert!(r.file_rule(Path::new("/data/a")).is_some());
        assert!(r.file_rule(Path::new("/data/sub/a")).is_none());
        assert!(!r.dirs[0].descends_into(Path::new("/data/sub")));
        assert!(r.dirs[0].descends_into(Path::new("/data")));
    }

    #[test]
    fn ignore_and_restrict_filter_files() {
        let mut d = dir("/data");
        d.ignore = vec!["/data/tmp".into()];
        d.ignore_regex = vec![r"\.swp$".into()];
        d.restrict = Some(r"\.conf$".into());
        let r = rules(vec![d]);
        assert!(r.file_rule(Path::new("/data/a.conf")).is_some());
        assert!(r.file_rule(Path::new("/data/a.txt")).is_none());
        assert!(r.file_rule(Path::new("/data/tmp/b.conf")).is_none());
        assert!(r.file_rule(Path::new("/data/.a.conf.swp")).is_none());
        assert!(!r.dirs[0].descends_into(Path::new("/data/tmp")));
    }

    #[test]
    fn bad_regex_names_its_key() {
        let mut d = dir("/data");
        d.ignore_regex = vec!["(".into()];
        let err = Rules::compile(&FimConfig {
            directories: vec![d],
            ..FimConfig::default()
        })
        .unwrap_err();
        assert!(err.contains("directories[0].ignore_regex"), "{err}");
    }

    #[test]
    fn nodiff_matches_paths_and_regexes() {
        let r = rules(vec![dir("/data")]);
        assert!(r.nodiff(Path::new("/data/server.key")));
        assert!(!r.nodiff(Path::new("/data/server.conf")));
    }
}
