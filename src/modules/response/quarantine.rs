//! The quarantine: a file is moved into the quarantine directory under its action id, made
//! unreadable (mode 000), and described in a JSON sidecar (`<id>.json`: original path, SHA-256,
//! size, owner, group, mode, time), from which [`restore`] puts it back as it was.
//!
//! Called from the agent's executor: the file is hashed in chunks with a yield between them
//! ([`crate::runtime::hash`]).
//! Runs as root on a gateway, so the directory is created with mode 0700.

use super::json;
use crate::runtime::hash::sha256_file;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What the sidecar records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// Where the file was.
    pub original: PathBuf,
    /// Hex SHA-256 of its content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Owner and group ids.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

impl Sidecar {
    fn to_json(&self, id: &str) -> String {
        format!(
            "{{\"id\":{},\"original_path\":{},\"sha256\":{},\"size\":{},\"uid\":{},\"gid\":{},\"mode\":\"{:o}\",\"quarantined_ms\":{}}}\n",
            json::quoted(id),
            json::quoted(&self.original.to_string_lossy()),
            json::quoted(&self.sha256),
            self.size,
            self.uid,
            self.gid,
            self.mode,
            crate::pipeline::queue::now_ms(),
        )
    }

    fn from_json(text: &str) -> Option<Sidecar> {
        Some(Sidecar {
            original: PathBuf::from(json::find_text(text, "original_path")?),
            sha256: json::find_text(text, "sha256")?,
            size: json::find_text(text, "size")?.parse().ok()?,
            uid: json::find_text(text, "uid")?.parse().ok()?,
            gid: json::find_text(text, "gid")?.parse().ok()?,
            mode: u32::from_str_radix(&json::find_text(text, "mode")?, 8).ok()?,
        })
    }
}

fn paths(dir: &Path, id: &str) -> Result<(PathBuf, PathBuf), String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{id:?} is not a quarantine id"));
    }
    Ok((dir.join(id), dir.join(format!("{id}.json"))))
}

/// Moves `path` into `dir` as `id`; returns the sidecar written beside it.
pub async fn quarantine(dir: &Path, id: &str, path: &Path) -> Result<Sidecar, String> {
    let (stored, sidecar_path) = paths(dir, id)?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let sha256 = sha256_file(path)
        .await
        .map_err(|e| format!("cannot hash {}: {e}", path.display()))?;
    let sidecar = Sidecar {
        original: path.to_path_buf(),
        sha256,
        size: meta.len(),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    };
    // The sidecar first: a file in the quarantine is never without its description.
    write_synced(&sidecar_path, sidecar.to_json(id).as_bytes())?;
    if let Err(e) = move_file(path, &stored) {
        let _ = std::fs::remove_file(&sidecar_path);
        return Err(format!(
            "cannot move {} to {}: {e}",
            path.display(),
            stored.display()
        ));
    }
    let _ = std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o000));
    Ok(sidecar)
}

/// Puts the file quarantined as `id` back where it was, with its owner and mode; refuses to
/// overwrite a file that has appeared there since.
pub fn restore(dir: &Path, id: &str) -> Result<Sidecar, String> {
    let (stored, sidecar_path) = paths(dir, id)?;
    let text = std::fs::read_to_string(&sidecar_path)
        .map_err(|e| format!("no quarantined file {id}: {}: {e}", sidecar_path.display()))?;
    let sidecar = Sidecar::from_json(&text)
        .ok_or_else(|| format!("{}: malformed sidecar", sidecar_path.display()))?;
    if std::fs::symlink_metadata(&sidecar.original).is_ok() {
        return Err(format!(
            "{} exists again: not overwritten",
            sidecar.original.display()
        ));
    }
    move_file(&stored, &sidecar.original).map_err(|e| {
        format!(
            "cannot move {} back to {}: {e}",
            stored.display(),
            sidecar.original.display()
        )
    })?;
    let original = &sidecar.original;
    std::fs::set_permissions(original, std::fs::Permissions::from_mode(sidecar.mode))
        .map_err(|e| format!("{}: restoring mode: {e}", original.display()))?;
    std::os::unix::fs::chown(original, Some(sidecar.uid), Some(sidecar.gid))
        .map_err(|e| format!("{}: restoring owner: {e}", original.display()))?;
    let _ = std::fs::remove_file(&sidecar_path);
    Ok(sidecar)
}

/// `rename`, or copy and remove when the quarantine is on another filesystem.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            std::fs::copy(from, to)?;
            std::fs::File::open(to)?.sync_all()?;
            std::fs::remove_file(from)
        }
        other => other,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn quarantine_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dropper.sh");
        std::fs::write(&file, b"#!/bin/sh\necho pwned\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o751)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let qdir = dir.path().join("quarantine");

        let sidecar = smol::block_on(quarantine(&qdir, "q-1", &file)).unwrap();
        assert!(!file.exists(), "moved away");
        assert_eq!(
            sidecar.sha256,
            hex::encode(Sha256::digest(b"#!/bin/sh\necho pwned\n"))
        );
        let stored = std::fs::metadata(qdir.join("q-1")).unwrap();
        assert_eq!(stored.mode() & 0o777, 0, "unreadable in the quarantine");
        let text = std::fs::read_to_string(qdir.join("q-1.json")).unwrap();
        assert!(
            text.contains(&sidecar.sha256) && text.contains("dropper.sh"),
            "{text}"
        );

        let restored = restore(&qdir, "q-1").unwrap();
        assert_eq!(restored, sidecar);
        let back = std::fs::metadata(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"#!/bin/sh\necho pwned\n");
        assert_eq!(
            (back.mode() & 0o7777, back.uid(), back.gid()),
            (0o751, meta.uid(), meta.gid())
        );
        assert!(!qdir.join("q-1.json").exists());
    }

    #[test]
    fn restore_never_overwrites_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"old").unwrap();
        let qdir = dir.path().join("q");
        smol::block_on(quarantine(&qdir, "q-2", &file)).unwrap();
        std::fs::write(&file, b"new").unwrap();
        assert!(restore(&qdir, "q-2").unwrap_err().contains("exists again"));
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }

    #[test]
    fn ids_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(restore(dir.path(), "../etc/passwd").is_err());
    }
}
