//! Network interfaces (`/sys/class/net`) and their addresses: IPv6 from `/proc/net/if_inet6`,
//! IPv4 from the kernel's local routing table (`/proc/net/fib_trie`) matched to interfaces and
//! netmasks through `/proc/net/route`. Everything is read as files, so it works under any root.

use super::root::Root;
use gatewatch_proto::inventory::{Counters, NetAddr, NetIface};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The interfaces, sorted by name.
pub fn interfaces(root: &Root) -> Vec<NetIface> {
    let dir = root.path("/sys/class/net");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|name| interface(root, name))
        .collect()
}

fn interface(root: &Root, name: String) -> NetIface {
    let base = format!("/sys/class/net/{name}");
    let line = |file: &str| {
        root.read_line(&format!("{base}/{file}"))
            .unwrap_or_default()
    };
    let number = |file: &str| line(file).parse::<u64>().unwrap_or(0);
    let counters = |dir: &str| Counters {
        packets: number(&format!("statistics/{dir}_packets")),
        bytes: number(&format!("statistics/{dir}_bytes")),
        errors: number(&format!("statistics/{dir}_errors")),
        dropped: number(&format!("statistics/{dir}_dropped")),
    };
    let kind = if root.path(&format!("{base}/wireless")).exists() {
        "wireless".to_string()
    } else if root.path(&format!("{base}/bridge")).exists() {
        "bridge".to_string()
    } else {
        arp_type(&line("type"))
    };
    NetIface {
        kind,
        state: line("operstate"),
        mtu: number("mtu") as u32,
        mac: line("address"),
        tx: counters("tx"),
        rx: counters("rx"),
        name,
    }
}

/// Names of the common ARP hardware types (`include/uapi/linux/if_arp.h`).
fn arp_type(number: &str) -> String {
    match number {
        "1" => "ethernet",
        "772" => "loopback",
        "65534" => "tunnel",
        "776" => "ipv6-in-ipv4",
        "778" => "gre",
        "512" => "ppp",
        "280" => "can",
        "519" => "ieee802154",
        "" => "unknown",
        other => other,
    }
    .to_string()
}

/// Every address of every interface.
pub fn addresses(root: &Root) -> Vec<NetAddr> {
    let mut out = ipv4_addresses(root);
    out.extend(ipv6_addresses(root));
    out
}

fn ipv6_addresses(root: &Root) -> Vec<NetAddr> {
    let text = root.read("/proc/net/if_inet6").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [hex, _index, prefix, _scope, _flags, iface] = fields.as_slice() else {
                return None;
            };
            let raw = u128::from_str_radix(hex, 16).ok()?;
            let prefix = u32::from_str_radix(prefix, 16).ok()?.min(128);
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Some(NetAddr {
                iface: iface.to_string(),
                proto: "ipv6".into(),
                address: Ipv6Addr::from(raw).to_string(),
                netmask: Ipv6Addr::from(mask).to_string(),
                broadcast: String::new(),
            })
        })
        .collect()
}

/// One `/proc/net/route` entry: interface, network, mask (host byte order).
struct Route {
    iface: String,
    dest: u32,
    mask: u32,
}

fn routes(root: &Root) -> Vec<Route> {
    let text = root.read("/proc/net/route").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
            Some(Route {
                iface: f.first()?.to_string(),
                dest: hex(f.get(1)?)?,
                mask: hex(f.get(7)?)?,
            })
        })
        .collect()
}

fn ipv4_addresses(root: &Root) -> Vec<NetAddr> {
    let routes = routes(root);
    let mut locals = local_ipv4(root);
    locals.sort();
    locals.dedup();
    locals
        .into_iter()
        .map(|ip| {
            let addr = u32::from(ip);
            // The most specific non-default route that contains the address names the
            // interface; loopback addresses are never in the main table.
            let route = routes
                .iter()
                .filter(|r| r.mask != 0 && addr & r.mask == r.dest)
                .max_by_key(|r| r.mask.count_ones());
            let (iface, mask) = match route {
                Some(r) => (r.iface.clone(), r.mask),
                None if ip.is_loopback() => ("lo".to_string(), 0xff00_0000),
                None => (String::new(), u32::MAX),
            };
            let broadcast = if mask == u32::MAX || ip.is_loopback() {
                String::new()
            } else {
                Ipv4Addr::from(addr | !mask).to_string()
            };
            NetAddr {
                iface,
                proto: "ipv4".into(),
                address: ip.to_string(),
                netmask: Ipv4Addr::from(mask).to_string(),
                broadcast,
            }
        })
        .collect()
}

/// Addresses the kernel marks `/32 host LOCAL` in the trie (the local table).
fn local_ipv4(root: &Root) -> Vec<Ipv4Addr> {
    let text = root.read("/proc/net/fib_trie").unwrap_or_default();
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(ip) = trimmed.strip_prefix("|-- ") {
            last = ip.parse().ok();
        } else if trimmed.starts_with("/32 host LOCAL") {
            out.extend(last.take());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_addresses_get_interface_mask_and_broadcast_from_routes() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("proc/net");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(
            net.join("fib_trie"),
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 192.0.2.2\n        /32 host LOCAL\n     |-- 192.0.2.255\n        /32 link BROADCAST\nLocal:\n     |-- 192.0.2.2\n        /32 host LOCAL\n",
        )
        .unwrap();
        std::fs::write(
            net.join("route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        )
        .unwrap();
        std::fs::write(
            net.join("if_inet6"),
            "00000000000000000000000000000001 01 80 10 80       lo\n",
        )
        .unwrap();
        let addrs = addresses(&Root::new(dir.path()));
        let eth = addrs.iter().find(|a| a.address == "192.0.2.2").unwrap();
        assert_eq!(
            (eth.iface.as_str(), eth.netmask.as_str()),
            ("eth0", "255.255.255.0")
        );
        assert_eq!(eth.broadcast, "192.0.2.255");
        let lo = addrs.iter().find(|a| a.address == "127.0.0.1").unwrap();
        assert_eq!(lo.iface, "lo");
        let v6 = addrs.iter().find(|a| a.proto == "ipv6").unwrap();
        assert_eq!((v6.address.as_str(), v6.iface.as_str()), ("::1", "lo"));
        assert_eq!(addrs.len(), 3, "each address once");
    }
}
