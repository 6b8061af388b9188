//! What a response must never touch: the manager's addresses, loopback, link-local, this host's
//! own addresses and the configured allow list (for address responses); pid 1, the agent and its
//! ancestors (for kill); `root` (for disable-account).
//!
//! The guard is built once when the module starts. Manager host names are resolved then (the
//! system resolver, once); an address that cannot be resolved is logged, and its literal form,
//! if any, still protects.

use std::net::{IpAddr, ToSocketAddrs};

/// A network prefix: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?}: prefix length is 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, bits })
    }

    /// Whether `ip` is inside the prefix (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0
}

/// The addresses no response may act on, and why.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    protected: Vec<(Cidr, String)>,
}

impl Guard {
    /// Loopback, link-local, unspecified and multicast always; plus the manager's addresses,
    /// this host's own, and `allow_list` (already validated by the configuration check).
    pub fn new(managers: &[String], manager_port: u16, allow_list: &[String]) -> Guard {
        let mut guard = Guard::default();
        for (cidr, why) in [
            ("127.0.0.0/8", "loopback"),
            ("::1/128", "loopback"),
            ("169.254.0.0/16", "link-local"),
            ("fe80::/10", "link-local"),
            ("0.0.0.0/32", "unspecified"),
            ("::/128", "unspecified"),
            ("224.0.0.0/4", "multicast"),
            ("ff00::/8", "multicast"),
            ("255.255.255.255/32", "broadcast"),
        ] {
            guard.protect(cidr, why);
        }
        for manager in managers {
            for ip in resolve(manager, manager_port) {
                guard.add(ip, format!("the manager {manager}"));
            }
        }
        for ip in own_addresses() {
            guard.add(ip, "an address of this host".into());
        }
        for cidr in allow_list {
            guard.protect(cidr, "in modules.response.allow_list");
        }
        guard
    }

    fn protect(&mut self, cidr: &str, why: &str) {
        match Cidr::parse(cidr) {
            Ok(c) => self.protected.push((c, why.into())),
            Err(e) => log::warn!("response: allow list entry ignored: {e}"),
        }
    }

    fn add(&mut self, ip: IpAddr, why: String) {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        self.protected.push((
            Cidr {
                addr: canonical(ip),
                bits,
            },
            why,
        ));
    }

    /// `Err(reason)` when `ip` must not be acted on.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match self.protected.iter().find(|(c, _)| c.contains(ip)) {
            Some((_, why)) => Err(format!("{ip} is never blocked: {why}")),
            None => Ok(()),
        }
    }
}

/// A manager address as given (an address, or a name resolved once by the system resolver).
fn resolve(manager: &str, port: u16) -> Vec<IpAddr> {
    let host = manager.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(e) => {
            log::warn!("response: cannot resolve the manager {host} to protect it: {e}");
            Vec::new()
        }
    }
}

/// The addresses of this host's interfaces (`getifaddrs`).
fn own_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below with freeifaddrs; each
    // `ifa_addr` is null or points to a sockaddr of the family it states.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        let octets = sin.sin_addr.s_addr.to_ne_bytes();
                        out.push(IpAddr::from(octets));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// `Err(reason)` when process `pid` must not be killed: pid 1 (or below), the agent itself, or
/// one of its ancestors (killing them could take the agent down with them).
pub fn check_kill(pid: i32) -> Result<(), String> {
    if pid <= 1 {
        return Err(format!(
            "pid {pid} is never killed (init or a process group)"
        ));
    }
    let me = std::process::id() as i32;
    if pid == me {
        return Err(format!("pid {pid} is the agent itself"));
    }
    let mut cur = parent_of(me);
    let mut hops = 0;
    while let Some(parent) = cur.filter(|p| *p > 1) {
        if parent == pid {
            return Err(format!("pid {pid} is an ancestor of the agent"));
        }
        hops += 1;
        if hops > 64 {
            break;
        }
        cur = parent_of(parent);
    }
    Ok(())
}

/// The parent pid from `/proc/<pid>/stat` (field 4, after the parenthesised name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// `Err(reason)` when the account must not be disabled.
pub fn check_account(user: &str) -> Result<(), String> {
    if user.is_empty() || user.starts_with('-') || user.contains(['/', ':', '\n']) {
        return Err(format!("{user:?} is not an account name"));
    }
    if user == "root" {
        return Err("the root account is never disabled".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_blocks_manager_or_loopback() {
        let guard = Guard::new(
            &["192.0.2.10".into(), "localhost".into()],
            1514,
            &["10.1.0.0/16".into()],
        );
        for ip in [
            "192.0.2.10",
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "10.1.2.3",
            "169.254.1.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let refused = guard.check_ip(ip);
            assert!(refused.is_err(), "{ip} must be protected");
        }
        assert!(guard
            .check_ip("::ffff:192.0.2.10".parse().unwrap())
            .unwrap_err()
            .contains("manager"));
        for ip in ["203.0.113.7", "10.2.0.1", "2001:db8::7"] {
            assert_eq!(guard.check_ip(ip.parse().unwrap()), Ok(()), "{ip}");
        }
    }

    #[test]
    fn own_interface_addresses_are_protected() {
        let guard = Guard::new(&[], 1514, &[]);
        for ip in own_addresses() {
            assert!(guard.check_ip(ip).is_err(), "{ip}");
        }
    }

    #[test]
    fn cidr_prefixes_match_by_bits() {
        let net = Cidr::parse("10.0.0.0/9").unwrap();
        assert!(net.contains("10.127.255.255".parse().unwrap()));
        assert!(!net.contains("10.128.0.0".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
