//! The behaviours of issue #6, each on a real tree.

use super::{config_for, Harness, Tree};
use gatewatch_proto::fim::{ChangeType, FimChange, FimEvent, FimMode};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const SOON: Duration = Duration::from_secs(5);

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Creates, modifies, chmods, chowns (when root), renames and deletes `a`, asserting each change
/// is reported in `mode` with the right attributes.
fn create_modify_chmod_chown_delete_rename(
    tree: &Tree,
    fim: &mut Harness,
    mode: FimMode,
    wait: Duration,
) {
    let a = tree.path("a");
    std::fs::write(&a, b"hello").unwrap();
    let added = fim.change(&a, ChangeType::Added, wait);
    assert_eq!(added.mode, mode);
    let attrs = added.attributes.clone().unwrap();
    assert_eq!(attrs.size, 5);
    assert_eq!(
        attrs.hash_sha256.as_deref(),
        Some(sha256_hex(b"hello").as_str())
    );
    assert_eq!(
        attrs.hash_md5.as_deref(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    assert_eq!(
        attrs.hash_sha1.as_deref(),
        Some("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    );
    assert_eq!(attrs.uid, rustix::process::geteuid().as_raw());
    assert!(added.old_attributes.is_none());

    std::fs::write(&a, b"hello, world").unwrap();
    let modified = fim.change(&a, ChangeType::Modified, wait);
    assert_eq!(modified.mode, mode);
    assert_eq!(modified.attributes.as_ref().unwrap().size, 12);
    assert_eq!(modified.old_attributes.as_ref().unwrap().size, 5);
    for attr in ["size", "md5", "sha1", "sha256"] {
        assert!(
            modified.changed_attributes.iter().any(|c| c == attr),
            "{attr} in {modified:?}"
        );
    }

    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    let chmod = fim.change(&a, ChangeType::Modified, wait);
    assert_eq!(chmod.changed_attributes, ["permission"]);
    assert_eq!(chmod.attributes.as_ref().unwrap().perm, "rw-------");

    if is_root() {
        // uid/gid 1 is `daemon` on Debian.
        std::os::unix::fs::chown(&a, Some(1), Some(1)).unwrap();
        let chown = fim.change(&a, ChangeType::Modified, wait);
        let now = chown.attributes.as_ref().unwrap();
        assert_eq!((now.uid, now.gid), (1, 1));
        assert_eq!(now.user_name, "daemon");
        for attr in ["uid", "user_name", "gid", "group_name"] {
            assert!(
                chown.changed_attributes.iter().any(|c| c == attr),
                "{attr} in {chown:?}"
            );
        }
    }

    let b = tree.path("b");
    std::fs::rename(&a, &b).unwrap();
    let gone = fim.change(&a, ChangeType::Deleted, wait);
    assert_eq!(gone.old_attributes.as_ref().unwrap().size, 12);
    assert!(gone.attributes.is_none());
    let arrived = fim.change(&b, ChangeType::Added, wait);
    assert_eq!(arrived.attributes.as_ref().unwrap().inode, attrs.inode);

    std::fs::remove_file(&b).unwrap();
    let deleted = fim.change(&b, ChangeType::Deleted, wait);
    assert_eq!(deleted.mode, mode);
}

#[test]
fn realtime_reports_create_modify_chmod_chown_delete_rename() {
    let tree = Tree::new();
    let config = config_for(&tree.root, |d| d.realtime = true);
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    create_modify_chmod_chown_delete_rename(&tree, &mut fim, FimMode::Realtime, SOON);
}

#[test]
fn scheduled_scan_reports_create_modify_chmod_chown_delete_rename() {
    let tree = Tree::new();
    let mut config = config_for(&tree.root, |_| {});
    config.frequency_secs = 1;
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    create_modify_chmod_chown_delete_rename(&tree, &mut fim, FimMode::Scheduled, SOON);
}

#[test]
fn realtime_picks_up_new_directories() {
    let tree = Tree::new();
    let config = config_for(&tree.root, |d| d.realtime = true);
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    let deep = tree.path("new/deeper");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f"), b"1").unwrap();
    fim.change(&deep.join("f"), ChangeType::Added, SOON);
    // The new directory is watched: a later change is seen at once too.
    std::fs::write(deep.join("g"), b"2").unwrap();
    let g = fim.change(&deep.join("g"), ChangeType::Added, SOON);
    assert_eq!(g.mode, FimMode::Realtime);
    // Removing the tree reports its files deleted.
    std::fs::remove_dir_all(tree.path("new")).unwrap();
    fim.change(&deep.join("f"), ChangeType::Deleted, SOON);
    fim.change(&deep.join("g"), ChangeType::Deleted, SOON);
}

#[test]
fn whodata_names_the_writer() {
    let tree = Tree::new();
    let file = tree.path("target");
    std::fs::write(&file, b"before\n").unwrap();
    let config = config_for(&tree.root, |d| d.whodata = true);
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    let first = fim.wait_for("the baseline or a degraded-mode event", SOON, |e| {
        matches!(
            e,
            FimEvent::ScanEnded { .. } | FimEvent::WhodataUnavailable { .. }
        )
    });
    // The writer stays alive a moment, as a real one would while the event is read.
    // `; true` keeps the shell itself alive (a last command would be exec'd in its place).
    let script = format!("echo after >> '{}'; sleep 2; true", file.display());
    let mut writer = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let change = fim.change(&file, ChangeType::Modified, SOON);
    let _ = writer.wait();
    if let FimEvent::WhodataUnavailable { reason } = first {
        // The kernel or our privileges do not allow fanotify: plain realtime still works.
        eprintln!("who-data unavailable here: {reason}");
        assert_eq!(change.mode, FimMode::Realtime);
        assert!(change.audit.is_none());
        return;
    }
    assert_eq!(change.mode, FimMode::Whodata, "{change:?}");
    let who = change.audit.expect("who-data");
    assert_eq!(who.process_id, writer.id());
    assert_eq!(who.process_name, "sh");
    assert!(
        who.path.ends_with("sh") || who.path.ends_with("dash"),
        "{who:?}"
    );
    assert_eq!(who.user_id, rustix::process::getuid().as_raw());
    assert_eq!(who.ppid, std::process::id());
    if is_root() {
        assert_eq!(who.user_name, "root");
    }
}

/// Drops `CAP_SYS_ADMIN` from the calling thread's effective set (capabilities are per thread).
fn drop_sys_admin() {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
    let mut caps = capabilities(None).unwrap();
    caps.effective.remove(CapabilitySet::SYS_ADMIN);
    set_capabilities(None, caps).unwrap();
}

#[test]
fn whodata_degrades_to_realtime_without_cap_sys_admin() {
    let tree = Tree::new();
    let file = tree.path("target");
    std::fs::write(&file, b"before\n").unwrap();
    let config = config_for(&tree.root, |d| d.whodata = true);
    let mut fim = Harness::start_with_setup(config, &tree.state, "fim-test", 256, drop_sys_admin);
    let event = fim.wait_for("a degraded-mode event", SOON, |e| {
        matches!(e, FimEvent::WhodataUnavailable { .. })
    });
    assert!(
        matches!(&event, FimEvent::WhodataUnavailable { reason } if reason.contains("CAP_SYS_ADMIN")),
        "{event:?}"
    );
    fim.scan_ended(SOON);
    std::fs::write(&file, b"after\n").unwrap();
    let change = fim.change(&file, ChangeType::Modified, SOON);
    assert_eq!(change.mode, FimMode::Realtime);
    assert!(change.audit.is_none());
}

#[test]
fn changes_while_down_are_detected() {
    let tree = Tree::new();
    for name in ["keep", "edit", "remove"] {
        std::fs::write(tree.path(name), name).unwrap();
    }
    let config = config_for(&tree.root, |_| {});
    let mut fim = Harness::start(config.clone(), &tree.state, "fim-test");
    fim.scan_ended(SOON);
    fim.stop().unwrap();

    std::fs::write(tree.path("edit"), b"edited while the agent was down").unwrap();
    std::fs::remove_file(tree.path("remove")).unwrap();
    std::fs::write(tree.path("new"), b"new").unwrap();

    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    let changes: Vec<FimChange> = fim
        .log
        .iter()
        .filter_map(|e| match e {
            FimEvent::Change(c) => Some((**c).clone()),
            _ => None,
        })
        .collect();
    let find = |p: &Path, t| {
        changes
            .iter()
            .find(|c| c.path == p.to_string_lossy() && c.event == t)
    };
    assert!(
        find(&tree.path("edit"), ChangeType::Modified).is_some(),
        "{changes:#?}"
    );
    assert!(
        find(&tree.path("remove"), ChangeType::Deleted).is_some(),
        "{changes:#?}"
    );
    assert!(
        find(&tree.path("new"), ChangeType::Added).is_some(),
        "{changes:#?}"
    );
    assert_eq!(
        changes.len(),
        3,
        "the unchanged file is not reported: {changes:#?}"
    );
}

#[test]
fn watch_limit_falls_back_to_scheduled() {
    let tree = Tree::new();
    for d in ["d1", "d2", "d3", "d4"] {
        std::fs::create_dir(tree.path(d)).unwrap();
    }
    let mut config = config_for(&tree.root, |d| d.realtime = true);
    config.max_watches = 2;
    config.frequency_secs = 2;
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    let limit = fim.wait_for("a realtime limit event", SOON, |e| {
        matches!(e, FimEvent::RealtimeLimit { .. })
    });
    assert!(
        matches!(limit, FimEvent::RealtimeLimit { watches: 2, .. }),
        "{limit:?}"
    );
    fim.scan_ended(SOON);
    let mut modes = Vec::new();
    for d in ["d1", "d2", "d3", "d4"] {
        std::fs::write(tree.path(d).join("f"), b"x").unwrap();
    }
    for d in ["d1", "d2", "d3", "d4"] {
        modes.push(
            fim.change(&tree.path(d).join("f"), ChangeType::Added, SOON)
                .mode,
        );
    }
    // The root and one subdirectory are watched; the other three are found by the scans only.
    // (The watched one may be found by a scan too if one starts within the realtime delay.)
    let scheduled = modes.iter().filter(|m| **m == FimMode::Scheduled).count();
    assert!(scheduled >= 3, "{modes:?}");
}

#[test]
fn report_changes_diff() {
    let tree = Tree::new();
    let file = tree.path("app.conf");
    std::fs::write(&file, b"port = 80\nhost = a\n").unwrap();
    let config = config_for(&tree.root, |d| {
        d.realtime = true;
        d.report_changes = true;
    });
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    std::fs::write(&file, b"port = 8080\nhost = a\n").unwrap();
    let change = fim.change(&file, ChangeType::Modified, SOON);
    assert_eq!(
        change.content_changes.as_deref(),
        Some("1c1\n< port = 80\n---\n> port = 8080\n")
    );
}

#[test]
fn binary_file_has_no_diff() {
    let tree = Tree::new();
    let file = tree.path("blob.bin");
    std::fs::write(&file, [0u8, 1, 2, 3, 0, 5]).unwrap();
    let config = config_for(&tree.root, |d| {
        d.realtime = true;
        d.report_changes = true;
    });
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    std::fs::write(&file, [0u8, 9, 9, 9, 0, 5, 6]).unwrap();
    let change = fim.change(&file, ChangeType::Modified, SOON);
    assert!(change.content_changes.is_none(), "{change:?}");
    let copies = std::fs::read_dir(tree.state.join("diff")).unwrap().count();
    assert_eq!(copies, 0, "no copy of a binary is kept");
}

#[test]
fn nodiff_file_has_no_diff() {
    let tree = Tree::new();
    let file = tree.path("secret.key");
    std::fs::write(&file, b"k1\n").unwrap();
    let mut config = config_for(&tree.root, |d| {
        d.realtime = true;
        d.report_changes = true;
    });
    config.nodiff_regex = vec![r"\.key$".into()];
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    std::fs::write(&file, b"k2\n").unwrap();
    let change = fim.change(&file, ChangeType::Modified, SOON);
    assert!(change.content_changes.is_none(), "{change:?}");
}

#[test]
fn file_limit_is_reported_and_respected() {
    let tree = Tree::new();
    for i in 0..5 {
        std::fs::write(tree.path(&format!("f{i}")), b"x").unwrap();
    }
    let mut config = config_for(&tree.root, |_| {});
    config.file_limit = 3;
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.wait_for("a file limit event", SOON, |e| {
        matches!(e, FimEvent::FileLimit { limit: 3, .. })
    });
    fim.scan_ended(SOON);
    let added = fim
        .log
        .iter()
        .filter(|e| matches!(e, FimEvent::Change(c) if c.event == ChangeType::Added))
        .count();
    assert_eq!(added, 3);
}

#[test]
fn ignored_and_restricted_files_are_not_reported() {
    let tree = Tree::new();
    std::fs::create_dir(tree.path("cache")).unwrap();
    for name in ["a.conf", "b.txt", "cache/c.conf"] {
        std::fs::write(tree.path(name), b"x").unwrap();
    }
    let config = config_for(&tree.root, |d| {
        d.ignore = vec![tree.path("cache")];
        d.restrict = Some(r"\.conf$".into());
        d.tags = vec!["config".into()];
    });
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    fim.scan_ended(SOON);
    let changes: Vec<&FimChange> = fim
        .log
        .iter()
        .filter_map(|e| match e {
            FimEvent::Change(c) => Some(&**c),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, tree.path("a.conf").to_string_lossy());
    assert_eq!(changes[0].tags, ["config"]);
}

#[test]
fn unchanged_rescan_hashes_nothing() {
    let tree = Tree::new();
    for i in 0..20 {
        std::fs::write(tree.path(&format!("f{i}")), vec![b'x'; 1000]).unwrap();
    }
    let mut config = config_for(&tree.root, |_| {});
    config.frequency_secs = 1;
    let mut fim = Harness::start(config, &tree.state, "fim-test");
    let first = fim.scan_ended(SOON);
    let second = fim.scan_ended(SOON);
    assert!(
        matches!(
            first,
            FimEvent::ScanEnded {
                bytes_hashed: 20_000,
                files: 20,
                ..
            }
        ),
        "{first:?}"
    );
    assert!(
        matches!(
            second,
            FimEvent::ScanEnded {
                bytes_hashed: 0,
                files: 20,
                ..
            }
        ),
        "{second:?}"
    );
}
