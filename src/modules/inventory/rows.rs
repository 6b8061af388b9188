//! A row's identity (its key within its table) and its checksum.
//!
//! The checksum is SHA-256 (hex) of the row's postcard encoding with the volatile figures
//! (memory, CPU time, traffic counters, free RAM) zeroed: a row counts as modified when what
//! it *is* changes, not at every tick of a counter. Those figures are still sent, as sampled
//! when the row was last added or modified.

use gatewatch_proto::inventory::{Counters, Row};
use sha2::{Digest, Sha256};

/// The row's key: unique within its table and stable across scans.
pub fn key(row: &Row) -> String {
    match row {
        Row::Os(_) => "os".into(),
        Row::Hardware(_) => "hardware".into(),
        Row::Package(p) => format!("{}:{}:{}", p.format, p.name, p.architecture),
        Row::Process(p) => p.pid.to_string(),
        Row::Port(p) => format!(
            "{}:{}:{}:{}:{}",
            p.protocol, p.local_ip, p.local_port, p.remote_ip, p.remote_port
        ),
        Row::NetIface(i) => i.name.clone(),
        Row::NetAddr(a) => format!("{}:{}:{}", a.iface, a.proto, a.address),
        Row::User(u) => u.name.clone(),
        Row::Group(g) => g.name.clone(),
    }
}

/// The row's checksum (see the module comment).
pub fn checksum(row: &Row) -> String {
    let mut stable = row.clone();
    match &mut stable {
        Row::Hardware(h) => {
            h.ram_free = 0;
            h.ram_usage = 0;
        }
        Row::Process(p) => {
            p.size = 0;
            p.vm_size = 0;
            p.resident = 0;
            p.share = 0;
            p.utime = 0;
            p.stime = 0;
            p.processor = 0;
            p.state = String::new();
        }
        Row::Port(p) => {
            p.tx_queue = 0;
            p.rx_queue = 0;
        }
        Row::NetIface(i) => {
            i.tx = Counters::default();
            i.rx = Counters::default();
        }
        _ => {}
    }
    let bytes = postcard::to_allocvec(&stable).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// The checksum of a table: SHA-256 (hex) over its rows' checksums in key order.
pub fn table_checksum<'a>(row_checksums: impl Iterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for c in row_checksums {
        hasher.update(c.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::inventory::Process;

    #[test]
    fn counters_do_not_change_the_checksum_but_identity_does() {
        let p = Process {
            pid: 1,
            name: "init".into(),
            ..Process::default()
        };
        let mut busier = p.clone();
        busier.utime = 999;
        busier.resident = 12;
        assert_eq!(
            checksum(&Row::Process(p.clone())),
            checksum(&Row::Process(busier))
        );
        let mut renamed = p.clone();
        renamed.cmd = "/sbin/init".into();
        assert_ne!(checksum(&Row::Process(p)), checksum(&Row::Process(renamed)));
    }
}
