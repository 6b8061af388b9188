//! Inventory (syscollector) events: rows of the agent's system inventory and how they changed.
//!
//! The agent keeps each table in a local database and sends only differences after a scan
//! ([`InventoryEvent::Delta`]), then one [`InventoryEvent::Checksum`] per table. The checksum of a
//! table is SHA-256 (hex) over the rows' checksums concatenated in key order (SQLite's binary
//! collation), so the manager can recompute it from what it stored and tell whether it has
//! drifted. A full [`InventoryEvent::State`] snapshot, closed by [`InventoryEvent::SnapshotEnd`],
//! replaces the manager's copy of a table: the agent sends one when its own state is new and
//! periodically, so both sides converge after any loss.

use serde::{Deserialize, Serialize};

/// What the inventory module reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryEvent {
    /// A row was added, modified or removed since the previous scan.
    Delta {
        scan_id: u64,
        table: Table,
        change: Change,
        key: String,
        /// The row's checksum (empty when removed).
        checksum: String,
        /// The row as it is now (`None` when removed).
        row: Option<Row>,
    },
    /// One row of a full snapshot of a table.
    State {
        sync_id: u64,
        table: Table,
        key: String,
        checksum: String,
        row: Row,
    },
    /// End of a snapshot: rows of `table` not sent as `State` under `sync_id` are gone.
    SnapshotEnd {
        sync_id: u64,
        table: Table,
        rows: u64,
        checksum: String,
    },
    /// The agent's row count and checksum of a table after a scan.
    Checksum {
        scan_id: u64,
        table: Table,
        rows: u64,
        checksum: String,
    },
}

impl InventoryEvent {
    /// Kind name, see [`crate::Payload::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            InventoryEvent::Delta { .. } => "inventory.delta",
            InventoryEvent::State { .. } => "inventory.state",
            InventoryEvent::SnapshotEnd { .. } => "inventory.snapshot_end",
            InventoryEvent::Checksum { .. } => "inventory.checksum",
        }
    }
}

/// The inventory tables (Wazuh's syscollector names in [`Table::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    Os,
    Hardware,
    Packages,
    Processes,
    Ports,
    NetIface,
    NetAddr,
    Users,
    Groups,
}

impl Table {
    /// Every table, in scan order.
    pub const ALL: [Table; 9] = [
        Table::Os,
        Table::Hardware,
        Table::NetIface,
        Table::NetAddr,
        Table::Ports,
        Table::Processes,
        Table::Packages,
        Table::Users,
        Table::Groups,
    ];

    /// The name used in the API path (`/syscollector/{agent}/{name}`) and in storage.
    pub fn name(self) -> &'static str {
        match self {
            Table::Os => "os",
            Table::Hardware => "hardware",
            Table::Packages => "packages",
            Table::Processes => "processes",
            Table::Ports => "ports",
            Table::NetIface => "netiface",
            Table::NetAddr => "netaddr",
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }

    /// The table of a name given by [`Table::name`].
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A small stable number, used as the table's id in the agent's database.
    pub fn id(self) -> u8 {
        self as u8
    }
}

/// How a row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Change {
    Added,
    Modified,
    Removed,
}

/// One inventory row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    Os(OsInfo),
    Hardware(Hardware),
    Package(Package),
    Process(Process),
    Port(Port),
    NetIface(NetIface),
    NetAddr(NetAddr),
    User(User),
    Group(Group),
}

impl Row {
    /// The table the row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Row::Os(_) => Table::Os,
            Row::Hardware(_) => Table::Hardware,
            Row::Package(_) => Table::Packages,
            Row::Process(_) => Table::Processes,
            Row::Port(_) => Table::Ports,
            Row::NetIface(_) => Table::NetIface,
            Row::NetAddr(_) => Table::NetAddr,
            Row::User(_) => Table::Users,
            Row::Group(_) => Table::Groups,
        }
    }
}

/// The operating system (one row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `NAME` from os-release, e.g. `Poky (Yocto Project Reference Distro)`.
    pub os_name: String,
    /// `ID`, e.g. `debian`, `poky`, `raspbian`.
    pub os_platform: String,
    /// `VERSION_ID` (or `VERSION`), e.g. `12`, `4.0.17`.
    pub os_version: String,
    /// `VERSION_CODENAME`, e.g. `bookworm`, `kirkstone`.
    pub os_codename: String,
    pub os_major: String,
    pub os_minor: String,
    pub os_patch: String,
    /// `ID_LIKE`, e.g. `debian`.
    pub os_like: String,
    /// Kernel name (`uname -s`).
    pub sysname: String,
    /// Kernel release (`uname -r`).
    pub release: String,
    /// Kernel version (`uname -v`).
    pub version: String,
    /// Machine (`uname -m`).
    pub architecture: String,
    pub hostname: String,
}

/// The hardware (one row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// From the device tree (`serial-number`) or DMI (`board_serial`, `product_serial`).
    pub board_serial: String,
    /// Board or product model, when the device tree or DMI names it.
    pub board_model: String,
    pub cpu_name: String,
    pub cpu_cores: u32,
    /// Highest known CPU frequency in MHz (0 when unknown).
    pub cpu_mhz: u32,
    /// KiB.
    pub ram_total: u64,
    /// KiB available (`MemAvailable`). Volatile: not part of the row checksum.
    pub ram_free: u64,
    /// Percent of RAM in use. Volatile.
    pub ram_usage: u32,
}

/// An installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub vendor: String,
    /// `deb`, `ipk`, `rpm` or `apk`.
    pub format: String,
    pub description: String,
    /// Section (dpkg, opkg) or group (rpm).
    pub section: String,
    pub priority: String,
    /// Installed size in bytes.
    pub size: u64,
    pub source: String,
    pub multiarch: String,
    /// Seconds since the Unix epoch, when the database records it.
    pub install_time: Option<u64>,
    /// The database the package was read from.
    pub location: String,
}

/// A running process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    /// Executable path, or the first argument.
    pub cmd: String,
    /// Arguments after the first, space-separated.
    pub argvs: String,
    /// One letter, as in `/proc/<pid>/stat` (`R`, `S`, `D`, `Z`, …).
    pub state: String,
    pub euser: String,
    pub ruser: String,
    pub suser: String,
    pub egroup: String,
    pub rgroup: String,
    pub sgroup: String,
    pub fgroup: String,
    pub priority: i64,
    pub nice: i64,
    /// Volatile memory and CPU figures (not part of the row checksum): pages, KiB, ticks.
    pub size: u64,
    pub vm_size: u64,
    pub resident: u64,
    pub share: u64,
    pub utime: u64,
    pub stime: u64,
    /// Seconds since the Unix epoch.
    pub start_time: u64,
    pub pgrp: i64,
    pub session: i64,
    pub nlwp: i64,
    pub tgid: i64,
    pub tty: i64,
    pub processor: i64,
}

/// A socket: listening TCP, bound UDP, or (with `ports_all`) any TCP connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// `tcp`, `tcp6`, `udp` or `udp6`.
    pub protocol: String,
    pub local_ip: String,
    pub local_port: u16,
    pub remote_ip: String,
    pub remote_port: u16,
    pub tx_queue: u64,
    pub rx_queue: u64,
    pub inode: u64,
    /// `listening`, `established`, … (empty for UDP).
    pub state: String,
    /// Owner, found through the socket inode in `/proc/<pid>/fd`.
    pub pid: Option<u32>,
    pub process: String,
}

/// Traffic counters of one direction (volatile: not part of the row checksum).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub dropped: u64,
}

/// A network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetIface {
    pub name: String,
    /// `ethernet`, `loopback`, `wireless`, `bridge`, `tunnel`, … or the ARP type number.
    pub kind: String,
    /// `up`, `down`, `unknown`, … (`operstate`).
    pub state: String,
    pub mtu: u32,
    pub mac: String,
    pub tx: Counters,
    pub rx: Counters,
}

/// An address of an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAddr {
    pub iface: String,
    /// `ipv4` or `ipv6`.
    pub proto: String,
    pub address: String,
    pub netmask: String,
    pub broadcast: String,
}

/// A local user account (`/etc/passwd`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// From `/etc/shadow` when readable: `locked`, `no_password`, `password` or empty.
    pub password_status: String,
}

/// A local group (`/etc/group`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    /// Member user names, comma-separated.
    pub members: String,
}
