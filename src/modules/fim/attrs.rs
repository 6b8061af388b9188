//! A file's attributes as FIM reports them: type, size, permissions, owner and group (ids and
//! names), inode, device, mtime. Hashes are added by `hash.rs`.
//!
//! User and group names come from `/etc/passwd` and `/etc/group` (no NSS: a static musl build
//! has none), through a small bounded cache.

use gatewatch_proto::fim::{FileAttributes, FileType};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Names cached per table; past this the cache is cleared (it is rebuilt on demand).
const NAME_CACHE: usize = 64;

/// The kind of object `meta` describes.
pub fn file_type(meta: &std::fs::Metadata) -> FileType {
    let ft = meta.file_type();
    if ft.is_file() {
        FileType::File
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::Other
    }
}

/// The attributes described by `meta`, without hashes.
pub fn from_metadata(meta: &std::fs::Metadata, names: &mut Names) -> FileAttributes {
    FileAttributes {
        file_type: file_type(meta),
        size: meta.size(),
        perm: perm_string(meta.mode()),
        uid: meta.uid(),
        gid: meta.gid(),
        user_name: names.user(meta.uid()),
        group_name: names.group(meta.gid()),
        inode: meta.ino(),
        device: meta.dev(),
        mtime: meta.mtime(),
        hash_md5: None,
        hash_sha1: None,
        hash_sha256: None,
    }
}

/// `rwxr-xr-x` form of a mode, with `s`/`S` and `t`/`T` for the special bits (as `ls -l`).
pub fn perm_string(mode: u32) -> String {
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: u32, special: u32, set: char, unset: char, plain: char| match (
        mode & exec != 0,
        mode & special != 0,
    ) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => plain,
        (false, false) => '-',
    };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S', 'x'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S', 'x'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T', 'x'),
    ]
    .iter()
    .collect()
}

/// Names of users and groups, from the files of the system's databases.
pub struct Names {
    passwd: std::path::PathBuf,
    group: std::path::PathBuf,
    users: Vec<(u32, String)>,
    groups: Vec<(u32, String)>,
}

impl Default for Names {
    fn default() -> Self {
        Names::from_files("/etc/passwd".as_ref(), "/etc/group".as_ref())
    }
}

impl Names {
    /// Names read from the given `passwd` and `group` files.
    pub fn from_files(passwd: &Path, group: &Path) -> Names {
        Names {
            passwd: passwd.to_path_buf(),
            group: group.to_path_buf(),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// The name of user `uid` (empty when unknown).
    pub fn user(&mut self, uid: u32) -> String {
        lookup(&mut self.users, &self.passwd, uid)
    }

    /// The name of group `gid` (empty when unknown).
    pub fn group(&mut self, gid: u32) -> String {
        lookup(&mut self.groups, &self.group, gid)
    }
}

fn lookup(cache: &mut Vec<(u32, String)>, file: &Path, id: u32) -> String {
    if let Some((_, name)) = cache.iter().find(|(i, _)| *i == id) {
        return name.clone();
    }
    let name = find_in(file, id).unwrap_or_default();
    if cache.len() >= NAME_CACHE {
        cache.clear();
    }
    cache.push((id, name.clone()));
    name
}

/// Reads `name:x:id:…` lines until `id` is found.
fn find_in(file: &Path, id: u32) -> Option<String> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(std::fs::File::open(file).ok()?);
    for line in reader.lines() {
        let line = line.ok()?;
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(field)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if field.parse::<u32>().ok() == Some(id) {
            return Some(name.to_string());
        }
    }
    None
}

/// Wazuh's names of the attributes that differ between `old` and `new` (hashes compared only
/// when both sides have them).
pub fn changed(old: &FileAttributes, new: &FileAttributes) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |differs: bool, name: &str| {
        if differs {
            out.push(name.to_string());
        }
    };
    push(old.file_type != new.file_type, "type");
    push(old.size != new.size, "size");
    push(old.perm != new.perm, "permission");
    push(old.uid != new.uid, "uid");
    push(old.user_name != new.user_name, "user_name");
    push(old.gid != new.gid, "gid");
    push(old.group_name != new.group_name, "group_name");
    push(old.mtime != new.mtime, "mtime");
    push(old.inode != new.inode, "inode");
    push(old.device != new.device, "device");
    let hash = |a: &Option<String>, b: &Option<String>| a.is_some() && b.is_some() && a != b;
    push(hash(&old.hash_md5, &new.hash_md5), "md5");
    push(hash(&old.hash_sha1, &new.hash_sha1), "sha1");
    push(hash(&old.hash_sha256, &new.hash_sha256), "sha256");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perm_string_reads_like_ls() {
        assert_eq!(perm_string(0o644), "rw-r--r--");
        assert_eq!(perm_string(0o4755), "rwsr-xr-x");
        assert_eq!(perm_string(0o1777), "rwxrwxrwt");
        assert_eq!(perm_string(0o2640), "rw-r-S---");
    }

    #[test]
    fn names_come_from_the_database_files() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(&group, "root:x:0:\nstaff:x:50:alice\n").unwrap();
        let mut names = Names::from_files(&passwd, &group);
        assert_eq!(names.user(1000), "alice");
        assert_eq!(names.group(50), "staff");
        assert_eq!(names.user(4242), "");
    }

    #[test]
    fn stat_reports_size_permissions_and_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        let a = from_metadata(&meta, &mut Names::default());
        assert_eq!(
            (a.file_type, a.size, a.perm.as_str()),
            (FileType::File, 5, "rw-r-----")
        );
        assert_eq!(a.uid, rustix::process::getuid().as_raw());
        assert!(a.inode > 0 && a.mtime > 0);
    }
}
