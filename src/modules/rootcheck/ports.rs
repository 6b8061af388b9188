//! Hidden ports: TCP and UDP ports that cannot be bound on `0.0.0.0` (the address is in use)
//! though no socket in `proc_root/net/{tcp,tcp6}` or `{udp,udp6}` holds them.
//!
//! A port that a new connection takes (or frees) between the read of `/proc/net` and the bind is
//! not hidden: every candidate is checked again after a short pause, against a fresh read of
//! `/proc/net` and with a fresh socket, and reported only when both still disagree. Binding
//! conflicts only within our network namespace, whose sockets are exactly those our
//! `/proc/net` lists (it follows the reading process's namespace), so sockets of containers in
//! other namespaces neither block a bind nor go missing. Known limits: a TCP socket that is bound
//! but neither listening nor connected is held in the kernel's bind table without appearing in
//! `/proc/net/tcp` (rare and short-lived in practice, but a program that keeps one would be
//! reported); IPv6-only sockets on a specific address do not conflict with `0.0.0.0` and are not
//! probed; without root, ports below 1024 cannot be probed (the bind is refused) and are skipped.
//!
//! Where the [`BindGuard`] can be attached (root, cgroup v2, Linux 5.8) the sweep needs one
//! `bind` per port on one socket per protocol; elsewhere a free port costs a socket of its own.

use super::bindguard::BindGuard;
use super::scan::{room_for_one, Finding, Scan};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketType};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

/// Pause before a candidate is probed again.
const RECHECK_AFTER: Duration = Duration::from_millis(100);

/// A set of ports.
struct Ports(Box<[u64; 1024]>);

impl Ports {
    fn new() -> Self {
        Ports(Box::new([0; 1024]))
    }
    fn insert(&mut self, port: u16) {
        self.0[usize::from(port / 64)] |= 1 << (port % 64);
    }
    fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }
}

/// The two protocols probed: name, socket type, `/proc/net` tables.
const PROTOCOLS: [(&str, SocketType, [&str; 2]); 2] = [
    ("tcp", SocketType::STREAM, ["net/tcp", "net/tcp6"]),
    ("udp", SocketType::DGRAM, ["net/udp", "net/udp6"]),
];

/// Runs the hidden port check.
pub async fn check(scan: &mut Scan<'_>) {
    let proc_root = scan.config.proc_root.clone();
    // The two probe sockets (TCP, UDP), made first so that the guard knows them.
    let mut probes = PROTOCOLS.map(|(_, kind, _)| new_socket(kind).ok());
    let guard = match &probes {
        _ if !scan.config.bpf_bind_guard => None,
        [Some(tcp), Some(udp)] => match BindGuard::attach([tcp, udp]) {
            Ok(guard) => Some(guard),
            Err(why) => {
                log::info!("rootcheck: ports probed without the bind guard: {why}");
                None
            }
        },
        _ => None,
    };
    for (i, (name, kind, tables)) in PROTOCOLS.into_iter().enumerate() {
        let mut socket = probes[i].take();
        let guarded = match (&guard, &socket) {
            (Some(guard), Some(probe)) => match guard.verify(probe, kind) {
                Ok(()) => true,
                Err(why) => {
                    log::info!("rootcheck: ports ({name}) probed without the bind guard: {why}");
                    socket = None; // it may be bound now
                    false
                }
            },
            _ => false,
        };
        let listed = match read_tables(&proc_root, &tables) {
            Ok(listed) => listed,
            Err(why) => {
                scan.skip(format!("ports ({name}): {why}"));
                continue;
            }
        };
        let mut candidates: Vec<u16> = Vec::new();
        for port in 1..=u16::MAX {
            scan.pacer.tick().await;
            if listed.contains(port) {
                continue;
            }
            match try_bind(&mut socket, kind, port, guarded) {
                Ok(Probe::InUse) => {
                    if room_for_one(scan.memory(), &mut candidates) {
                        candidates.push(port);
                    }
                }
                Ok(Probe::Free | Probe::NotProbed) => {}
                Err(e) => {
                    scan.skip(format!("ports ({name}): cannot make a socket: {e}"));
                    break;
                }
            }
        }
        scan.checked(&format!("ports_{name}"), u64::from(u16::MAX));
        if candidates.is_empty() {
            continue;
        }
        smol::Timer::after(RECHECK_AFTER).await;
        let Ok(listed) = read_tables(&proc_root, &tables) else {
            continue;
        };
        for port in candidates {
            let mut fresh = None;
            if listed.contains(port)
                || !matches!(try_bind(&mut fresh, kind, port, false), Ok(Probe::InUse))
            {
                continue;
            }
            scan.report(Finding {
                kind: "hidden_port",
                title: format!("Port '{port}'({name}) hidden."),
                path: None,
                pid: None,
                port: Some((name, port)),
                details: format!(
                    "bind on 0.0.0.0:{port} fails (address in use) but no socket in {} holds it",
                    tables
                        .iter()
                        .map(|t| proc_root.join(t).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
}

/// What a bind said.
enum Probe {
    /// Bound: nobody holds the port.
    Free,
    /// Refused: the address is in use.
    InUse,
    /// Refused for another reason (e.g. a privileged port without root).
    NotProbed,
}

/// Tries to bind `port` on 0.0.0.0 with `socket` (made if `None`). A bound socket is dropped (so
/// the port is released at once) and the next probe makes a new one; a refused bind leaves the
/// socket unbound and reusable, which saves two system calls per port in use. With `guarded`
/// (`socket` is a probe socket the [`BindGuard`] was verified with) a free port is refused with
/// `EPERM` after the conflict check: the socket serves for every port.
fn try_bind(
    socket: &mut Option<OwnedFd>,
    kind: SocketType,
    port: u16,
    guarded: bool,
) -> Result<Probe, Errno> {
    let fd = match socket.take() {
        Some(fd) => fd,
        None => new_socket(kind)?,
    };
    match rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)) {
        Ok(()) => Ok(Probe::Free),
        Err(Errno::PERM) if guarded => {
            *socket = Some(fd);
            Ok(Probe::Free)
        }
        Err(Errno::ADDRINUSE) => {
            *socket = Some(fd);
            Ok(Probe::InUse)
        }
        Err(_) => {
            *socket = Some(fd);
            Ok(Probe::NotProbed)
        }
    }
}

/// A new IPv4 socket of `kind`.
fn new_socket(kind: SocketType) -> Result<OwnedFd, Errno> {
    rustix::net::socket(AddressFamily::INET, kind, None)
}

/// The local ports of every socket in the given `/proc/net` tables (one must be readable).
fn read_tables(proc_root: &Path, tables: &[&str]) -> Result<Ports, String> {
    let mut ports = Ports::new();
    let mut read_any = false;
    let mut errors = Vec::new();
    for table in tables {
        let path = proc_root.join(table);
        match read_table(&path) {
            Ok(text) => {
                read_any = true;
                for port in text.lines().skip(1).filter_map(local_port) {
                    ports.insert(port);
                }
            }
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    if read_any {
        Ok(ports)
    } else {
        Err(errors.join("; "))
    }
}

/// Reads a `/proc/net` table. With room for a few pages from the first `read`: the kernel
/// walks its socket hash table from the start at every `read`, and `read_to_string` into an
/// empty string would begin with reads of 32 bytes.
fn read_table(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}

/// The local port of a `/proc/net/{tcp,udp}[6]` line (`sl local_address rem_address …`, the
/// address as `HEX:PORT`).
fn local_port(line: &str) -> Option<u16> {
    let local = line.split_whitespace().nth(1)?;
    let (_, port) = local.rsplit_once(':')?;
    u16::from_str_radix(port, 16).ok()
}
