//! The bind guard: a cgroup BPF program (`BPF_CGROUP_INET4_POST_BIND`) that refuses, *after*
//! the kernel's conflict check, every bind of the port sweep's two probe sockets (known to it by
//! their socket cookies). A bind to a port in use still fails with `EADDRINUSE` (the check the
//! sweep is about), and a bind to a free port now fails with `EPERM` instead of succeeding, so
//! the socket stays unbound and serves for the next port: one `bind` per port instead of
//! `socket` + `bind` + `close` (the kernel's socket set-up and tear-down were nine tenths of the
//! sweep), and a free port is never held, not even for the microseconds of a probe.
//!
//! The program is attached to our own cgroup (v2) through a BPF link, which the kernel detaches
//! when the link's descriptor closes, also if the agent dies. It refuses only the two probe
//! sockets, so the cgroup's other sockets (the agent's own, or every process's when the agent
//! runs in the root cgroup) bind as before. Needs root (`CAP_BPF`/`CAP_SYS_ADMIN`), cgroup v2
//! and Linux 5.8; where any of it is missing, or when a self-test of the guard fails, the sweep
//! makes a socket per free port as before.

use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::SocketType;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// `bpf()` commands, program type, attach type and helper (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_CGROUP_SOCK: u32 = 9;
const BPF_CGROUP_INET4_POST_BIND: u32 = 12;
const BPF_FUNC_GET_SOCKET_COOKIE: i32 = 46;

/// The program, on `struct bpf_sock *ctx`: `c = bpf_get_socket_cookie(ctx); return c == a || c ==
/// b ? 0 : 1;` (0 refuses the bind with `EPERM`), `a` and `b` the probe sockets' cookies. One
/// instruction is `code, dst, src, off, imm` (see [`insn`]); a 64-bit constant takes two.
fn program(a: u64, b: u64) -> [[u8; 8]; 11] {
    let (a_low, a_high) = (a as u32 as i32, (a >> 32) as u32 as i32);
    let (b_low, b_high) = (b as u32 as i32, (b >> 32) as u32 as i32);
    [
        insn(0x85, 0, 0, 0, BPF_FUNC_GET_SOCKET_COOKIE), // r0 = bpf_get_socket_cookie(r1)
        insn(0x18, 1, 0, 0, a_low),                      // r1 = a
        insn(0x00, 0, 0, 0, a_high),
        insn(0x1d, 0, 1, 5, 0),     // if r0 == r1 goto refuse
        insn(0x18, 1, 0, 0, b_low), // r1 = b
        insn(0x00, 0, 0, 0, b_high),
        insn(0x1d, 0, 1, 2, 0), // if r0 == r1 goto refuse
        insn(0xb7, 0, 0, 0, 1), // r0 = 1 (allow)
        insn(0x95, 0, 0, 0, 0), // exit
        insn(0xb7, 0, 0, 0, 0), // refuse: r0 = 0
        insn(0x95, 0, 0, 0, 0), // exit
    ]
}

/// `struct bpf_insn` in the host's byte order: opcode, destination and source registers (two
/// 4-bit fields, whose order follows the byte order), offset, immediate.
const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let regs = if cfg!(target_endian = "little") {
        dst | src << 4
    } else {
        dst << 4 | src
    };
    let off = off.to_ne_bytes();
    let imm = imm.to_ne_bytes();
    [code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields used.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// The attached guard; detached when dropped.
pub struct BindGuard {
    _link: OwnedFd,
    _program: OwnedFd,
}

impl BindGuard {
    /// Loads the program for the two probe sockets and attaches it to our cgroup; says why
    /// not when it cannot.
    pub fn attach(probes: [&OwnedFd; 2]) -> Result<Self, String> {
        let code = program(cookie(probes[0])?, cookie(probes[1])?);
        let license = b"GPL\0";
        let mut load = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_SOCK,
            insn_cnt: code.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            expected_attach_type: BPF_CGROUP_INET4_POST_BIND,
            ..ProgLoadAttr::default()
        };
        load.prog_name[..10].copy_from_slice(b"gw_rc_bind");
        let program = bpf(BPF_PROG_LOAD, &load).map_err(|e| format!("loading it: {e}"))?;
        let cgroup_path = own_cgroup()?;
        let cgroup = rustix::fs::open(
            &cgroup_path,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("opening {}: {e}", cgroup_path.display()))?;
        let link = LinkCreateAttr {
            prog_fd: program.as_raw_fd() as u32,
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_INET4_POST_BIND,
            flags: 0,
        };
        let link = bpf(BPF_LINK_CREATE, &link)
            .map_err(|e| format!("attaching it to {}: {e}", cgroup_path.display()))?;
        Ok(BindGuard {
            _link: link,
            _program: program,
        })
    }

    /// Checks that the guard does what the sweep relies on, for `probe`, a socket of `kind`:
    /// its bind to a port in use fails with `EADDRINUSE`, to a free port with `EPERM`, leaving
    /// it unbound. A port taken by another program meanwhile fails the check (the sweep then
    /// makes a socket per port). After a failure `probe` may be bound: it must not serve.
    pub fn verify(&self, probe: &OwnedFd, kind: SocketType) -> Result<(), String> {
        let held = match kind {
            SocketType::STREAM => std::net::TcpListener::bind("0.0.0.0:0")
                .and_then(|held| Ok((held.local_addr()?.port(), Holder::Tcp(held)))),
            _ => std::net::UdpSocket::bind("0.0.0.0:0")
                .and_then(|held| Ok((held.local_addr()?.port(), Holder::Udp(held)))),
        };
        let (port, held) = held.map_err(|e| format!("another socket cannot bind: {e}"))?;
        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        match rustix::net::bind(probe, &addr) {
            Err(Errno::ADDRINUSE) => {}
            other => return Err(format!("a port in use answers {other:?}")),
        }
        drop(held);
        match rustix::net::bind(probe, &addr) {
            Err(Errno::PERM) => Ok(()),
            other => Err(format!("a free port answers {other:?}")),
        }
    }
}

/// The socket held during [`BindGuard::verify`] (held, never read).
enum Holder {
    Tcp(#[allow(dead_code)] std::net::TcpListener),
    Udp(#[allow(dead_code)] std::net::UdpSocket),
}

/// The socket cookie (`SO_COOKIE`) of `socket`.
fn cookie(socket: &OwnedFd) -> Result<u64, String> {
    let mut cookie = 0u64;
    let mut size = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `socket` is an open socket; the value and its size live across the call, and the
    // kernel writes at most `size` bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut size,
        )
    };
    if rc != 0 {
        return Err(format!(
            "reading a socket cookie: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(cookie)
}

/// Runs `bpf(cmd, attr)`, which returns a new descriptor.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a `repr(C)` prefix of `union bpf_attr`, valid for its size during the
    // call; the pointers in it (program, license) point to data the caller keeps alive.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            (attr as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(rc).map_err(|_| std::io::Error::other("bpf() returned no fd"))?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory of our cgroup (v2): our `0::` line of `/proc/self/cgroup` under the cgroup2
/// mount of `/proc/self/mountinfo`.
fn own_cgroup() -> Result<PathBuf, String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let relative = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 in /proc/self/cgroup")?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    // `id parent dev root mountpoint options... - type source options`
    let mount = mounts
        .lines()
        .find_map(|line| {
            let (fields, rest) = line.split_once(" - ")?;
            let fields: Vec<&str> = fields.split(' ').collect();
            if !rest.starts_with("cgroup2 ") || fields.get(3) != Some(&"/") {
                return None;
            }
            fields.get(4).copied()
        })
        .ok_or("no cgroup2 mount of the hierarchy's root")?;
    Ok(PathBuf::from(mount).join(relative.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::AddressFamily;

    fn socket(kind: SocketType) -> OwnedFd {
        rustix::net::socket(AddressFamily::INET, kind, None).unwrap()
    }

    #[test]
    fn guarded_sockets_tell_ports_in_use_and_stay_unbound_and_are_freed_on_drop() {
        let (tcp, udp) = (socket(SocketType::STREAM), socket(SocketType::DGRAM));
        let guard = match BindGuard::attach([&tcp, &udp]) {
            Ok(guard) => guard,
            Err(why) => {
                // Not root, no cgroup v2 or an old kernel: the sweep's fallback is tested in
                // `hidden_port_is_found_without_the_bind_guard`.
                eprintln!("bind guard unavailable here: {why}");
                return;
            }
        };
        guard.verify(&tcp, SocketType::STREAM).unwrap();
        guard.verify(&udp, SocketType::DGRAM).unwrap();
        // Other sockets of the cgroup bind as before.
        let other = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        drop(other);
        drop(guard);
        // Detached: the probe socket binds (a port the kernel picks).
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        rustix::net::bind(&tcp, &any).unwrap();
    }
}
