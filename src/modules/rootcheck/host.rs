//! Host anomalies: files in `/dev` where only devices belong, promiscuous interfaces, kernel
//! modules listed in one place and not the other.

use super::scan::{room_for_one, Finding, Scan};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// How deep `/dev` is walked.
const DEV_MAX_DEPTH: usize = 8;

/// `/dev` anomalies: regular files, and hidden entries (names starting with a dot), unless their
/// name is in `dev_allowed`; allowed directories (e.g. `shm`, `mqueue`) are not entered, since
/// files legitimately live there.
pub async fn check_dev(scan: &mut Scan<'_>) {
    let root = scan.config.dev_root.clone();
    if !root.is_dir() {
        scan.skip(format!("dev: {} is not a directory", root.display()));
        return;
    }
    let mut stack: Vec<(PathBuf, usize)> = vec![(root, 0)];
    let mut examined = 0u64;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            scan.pacer.tick().await;
            examined += 1;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if scan.config.dev_allowed.iter().any(|a| *a == name) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_file() {
                scan.report(Finding::at_path(
                    "dev_anomaly",
                    &path,
                    format!("File '{}' present on /dev.", path.display()),
                    "a regular file where only devices belong".into(),
                ));
            } else if name.starts_with('.') {
                scan.report(Finding::at_path(
                    "dev_anomaly",
                    &path,
                    format!("Hidden file '{}' present on /dev.", path.display()),
                    "a hidden entry where only devices belong".into(),
                ));
            }
            let device = kind.is_block_device() || kind.is_char_device();
            if kind.is_dir()
                && !device
                && depth < DEV_MAX_DEPTH
                && room_for_one(scan.memory(), &mut stack)
            {
                stack.push((path, depth + 1));
            }
        }
    }
    scan.checked("dev", examined);
}

/// Interfaces in promiscuous mode: `IFF_PROMISC` (0x100) in `sys_root/class/net/*/flags`.
pub async fn check_interfaces(scan: &mut Scan<'_>) {
    let dir = scan.config.sys_root.join("class/net");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            scan.skip(format!("interfaces: {}: {e}", dir.display()));
            return;
        }
    };
    let mut examined = 0u64;
    for entry in entries.flatten() {
        scan.pacer.tick().await;
        examined += 1;
        let flags_path = entry.path().join("flags");
        let Some(flags) = std::fs::read_to_string(&flags_path)
            .ok()
            .and_then(|t| u32::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok())
        else {
            continue;
        };
        if flags & 0x100 != 0 {
            let name = entry.file_name().to_string_lossy().into_owned();
            scan.report(Finding {
                kind: "promiscuous_interface",
                title: format!("Interface '{name}' in promiscuous mode."),
                path: Some(name),
                pid: None,
                port: None,
                details: format!("{} is {flags:#x} (IFF_PROMISC set)", flags_path.display()),
            });
        }
    }
    scan.checked("interfaces", examined);
}

/// Kernel modules: one in `proc_root/modules` but not in `sys_root/module` (removed from sysfs),
/// or a loadable one in `sys_root/module` (it has an `initstate`) that `proc_root/modules` leaves
/// out. Built-in modules appear in `sys_root/module` only and have no `initstate`: not reported.
/// A module being loaded or removed during the comparison is not hidden: both lists are read a
/// second time after a short pause, and only differences found both times are reported.
pub async fn check_modules(scan: &mut Scan<'_>) {
    let list_path = scan.config.proc_root.join("modules");
    let sys_dir = scan.config.sys_root.join("module");
    let first = match compare_modules(&list_path, &sys_dir) {
        Ok(first) => first,
        Err(e) => {
            scan.skip(format!(
                "modules: {}: {e} (a kernel without loadable modules)",
                list_path.display()
            ));
            return;
        }
    };
    scan.checked("modules", first.examined);
    if first.hidden.is_empty() {
        return;
    }
    smol::Timer::after(std::time::Duration::from_millis(100)).await;
    let Ok(second) = compare_modules(&list_path, &sys_dir) else {
        return;
    };
    for (name, path, details) in first.hidden {
        if second.hidden.iter().any(|(n, _, _)| *n == name) {
            scan.report(module_finding(&name, &path, details));
        }
    }
}

/// The modules that one list has and the other does not: `(name, path, how)`.
struct ModuleComparison {
    hidden: Vec<(String, PathBuf, String)>,
    examined: u64,
}

fn compare_modules(list_path: &Path, sys_dir: &Path) -> std::io::Result<ModuleComparison> {
    let listed_text = std::fs::read_to_string(list_path)?;
    let listed: Vec<&str> = listed_text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut result = ModuleComparison {
        hidden: Vec::new(),
        examined: listed.len() as u64,
    };
    for name in &listed {
        let path = sys_dir.join(name);
        if !path.exists() {
            let how = format!(
                "listed in {} but missing from {}",
                list_path.display(),
                sys_dir.display()
            );
            result.hidden.push((name.to_string(), path, how));
        }
    }
    for entry in std::fs::read_dir(sys_dir).into_iter().flatten().flatten() {
        result.examined += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let state_path = entry.path().join("initstate");
        let Ok(state) = std::fs::read_to_string(&state_path) else {
            continue; // built in
        };
        if state.trim() == "live" && !listed.contains(&name.as_str()) {
            let how = format!(
                "loaded ({} is live) but missing from {}",
                state_path.display(),
                list_path.display()
            );
            result.hidden.push((name, entry.path(), how));
        }
    }
    Ok(result)
}

fn module_finding(name: &str, path: &Path, details: String) -> Finding {
    Finding {
        kind: "hidden_module",
        title: format!("Kernel module '{name}' hidden from one of the module lists."),
        path: Some(path.display().to_string()),
        pid: None,
        port: None,
        details,
    }
}
