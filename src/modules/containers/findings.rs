//! Findings: the risky settings of a container or an exec, each with a severity (the table is
//! in [`super::config`]). Pure functions of an inspection; no I/O.

use super::api::{ExecInspect, Inspect};
use gatewatch_proto::containers::{ContainerAlert, ExecInfo, Severity};
use std::path::Path;

/// Engine and runtime sockets: a container holding one controls the host.
const ENGINE_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/balena-engine.sock",
    "/var/run/balena.sock",
    "/run/podman/podman.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
];

/// Host paths whose mount (or the mount of a parent) exposes the host.
const SENSITIVE_DIRS: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/home",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/kubelet",
    "/lib/modules",
    "/usr",
];

/// The severity of an added capability.
fn capability_severity(cap: &str) -> Severity {
    let cap = cap.trim_start_matches("CAP_");
    match cap {
        "ALL" => Severity::Critical,
        "SYS_ADMIN" | "SYS_MODULE" | "SYS_PTRACE" | "SYS_RAWIO" | "DAC_READ_SEARCH" | "BPF" => {
            Severity::High
        }
        "NET_ADMIN" | "NET_RAW" | "SYS_TIME" | "SYS_BOOT" | "MKNOD" | "MAC_ADMIN"
        | "MAC_OVERRIDE" | "DAC_OVERRIDE" | "PERFMON" | "SYSLOG" => Severity::Medium,
        _ => Severity::Low,
    }
}

/// The severity of mounting host path `source` (`None`: not sensitive). `engine_socket` is the
/// socket the module watches, which counts as an engine socket wherever it is.
fn mount_severity(source: &str, writable: bool, engine_socket: &Path) -> Option<Severity> {
    let source = source.trim_end_matches('/');
    if source.is_empty() || ENGINE_SOCKETS.contains(&source) || Path::new(source) == engine_socket {
        return Some(Severity::Critical);
    }
    let is_under = |dir: &str, path: &str| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    // The directory itself, or a parent of it (mounting `/var` exposes `/var/lib/kubelet`).
    if SENSITIVE_DIRS.iter().any(|dir| is_under(source, dir)) {
        return Some(Severity::High);
    }
    if writable && SENSITIVE_DIRS.iter().any(|dir| is_under(dir, source)) {
        return Some(Severity::Medium);
    }
    None
}

/// Whether a user string means root (empty: the image's default, which is root for most).
fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or_default();
    name.is_empty() || name == "0" || name == "root"
}

/// The findings of a container inspection.
pub fn container_findings(inspect: &Inspect, engine_socket: &Path) -> Vec<ContainerAlert> {
    let mut found: Vec<(&'static str, Severity, String)> = Vec::new();
    let host = &inspect.host;
    if host.privileged {
        found.push(("privileged", Severity::Critical, "--privileged".into()));
    }
    for cap in &host.cap_add {
        found.push(("capability", capability_severity(cap), cap.clone()));
    }
    for mount in inspect.mounts.iter().filter(|m| m.kind == "bind") {
        if let Some(severity) = mount_severity(&mount.source, mount.rw, engine_socket) {
            let access = if mount.rw { "rw" } else { "ro" };
            let detail = format!("{}:{}:{access}", mount.source, mount.destination);
            found.push(("sensitive_mount", severity, detail));
        }
    }
    if host.pid_mode == "host" {
        found.push(("host_pid", Severity::High, "--pid=host".into()));
    }
    if host.network_mode == "host" {
        found.push(("host_network", Severity::Medium, "--network=host".into()));
    }
    if host.ipc_mode == "host" {
        found.push(("host_ipc", Severity::Medium, "--ipc=host".into()));
    }
    for opt in &host.security_opt {
        let opt = opt.replace(':', "=");
        if opt == "seccomp=unconfined" {
            found.push(("seccomp_unconfined", Severity::High, opt));
        } else if opt == "apparmor=unconfined" {
            found.push(("apparmor_unconfined", Severity::Medium, opt));
        }
    }
    for device in &host.devices {
        found.push(("device", Severity::High, device.path_on_host.clone()));
    }
    if is_root(&inspect.config.user) {
        let user = if inspect.config.user.is_empty() {
            "(image default)".to_string()
        } else {
            inspect.config.user.clone()
        };
        found.push(("root_user", Severity::Low, user));
    }
    found
        .into_iter()
        .map(|(rule, severity, detail)| ContainerAlert {
            rule: rule.into(),
            severity,
            container_id: inspect.id.clone(),
            container_name: inspect.name.trim_start_matches('/').to_string(),
            image: inspect.config.image.clone(),
            detail,
        })
        .collect()
}

/// The exec's command line and user, from its inspection.
pub fn exec_info(exec_id: &str, inspect: &ExecInspect) -> ExecInfo {
    let mut command = Vec::with_capacity(inspect.process.arguments.len() + 1);
    command.push(inspect.process.entrypoint.clone());
    command.extend(inspect.process.arguments.iter().cloned());
    ExecInfo {
        exec_id: exec_id.to_string(),
        command,
        user: inspect.process.user.clone(),
        tty: inspect.process.tty,
        interactive: inspect.open_stdin,
        privileged: inspect.process.privileged,
        inspected: true,
    }
}

/// The findings of an exec: privileged, or an interactive shell.
pub fn exec_findings(exec: &ExecInfo) -> Vec<(&'static str, Severity)> {
    let mut found = Vec::new();
    if exec.privileged {
        found.push(("privileged", Severity::Critical));
    }
    let program = exec.command.first().map(String::as_str).unwrap_or_default();
    let program = program.rsplit('/').next().unwrap_or_default();
    let shell = matches!(
        program,
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "busybox"
    );
    if shell && (exec.tty || exec.interactive) {
        found.push(("interactive_shell", Severity::Medium));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_of_the_host_and_its_parents_are_sensitive_but_not_ordinary_data() {
        let socket = Path::new("/srv/engine.sock");
        assert_eq!(mount_severity("/", false, socket), Some(Severity::Critical));
        assert_eq!(
            mount_severity("/srv/engine.sock", false, socket),
            Some(Severity::Critical)
        );
        assert_eq!(mount_severity("/var", false, socket), Some(Severity::High));
        assert_eq!(mount_severity("/etc/", false, socket), Some(Severity::High));
        assert_eq!(
            mount_severity("/etc/app", true, socket),
            Some(Severity::Medium)
        );
        assert_eq!(mount_severity("/etc/app", false, socket), None);
        assert_eq!(mount_severity("/srv/data", true, socket), None);
        assert_eq!(mount_severity("/etcetera", true, socket), None);
    }

    #[test]
    fn capabilities_are_graded() {
        assert_eq!(capability_severity("CAP_SYS_ADMIN"), Severity::High);
        assert_eq!(capability_severity("NET_ADMIN"), Severity::Medium);
        assert_eq!(capability_severity("CHOWN"), Severity::Low);
        assert_eq!(capability_severity("ALL"), Severity::Critical);
    }
}
