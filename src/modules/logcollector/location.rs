//! Locations: date patterns and globs in a configured path, expanded to the files they name now
//! and the directories to watch for files that will appear.
//!
//! `*`, `?` and `[…]` (with `!` negation and ranges) match within one path component, as in the
//! shell; a name starting with `.` is matched only by a pattern starting with `.`. Date patterns
//! (`%Y` …) are replaced with the local time first. Listing is bounded: at most
//! [`MAX_DIR_ENTRIES`] names are looked at per directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Names looked at per directory during expansion (a directory of millions of files must not
/// stall the executor).
pub const MAX_DIR_ENTRIES: usize = 10_000;

/// What a location names now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Files (or symlinks to files) that match, sorted.
    pub files: Vec<PathBuf>,
    /// Directories to watch so that new matches are seen (the parents of the last component, and
    /// every directory where a glob of an earlier component is evaluated).
    pub dirs: Vec<PathBuf>,
    /// More matches existed than `limit`.
    pub over_limit: bool,
}

/// Whether `location` holds a date pattern (it must be expanded again when the date changes).
pub fn has_date(location: &str) -> bool {
    let bytes = location.as_bytes();
    bytes
        .windows(2)
        .any(|w| w[0] == b'%' && b"YymdHMjba".contains(&w[1]))
}

/// Replaces the date patterns of `location` with the local time `now`.
pub fn expand_date(location: &str, now: SystemTime) -> String {
    if !location.contains('%') {
        return location.to_string();
    }
    let t = local_time(now);
    let mut out = String::with_capacity(location.len() + 8);
    let mut chars = location.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{:04}", t.year)),
            Some('y') => out.push_str(&format!("{:02}", t.year % 100)),
            Some('m') => out.push_str(&format!("{:02}", t.month)),
            Some('d') => out.push_str(&format!("{:02}", t.day)),
            Some('H') => out.push_str(&format!("{:02}", t.hour)),
            Some('M') => out.push_str(&format!("{:02}", t.minute)),
            Some('j') => out.push_str(&format!("{:03}", t.yday)),
            Some('b') => out.push_str(MONTHS[(t.month as usize).clamp(1, 12) - 1]),
            Some('a') => out.push_str(DAYS[(t.wday as usize) % 7]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Day of the year, 1-based.
    pub yday: u32,
    /// Day of the week, 0 = Sunday.
    pub wday: u32,
}

/// The local time (per `TZ` / `/etc/localtime`, through the C library).
pub fn local_time(now: SystemTime) -> LocalTime {
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Whatever width the C library gives `time_t` (musl's 32-bit targets are moving to 64 bits),
    // the conversion is checked; a time it cannot hold falls back to the epoch.
    let secs = since_epoch.try_into().unwrap_or_default();
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            yday: 1,
            wday: 4,
        };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        yday: (tm.tm_yday + 1) as u32,
        wday: tm.tm_wday as u32,
    }
}

fn is_glob(component: &[u8]) -> bool {
    component.iter().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Expands `path` (already date-expanded, absolute) into at most `limit` files.
pub fn expand(path: &str, limit: usize) -> Expansion {
    let mut out = Expansion::default();
    let path = Path::new(path);
    let components: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = components.split_last() else {
        return out;
    };
    let mut bases = vec![PathBuf::from("/")];
    for component in parents {
        let mut next = Vec::new();
        for base in &bases {
            if is_glob(component.as_bytes()) {
                out.dirs.push(base.clone());
                for name in list(base) {
                    let candidate = base.join(&name);
                    if glob_match(component.as_bytes(), name.as_bytes()) && candidate.is_dir() {
                        next.push(candidate);
                    }
                }
            } else {
                next.push(base.join(component));
            }
        }
        bases = next;
    }
    for base in &bases {
        out.dirs.push(base.clone());
        if is_glob(last.as_bytes()) {
            for name in list(base) {
                if glob_match(last.as_bytes(), name.as_bytes()) {
                    let candidate = base.join(&name);
                    if candidate.is_file() {
                        out.files.push(candidate);
                    }
                }
            }
        } else {
            let candidate = base.join(last);
            if candidate.is_file() {
                out.files.push(candidate);
            }
        }
    }
    out.files.sort();
    out.files.dedup();
    if out.files.len() > limit {
        out.files.truncate(limit);
        out.over_limit = true;
    }
    out.dirs.sort();
    out.dirs.dedup();
    out
}

/// The names in `dir`, at most [`MAX_DIR_ENTRIES`] (an unreadable directory has none).
fn list(dir: &Path) -> Vec<std::ffi::OsString> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .take(MAX_DIR_ENTRIES)
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Shell-style match of one path component.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    matches_from(pattern, name)
}

fn matches_from(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, name index it matched up to).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, name[n]),
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; returns the index after
/// the class on a match. An unclosed `[` matches itself.
fn class(pattern: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while let Some(&b) = pattern.get(i) {
        if b == b']' && !first {
            return (matched != negate).then_some(i + 1);
        }
        first = false;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
            let end = pattern[i + 2];
            matched |= b <= c && c <= end;
            i += 3;
        } else {
            matched |= b == c;
            i += 1;
        }
    }
    (c == b'[').then_some(start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_and_classes_match_one_component() {
        assert!(glob_match(b"*.log", b"app.log"));
        assert!(!glob_match(b"*.log", b"app.log.1"));
        assert!(glob_match(b"app-??.log", b"app-01.log"));
        assert!(glob_match(b"app[0-9].log", b"app7.log"));
        assert!(!glob_match(b"app[!0-9].log", b"app7.log"));
        assert!(glob_match(b"a*b*c", b"aXXbYYbc"));
        assert!(!glob_match(b"*.log", b".hidden.log"));
    }

    #[test]
    fn date_patterns_are_replaced_with_the_local_date() {
        let t = local_time(SystemTime::now());
        let expanded = expand_date("/var/log/app-%Y-%m-%d.log", SystemTime::now());
        assert_eq!(
            expanded,
            format!("/var/log/app-{:04}-{:02}-{:02}.log", t.year, t.month, t.day)
        );
        assert!(has_date("/x/%Y.log"));
        assert!(!has_date("/x/100%.log"));
    }

    #[test]
    fn globs_in_directories_and_names_find_files_and_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["a", "b"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("x.log"), "").unwrap();
            std::fs::write(dir.path().join(sub).join("x.txt"), "").unwrap();
        }
        let pattern = format!("{}/*/*.log", dir.path().display());
        let found = expand(&pattern, 10);
        assert_eq!(
            found.files,
            vec![dir.path().join("a/x.log"), dir.path().join("b/x.log")]
        );
        assert!(found.dirs.contains(&dir.path().to_path_buf()));
        assert!(found.dirs.contains(&dir.path().join("a")));
        let limited = expand(&pattern, 1);
        assert!(limited.over_limit);
        assert_eq!(limited.files.len(), 1);
    }
}
