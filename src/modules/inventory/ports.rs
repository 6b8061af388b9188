//! Open ports from `/proc/net/{tcp,tcp6,udp,udp6}`, each with its owning process, found by the
//! socket inode among the links in `/proc/<pid>/fd`.

use super::root::Root;
use gatewatch_proto::inventory::Port;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// TCP state 0A: listening.
const TCP_LISTEN: &str = "0A";

/// The sockets to report: listening TCP (every TCP socket with `all`) and every UDP socket.
pub fn collect(root: &Root, all: bool) -> Vec<Port> {
    let mut ports = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let text = root.read(&format!("/proc/net/{proto}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(port) = parse_line(proto, line) {
                let keep = proto.starts_with("udp") || all || port.state == "listening";
                if keep {
                    ports.push(port);
                }
            }
        }
    }
    if !ports.is_empty() {
        let owners = socket_owners(root);
        for port in &mut ports {
            if let Some((pid, name)) = owners.get(&port.inode) {
                port.pid = Some(*pid);
                port.process = name.clone();
            }
        }
    }
    ports
}

fn parse_line(proto: &str, line: &str) -> Option<Port> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (local_ip, local_port) = endpoint(f.get(1)?)?;
    let (remote_ip, remote_port) = endpoint(f.get(2)?)?;
    let state = f.get(3)?;
    let (tx, rx) = f.get(4)?.split_once(':')?;
    let state = if proto.starts_with("udp") {
        String::new()
    } else if *state == TCP_LISTEN {
        "listening".into()
    } else {
        tcp_state(state).into()
    };
    Some(Port {
        protocol: proto.to_string(),
        local_ip,
        local_port,
        remote_ip,
        remote_port,
        tx_queue: u64::from_str_radix(tx, 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        inode: f.get(9)?.parse().ok()?,
        state,
        pid: None,
        process: String::new(),
    })
}

/// `0100007F:1F90` → (`127.0.0.1`, 8080); IPv6 is four little-endian 32-bit words.
fn endpoint(text: &str) -> Option<(String, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => Ipv4Addr::from(u32::from_be(u32::from_str_radix(addr, 16).ok()?)).to_string(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            Ipv6Addr::from(bytes).to_string()
        }
        _ => return None,
    };
    Some((ip, port))
}

fn tcp_state(hex: &str) -> &'static str {
    match hex {
        "01" => "established",
        "02" => "syn_sent",
        "03" => "syn_recv",
        "04" => "fin_wait1",
        "05" => "fin_wait2",
        "06" => "time_wait",
        "07" => "close",
        "08" => "close_wait",
        "09" => "last_ack",
        "0B" => "closing",
        _ => "unknown",
    }
}

/// Socket inode → (pid, process name), from the `socket:[inode]` links of every process.
pub fn socket_owners(root: &Root) -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    let Ok(procs) = std::fs::read_dir(root.path("/proc")) else {
        return owners;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let mut name = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let name = name.get_or_insert_with(|| {
                super::root::read_small(&entry.path().join("comm"))
                    .map(|c| c.trim_end().to_string())
                    .unwrap_or_default()
            });
            owners.entry(inode).or_insert((pid, name.clone()));
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_ipv6_endpoints_decode() {
        assert_eq!(endpoint("0100007F:1F90"), Some(("127.0.0.1".into(), 8080)));
        assert_eq!(
            endpoint("00000000000000000000000001000000:0016"),
            Some(("::1".into(), 22))
        );
    }

    #[test]
    fn listening_line_parses_with_queues_and_inode() {
        let line = "   0: 0100007F:9B41 00000000:0000 0A 00000002:00000001 00:00000000 00000000     0        0 280003 1 0000000036555810 100 0 0 10 0";
        let port = parse_line("tcp", line).unwrap();
        assert_eq!(port.state, "listening");
        assert_eq!(
            (port.local_port, port.tx_queue, port.rx_queue),
            (0x9B41, 2, 1)
        );
        assert_eq!(port.inode, 280003);
    }
}
