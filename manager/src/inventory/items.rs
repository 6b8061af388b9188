//! Inventory rows in the Wazuh API's shape (`GET /syscollector/{agent_id}/{kind}` items),
//! without `agent_id` and `scan`, which are added when items are served.

use gatewatch_proto::inventory::{Counters, Row};
use serde_json::{json, Value};

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC).
pub fn iso_time(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYY/MM/DD HH:MM:SS` (syscollector's own time format, used for install times).
pub fn wazuh_time(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Calendar date and time of a Unix time (Howard Hinnant's days-to-civil algorithm).
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn counters(c: &Counters) -> Value {
    json!({"packets": c.packets, "bytes": c.bytes, "errors": c.errors, "dropped": c.dropped})
}

/// Drops empty strings, as Wazuh leaves out empty fields.
fn compact(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !matches!(v, Value::String(s) if s.is_empty()) && !v.is_null());
        for v in map.values_mut() {
            *v = compact(std::mem::take(v));
        }
    }
    v
}

/// The item for a row.
pub fn item(row: &Row) -> Value {
    compact(match row {
        Row::Os(o) => json!({
            "os": {
                "name": o.os_name, "platform": o.os_platform, "version": o.os_version,
                "codename": o.os_codename, "major": o.os_major, "minor": o.os_minor,
                "patch": o.os_patch,
            },
            "os_like": o.os_like,
            "sysname": o.sysname, "release": o.release, "version": o.version,
            "architecture": o.architecture, "hostname": o.hostname,
        }),
        Row::Hardware(h) => json!({
            "board_serial": h.board_serial,
            "board_model": h.board_model,
            "cpu": {"name": h.cpu_name, "cores": h.cpu_cores, "mhz": h.cpu_mhz},
            "ram": {"total": h.ram_total, "free": h.ram_free, "usage": h.ram_usage},
        }),
        Row::Package(p) => json!({
            "name": p.name, "version": p.version, "architecture": p.architecture,
            "vendor": p.vendor, "format": p.format, "description": p.description,
            "section": p.section, "priority": p.priority, "size": p.size, "source": p.source,
            "multiarch": p.multiarch, "location": p.location,
            "install_time": p.install_time.map(wazuh_time),
        }),
        Row::Process(p) => json!({
            "pid": p.pid.to_string(), "ppid": p.ppid, "name": p.name, "cmd": p.cmd,
            "argvs": p.argvs, "state": p.state,
            "euser": p.euser, "ruser": p.ruser, "suser": p.suser,
            "egroup": p.egroup, "rgroup": p.rgroup, "sgroup": p.sgroup, "fgroup": p.fgroup,
            "priority": p.priority, "nice": p.nice, "size": p.size, "vm_size": p.vm_size,
            "resident": p.resident, "share": p.share, "start_time": p.start_time,
            "utime": p.utime, "stime": p.stime, "pgrp": p.pgrp, "session": p.session,
            "nlwp": p.nlwp, "tgid": p.tgid, "tty": p.tty, "processor": p.processor,
        }),
        Row::Port(p) => json!({
            "protocol": p.protocol,
            "local": {"ip": p.local_ip, "port": p.local_port},
            "remote": {"ip": p.remote_ip, "port": p.remote_port},
            "tx_queue": p.tx_queue, "rx_queue": p.rx_queue, "inode": p.inode,
            "state": p.state, "pid": p.pid, "process": p.process,
        }),
        Row::NetIface(i) => json!({
            "name": i.name, "type": i.kind, "state": i.state, "mtu": i.mtu, "mac": i.mac,
            "tx": counters(&i.tx), "rx": counters(&i.rx),
        }),
        Row::NetAddr(a) => json!({
            "iface": a.iface, "proto": a.proto, "address": a.address,
            "netmask": a.netmask, "broadcast": a.broadcast,
        }),
        Row::User(u) => json!({
            "name": u.name, "uid": u.uid, "gid": u.gid, "gecos": u.gecos, "home": u.home,
            "shell": u.shell, "password_status": u.password_status,
        }),
        Row::Group(g) => json!({"name": g.name, "gid": g.gid, "members": g.members}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewatch_proto::inventory::Port;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_713_891_224), "2024-04-23T16:53:44Z");
        assert_eq!(wazuh_time(951_782_400), "2000/02/29 00:00:00");
    }

    #[test]
    fn port_item_nests_endpoints_and_drops_empty_fields() {
        let v = item(&Row::Port(Port {
            protocol: "tcp".into(),
            local_ip: "0.0.0.0".into(),
            local_port: 22,
            state: "listening".into(),
            ..Port::default()
        }));
        assert_eq!(v["local"]["port"], 22);
        assert!(v.get("process").is_none());
        assert!(v.get("pid").is_none());
    }
}
