//! `GET /syscollector/{agent_id}/{os|hardware|packages|processes|ports|netiface|netaddr}`: an
//! agent's inventory as the manager holds it, with Wazuh's parameters for each sub-resource.

use gatewatch_proto::inventory::Table;

use super::collection::{self, Spec};
use super::http::Response;
use super::query::agent_id;
use super::reply::{ApiError, Messages};
use super::Call;
use crate::ManagerError;

const MESSAGES: Messages = Messages {
    all: "All specified syscollector information was returned",
    some: "Some syscollector information was not returned",
    none: "No syscollector information was returned",
};

const OS: Spec = Spec {
    paged: false,
    filters: &[],
    fields: &[
        "os",
        "os.name",
        "os.platform",
        "os.version",
        "os.codename",
        "os.major",
        "os.minor",
        "os.patch",
        "os_like",
        "sysname",
        "release",
        "version",
        "architecture",
        "hostname",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const HARDWARE: Spec = Spec {
    paged: false,
    filters: &[],
    fields: &[
        "board_serial",
        "board_model",
        "cpu",
        "cpu.name",
        "cpu.cores",
        "cpu.mhz",
        "ram",
        "ram.total",
        "ram.free",
        "ram.usage",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const PACKAGES: Spec = Spec {
    paged: true,
    filters: &["vendor", "name", "architecture", "format", "version"],
    fields: &[
        "name",
        "version",
        "architecture",
        "vendor",
        "format",
        "description",
        "section",
        "priority",
        "size",
        "source",
        "multiarch",
        "location",
        "install_time",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const PROCESSES: Spec = Spec {
    paged: true,
    filters: &[
        "pid", "state", "ppid", "egroup", "euser", "fgroup", "name", "nlwp", "pgrp", "priority",
        "rgroup", "ruser", "sgroup", "suser",
    ],
    fields: &[
        "pid",
        "ppid",
        "name",
        "cmd",
        "argvs",
        "state",
        "euser",
        "ruser",
        "suser",
        "egroup",
        "rgroup",
        "sgroup",
        "fgroup",
        "priority",
        "nice",
        "size",
        "vm_size",
        "resident",
        "share",
        "start_time",
        "utime",
        "stime",
        "pgrp",
        "session",
        "nlwp",
        "tgid",
        "tty",
        "processor",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const PORTS: Spec = Spec {
    paged: true,
    filters: &[
        "pid",
        "protocol",
        "local.ip",
        "local.port",
        "remote.ip",
        "tx_queue",
        "state",
        "process",
    ],
    fields: &[
        "protocol",
        "local",
        "local.ip",
        "local.port",
        "remote",
        "remote.ip",
        "remote.port",
        "tx_queue",
        "rx_queue",
        "inode",
        "state",
        "pid",
        "process",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const NETIFACE: Spec = Spec {
    paged: true,
    filters: &[
        "name",
        "adapter",
        "type",
        "state",
        "mtu",
        "tx.packets",
        "rx.packets",
        "tx.bytes",
        "rx.bytes",
        "tx.errors",
        "rx.errors",
        "tx.dropped",
        "rx.dropped",
    ],
    fields: &[
        "name",
        "type",
        "state",
        "mtu",
        "mac",
        "tx",
        "tx.packets",
        "tx.bytes",
        "tx.errors",
        "tx.dropped",
        "rx",
        "rx.packets",
        "rx.bytes",
        "rx.errors",
        "rx.dropped",
    ],
    with_scan: true,
    messages: MESSAGES,
};

const NETADDR: Spec = Spec {
    paged: true,
    filters: &["iface", "proto", "address", "broadcast", "netmask"],
    fields: &["iface", "proto", "address", "netmask", "broadcast"],
    with_scan: true,
    messages: MESSAGES,
};

/// The sub-resources served, by path segment.
const KINDS: [(&str, &Spec); 7] = [
    ("os", &OS),
    ("hardware", &HARDWARE),
    ("packages", &PACKAGES),
    ("processes", &PROCESSES),
    ("ports", &PORTS),
    ("netiface", &NETIFACE),
    ("netaddr", &NETADDR),
];

/// The served sub-resource named by a path segment (for the router).
pub(super) fn kind(segment: &str) -> Option<&'static str> {
    KINDS.iter().map(|(k, _)| *k).find(|k| *k == segment)
}

/// `GET /syscollector/{agent_id}/{kind}`.
pub(super) async fn get(call: &Call<'_>, id: &str, kind: &str) -> Result<Response, ApiError> {
    let (spec, table) = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .and_then(|(k, spec)| Some((*spec, Table::from_name(k)?)))
        .ok_or_else(ApiError::not_found)?;
    let query = spec.read(call.query)?;
    let id = agent_id(id)?;
    let found = collection::load(call, id, true, move |db| {
        let items = crate::inventory::items(db.conn(), id, table)
            .map_err(|e| ManagerError::store("cannot read inventory", e))?;
        Ok(query.apply(items, &["agent_id"]))
    })
    .await?;
    Ok(spec.answer(call, id, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_is_an_inventory_table() {
        for (name, _) in KINDS {
            assert!(Table::from_name(name).is_some(), "{name}");
        }
        assert_eq!(kind("ports"), Some("ports"));
        assert_eq!(kind("nope"), None);
    }
}
